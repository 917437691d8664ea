/** 4 KiB: the base page size of x86-64. */
export const PAGE_SIZE_4K = 0x1000;
/** 2 MiB: a page-directory (PD) leaf. */
export const PAGE_SIZE_2M = 0x20_0000;
/** 1 GiB: a page-directory-pointer-table (PDPT) leaf. */
export const PAGE_SIZE_1G = 0x4000_0000;

/** The page sizes of x86-64 4-level paging, in bytes. */
export type PageSize = typeof PAGE_SIZE_4K | typeof PAGE_SIZE_2M | typeof PAGE_SIZE_1G;

/** Number of significant bits of a 4-level (48-bit) virtual address. */
export const VIRT_ADDR_BITS = 48;
/** 2^47: the first byte of the higher half, as held in a {@link VirtAddr} (bits 47..0). */
export const HIGHER_HALF_BITS = 0x8000_0000_0000;
/** 2^48: one past the last byte of the virtual address space, as held in a {@link VirtAddr}. */
export const VIRT_SPACE_END = 0x1_0000_0000_0000;
/** The architectural maximum number of physical address bits (MAXPHYADDR ≤ 52). */
export const PHYS_ADDR_BITS = 52;
/** 2^52: one past the largest physical address. */
export const PHYS_SPACE_END = 0x10_0000_0000_0000;
/** 2^53: the first integer a Number cannot hold exactly next to its neighbours. */
export const EXACT_LIMIT = 0x20_0000_0000_0000;
