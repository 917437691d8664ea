/**
 * The architectural x86-64 page-table entry (Intel SDM Vol. 3A, §4.5, tables 4-14 to 4-20), held as
 * two 32-bit words, never as a BigInt on a hot path:
 *
 * - `lo` = bits 31..0: flags 0..11 (P, R/W, U/S, PWT, PCD, A, D, PS/PAT, G, software 9..11) and
 *   physical-address bits 12..31;
 * - `hi` = bits 63..32: physical-address bits 32..51 (hi bits 0..19), software bits 52..58 (hi bits
 *   20..26), protection key 59..62 (hi bits 27..30), XD 63 (hi bit 31).
 *
 * Words are unsigned 32-bit values (as a Uint32Array holds them); helpers return them with `>>> 0`.
 * Page tables live in simulated physical memory in exactly this format, little-endian, 8 bytes an entry.
 *
 * @module
 */

// ---- lo-word flag bits (bit n of the PTE is bit n of lo) ----
/** Bit 0, P: the entry is present. */
export const PTE_P = 1 << 0;
/** Bit 1, R/W: writes allowed (when 0, writes fault, subject to CR0.WP for supervisor). */
export const PTE_RW = 1 << 1;
/** Bit 2, U/S: user-mode accesses allowed. */
export const PTE_US = 1 << 2;
/** Bit 3, PWT: page-level write-through. */
export const PTE_PWT = 1 << 3;
/** Bit 4, PCD: page-level cache disable. */
export const PTE_PCD = 1 << 4;
/** Bit 5, A: accessed (set by the MMU on every level it walks). */
export const PTE_A = 1 << 5;
/** Bit 6, D: dirty (set by the MMU on the leaf at a write). */
export const PTE_D = 1 << 6;
/** Bit 7, PS in a PDPTE/PDE (1 GiB / 2 MiB leaf); PAT in a 4 KiB PTE. Reserved (must be 0) in a PML4E. */
export const PTE_PS = 1 << 7;
/** Bit 7 of a 4 KiB PTE: PAT (same bit as {@link PTE_PS}). */
export const PTE_PAT_4K = 1 << 7;
/** Bit 8, G: global (survives CR3 loads when CR4.PGE = 1); leaves only. */
export const PTE_G = 1 << 8;
/** Bit 9: ignored by hardware, available to software. Seed 003 uses it as the copy-on-write marker. */
export const PTE_AVL9 = 1 << 9;
/** Bit 10: available to software. */
export const PTE_AVL10 = 1 << 10;
/** Bit 11: available to software. */
export const PTE_AVL11 = 1 << 11;
/** Bit 12 of a 2 MiB / 1 GiB leaf: PAT for the large page. */
export const PTE_PAT_LARGE = 1 << 12;
/** The flag part of `lo` (bits 11..0). */
export const PTE_LO_FLAGS_MASK = 0xfff;
/** The address part of `lo` (bits 31..12). */
export const PTE_LO_ADDR_MASK = 0xfffff000;

// ---- hi-word bits (bit n of the PTE, n ≥ 32, is bit n-32 of hi) ----
/** Physical-address bits 51..32 of the entry, in `hi` bits 19..0. */
export const PTE_HI_ADDR_MASK = 0x000fffff;
/** Software-available bits 58..52, in `hi` bits 26..20. */
export const PTE_HI_SW_MASK = 0x07f00000;
/** Shift of the software bits 58..52 within `hi`. */
export const PTE_HI_SW_SHIFT = 20;
/** Protection key bits 62..59, in `hi` bits 30..27. */
export const PTE_HI_PK_MASK = 0x78000000;
/** Shift of the protection key within `hi`. */
export const PTE_HI_PK_SHIFT = 27;
/** Bit 63, XD (execute disable, when EFER.NXE = 1; reserved otherwise), as `hi` bit 31. */
export const PTE_HI_XD = 0x80000000;

/** Physical address of the frame or table an entry points to (bits 51..12), for any leaf size. */
export function pteAddr(lo: number, hi: number): number {
  return (hi & PTE_HI_ADDR_MASK) * 0x1_0000_0000 + ((lo & PTE_LO_ADDR_MASK) >>> 0);
}

/** The `lo` word bits of a physical address (must be 4 KiB aligned, below 2^52). */
export function addrLo(pa: number): number {
  return ((pa % 0x1_0000_0000) & PTE_LO_ADDR_MASK) >>> 0;
}

/** The `hi` word bits of a physical address (bits 51..32). */
export function addrHi(pa: number): number {
  return Math.floor(pa / 0x1_0000_0000) & PTE_HI_ADDR_MASK;
}

/** The entry as a 64-bit BigInt (edges only: printing, interop, tests). */
export function pteToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Splits a 64-bit entry given as a BigInt into its two words. */
export function pteFromBigInt(v: bigint): { lo: number; hi: number } {
  return { lo: Number(v & 0xffff_ffffn), hi: Number((v >> 32n) & 0xffff_ffffn) };
}
