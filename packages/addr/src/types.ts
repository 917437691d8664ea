declare const brand: unique symbol;

/**
 * A canonical x86-64 virtual address (4-level paging, 48 bits).
 *
 * Held as a Number: **the low 48 bits of the canonical 64-bit address**, an exact integer in
 * `[0, 2^48)`. The lower half `0x0000000000000000..0x00007fffffffffff` is held as itself; the higher
 * half `0xffff800000000000..0xffffffffffffffff` is held as `0x800000000000..0xffffffffffff`. So
 * ordering of VirtAddr values is the unsigned ordering of the canonical addresses, bits 47..0 are the
 * table indexes and page offset, and nothing is ever a BigInt. Build one with `virtAddr()`; print one
 * with `formatVirtAddr()`.
 */
export type VirtAddr = number & { readonly [brand]: 'VirtAddr' };

/** A physical address: an exact integer in `[0, 2^52)`. Build one with `physAddr()`. */
export type PhysAddr = number & { readonly [brand]: 'PhysAddr' };

/** A virtual page number: a {@link VirtAddr} divided by 4 KiB, an integer in `[0, 2^36)`. */
export type VirtPageNum = number & { readonly [brand]: 'VirtPageNum' };

/** A physical frame number: a {@link PhysAddr} divided by 4 KiB, an integer in `[0, 2^40)`. */
export type PhysFrameNum = number & { readonly [brand]: 'PhysFrameNum' };
