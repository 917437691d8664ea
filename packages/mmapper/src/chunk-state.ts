/**
 * The logic shared by both mappers (MMTk's `ChunkStateMmapper`): argument checks, the transition table,
 * the OS calls and the lock. The subclasses only store chunk states.
 *
 * @module
 */
import { checkVirtAddr, checkVirtRange, formatVirtAddr, isVmkitError, type VirtAddr } from '@vmkit/addr';
import { describeValue, MmapperError, type MmapperErrorCode, mmapperFail } from './errors.js';
import { lockWord, unlockWord } from './lock.js';
import { type MapState, mapStateName } from './map-state.js';
import type { Mmapper } from './mmapper.js';
import type { MmapOs, MmapOsCallName, OsResult } from './os.js';
import { H_LOCK, HEADER_BYTES } from './shared-layout.js';
import { checkAnnotation, checkStrategy, MmapAnnotation, MmapStrategy } from './strategy.js';

// Module-local literals (an imported const is read through a cell on every use).
const CHUNK = 0x40_0000;
const PAGE = 0x1000;
const HOLE = 0x8000_0000_0000;
const TOP = 0x1_0000_0000_0000;
const EXACT = 0x20_0000_0000_0000;
const U = 0;
const Q = 1;
const M = 2;
const P = 3;

/** A run of chunks in one state, as {@link ChunkStateMmapper.stateRuns} reports it. */
export interface StateRun {
  /** First byte (chunk-aligned). */
  readonly start: VirtAddr;
  /** One past the last byte (chunk-aligned; may be `2^47` or `2^48`, the end of a half). */
  readonly end: number;
  readonly state: MapState;
}

const OS_METHODS = ['dzmmap', 'dzmmapNoreplace', 'mmapNoreserve', 'mprotect', 'munprotect'] as const;

/** @internal Throws `E_INVALID` unless `os` has the five {@link MmapOs} methods. */
export function checkOs(os: unknown): asserts os is MmapOs {
  if (typeof os !== 'object' || os === null) {
    mmapperFail('E_INVALID', `OS interface ${describeValue(os)} is not an object with the MmapOs methods`, {
      os,
    });
  }
  for (const m of OS_METHODS) {
    if (typeof (os as Record<string, unknown>)[m] !== 'function') {
      mmapperFail('E_INVALID', `OS interface has no method ${m} (an MmapOs needs ${OS_METHODS.join(', ')})`, {
        os,
        method: m,
      });
    }
  }
}

/**
 * The base of {@link ByteMapMmapper} and {@link TwoLevelMmapper}: everything but the storage of chunk
 * states. See {@link Mmapper} for the contract of each method.
 */
export abstract class ChunkStateMmapper implements Mmapper {
  /** The OS interface this thread's calls go to. */
  readonly os: MmapOs;
  /** The shared state (header, lock and chunk states). */
  readonly shared: SharedArrayBuffer;
  /** The mapper covers addresses `[0, mappableBytes)`. */
  readonly mappableBytes: number;
  /** The header words (the lock lives in word 3). */
  protected readonly header: Int32Array;
  private holding = false;
  /** The last strategy and annotation checked, when frozen (MmapStrategy.new / MmapAnnotation.* are). */
  private okStrategy: unknown;
  private okAnno: unknown;

  protected constructor(shared: SharedArrayBuffer, os: MmapOs, mappableBytes: number) {
    checkOs(os);
    this.os = os;
    this.shared = shared;
    this.mappableBytes = mappableBytes;
    this.header = new Int32Array(shared, 0, HEADER_BYTES / 4);
  }

  /**
   * The state of chunk number `chunk`: a plain (lock-free, possibly stale) read of shared memory; chunks
   * with no storage are Unmapped. Under the lock it is exact (the lock orders it after every change).
   */
  protected abstract stateOf(chunk: number): MapState;
  /** Sets chunk `chunk` to `state` (lock held). */
  protected abstract setState(chunk: number, state: MapState): void;
  /** Sets chunks `[first, end)` to `state` (lock held). */
  protected abstract fillState(first: number, end: number, state: MapState): void;
  /** The end (exclusive, at most `end`) of the run of chunks in the state of chunk `first`. */
  protected abstract runEnd(first: number, end: number): number;

  abstract isMappedAddress(addr: VirtAddr): boolean;

  /**
   * The state of the chunk holding `addr` (a `VirtAddr` inside the mapper's space).
   *
   * @throws MmapperError `E_INVALID`/`E_RANGE` for anything else
   */
  mapState(addr: VirtAddr): MapState {
    checkVirtAddr(addr, 'mapState: address');
    if (addr >= this.mappableBytes) {
      mmapperFail(
        'E_RANGE',
        `mapState: address ${formatVirtAddr(addr)} is outside the mapper's space [0x0, 0x${this.mappableBytes.toString(16)})`,
        { addr },
      );
    }
    return this.stateOf(Math.floor(addr / CHUNK));
  }

  /**
   * The chunks of `[start, start + pages × 4 KiB)` (rounded out to chunks) as runs of equal state, in
   * address order. Lock-free: with other threads changing states it is a snapshot of each chunk, not of
   * the whole range.
   */
  stateRuns(start: VirtAddr, pages: number): StateRun[] {
    const end = this.chunkEnd('stateRuns', start, pages, PAGE, false);
    const out: StateRun[] = [];
    for (let c = Math.floor(start / CHUNK); c < end; ) {
      const e = this.runEnd(c, end);
      out.push({ start: (c * CHUNK) as VirtAddr, end: e * CHUNK, state: this.stateOf(c) });
      c = e;
    }
    return out;
  }

  eagerlyMmapAllSpaces(
    spaceMap: ArrayLike<number>,
    strategy: MmapStrategy = MmapStrategy.INTERNAL_MEMORY,
    anno: MmapAnnotation = MmapAnnotation.misc('space-map'),
  ): void {
    if (typeof spaceMap !== 'object' || spaceMap === null || typeof spaceMap.length !== 'number') {
      mmapperFail('E_INVALID', `space map ${describeValue(spaceMap)} is not an array of addresses`, {
        spaceMap,
      });
    }
    const n = spaceMap.length;
    if (n % 2 !== 0) {
      mmapperFail(
        'E_INVALID',
        `space map has ${n} addresses: it must hold (start, end) pairs, an even number`,
        {
          length: n,
        },
      );
    }
    checkStrategy(strategy);
    checkAnnotation(anno);
    for (let i = 0; i < n; i += 2) {
      const s = spaceMap[i];
      const e = spaceMap[i + 1];
      this.chunkEnd(`eagerlyMmapAllSpaces: region ${i / 2} start`, s, 0, PAGE, false);
      this.chunkEnd(`eagerlyMmapAllSpaces: region ${i / 2} end`, e, 0, PAGE, true);
      if ((e as number) < (s as number)) {
        mmapperFail(
          'E_RANGE',
          `eagerlyMmapAllSpaces: region ${i / 2} starts at ${formatVirtAddr(s as VirtAddr)}, above its end ${formatVirtAddr(e as VirtAddr)}`,
          { index: i, start: s, end: e },
        );
      }
      this.chunkEnd(
        `eagerlyMmapAllSpaces: region ${i / 2}`,
        s,
        ((e as number) - (s as number)) / PAGE,
        PAGE,
        false,
      );
    }
    for (let i = 0; i < n; i += 2) {
      const s = spaceMap[i] as VirtAddr;
      this.ensureMapped(s, ((spaceMap[i + 1] as number) - s) / PAGE, strategy, anno);
    }
  }

  markAsMapped(start: VirtAddr, bytes: number): void {
    const end = this.chunkEnd('markAsMapped', start, bytes, 1, false);
    this.lock();
    try {
      this.fillState(Math.floor(start / CHUNK), end, M);
    } finally {
      this.unlock();
    }
  }

  quarantineAddressRange(start: VirtAddr, pages: number, strategy: MmapStrategy, anno: MmapAnnotation): void {
    const end = this.chunkEnd('quarantineAddressRange', start, pages, PAGE, false);
    checkStrategy(strategy);
    checkAnnotation(anno);
    const first = Math.floor(start / CHUNK);
    this.lock();
    try {
      this.refuse('quarantineAddressRange', first, end, P, P);
      for (let c = first; c < end; ) {
        const e = this.runEnd(c, end);
        if (this.stateOf(c) === U) {
          this.call('mmapNoreserve', c, e - c, strategy, anno);
          this.fillState(c, e, Q);
        }
        c = e;
      }
    } finally {
      this.unlock();
    }
  }

  ensureMapped(start: VirtAddr, pages: number, strategy: MmapStrategy, anno: MmapAnnotation): void {
    // Fast path: a range inside one Mapped chunk, with the strategy and annotation of the last call.
    // isMappedAddress has checked that start is an integer address of the space; integer operations
    // only (Math.floor costs ~3 ns on these machines).
    if (
      strategy === this.okStrategy &&
      anno === this.okAnno &&
      typeof pages === 'number' &&
      pages >= 0 &&
      pages <= 1024 &&
      (pages | 0) === pages &&
      this.isMappedAddress(start)
    ) {
      const off = start - ((start / CHUNK) | 0) * CHUNK; // integer in [0, 4 MiB)
      if ((off & 0xfff) === 0 && off + pages * PAGE <= CHUNK) return;
    }
    const end = this.chunkEnd('ensureMapped', start, pages, PAGE, false);
    if (strategy !== this.okStrategy || anno !== this.okAnno) this.accept(strategy, anno);
    for (let c = Math.floor(start / CHUNK); c < end; c++) {
      if (this.stateOf(c) !== M) this.mapChunk(c, strategy, anno);
    }
  }

  /** Checks a strategy and an annotation; remembers them when frozen (they cannot change afterwards). */
  private accept(strategy: unknown, anno: unknown): void {
    checkStrategy(strategy);
    checkAnnotation(anno);
    if (Object.isFrozen(strategy) && Object.isFrozen(anno)) {
      this.okStrategy = strategy;
      this.okAnno = anno;
    }
  }

  protect(start: VirtAddr, pages: number): void {
    const end = this.chunkEnd('protect', start, pages, PAGE, false);
    const first = Math.floor(start / CHUNK);
    this.lock();
    try {
      this.refuse('protect', first, end, U, Q);
      for (let c = first; c < end; c++) {
        if (this.stateOf(c) === M) {
          this.call('mprotect', c, 1, MmapStrategy.INTERNAL_MEMORY, PROTECT_ANNO);
          this.setState(c, P);
        }
      }
    } finally {
      this.unlock();
    }
  }

  /** The slow path of ensureMapped: one chunk under the lock (it may have become Mapped meanwhile). */
  private mapChunk(c: number, strategy: MmapStrategy, anno: MmapAnnotation): void {
    this.lock();
    try {
      const s = this.stateOf(c);
      if (s === M) return;
      this.call(s === U ? 'dzmmapNoreplace' : s === Q ? 'dzmmap' : 'munprotect', c, 1, strategy, anno);
      this.setState(c, M);
    } finally {
      this.unlock();
    }
  }

  /** Throws E_BAD_TRANSITION if a chunk of `[first, end)` is in state `a` or `b`. */
  private refuse(op: string, first: number, end: number, a: MapState, b: MapState): void {
    for (let c = first; c < end; ) {
      const s = this.stateOf(c);
      if (s === a || s === b) {
        const target = op === 'protect' ? 'protected' : 'quarantined';
        mmapperFail(
          'E_BAD_TRANSITION',
          `${op}: chunk ${formatVirtAddr((c * CHUNK) as VirtAddr)} is ${mapStateName(s)} and cannot be ${target} (nothing changed)`,
          { op, chunk: c * CHUNK, state: mapStateName(s) },
        );
      }
      c = this.runEnd(c, end);
    }
  }

  /** Issues one OS call for chunks `[c, c + n)`; throws E_OS if it failed. */
  private call(
    name: MmapOsCallName,
    c: number,
    n: number,
    strategy: MmapStrategy,
    anno: MmapAnnotation,
  ): void {
    const start = (c * CHUNK) as VirtAddr;
    const bytes = n * CHUNK;
    const os = this.os;
    let r: OsResult;
    switch (name) {
      case 'dzmmap':
        r = os.dzmmap(start, bytes, strategy, anno);
        break;
      case 'dzmmapNoreplace':
        r = os.dzmmapNoreplace(start, bytes, strategy, anno);
        break;
      case 'mmapNoreserve':
        r = os.mmapNoreserve(start, bytes, strategy, anno);
        break;
      case 'mprotect':
        r = os.mprotect(start, bytes);
        break;
      default:
        r = os.munprotect(start, bytes, strategy.prot);
    }
    if (r !== undefined) {
      const errno = typeof r === 'object' && r !== null && typeof r.errno === 'string' ? r.errno : 'EUNKNOWN';
      const text =
        typeof r === 'object' && r !== null && typeof r.message === 'string' ? `: ${r.message}` : '';
      throw new MmapperError(
        'E_OS',
        `${name}(${formatVirtAddr(start)}, ${n} chunk${n === 1 ? '' : 's'}) failed with ${errno}${text}`,
        { call: name, start, bytes, errno },
        r,
      );
    }
  }

  private lock(): void {
    if (this.holding) {
      mmapperFail(
        'E_REENTRANT',
        'the OS interface called back into a state-changing method of the mapper that is calling it',
      );
    }
    lockWord(this.header, H_LOCK);
    this.holding = true;
  }

  private unlock(): void {
    this.holding = false;
    unlockWord(this.header, H_LOCK);
  }

  /**
   * Checks `(start, count × unit)` and returns the exclusive end chunk index. One combined test on the
   * fast path; the detailed diagnosis only when it fails. `endAllowed` accepts a start equal to the end of
   * the space (for the end of a space-map region).
   */
  protected chunkEnd(op: string, start: unknown, count: unknown, unit: number, endAllowed: boolean): number {
    if (typeof start === 'number' && typeof count === 'number') {
      const bytes = count * unit;
      const e = start + bytes;
      if (
        start >= 0 &&
        count >= 0 &&
        Math.floor(start / PAGE) * PAGE === start &&
        Math.floor(count) === count &&
        bytes < EXACT &&
        (start < this.mappableBytes || (endAllowed && start === this.mappableBytes)) &&
        e <= this.mappableBytes &&
        (start >= HOLE || e <= HOLE)
      ) {
        return Math.ceil(e / CHUNK);
      }
    }
    return this.rangeFail(op, start, count, unit, endAllowed);
  }

  private rangeFail(op: string, start: unknown, count: unknown, unit: number, endAllowed: boolean): never {
    const what = unit === 1 ? 'bytes' : unit === PAGE ? 'pages' : 'units';
    const d = { op, start, [what]: count };
    // The toolkit's virtual-address rules (@vmkit/addr), re-thrown as this package's error class.
    const addrRule = (check: () => void): void => {
      try {
        check();
      } catch (e) {
        if (!isVmkitError(e)) throw e;
        mmapperFail(
          e.code as MmapperErrorCode,
          e.message.slice(e.code.length + 2),
          { ...d, ...e.details },
          e,
        );
      }
    };
    if (!(endAllowed && start === TOP)) addrRule(() => checkVirtAddr(start, `${op}: address`));
    const s = start as VirtAddr;
    if (Math.floor(s / PAGE) * PAGE !== s) {
      mmapperFail('E_UNALIGNED', `${op}: address ${formatVirtAddr(s)} is not 4 KiB-aligned`, d);
    }
    if (s > this.mappableBytes || (s === this.mappableBytes && !endAllowed)) {
      mmapperFail(
        'E_RANGE',
        `${op}: address ${formatVirtAddr(s)} is outside the mapper's space [0x0, 0x${this.mappableBytes.toString(16)})`,
        d,
      );
    }
    if (typeof count !== 'number' || !Number.isInteger(count)) {
      mmapperFail('E_INVALID', `${op}: ${what} ${describeValue(count)} is not an integer Number`, d);
    }
    if (count < 0) mmapperFail('E_RANGE', `${op}: ${what} ${count} is negative`, d);
    const bytes = count * unit;
    if (bytes >= EXACT) mmapperFail('E_OVERFLOW', `${op}: ${count} ${what} is not below 2^53 bytes`, d);
    addrRule(() => checkVirtRange(s, bytes, `${op}: range of ${count} ${what}`));
    return mmapperFail(
      'E_RANGE',
      `${op}: [${formatVirtAddr(s)}, +${count} ${what}) leaves the mapper's space [0x0, 0x${this.mappableBytes.toString(16)})`,
      d,
    );
  }
}

const PROTECT_ANNO = MmapAnnotation.misc('protect');
