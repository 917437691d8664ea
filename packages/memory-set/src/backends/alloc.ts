import {
  isPageSize,
  isVirtAddr,
  PAGE_SIZE_4K,
  type PageSize,
  type PhysAddr,
  type VirtAddr,
  VmkitError,
} from '@vmkit/addr';
import type { FrameAllocator, PageFlags, PageMapper } from '@vmkit/paging-x86_64';
import type { MappingBackend } from '../backend.js';
import { mappingFail } from '../errors.js';
import { describe } from '../text.js';
import { checkBackendRange, checkMapper, checkPageFlags, entriesIn, hiddenOf, isReadable } from './common.js';

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
 * `PROT_NONE` (`readable: false` flags): x86-64 has no read bit, so the pages of such an area are kept
 * not present while the area exists; their frames and data are kept (in a per-page-table store, see
 * `common.ts`) and come back when the area is protected to an accessible mode again. A fault in such an
 * area populates nothing.
 *
 * Cost: work is proportional to what is done. A lazy map writes nothing, whatever its size; `unmap` and
 * `protect` cost what the page table holds in the range (`PageMapper.unmapRange`/`protectRange`) plus
 * the frames this backend holds there; only a populating map is per page, and it fails before it starts
 * when fewer frames are free than it needs.
 *
 * Only virtual ranges inside one half of the space are accepted (addr's `checkVirtRange`): an area
 * across the canonical hole or past 2^48 is `InvalidParam`, whatever set it comes from.
 *
 * Position-independent: `split` and the shrinks only copy it; `merge` joins any `AllocBackend` of the
 * same kind.
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
    if (typeof populate !== 'boolean')
      mappingFail('InvalidParam', `populate ${describe(populate)} is not a boolean`, { populate });
    if (!isPageSize(pageSize))
      mappingFail(
        'InvalidParam',
        `page size ${describe(pageSize)} is not an x86-64 page size (0x1000, 0x200000, 0x40000000)`,
        { pageSize },
      );
    this.populate = populate;
    this.pageSize = pageSize;
  }

  /**
   * Maps `[start, start + size)`: pages whose frames this operation unmapped get them back; other pages
   * get new zero-filled frames when `populate` (and nothing otherwise: a lazy map costs nothing, however
   * large). With `PROT_NONE` flags (`readable: false`) the frames are kept but the pages stay not
   * present. All or nothing; a populating map that needs more frames than are free fails before it
   * starts.
   *
   * @returns `true`; throws `InvalidParam` (a range across the canonical hole or past 2^48, unaligned,
   *   bad flags), `E_NOMEM` (no frame or table) or the mapper's error, having changed nothing
   */
  map(start: VirtAddr, size: number, flags: PageFlags, pt: PageMapper): boolean {
    const ps = this.pageSize;
    checkBackendRange(start, size, ps, 'area');
    checkPageFlags(flags);
    checkMapper(pt);
    const end = start + size;
    const readable = isReadable(flags);
    const reused = entriesIn(this.pending, start, end, ps);
    const perPage = ps / PAGE_SIZE_4K;
    if (this.populate) {
      const need = (size / ps - reused.length) * perPage;
      if (need > pt.frames.freeFrames) {
        throw new VmkitError(
          'E_NOMEM',
          `populating ${size / ps} page(s) needs ${need} free frame(s), ${pt.frames.freeFrames} are free`,
          { start, size },
        );
      }
    } else if (reused.length === 0) return true; // lazy, nothing to give back: O(1)
    const hidden = readable ? undefined : hiddenOf(pt, true);
    const fresh: PhysAddr[] = [];
    const placed: number[] = [];
    const place = (va: number, pa: PhysAddr): void => {
      if (hidden !== undefined) hidden.set(va, pa);
      else pt.map(va as VirtAddr, pa, ps, flags);
      placed.push(va);
    };
    try {
      for (const [va, pa] of reused) {
        this.pending.delete(va);
        place(va, pa);
      }
      if (this.populate) {
        const had = reused.length > 0 ? new Set(reused.map((e) => e[0])) : undefined;
        for (let va = start as number; va < end; va += ps) {
          if (had?.has(va) === true) continue;
          const pa = this.allocPage(pt.frames);
          fresh.push(pa);
          place(va, pa);
        }
      }
    } catch (e) {
      for (let n = placed.length - 1; n >= 0; n--) {
        const va = placed[n] as number;
        if (hidden !== undefined) hidden.delete(va);
        else pt.unmap(va as VirtAddr);
      }
      for (const pa of fresh) this.freePage(pt.frames, pa);
      for (const [va, pa] of reused) this.pending.set(va, pa);
      throw e;
    }
    return true;
  }

  /**
   * Unmaps `[start, start + size)`; the frames of the pages that were populated (present, or kept for a
   * `PROT_NONE` area) are released at `settle`. Costs what the page table holds in the range.
   */
  unmap(start: VirtAddr, size: number, pt: PageMapper): boolean {
    checkBackendRange(start, size, this.pageSize, 'range');
    checkMapper(pt);
    const hidden = hiddenOf(pt, false);
    const kept = entriesIn(hidden, start, start + size, this.pageSize);
    for (const leaf of pt.unmapRange(start, size)) this.pending.set(leaf.va, leaf.pa);
    for (const [va, pa] of kept) {
      (hidden as Map<number, PhysAddr>).delete(va);
      this.pending.set(va, pa);
    }
    return true;
  }

  /**
   * Sets the flags of the populated pages of `[start, start + size)`; pages not yet touched get them on
   * fault. To `PROT_NONE` (`readable: false`) the present pages become not present, keeping their frames;
   * back to an accessible mode they are mapped again with the same frames and data. Costs what the page
   * table holds in the range. All or nothing.
   */
  protect(start: VirtAddr, size: number, newFlags: PageFlags, pt: PageMapper): boolean {
    const ps = this.pageSize;
    checkBackendRange(start, size, ps, 'range');
    checkPageFlags(newFlags);
    checkMapper(pt);
    if (!isReadable(newFlags)) {
      const removed = pt.unmapRange(start, size);
      if (removed.length > 0) {
        const hidden = hiddenOf(pt, true);
        for (const leaf of removed) hidden.set(leaf.va, leaf.pa);
      }
      return true;
    }
    const hidden = hiddenOf(pt, false);
    const back = entriesIn(hidden, start, start + size, ps);
    const mapped: number[] = [];
    try {
      for (const [va, pa] of back) {
        pt.map(va as VirtAddr, pa, ps, newFlags);
        mapped.push(va);
      }
    } catch (e) {
      for (let n = mapped.length - 1; n >= 0; n--) pt.unmap(mapped[n] as VirtAddr);
      throw e;
    }
    for (const [va] of back) hidden?.delete(va);
    pt.protectRange(start, size, newFlags);
    return true;
  }

  /**
   * Populates the page holding `va` on first touch (lazy backends): allocates a zero-filled frame and
   * maps it with `flags` (the area's flags, from `MemorySet.find(va).flags`).
   *
   * @returns `true` if the page was populated; `false` if this backend populates eagerly, the flags are
   *   `PROT_NONE` (no access is allowed) or the page is already populated (then the fault is not a
   *   missing page: a permission fault, say)
   * @throws `E_NOMEM` when no frame is free, having changed nothing; `InvalidParam` for a `va` that is not
   *   a VirtAddr or bad flags
   */
  handlePageFault(va: VirtAddr, flags: PageFlags, pt: PageMapper): boolean {
    if (!isVirtAddr(va))
      mappingFail(
        'InvalidParam',
        `faulting address ${describe(va)} is not a VirtAddr (an integer in [0, 2^48))`,
        {
          va,
        },
      );
    checkPageFlags(flags);
    checkMapper(pt);
    if (this.populate || !isReadable(flags)) return false;
    const page = (va - (va % this.pageSize)) as VirtAddr;
    if (pt.translate(page) !== undefined || hiddenOf(pt, false)?.has(page) === true) return false;
    const pa = this.allocPage(pt.frames);
    try {
      pt.map(page, pa, this.pageSize, flags);
    } catch (e) {
      this.freePage(pt.frames, pa);
      throw e;
    }
    return true;
  }

  /**
   * Joins the backend of the next area when it is an `AllocBackend` of the same kind (`populate` and
   * page size): the backend is position-independent, so nothing else needs to agree.
   */
  merge(next: MappingBackend<PageFlags, PageMapper, VirtAddr>, _size: number): boolean {
    return next instanceof AllocBackend && next.populate === this.populate && next.pageSize === this.pageSize;
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
