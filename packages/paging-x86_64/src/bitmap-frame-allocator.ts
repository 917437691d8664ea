import {
  checkAlign,
  checkAligned,
  checkUint,
  describeValue,
  fail,
  formatHex,
  PAGE_SIZE_4K,
  type PhysAddr,
} from '@vmkit/addr';
import { PagingErrorCode, pagingFail } from './errors.js';
import type { FrameAllocator } from './frame-allocator.js';
import type { PhysicalMemory } from './physical-memory.js';

/** Options of {@link BitmapFrameAllocator}: the managed physical range `[start, end)`. */
export interface BitmapFrameAllocatorOptions {
  /** First managed physical address, a multiple of 4 KiB (default 0). */
  start?: number;
  /** End (exclusive) of the managed range, a multiple of 4 KiB, at most `mem.size` (default `mem.size`). */
  end?: number;
}

const FULL = 0xffff_ffff;
const MAX_REFS = 0xffff_ffff;
// Module-local literal (an imported binding is read through a cell on every use).
const PAGE = 4096;
if (PAGE !== PAGE_SIZE_4K) throw new Error('@vmkit/paging-x86_64: PAGE literal disagrees with PAGE_SIZE_4K');
/** What a new frame holds (never written). */
const ZERO_PAGE = new Uint8Array(PAGE);

/**
 * The default {@link FrameAllocator}: the frames of `[start, end)` of a {@link PhysicalMemory}, with a
 * free/used bitmap (one bit per frame, 32 frames a word) and reference counts in a `Uint32Array` — a
 * fixed 4.125 bytes of host memory per managed frame, no JS object per frame.
 *
 * `allocFrame` is next-fit from the lowest word that may hold a free frame; `allocContiguous` is
 * first-fit over aligned candidates, skipping past each used frame it meets. Allocation zero-fills
 * the frames in the simulated memory (`mem.fill`).
 *
 * A second bitmap remembers frames that were allocated and then freed, so that releasing one again is
 * reported as `E_DOUBLE_FREE`, while releasing a frame never handed out is `E_NOT_ALLOCATED`.
 * Every failing call leaves the allocator and the memory exactly as they were.
 */
export class BitmapFrameAllocator implements FrameAllocator {
  /** The memory whose frames are managed (and zero-filled on allocation). */
  readonly mem: PhysicalMemory;
  /** First managed physical address. */
  readonly start: number;
  /** End (exclusive) of the managed range. */
  readonly end: number;
  readonly totalFrames: number;
  private free: number;
  /** Bit i set ⇔ frame i allocated (refcount ≥ 1). Bits past `totalFrames` are set (never free). */
  private readonly used: Uint32Array;
  /** Bit i set ⇔ frame i was allocated once and is free now (to tell a double free). */
  private readonly freed: Uint32Array;
  private readonly refs: Uint32Array;
  /** No word below this one has a free bit. */
  private hint = 0;

  /**
   * @param mem the simulated memory
   * @param options the managed range (default: all of `mem`)
   * @throws VmkitError `E_UNALIGNED` unless `start`/`end` are multiples of 4 KiB; `E_RANGE` unless
   *   `0 ≤ start < end ≤ mem.size` and the range holds fewer than 2^31 frames; `E_INVALID` for non-integers
   */
  constructor(mem: PhysicalMemory, options: BitmapFrameAllocatorOptions = {}) {
    const start = options.start ?? 0;
    const end = options.end ?? mem.size;
    checkUint(start, 'allocator start');
    checkUint(end, 'allocator end');
    checkAligned(start, PAGE_SIZE_4K, 'allocator start');
    checkAligned(end, PAGE_SIZE_4K, 'allocator end');
    if (!(start < end && end <= mem.size)) {
      fail(
        'E_RANGE',
        `allocator range [${formatHex(start)}, ${formatHex(end)}) is empty or outside memory of ${formatHex(mem.size)} bytes`,
        {
          start,
          end,
        },
      );
    }
    const total = (end - start) / PAGE_SIZE_4K;
    if (total >= 2 ** 31) fail('E_RANGE', `allocator range of ${total} frames is too large`, { total });
    this.mem = mem;
    this.start = start;
    this.end = end;
    this.totalFrames = total;
    this.free = total;
    const words = Math.ceil(total / 32);
    this.used = new Uint32Array(words);
    this.freed = new Uint32Array(words);
    this.refs = new Uint32Array(total);
    const tail = total % 32;
    if (tail !== 0) this.used[words - 1] = (FULL << tail) >>> 0;
  }

  get freeFrames(): number {
    return this.free;
  }

  /** Frames allocated now. */
  get usedFrames(): number {
    return this.totalFrames - this.free;
  }

  /** True when `pa` is the address of a frame of this allocator (4 KiB aligned, inside `[start, end)`). */
  owns(pa: number): boolean {
    return (
      Number.isInteger(pa) && pa >= this.start && pa < this.end && (pa - this.start) % PAGE_SIZE_4K === 0
    );
  }

  /**
   * Allocates one zero-filled 4 KiB frame with reference count 1.
   *
   * @throws VmkitError `E_NOMEM` when every frame is in use (nothing changes)
   */
  allocFrame(): PhysAddr {
    if (this.free === 0)
      pagingFail(PagingErrorCode.E_NOMEM, `no free frame left (${this.totalFrames} frames in use)`, {});
    const used = this.used;
    let w = this.hint;
    while (used[w] === FULL) w++;
    this.hint = w;
    const word = used[w]!;
    const bit = 31 - Math.clz32(~word & (word + 1));
    const i = w * 32 + bit;
    this.take(i, 1);
    const pa = this.start + i * PAGE;
    this.zero(pa, PAGE);
    return pa as PhysAddr;
  }

  /**
   * Allocates `count` physically contiguous zero-filled frames whose first address is a multiple of
   * `align` bytes (a physical-address alignment, e.g. 2 MiB for a 2 MiB page; values below 4 KiB mean
   * 4 KiB). Each frame gets reference count 1. First fit from the lowest address.
   *
   * @throws VmkitError `E_INVALID` unless `count` is a positive integer and `align` a power of two;
   *   `E_RANGE` for `count` 0; `E_NOMEM` when no such run is free (nothing changes)
   */
  allocContiguous(count: number, align: number): PhysAddr {
    checkUint(count, 'frame count');
    if (count === 0) fail('E_RANGE', 'frame count 0 is not positive', { count });
    checkAlign(align);
    const a = Math.max(align, PAGE_SIZE_4K);
    const total = this.totalFrames;
    let pa = this.start % a === 0 ? this.start : this.start - (this.start % a) + a;
    while (count <= this.free) {
      const c = (pa - this.start) / PAGE_SIZE_4K;
      if (c + count > total) break;
      const u = this.firstUsed(c, c + count);
      if (u < 0) {
        this.take(c, count);
        this.zero(pa, count * PAGE);
        return pa as PhysAddr;
      }
      const after = this.start + (u + 1) * PAGE_SIZE_4K;
      pa = after % a === 0 ? after : after - (after % a) + a;
    }
    return pagingFail(
      PagingErrorCode.E_NOMEM,
      `no free run of ${count} frames aligned to ${formatHex(a)} (${this.free} of ${total} frames free)`,
      { count, align: a, freeFrames: this.free },
    );
  }

  /**
   * Adds one reference to an allocated frame.
   *
   * @returns the new count
   * @throws VmkitError `E_UNALIGNED`/`E_RANGE` unless `frame` is a frame of this allocator;
   *   `E_NOT_ALLOCATED` if it is free; `E_REFCOUNT_OVERFLOW` past 2^32 - 1 (nothing changes)
   */
  incRef(frame: PhysAddr): number {
    // Fast path: a frame of this allocator (a Number whose index is an integer below totalFrames, so
    // aligned and in range) with a count that can grow. Anything else takes the checks below.
    if (typeof frame === 'number') {
      const i = (frame - this.start) / PAGE;
      if (i >>> 0 === i && i < this.totalFrames) {
        const r = this.refs[i]!;
        if (r !== 0 && r !== MAX_REFS) {
          this.refs[i] = r + 1;
          return r + 1;
        }
      }
    }
    const i = this.index(frame);
    const r = this.refs[i]!;
    if (r === 0) {
      pagingFail(
        PagingErrorCode.E_NOT_ALLOCATED,
        `incRef of frame ${formatHex(frame)}, which is not allocated`,
        { frame },
      );
    }
    if (r === MAX_REFS)
      pagingFail(PagingErrorCode.E_REFCOUNT_OVERFLOW, `frame ${formatHex(frame)} has 2^32-1 references`, {
        frame,
      });
    this.refs[i] = r + 1;
    return r + 1;
  }

  /**
   * Drops one reference; at 0 the frame is free again.
   *
   * @returns the new count
   * @throws VmkitError `E_UNALIGNED`/`E_RANGE` unless `frame` is a frame of this allocator;
   *   `E_DOUBLE_FREE` if it was freed already; `E_NOT_ALLOCATED` if it was never allocated (nothing changes)
   */
  decRef(frame: PhysAddr): number {
    const i = this.index(frame);
    this.checkLive(i);
    return this.release(i);
  }

  /**
   * Adds one reference to each of the first `count` frames of `frames` (physical addresses; a frame
   * listed twice gets two), checking each element as {@link incRef} does but without a call per frame:
   * the batch form for sharing many pages at once (a fork). All or nothing: on an error no count has
   * changed.
   *
   * @param frames an array or typed array of frame addresses (a `Float64Array` holds any; a
   *   `Uint32Array` frames below 4 GiB)
   * @param count how many of them, from the first: an integer in [0, frames.length] (default all)
   * @throws VmkitError `E_INVALID` for `frames` that is not an array or typed array, or a `count` that is
   *   not an integer; `E_RANGE` for `count` outside [0, frames.length]; for an element, the error
   *   {@link incRef} gives (`E_INVALID`/`E_UNALIGNED`/`E_RANGE`, `E_NOT_ALLOCATED`,
   *   `E_REFCOUNT_OVERFLOW`), its message naming the element's index
   */
  incRefMany(frames: ArrayLike<number>, count?: number): void {
    const n = this.batchCount(frames, count);
    const refs = this.refs;
    const start = this.start;
    const total = this.totalFrames;
    for (let j = 0; j < n; j++) {
      const f = frames[j];
      if (typeof f === 'number') {
        const i = (f - start) / PAGE;
        if (i >>> 0 === i && i < total) {
          const r = refs[i]!;
          if (r !== 0 && r !== MAX_REFS) {
            refs[i] = r + 1;
            continue;
          }
        }
      }
      // Undo the references added so far (each element counted once, in order), then say why.
      for (let k = j - 1; k >= 0; k--) refs[(frames[k]! - start) / PAGE]!--;
      this.batchError('incRefMany', frames, j, true);
    }
  }

  /**
   * Drops one reference of each of the first `count` frames of `frames` (a frame listed twice loses
   * two); those whose count reaches 0 are free again. The batch form of {@link decRef}, all or nothing:
   * on an error no count has changed and no frame was freed.
   *
   * @param frames an array or typed array of frame addresses
   * @param count how many of them, from the first: an integer in [0, frames.length] (default all)
   * @returns how many frames became free
   * @throws VmkitError as {@link incRefMany} for `frames` and `count`; for an element, the error
   *   {@link decRef} gives (`E_INVALID`/`E_UNALIGNED`/`E_RANGE`, `E_DOUBLE_FREE`, `E_NOT_ALLOCATED`),
   *   and `E_DOUBLE_FREE` for a frame listed more times than it has references; the message names
   *   the element's index
   */
  decRefMany(frames: ArrayLike<number>, count?: number): number {
    const n = this.batchCount(frames, count);
    const refs = this.refs;
    const start = this.start;
    const total = this.totalFrames;
    // Counts first (a count reaching 0 frees nothing yet, so that an error can still undo everything).
    for (let j = 0; j < n; j++) {
      const f = frames[j];
      if (typeof f === 'number') {
        const i = (f - start) / PAGE;
        if (i >>> 0 === i && i < total && refs[i] !== 0) {
          refs[i]!--;
          continue;
        }
      }
      for (let k = j - 1; k >= 0; k--) refs[(frames[k]! - start) / PAGE]!++;
      this.batchError('decRefMany', frames, j, false);
    }
    // Then free the frames left without references (once each: a duplicate finds its bit cleared).
    const used = this.used;
    let freed = 0;
    for (let j = 0; j < n; j++) {
      const i = (frames[j]! - start) / PAGE;
      if (refs[i] !== 0) continue;
      const w = i >>> 5;
      const m = 1 << (i & 31);
      if ((used[w]! & m) === 0) continue;
      used[w] = (used[w]! & ~m) >>> 0;
      this.freed[w] = (this.freed[w]! | m) >>> 0;
      this.free++;
      if (w < this.hint) this.hint = w;
      freed++;
    }
    return freed;
  }

  /**
   * Drops one reference of each of the `count` frames starting at `frame`. All frames are checked
   * before any is touched.
   *
   * @throws VmkitError as {@link decRef} for the first frame that fails, `E_RANGE` if the run leaves
   *   the managed range or `count` is 0 (nothing changes)
   */
  freeContiguous(frame: PhysAddr, count: number): void {
    checkUint(count, 'frame count');
    if (count === 0) fail('E_RANGE', 'frame count 0 is not positive', { count });
    const i = this.index(frame);
    if (i + count > this.totalFrames) {
      fail(
        'E_RANGE',
        `run of ${count} frames at ${formatHex(frame)} passes the allocator end ${formatHex(this.end)}`,
        {
          frame,
          count,
        },
      );
    }
    for (let k = 0; k < count; k++) this.checkLive(i + k);
    for (let k = 0; k < count; k++) this.release(i + k);
  }

  /**
   * The reference count of a frame (0 when free).
   *
   * @throws VmkitError `E_UNALIGNED`/`E_RANGE` unless `frame` is a frame of this allocator
   */
  refCount(frame: PhysAddr): number {
    return this.refs[this.index(frame)]!;
  }

  private index(frame: number, what = 'frame address'): number {
    checkUint(frame, what);
    checkAligned(frame, PAGE_SIZE_4K, what);
    if (frame < this.start || frame >= this.end) {
      fail(
        'E_RANGE',
        `${what} ${formatHex(frame)} is outside the allocator range [${formatHex(this.start)}, ${formatHex(this.end)})`,
        {
          frame,
        },
      );
    }
    return (frame - this.start) / PAGE_SIZE_4K;
  }

  /** The element count of a batch: `frames` an array or typed array, `count` in [0, frames.length]. */
  private batchCount(frames: ArrayLike<number>, count: number | undefined): number {
    if (!Array.isArray(frames) && !(ArrayBuffer.isView(frames) && !(frames instanceof DataView))) {
      fail('E_INVALID', `frames ${describeValue(frames)} is not an array or typed array of frame addresses`, {
        frames,
      });
    }
    if (count === undefined) return frames.length;
    if (typeof count !== 'number' || !Number.isInteger(count))
      fail('E_INVALID', `frame count ${describeValue(count)} is not an integer Number`, { count });
    if (count < 0 || count > frames.length) {
      fail('E_RANGE', `frame count ${count} is not in [0, ${frames.length}] (the length of frames)`, {
        count,
      });
    }
    return count;
  }

  /**
   * Throws the error of element `j` of a batch (state already restored): as the single-frame method
   * would, its message naming the element.
   */
  private batchError(op: string, frames: ArrayLike<number>, j: number, inc: boolean): never {
    const what = `${op} frames[${j}]`;
    const f = frames[j] as unknown;
    if (typeof f !== 'number')
      fail('E_INVALID', `${what} ${describeValue(f)} is not a frame address (a Number)`, { frame: f });
    const i = this.index(f, what);
    const r = this.refs[i]!;
    if (inc && r !== 0) {
      // An allocated frame fails only by overflowing (at 2^32 - 1, or reached by its own duplicates).
      pagingFail(
        PagingErrorCode.E_REFCOUNT_OVERFLOW,
        `${what}: frame ${formatHex(f)} would pass 2^32-1 references (it has ${r})`,
        { frame: f, index: j },
      );
    }
    const listed = (this.used[i >>> 5]! >>> (i & 31)) & 1;
    if (!inc && listed) {
      pagingFail(
        PagingErrorCode.E_DOUBLE_FREE,
        `${what}: frame ${formatHex(f)} is listed more times than its references`,
        { frame: f, index: j },
      );
    }
    if ((this.freed[i >>> 5]! >>> (i & 31)) & 1) {
      pagingFail(
        inc ? PagingErrorCode.E_NOT_ALLOCATED : PagingErrorCode.E_DOUBLE_FREE,
        `${what}: frame ${formatHex(f)} is ${inc ? 'not allocated (it was freed)' : 'already free'}`,
        { frame: f, index: j },
      );
    }
    return pagingFail(PagingErrorCode.E_NOT_ALLOCATED, `${what}: frame ${formatHex(f)} was never allocated`, {
      frame: f,
      index: j,
    });
  }

  /**
   * Zero-fills `[pa, pa + len)` of the memory (whole frames, known in range): in a single-chunk memory a
   * copy of a zero page per frame (no checks, no per-call closure; a copy measured ≈ 30 % faster than
   * `fill` here), else `mem.fill`.
   */
  private zero(pa: number, len: number): void {
    const f8 = this.mem.flat8;
    if (f8 === undefined) {
      this.mem.fill(pa, len);
      return;
    }
    for (let p = pa; p < pa + len; p += PAGE) f8.set(ZERO_PAGE, p);
  }

  private checkLive(i: number): void {
    if (this.refs[i] !== 0) return;
    const pa = this.start + i * PAGE_SIZE_4K;
    if ((this.freed[i >>> 5]! >>> (i & 31)) & 1) {
      pagingFail(PagingErrorCode.E_DOUBLE_FREE, `frame ${formatHex(pa)} is already free`, { frame: pa });
    }
    pagingFail(PagingErrorCode.E_NOT_ALLOCATED, `frame ${formatHex(pa)} was never allocated`, { frame: pa });
  }

  private release(i: number): number {
    const r = this.refs[i]! - 1;
    this.refs[i] = r;
    if (r === 0) {
      const w = i >>> 5;
      const m = 1 << (i & 31);
      this.used[w] = (this.used[w]! & ~m) >>> 0;
      this.freed[w] = (this.freed[w]! | m) >>> 0;
      this.free++;
      if (w < this.hint) this.hint = w;
    }
    return r;
  }

  /** Marks frames `[i, i + n)` allocated with one reference (all known free). */
  private take(i: number, n: number): void {
    for (let k = i; k < i + n; k++) {
      const w = k >>> 5;
      const m = 1 << (k & 31);
      this.used[w] = (this.used[w]! | m) >>> 0;
      this.freed[w] = (this.freed[w]! & ~m) >>> 0;
      this.refs[k] = 1;
    }
    this.free -= n;
  }

  /** Index of the first used frame in `[from, to)`, or -1. */
  private firstUsed(from: number, to: number): number {
    const used = this.used;
    let i = from;
    while (i < to) {
      const w = i >>> 5;
      const bit = i & 31;
      const bits = used[w]! >>> bit;
      if (bits !== 0) {
        const j = i + 31 - Math.clz32(bits & -bits);
        return j < to ? j : -1;
      }
      i += 32 - bit;
    }
    return -1;
  }
}
