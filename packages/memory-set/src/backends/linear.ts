import {
  formatHex,
  isPageSize,
  PAGE_SIZE_4K,
  type PageSize,
  type PhysAddr,
  type VirtAddr,
} from '@vmkit/addr';
import type { PageFlags, PageMapper } from '@vmkit/paging-x86_64';
import type { MappingBackend } from '../backend.js';
import { mappingFail } from '../errors.js';
import { describe } from '../text.js';
import { checkBackendRange, checkMapper, checkPageFlags, isReadable } from './common.js';

/**
 * A linear mapping: every virtual address `va` of the area maps to `va - paVaOffset`, with pages of one
 * size (for kernel memory, a direct map of physical memory, device memory). The memory is not the
 * backend's: `unmap` removes the translations and leaves the frames to their owner (the page-table frames
 * the mapper no longer needs are given back by the mapper itself).
 *
 * `PROT_NONE` (`readable: false` flags): the pages are not present while the area has such flags (x86-64
 * has no read bit); protecting them back maps the range again (the physical address is a function of
 * the virtual one, so nothing needs to be kept).
 *
 * Only virtual ranges inside one half of the space are accepted (addr's `checkVirtRange`).
 *
 * Position-independent, so `split` and the shrinks only copy it; `merge` joins a linear backend with the
 * same offset and page size. The contract of {@link MappingBackend} holds: the mapper's range operations
 * are all-or-nothing and a re-map restores the same frames.
 */
export class LinearBackend implements MappingBackend<PageFlags, PageMapper, VirtAddr> {
  /** `va - pa` for every page of the area (may be negative). */
  readonly paVaOffset: number;
  /** Leaf size used for the mapping. */
  readonly pageSize: PageSize;

  /**
   * @param paVaOffset `va - pa` (bytes, an integer multiple of `pageSize`; e.g. `virtAddr('0xffff800000000000')`
   *   to map physical 0 at the start of the higher half)
   * @param pageSize 4 KiB (default), 2 MiB or 1 GiB
   * @throws MappingFailure `InvalidParam` for a bad page size or an offset that is not a multiple of it
   */
  constructor(paVaOffset: number, pageSize: PageSize = PAGE_SIZE_4K) {
    if (!isPageSize(pageSize))
      mappingFail(
        'InvalidParam',
        `page size ${describe(pageSize)} is not an x86-64 page size (0x1000, 0x200000, 0x40000000)`,
        { pageSize },
      );
    if (typeof paVaOffset !== 'number' || !Number.isSafeInteger(paVaOffset) || paVaOffset % pageSize !== 0) {
      mappingFail(
        'InvalidParam',
        `offset ${describe(paVaOffset)} is not an integer multiple of ${formatHex(pageSize)}`,
        {
          paVaOffset,
        },
      );
    }
    this.paVaOffset = paVaOffset;
    this.pageSize = pageSize;
  }

  /** The physical address `va` maps to. */
  physOf(va: VirtAddr): PhysAddr {
    return (va - this.paVaOffset) as PhysAddr;
  }

  /**
   * Maps `[start, start + size)` to `[start - paVaOffset, …)` with `flags` (all or nothing); with
   * `PROT_NONE` flags nothing is mapped (the pages stay not present).
   *
   * @returns `true`; throws `InvalidParam` (range across the canonical hole or past 2^48, unaligned, bad
   *   flags) or the mapper's error (`E_ALREADY_MAPPED`, `E_NOMEM` for tables, `E_RANGE` for a physical
   *   address outside [0, 2^52)) having changed nothing
   */
  map(start: VirtAddr, size: number, flags: PageFlags, pt: PageMapper): boolean {
    checkBackendRange(start, size, this.pageSize, 'area');
    checkPageFlags(flags);
    checkMapper(pt);
    if (!isReadable(flags)) return true;
    pt.mapRange(start, this.physOf(start), size, flags, this.pageSize);
    return true;
  }

  /** Removes the translations of `[start, start + size)` (the frames are not this backend's). */
  unmap(start: VirtAddr, size: number, pt: PageMapper): boolean {
    checkBackendRange(start, size, this.pageSize, 'range');
    checkMapper(pt);
    pt.unmapRange(start, size);
    return true;
  }

  /**
   * Sets the flags of `[start, start + size)` (all or nothing). To `PROT_NONE` the translations go; from
   * `PROT_NONE` (the range is not present) they are mapped again.
   */
  protect(start: VirtAddr, size: number, newFlags: PageFlags, pt: PageMapper): boolean {
    checkBackendRange(start, size, this.pageSize, 'range');
    checkPageFlags(newFlags);
    checkMapper(pt);
    if (!isReadable(newFlags)) pt.unmapRange(start, size);
    else if (pt.translate(start) === undefined)
      pt.mapRange(start, this.physOf(start), size, newFlags, this.pageSize);
    else pt.protectRange(start, size, newFlags);
    return true;
  }

  /** Joins a linear backend with the same offset and page size (one linear mapping). */
  merge(next: MappingBackend<PageFlags, PageMapper, VirtAddr>, _size: number): boolean {
    return (
      next instanceof LinearBackend && next.paVaOffset === this.paVaOffset && next.pageSize === this.pageSize
    );
  }

  /** The right part maps with the same offset. */
  split(_alignDiff: number): LinearBackend {
    return new LinearBackend(this.paVaOffset, this.pageSize);
  }

  shrinkLeft(_shrinkSize: number): void {}

  shrinkRight(_shrinkSize: number): void {}

  clone(): LinearBackend {
    return new LinearBackend(this.paVaOffset, this.pageSize);
  }
}
