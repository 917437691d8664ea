import { isPageSize, PAGE_SIZE_4K, type PageSize, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import type { FrameAllocator, PageFlags, PageMapper } from '@vmkit/paging-x86_64';
import type { MappingBackend } from '../backend.js';
import { mappingFail } from '../errors.js';

/**
 * An allocating mapping (ArceOS's `Alloc` backend): each page gets its own zero-filled frame(s) from the
 * page mapper's frame allocator, either all at map time (`populate`) or one page at a time when it is
 * first touched ({@link AllocBackend.handlePageFault}). The frames belong to the backend and are given
 * back (`decRef`, so a shared frame just loses a reference) when their pages are unmapped.
 *
 * Transactional support (the contract of {@link MappingBackend}): `unmap` does not release frames at once
 * but keeps them until {@link AllocBackend.settle}, which the {@link MemorySet} calls at the end of every
 * operation; if the set rolls the unmap back, `map` puts the *same* frames (same contents) back. So a
 * failed operation leaves the same translations, frames and data (the page-table frames themselves may be
 * different ones). Give each area its own backend instance.
 *
 * Position-independent: `split` and the shrinks only copy it.
 */
export class AllocBackend implements MappingBackend<PageFlags, PageMapper, VirtAddr> {
  /** Map every page at map time (`true`) or on first touch (`false`). */
  readonly populate: boolean;
  /** Leaf size: each page is one frame (4 KiB) or an aligned run of frames (2 MiB, 1 GiB). */
  readonly pageSize: PageSize;
  /** Frames unmapped in the current set operation, by page address, released by `settle`. */
  private pending = new Map<number, PhysAddr>();

  /**
   * @param populate allocate and map every page at map time
   * @param pageSize 4 KiB (default), 2 MiB or 1 GiB
   * @throws MappingFailure `InvalidParam` for a page size x86-64 does not have
   */
  constructor(populate: boolean, pageSize: PageSize = PAGE_SIZE_4K) {
    if (!isPageSize(pageSize))
      mappingFail('InvalidParam', `${pageSize} is not an x86-64 page size`, { pageSize });
    this.populate = populate;
    this.pageSize = pageSize;
  }

  /**
   * Maps `[start, start + size)`: pages whose frames this operation unmapped get them back; other pages
   * get new zero-filled frames when `populate` (and nothing otherwise). All or nothing.
   *
   * @returns `true`; throws `E_NOMEM` (no frame or table) or the mapper's error, having changed nothing
   */
  map(start: VirtAddr, size: number, flags: PageFlags, pt: PageMapper): boolean {
    const ps = this.pageSize;
    const fresh: PhysAddr[] = [];
    const reused: [number, PhysAddr][] = [];
    const mapped: VirtAddr[] = [];
    try {
      for (let va = start as number; va < start + size; va += ps) {
        let pa = this.pending.get(va);
        if (pa !== undefined) {
          this.pending.delete(va);
          reused.push([va, pa]);
        } else if (this.populate) {
          pa = this.allocPage(pt.frames);
          fresh.push(pa);
        } else continue;
        pt.map(va as VirtAddr, pa, ps, flags);
        mapped.push(va as VirtAddr);
      }
    } catch (e) {
      for (let i = mapped.length - 1; i >= 0; i--) pt.unmap(mapped[i] as VirtAddr);
      for (const pa of fresh) this.freePage(pt.frames, pa);
      for (const [va, pa] of reused) this.pending.set(va, pa);
      throw e;
    }
    return true;
  }

  /** Unmaps `[start, start + size)`; the frames of the pages that were present are released at `settle`. */
  unmap(start: VirtAddr, size: number, pt: PageMapper): boolean {
    for (const leaf of pt.unmapRange(start, size)) this.pending.set(leaf.va, leaf.pa);
    return true;
  }

  /** Sets the flags of the present pages of `[start, start + size)`; absent pages get them on fault. */
  protect(start: VirtAddr, size: number, newFlags: PageFlags, pt: PageMapper): boolean {
    pt.protectRange(start, size, newFlags);
    return true;
  }

  /**
   * Populates the page holding `va` on first touch (lazy backends): allocates a zero-filled frame and
   * maps it with `flags` (the area's flags, from `MemorySet.find(va).flags`).
   *
   * @returns `true` if the page was populated; `false` if this backend populates eagerly or the page is
   *   already mapped (then the fault is not a missing page: a permission fault, say)
   * @throws `E_NOMEM` when no frame is free, having changed nothing
   */
  handlePageFault(va: VirtAddr, flags: PageFlags, pt: PageMapper): boolean {
    if (this.populate) return false;
    const page = (va - (va % this.pageSize)) as VirtAddr;
    if (pt.translate(page) !== undefined) return false;
    const pa = this.allocPage(pt.frames);
    try {
      pt.map(page, pa, this.pageSize, flags);
    } catch (e) {
      this.freePage(pt.frames, pa);
      throw e;
    }
    return true;
  }

  /** The right part is a fresh backend of the same kind (nothing pending). */
  split(_alignDiff: number): AllocBackend {
    return new AllocBackend(this.populate, this.pageSize);
  }

  shrinkLeft(_shrinkSize: number): void {}

  shrinkRight(_shrinkSize: number): void {}

  clone(): AllocBackend {
    return new AllocBackend(this.populate, this.pageSize);
  }

  /** Releases the frames of every page unmapped since the last settle. */
  settle(pt: PageMapper): void {
    for (const pa of this.pending.values()) this.freePage(pt.frames, pa);
    this.pending.clear();
  }

  /** Number of frames unmapped and not yet released (0 outside a set operation). */
  get pendingFrames(): number {
    return this.pending.size;
  }

  private allocPage(frames: FrameAllocator): PhysAddr {
    const n = this.pageSize / PAGE_SIZE_4K;
    return n === 1 ? frames.allocFrame() : frames.allocContiguous(n, this.pageSize);
  }

  private freePage(frames: FrameAllocator, pa: PhysAddr): void {
    const n = this.pageSize / PAGE_SIZE_4K;
    if (n === 1) frames.decRef(pa);
    else frames.freeContiguous(pa, n);
  }

  toString(): string {
    return `AllocBackend(${this.populate ? 'populate' : 'lazy'}, ${this.pageSize})`;
  }
}
