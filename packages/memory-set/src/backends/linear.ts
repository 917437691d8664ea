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

/**
 * A linear mapping: every virtual address `va` of the area maps to `va - paVaOffset`, with pages of one
 * size (for kernel memory, a direct map of physical memory, device memory). The memory is not the
 * backend's: `unmap` removes the translations and leaves the frames to their owner (the page-table frames
 * the mapper no longer needs are given back by the mapper itself).
 *
 * Position-independent, so `split` and the shrinks only copy it. The contract of {@link MappingBackend}
 * holds: the mapper's range operations are all-or-nothing and a re-map restores the same frames.
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
      mappingFail('InvalidParam', `${pageSize} is not an x86-64 page size`, { pageSize });
    if (!Number.isInteger(paVaOffset) || paVaOffset % pageSize !== 0) {
      mappingFail('InvalidParam', `offset ${paVaOffset} is not a multiple of ${formatHex(pageSize)}`, {
        paVaOffset,
      });
    }
    this.paVaOffset = paVaOffset;
    this.pageSize = pageSize;
  }

  /** The physical address `va` maps to. */
  physOf(va: VirtAddr): PhysAddr {
    return (va - this.paVaOffset) as PhysAddr;
  }

  /**
   * Maps `[start, start + size)` to `[start - paVaOffset, …)` with `flags` (all or nothing).
   *
   * @returns `true`; throws the mapper's error (`E_ALREADY_MAPPED`, `E_NOMEM` for tables, `E_RANGE` for
   *   a physical address outside [0, 2^52)) having changed nothing
   */
  map(start: VirtAddr, size: number, flags: PageFlags, pt: PageMapper): boolean {
    pt.mapRange(start, this.physOf(start), size, flags, this.pageSize);
    return true;
  }

  /** Removes the translations of `[start, start + size)` (the frames are not this backend's). */
  unmap(start: VirtAddr, size: number, pt: PageMapper): boolean {
    pt.unmapRange(start, size);
    return true;
  }

  /** Sets the flags of `[start, start + size)` (all or nothing). */
  protect(start: VirtAddr, size: number, newFlags: PageFlags, pt: PageMapper): boolean {
    pt.protectRange(start, size, newFlags);
    return true;
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
