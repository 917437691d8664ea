/**
 * A mapper for the whole 48-bit space with a two-level table (MMTk's `TwoLevelMmapper`): a directory of
 * 8,192 slabs of 32 GiB, each slab a byte of state for each of its 8,192 chunks, created on first write.
 * No hashing: an address's slab is its top 13 bits, its chunk in the slab the next 13.
 *
 * Beyond MMTk: a directory entry with no slab also records a **uniform state** for its whole 32 GiB, so
 * quarantining or marking whole slabs writes one word and allocates nothing (a start-up quarantine of
 * 1 TiB is 32 words and one OS call); a slab is only created when a range ends inside it.
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
  H_SLABS,
  H_VERSION,
  HEADER_BYTES,
  KIND_TWO_LEVEL,
  MAGIC,
  VERSION,
} from './shared-layout.js';

/** log2 of the space a {@link TwoLevelMmapper} covers: 48 (MMTk's `LOG_MAPPABLE_BYTES`). */
export const LOG_MAPPABLE_BYTES = 48;
/** log2 of a slab's span: 22 + (48 − 22) / 2 = 35 (32 GiB; MMTk's `LOG_MMAP_SLAB_BYTES`). */
export const LOG_MMAP_SLAB_BYTES = 35;
/** A slab spans 32 GiB (MMTk's `MMAP_SLAB_BYTES`). */
export const MMAP_SLAB_BYTES = 2 ** LOG_MMAP_SLAB_BYTES;
/** log2 of the chunks in a slab: 13 (MMTk's `LOG_MMAP_CHUNKS_PER_SLAB`). */
export const LOG_MMAP_CHUNKS_PER_SLAB = 13;
/** 8,192 chunks per slab (MMTk's `MMAP_CHUNKS_PER_SLAB`). */
export const MMAP_CHUNKS_PER_SLAB = 8192;
/** 8,192 slabs at most (MMTk's `MAX_SLABS`). */
export const MAX_SLABS = 8192;

const DIR_OFFSET = HEADER_BYTES;
/** Byte offset of the first slab in the shared buffer (after the header and the directory). */
const SLAB_BASE = HEADER_BYTES + MAX_SLABS * 4;
const SLAB = 8192;
const SLAB_MASK = 8191;
const CHUNK = 0x40_0000;
const SPAN = 0x8_0000_0000; // 2^35
const TOP = 0x1_0000_0000_0000;
const MAPPED = 2;
/** The whole state: header, directory and room for every slab (64 MiB + 32 KiB of address space). */
const STATE_BYTES = SLAB_BASE + MAX_SLABS * SLAB;

let attaching: SharedArrayBuffer | undefined;

function newState(): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(STATE_BYTES);
  const h = new Int32Array(buf, 0, HEADER_BYTES / 4);
  h[H_MAGIC] = MAGIC;
  h[H_VERSION] = VERSION;
  h[H_KIND] = KIND_TWO_LEVEL;
  h[H_LOG_MAPPABLE] = LOG_MAPPABLE_BYTES;
  return buf;
}

/** The slab number of `addr`: `addr >> 35` (MMTk's `slab_index`). */
export function slabIndex(addr: number): number {
  return Math.floor(addr / SPAN);
}
/** The index of `addr`'s chunk inside its slab: `(addr & (2^35 − 1)) >> 22` (MMTk's `in_slab_index`). */
export function inSlabIndex(addr: number): number {
  return Math.floor(addr / CHUNK) & SLAB_MASK;
}
/** `addr` rounded down to its slab (MMTk's `slab_align_down`). */
export function slabAlignDown(addr: number): number {
  return slabIndex(addr) * SPAN;
}
/** The start of the slab after `addr`'s (MMTk's `slab_limit`). */
export function slabLimit(addr: number): number {
  return slabAlignDown(addr) + SPAN;
}
/** The address of chunk `chunk` of the slab starting at `base` (MMTk's `chunk_index_to_address`). */
export function chunkIndexToAddress(base: number, chunk: number): number {
  return base + chunk * CHUNK;
}

/**
 * An {@link Mmapper} for `[0, 2^48)`: the whole `VirtAddr` space, both halves. Its shared state is a
 * `SharedArrayBuffer` with room for the directory (32 KiB) and every slab (8 KiB each, 64 MiB in all):
 * address space only, since the OS commits a page of it when it is first written (a slab is written when
 * it is created). A plain buffer rather than a growable one: V8 11 (Node 20) reads typed arrays over a
 * growable buffer 2–5× slower.
 */
export class TwoLevelMmapper extends ChunkStateMmapper {
  private readonly dir: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly words: Uint32Array;

  /**
   * A new mapper, every chunk Unmapped, no slab allocated.
   *
   * @throws MmapperError `E_INVALID` for an OS interface that lacks one of the five methods
   */
  constructor(os: MmapOs) {
    const buf = attaching ?? newState();
    attaching = undefined;
    super(buf, os, TOP);
    this.dir = new Int32Array(buf, DIR_OFFSET, MAX_SLABS);
    this.bytes = new Uint8Array(buf);
    this.words = new Uint32Array(buf);
  }

  /**
   * Attaches to the shared state of a two-level mapper (see `Mmapper.fromShared`, which also accepts it).
   *
   * @throws MmapperError `E_BAD_SHARED_STATE` if `buffer` is not a two-level mapper's state
   */
  static fromShared(buffer: SharedArrayBuffer, os: MmapOs): TwoLevelMmapper {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== STATE_BYTES) {
      mmapperFail(
        'E_BAD_SHARED_STATE',
        `${describeValue(buffer)} is not a two-level mapper's SharedArrayBuffer`,
        {
          buffer,
        },
      );
    }
    const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    if (h[H_MAGIC] !== MAGIC || h[H_VERSION] !== VERSION || h[H_KIND] !== KIND_TWO_LEVEL) {
      mmapperFail('E_BAD_SHARED_STATE', 'the SharedArrayBuffer does not hold a two-level mapper state', {
        kind: h[H_KIND],
      });
    }
    attaching = buffer;
    try {
      return new TwoLevelMmapper(os);
    } finally {
      attaching = undefined;
    }
  }

  /** Slabs allocated so far (each 8 KiB of state). */
  get slabCount(): number {
    return Atomics.load(this.header, H_SLABS);
  }

  isMappedAddress(addr: VirtAddr): boolean {
    if (typeof addr !== 'number' || !(addr >= 0 && addr < TOP)) return false;
    const c = (addr / CHUNK) | 0; // the chunk index, < 2^26
    const off = addr - c * CHUNK; // exact, in [0, 4 MiB): an integer unless addr is not
    if ((off | 0) !== off) return false; // (Math.floor costs ~3 ns here; this is two integer ops)
    const d = this.dir[c >> 13] as number;
    if (d <= 0) return d === -MAPPED;
    return this.bytes[d + (c & SLAB_MASK)] === MAPPED;
  }

  protected stateOf(chunk: number): MapState {
    const d = this.dir[chunk >> 13] as number;
    if (d <= 0) return (0 - d) as MapState;
    return this.bytes[d + (chunk & SLAB_MASK)] as MapState;
  }

  protected setState(chunk: number, state: MapState): void {
    const i = chunk >> 13;
    let d = Atomics.load(this.dir, i);
    if (d <= 0) {
      if (0 - d === state) return;
      d = this.materialize(i, 0 - d);
    }
    Atomics.store(this.bytes, d + (chunk & SLAB_MASK), state);
  }

  protected fillState(first: number, end: number, state: MapState): void {
    if (first >= end) return;
    for (let i = first >> 13; i * SLAB < end; i++) {
      const lo = Math.max(first, i * SLAB);
      const hi = Math.min(end, (i + 1) * SLAB);
      let d = Atomics.load(this.dir, i);
      if (d <= 0) {
        if (0 - d === state) continue;
        if (hi - lo === SLAB) {
          Atomics.store(this.dir, i, 0 - state);
          continue;
        }
        d = this.materialize(i, 0 - d);
      }
      this.bytes.fill(state, d + (lo & SLAB_MASK), d + (lo & SLAB_MASK) + (hi - lo));
    }
  }

  protected runEnd(first: number, end: number): number {
    const s = this.stateOf(first);
    let c = first;
    while (c < end) {
      const i = c >> 13;
      const lim = Math.min(end, (i + 1) * SLAB);
      const d = this.dir[i] as number;
      if (d <= 0) {
        if (0 - d !== s) return c;
      } else {
        const base = d - i * SLAB; // byte of chunk k is at base + k
        const b = this.bytes;
        // bytes up to a 4-byte boundary, then 4 chunks per 32-bit word, then the tail
        while (c < lim && (c & 3) !== 0 && b[base + c] === s) c++;
        if (c < lim && (c & 3) === 0 && b[base + c] === s) {
          const w = this.words;
          const pattern = s * 0x0101_0101;
          let k = (base + c) >> 2;
          const kEnd = (base + (lim & ~3)) >> 2;
          while (k < kEnd && w[k] === pattern) k++;
          c = (k << 2) - base;
        }
        while (c < lim && b[base + c] === s) c++;
        if (c < lim) return c;
      }
      c = lim;
    }
    return end;
  }

  /** Creates slab `i` filled with `uniform` and publishes it in the directory (lock held). */
  private materialize(i: number, uniform: number): number {
    const n = Atomics.load(this.header, H_SLABS);
    const off = SLAB_BASE + n * SLAB;
    if (uniform !== 0) this.bytes.fill(uniform, off, off + SLAB);
    Atomics.store(this.header, H_SLABS, n + 1);
    Atomics.store(this.dir, i, off);
    return off;
  }
}
