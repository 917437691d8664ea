import type { VirtAddr } from '@vmkit/addr';
import type { MappingBackend } from '@vmkit/memory-set';
import type { VirtualMemoryMap } from './map.js';
import type { MemoryMappingOps } from './owner.js';

/** Page-table work a memory-set operation asks for, done only after the whole operation succeeded. */
export interface PendingDrop {
  start: number;
  size: number;
  backend: MapBackend;
}

/** What the backends see as their "page table": the manager's state, which collects deferred work. */
export interface PendingSink {
  pending: PendingDrop[];
}

/**
 * The memory-set backend of one Scarlet memory map: it carries the map's physical area (as the constant
 * offset `pa - va`, so a split or a shrink moves the physical area with the virtual one without any
 * arithmetic), owner, `vmStart` and sharing. The map's permissions are the area's flags.
 *
 * Scarlet maps lazily: adding a map writes no page-table entry; `lazyMapPage` writes one page on a fault.
 * So `map` does nothing, and `unmap`/`protect` only record that the resident pages of the range must go
 * (they fault back in with the new rights); the manager does that work after the memory-set operation
 * committed, so a failed operation never touched the page table (the transactional contract of
 * memory-set's `MappingBackend` holds trivially: every call succeeds and changes nothing by itself).
 * `touched` says whether a page of this map may be present: a map never faulted in costs nothing to remove.
 */
export class MapBackend implements MappingBackend<number, PendingSink, VirtAddr> {
  readonly pageSize = 4096;
  /** `pa - va` for every page, or `undefined` when the map has no physical area. */
  readonly delta: number | undefined;
  readonly owner: MemoryMappingOps | undefined;
  readonly vmStart: number;
  readonly isShared: boolean;
  /** The manager allocated the frames of the physical area (copy-on-write copies, fork copies): freed with the map. */
  readonly ownsFrames: boolean;
  /** A page of this map may be present in the page table. */
  touched: boolean;
  /** The last {@link VirtualMemoryMap} built for this backend's area, and that area (valid while it is the same object). */
  view: VirtualMemoryMap | undefined;
  viewArea: object | undefined;

  constructor(
    delta: number | undefined,
    owner: MemoryMappingOps | undefined,
    vmStart: number,
    isShared: boolean,
    ownsFrames: boolean,
    touched: boolean,
  ) {
    this.delta = delta;
    this.owner = owner;
    this.vmStart = vmStart;
    this.isShared = isShared;
    this.ownsFrames = ownsFrames;
    this.touched = touched;
    this.view = undefined;
    this.viewArea = undefined;
  }

  map(_start: VirtAddr, _size: number, _flags: number, _pt: PendingSink): boolean {
    return true;
  }

  unmap(start: VirtAddr, size: number, pt: PendingSink): boolean {
    if (this.touched || this.ownsFrames) pt.pending.push({ start, size, backend: this });
    return true;
  }

  protect(start: VirtAddr, size: number, _flags: number, pt: PendingSink): boolean {
    if (this.touched) pt.pending.push({ start, size, backend: PROTECT_MARK });
    return true;
  }

  /**
   * memory-set's merge hook (called on a fresh clone of the left map's backend; the set has checked that
   * the permissions are equal): the maps join when they have the same owner, sharing and frame
   * ownership, physical areas that continue each other (the same `pa - va` offset, or none on both), and
   * the same `vmStart` when owned (the owner's page indexes must go on). The seed's rule is equal
   * permissions and sharing and contiguous physical areas; it ignores the owner.
   */
  merge(next: MappingBackend<number, PendingSink, VirtAddr>, _size: number): boolean {
    if (!(next instanceof MapBackend)) return false;
    if (
      next.owner !== this.owner ||
      next.isShared !== this.isShared ||
      next.ownsFrames !== this.ownsFrames ||
      next.delta !== this.delta ||
      (this.owner !== undefined && next.vmStart !== this.vmStart)
    ) {
      return false;
    }
    this.touched = this.touched || next.touched;
    return true;
  }

  split(_alignDiff: number): MapBackend {
    return this.clone();
  }

  shrinkLeft(_n: number): void {}

  shrinkRight(_n: number): void {}

  clone(): MapBackend {
    return new MapBackend(this.delta, this.owner, this.vmStart, this.isShared, this.ownsFrames, this.touched);
  }
}

/** The backend recorded for a protect: its pages are dropped, its frames (if any) stay. */
export const PROTECT_MARK = new MapBackend(undefined, undefined, 0, false, false, true);
