import type { PhysAddr } from '@vmkit/addr';

/**
 * Where page tables and pages get their physical frames. The default implementation is
 * {@link BitmapFrameAllocator}; tests and policies may supply their own.
 *
 * Frames are 4 KiB. Each allocated frame carries a reference count (1 after allocation); a frame is
 * free again when its count drops to 0. Allocation zero-fills the frames it returns.
 *
 * Errors (all `VmkitError`, and the allocator is left exactly as it was):
 * `E_NOMEM` when no suitable run of free frames exists; `E_DOUBLE_FREE` for releasing a free frame;
 * `E_NOT_ALLOCATED` for touching the count of a frame that is not allocated; `E_UNALIGNED`/`E_RANGE`
 * for an address that is not a frame of this allocator.
 */
export interface FrameAllocator {
  /** Frames the allocator manages. */
  readonly totalFrames: number;
  /** Frames free now. */
  readonly freeFrames: number;
  /** Allocates one zero-filled 4 KiB frame with reference count 1. */
  allocFrame(): PhysAddr;
  /**
   * Allocates `count` physically contiguous zero-filled frames whose first address is a multiple of
   * `align` bytes (e.g. 2 MiB for a 2 MiB page); each frame gets reference count 1.
   */
  allocContiguous(count: number, align: number): PhysAddr;
  /** Adds one reference to an allocated frame; returns the new count. */
  incRef(frame: PhysAddr): number;
  /** Drops one reference; the frame is freed when the count reaches 0. Returns the new count. */
  decRef(frame: PhysAddr): number;
  /**
   * Optional batch form of {@link incRef}: one reference more for each of the first `count` (default
   * all) frame addresses of `frames`, all or nothing (see `BitmapFrameAllocator.incRefMany`). Callers
   * fall back to `incRef` per frame when an allocator lacks it.
   */
  incRefMany?(frames: ArrayLike<number>, count?: number): void;
  /**
   * Optional batch form of {@link decRef}, all or nothing; returns how many frames became free (see
   * `BitmapFrameAllocator.decRefMany`).
   */
  decRefMany?(frames: ArrayLike<number>, count?: number): number;
  /** Drops one reference of each of `count` frames starting at `frame` (a run from allocContiguous). */
  freeContiguous(frame: PhysAddr, count: number): void;
  /** The reference count of a frame (0 when free). */
  refCount(frame: PhysAddr): number;
}
