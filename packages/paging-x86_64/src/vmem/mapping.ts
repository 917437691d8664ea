import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import { addrHi, addrLo, PTE_A, PTE_D, PTE_HI_XD, PTE_P, PTE_RW, PTE_US } from '../pte.js';
import { PAGE_AVL_COW, PTE_AVL_MASK } from './constants.js';

/** An ordinary mapping's permissions (seed `BasicMapping`). */
export interface BasicMapping {
  readonly type: 'Basic';
  readonly readable: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
}

/** A copy-on-write mapping (seed `CowMapping`): never writable; the marker is software bit 9. */
export interface CowMapping {
  readonly type: 'Cow';
  readonly readable: boolean;
  readonly executable: boolean;
}

/** Nothing mapped: `map` clears the leaves of the range (seed `MappingKind::Unmapped`). */
export interface UnmappedMapping {
  readonly type: 'Unmapped';
}

/** The seed's `MappingKind`: `Unmapped`, `Basic { readable, writable, executable }` or `Cow { readable, executable }`. */
export type MappingKind = UnmappedMapping | BasicMapping | CowMapping;

/** Builders of {@link MappingKind} values. */
export const MappingKind = {
  /** `Unmapped`. */
  Unmapped: { type: 'Unmapped' } as UnmappedMapping,
  /** `Basic { readable, writable, executable }`. */
  basic(perms: { readable: boolean; writable: boolean; executable: boolean }): BasicMapping {
    return {
      type: 'Basic',
      readable: perms.readable,
      writable: perms.writable,
      executable: perms.executable,
    };
  },
  /** `Cow { readable, executable }`. */
  cow(perms: { readable: boolean; executable: boolean }): CowMapping {
    return { type: 'Cow', readable: perms.readable, executable: perms.executable };
  },
} as const;

/**
 * A run of virtual memory and what backs it (seed `Mapping`): `len` bytes at `virtBase` map to
 * `physBase` onwards with permissions `kind`; `userAccessible` gives user mode (CPL 3) the same access.
 */
export interface Mapping {
  /** First physical byte (4 KiB aligned for `map`; ignored for `Unmapped`). */
  readonly physBase: PhysAddr;
  /** First virtual byte (the low 48 bits of the canonical address, 4 KiB aligned for `map`). */
  readonly virtBase: VirtAddr;
  /** Length in bytes (a positive multiple of 4 KiB for `map`). */
  readonly len: number;
  readonly kind: MappingKind;
  /** Whether the U/S bit is set: user-mode code may access the mapping like supervisor code. */
  readonly userAccessible: boolean;
}

/**
 * The low-word flags of a 4 KiB leaf for `kind` (seed `map_page`): present, accessed and dirty preset
 * (so the CPU never writes them), write-back caching (PCD = PWT = PAT = 0), R/W for a writable Basic
 * leaf, U/S when `user`, and bit 9 for COW (never writable). 0 for `Unmapped`.
 *
 * x86-64 has no "readable" bit: every present leaf is readable, so `readable: false` is encoded like
 * `readable: true` (as upstream does) and reads back as readable.
 */
export function leafFlagsLo(kind: MappingKind, user: boolean): number {
  if (kind.type === 'Unmapped') return 0;
  let f = PTE_P | PTE_A | PTE_D | (user ? PTE_US : 0);
  if (kind.type === 'Basic') {
    if (kind.writable) f |= PTE_RW;
  } else {
    f |= PAGE_AVL_COW;
  }
  return f >>> 0;
}

/** The high-word flags of a leaf for `kind`: XD (bit 63) unless executable; 0 for `Unmapped`. */
export function leafFlagsHi(kind: MappingKind): number {
  if (kind.type === 'Unmapped') return 0;
  return kind.executable ? 0 : PTE_HI_XD;
}

/** The two words of a 4 KiB leaf mapping `pa` with `kind` (all zero for `Unmapped`). */
export function encodeLeaf(pa: number, kind: MappingKind, user: boolean): { lo: number; hi: number } {
  if (kind.type === 'Unmapped') return { lo: 0, hi: 0 };
  return { lo: (addrLo(pa) | leafFlagsLo(kind, user)) >>> 0, hi: (addrHi(pa) | leafFlagsHi(kind)) >>> 0 };
}

/**
 * The kind a present leaf's words say (seed `virt_to_phys` decoding): `Cow` when the software bits
 * 9..11 are exactly bit 9, else `Basic` with `writable` = R/W; `readable` is always true and
 * `executable` = not XD.
 */
export function decodeLeafKind(lo: number, hi: number): BasicMapping | CowMapping {
  const executable = (hi & PTE_HI_XD) === 0;
  if ((lo & PTE_AVL_MASK) === PAGE_AVL_COW) return { type: 'Cow', readable: true, executable };
  return { type: 'Basic', readable: true, writable: (lo & PTE_RW) !== 0, executable };
}

/** True when two kinds are the same value. */
export function sameKind(a: MappingKind, b: MappingKind): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'Unmapped') return true;
  if (a.type === 'Basic') {
    const bb = b as BasicMapping;
    return a.readable === bb.readable && a.writable === bb.writable && a.executable === bb.executable;
  }
  const bc = b as CowMapping;
  return a.readable === bc.readable && a.executable === bc.executable;
}
