/**
 * A mapper over a flat byte map: one byte of state per chunk for the whole space, allocated up front
 * (MMTk's `ByteMapMmapper`, its 32-bit choice). For a small space.
 *
 * @module
 */
import type { VirtAddr } from '@vmkit/addr';
import { ChunkStateMmapper } from './chunk-state.js';
import { describeValue, mmapperFail } from './errors.js';
import type { MapState } from './map-state.js';
import type { MmapOs } from './os.js';
import {
  H_KIND,
  H_LOG_MAPPABLE,
  H_MAGIC,
  H_VERSION,
  HEADER_BYTES,
  KIND_BYTE_MAP,
  MAGIC,
  VERSION,
} from './shared-layout.js';

/** Options of {@link ByteMapMmapper}. */
export interface ByteMapOptions {
  /**
   * log2 of the space covered, `[0, 2^log)`: an integer in 22..40 (one chunk to 1 TiB; the map costs
   * `2^(log - 22)` bytes). Default 33 (8 GiB, 2,048 chunks: MMTk's `MMAP_NUM_CHUNKS` on 64-bit).
   */
  readonly logMappableBytes?: number;
}

/** Default log2 of the space of a {@link ByteMapMmapper}: 33 (MMTk's 64-bit byte map, 2,048 chunks). */
export const BYTE_MAP_DEFAULT_LOG_MAPPABLE_BYTES = 33;
const MIN_LOG = 22;
const MAX_LOG = 40;
const MAPPED = 2;
const CHUNK = 0x40_0000;

let attaching: SharedArrayBuffer | undefined;

function newState(log: number): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(HEADER_BYTES + 2 ** (log - 22));
  const h = new Int32Array(buf, 0, HEADER_BYTES / 4);
  h[H_MAGIC] = MAGIC;
  h[H_VERSION] = VERSION;
  h[H_KIND] = KIND_BYTE_MAP;
  h[H_LOG_MAPPABLE] = log;
  return buf;
}

function stateFor(options: ByteMapOptions): { buf: SharedArrayBuffer; log: number } {
  const buf = attaching;
  attaching = undefined;
  if (buf !== undefined) {
    const log = new Int32Array(buf, 0, HEADER_BYTES / 4)[H_LOG_MAPPABLE] ?? 0;
    if (!(log >= MIN_LOG && log <= MAX_LOG) || buf.byteLength !== HEADER_BYTES + 2 ** (log - 22)) {
      mmapperFail('E_BAD_SHARED_STATE', `byte-map state has a bad size or log2 of its space (${log})`, {
        log,
      });
    }
    return { buf, log };
  }
  if (typeof options !== 'object' || options === null) {
    mmapperFail('E_INVALID', `options ${describeValue(options)} is not an object`, { options });
  }
  const given: unknown = options.logMappableBytes;
  const log = given === undefined ? BYTE_MAP_DEFAULT_LOG_MAPPABLE_BYTES : given;
  if (typeof log !== 'number') {
    mmapperFail('E_INVALID', `logMappableBytes ${describeValue(log)} is not a number`, {
      logMappableBytes: log,
    });
  }
  if (!Number.isInteger(log) || log < MIN_LOG || log > MAX_LOG) {
    mmapperFail(
      'E_RANGE',
      `logMappableBytes ${describeValue(log)} is not an integer in 22..40 (use TwoLevelMmapper for a larger space)`,
      { logMappableBytes: log },
    );
  }
  return { buf: newState(log), log };
}

/**
 * An {@link Mmapper} with one byte of state per 4 MiB chunk of `[0, 2^logMappableBytes)`, in a
 * `SharedArrayBuffer` allocated at construction. `isMappedAddress` is one atomic byte read.
 */
export class ByteMapMmapper extends ChunkStateMmapper {
  private readonly states: Uint8Array;
  private readonly limit: number;

  /**
   * A new mapper, every chunk Unmapped.
   *
   * @param os the OS interface (the five {@link MmapOs} methods)
   * @throws MmapperError `E_INVALID` for a bad OS interface or options, `E_RANGE` for a
   *   `logMappableBytes` outside 22..40
   */
  constructor(os: MmapOs, options: ByteMapOptions = {}) {
    const { buf, log } = stateFor(options);
    super(buf, os, 2 ** log);
    this.limit = 2 ** log;
    this.states = new Uint8Array(buf, HEADER_BYTES);
  }

  /**
   * Attaches to the shared state of a byte-map mapper (see `Mmapper.fromShared`, which also accepts it).
   *
   * @throws MmapperError `E_BAD_SHARED_STATE` if `buffer` is not a byte-map mapper's state
   */
  static fromShared(buffer: SharedArrayBuffer, os: MmapOs): ByteMapMmapper {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      mmapperFail('E_BAD_SHARED_STATE', `${describeValue(buffer)} is not a mapper's SharedArrayBuffer`, {
        buffer,
      });
    }
    const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    if (h[H_MAGIC] !== MAGIC || h[H_VERSION] !== VERSION || h[H_KIND] !== KIND_BYTE_MAP) {
      mmapperFail('E_BAD_SHARED_STATE', 'the SharedArrayBuffer does not hold a byte-map mapper state', {
        kind: h[H_KIND],
      });
    }
    attaching = buffer;
    try {
      return new ByteMapMmapper(os);
    } finally {
      attaching = undefined;
    }
  }

  /** log2 of the space covered. */
  get logMappableBytes(): number {
    return Math.log2(this.limit);
  }

  isMappedAddress(addr: VirtAddr): boolean {
    if (typeof addr !== 'number' || !(addr >= 0 && addr < this.limit) || Math.floor(addr) !== addr)
      return false;
    return this.states[(addr / CHUNK) | 0] === MAPPED;
  }

  protected stateOf(chunk: number): MapState {
    return this.states[chunk] as MapState;
  }

  protected setState(chunk: number, state: MapState): void {
    Atomics.store(this.states, chunk, state);
  }

  protected fillState(first: number, end: number, state: MapState): void {
    this.states.fill(state, first, end);
  }

  protected runEnd(first: number, end: number): number {
    const st = this.states;
    const s = st[first];
    let c = first + 1;
    while (c < end && st[c] === s) c++;
    return c;
  }
}
