/**
 * `@vmkit/addr`: exact x86-64 virtual and physical addresses, alignment, pages and ranges, and the
 * toolkit's error base class.
 *
 * @packageDocumentation
 */
export {
  alignDown,
  alignUp,
  checkAlign,
  checkAligned,
  checkedAdd,
  checkedAlignDown,
  checkUint,
  formatHex,
  isAligned,
  isPowerOfTwo,
  type NotVirtAddr,
} from './align.js';
export {
  EXACT_LIMIT,
  HIGHER_HALF_BITS,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSize,
  PHYS_ADDR_BITS,
  PHYS_SPACE_END,
  VIRT_ADDR_BITS,
  VIRT_SPACE_END,
} from './constants.js';
export { describeValue, describeVirtAddr } from './describe.js';
export { AddrErrorCode, fail, isVmkitError, VMKIT_ERROR_BRAND, VmkitError } from './errors.js';
export { checkPageSize, forEachPage, isPageSize, pageCount, pagesOf } from './pages.js';
export { parseBigInt } from './parse.js';
export {
  formatPhysAddr,
  physAdd,
  physAddr,
  physAddrToBigInt,
  physFrameAddr,
  physFrameNum,
} from './phys.js';
export { AddrRange, formatVirtRange, type RangeAddr } from './range.js';
export type { PhysAddr, PhysFrameNum, VirtAddr, VirtPageNum } from './types.js';
export {
  canonicalize,
  formatVirtAddr,
  isCanonical,
  isHigherHalf,
  pageOffset,
  parseVirtAddr,
  pdIndex,
  pdptIndex,
  pml4Index,
  ptIndex,
  tableIndex,
  virtAdd,
  virtAddr,
  virtAddrFromBigInt,
  virtAddrFromBits,
  virtAddrFromSigned,
  virtAddrToBigInt,
  virtAddrToSigned,
  virtAlignUp,
  virtEnd,
  virtPageAddr,
  virtPageNum,
} from './virt.js';
export { checkVirtAddr, checkVirtRange, isVirtAddr, isVirtRange, virtDistance } from './virt-range.js';
