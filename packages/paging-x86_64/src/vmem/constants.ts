/**
 * Seed 003's constants (Hyperlight `vmem`), for x86-64 4-level paging.
 *
 * The seed's `u64` constants are given here in the forms a TypeScript caller needs: `PAGE_PRESENT` is
 * bit 0 of the entry's low word (a Number, usable with `&` on a `lo` word); `PTE_ADDR_MASK` is the
 * 64-bit mask as a BigInt (for printing and interop), with its two 32-bit halves
 * `PTE_ADDR_MASK_LO`/`PTE_ADDR_MASK_HI` for the hot paths, which never use BigInt.
 *
 * @module
 */
import { fail } from '@vmkit/addr';
import { PTE_HI_ADDR_MASK, PTE_LO_ADDR_MASK, PTE_P } from '../pte.js';

/** Bit 0 of an entry: the entry is present (a `lo`-word mask; the 64-bit value is the same number). */
export const PAGE_PRESENT = PTE_P;
/** The page size the tables are built for: 4096 bytes. */
export const PAGE_SIZE = 4096;
/** Bytes of one page table: 4096. */
export const PAGE_TABLE_SIZE = 4096;
/** Bytes of one page-table entry: 8. */
export const PAGE_TABLE_ENTRY_SIZE = 8;
/** Entries per table: `PAGE_TABLE_SIZE / 8` = 512. */
export const PAGE_TABLE_ENTRIES_PER_TABLE = PAGE_TABLE_SIZE / PAGE_TABLE_ENTRY_SIZE;
/**
 * Mask extracting the physical address from an entry: bits 51..12 (`0x000ffffffffff000`). It drops the
 * 12 flag bits and every bit from 52 up (software bits, protection key, XD).
 */
export const PTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;
/** The low 32 bits of {@link PTE_ADDR_MASK}. */
export const PTE_ADDR_MASK_LO = PTE_LO_ADDR_MASK;
/** The high 32 bits of {@link PTE_ADDR_MASK}. */
export const PTE_ADDR_MASK_HI = PTE_HI_ADDR_MASK;
/** Width of a virtual address in 4-level paging: 48 bits. */
export const VA_BITS = 48;
/** Bit 9, the seed's copy-on-write marker among the software bits 9..11. */
export const PAGE_AVL_COW = 1 << 9;
/** Software bits 9..11 of the low word; a leaf is COW when exactly {@link PAGE_AVL_COW} is set among them. */
export const PTE_AVL_MASK = 0xe00;

/** The shift of the lowest virtual-address bit indexing a table at `level` (4 = PML4 … 1 = PT): 39, 30, 21, 12. */
export function levelShift(level: 1 | 2 | 3 | 4): number {
  return 12 + 9 * (level - 1);
}

/**
 * Bits `high..low` (inclusive) of a non-negative integer below 2^53 — the seed's `bits::<HIGH, LOW>`,
 * used to extract a table index from a 48-bit virtual address (bits 47..39 = PML4 index, …). Works
 * past bit 31 (no 32-bit operators).
 *
 * @throws VmkitError `E_INVALID` unless `0 ≤ low ≤ high ≤ 52` are integers
 */
export function bits(x: number, high: number, low: number): number {
  if (!(Number.isInteger(high) && Number.isInteger(low) && low >= 0 && low <= high && high <= 52)) {
    fail('E_INVALID', `bits(): need 0 <= low <= high <= 52, got high ${high}, low ${low}`, { high, low });
  }
  return Math.floor(x / 2 ** low) % 2 ** (high - low + 1);
}
