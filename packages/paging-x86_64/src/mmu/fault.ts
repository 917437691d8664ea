/**
 * Page-fault error codes (Intel SDM Vol. 3A §4.7, figure 4-12) and the fault record the MMU fills
 * instead of throwing.
 *
 * @module
 */
import { describeValue, formatVirtAddr, isVirtAddr, type VirtAddr } from '@vmkit/addr';

/** Error code bit 0, P: 0 = no translation (a P flag was 0); 1 = a protection or reserved-bit violation. */
export const PF_P = 1 << 0;
/** Error code bit 1, W/R: the access was a write. */
export const PF_W = 1 << 1;
/** Error code bit 2, U/S: the access was a user-mode access (implicit supervisor accesses clear it). */
export const PF_U = 1 << 2;
/** Error code bit 3, RSVD: a reserved bit was set in a paging-structure entry (always with P). */
export const PF_RSVD = 1 << 3;
/** Error code bit 4, I/D: an instruction fetch, reported when CR4.SMEP = 1 or EFER.NXE = 1. */
export const PF_ID = 1 << 4;
/** Error code bit 5, PK: a data access to a user-mode page denied by PKRU (CR4.PKE = 1). */
export const PF_PK = 1 << 5;

/** The #PF vector. */
export const VECTOR_PF = 14;
/**
 * The #GP vector: an address that is not a `VirtAddr` (not an integer in [0, 2^48): the CPU's
 * non-canonical address), or a multi-byte access that would run from the lower half into the hole.
 */
export const VECTOR_GP = 13;

/**
 * The last fault of an {@link Mmu}: one mutable record per MMU, overwritten by each fault (no
 * allocation on the access path). Copy the fields if you need to keep them.
 */
export class PageFault {
  /** 14 for a page fault, 13 for a #GP (an access crossing into the non-canonical hole). */
  vector = VECTOR_PF;
  /** The faulting linear address (what CR2 receives for a #PF). */
  address = 0 as VirtAddr;
  /** The architectural error code (`PF_*` bits); 0 for a #GP. */
  errorCode = 0;
  /** The paging level whose entry ended the walk (4 = PML4 … 1 = PT), 0 for a #GP. */
  level = 0;
  /**
   * For a #GP on an address that is not a `VirtAddr`: the address as the caller passed it (e.g.
   * `2 ** 48`, `1.5`, `'4194304'`); `address` then holds it when it is a Number, else NaN.
   * `undefined` for every other fault.
   */
  value: unknown = undefined;

  /** A copy as a plain object (for logs and tests). */
  toJSON(): { vector: number; address: VirtAddr; errorCode: number; level: number } {
    return { vector: this.vector, address: this.address, errorCode: this.errorCode, level: this.level };
  }

  /** Copies another record's fields (e.g. to keep a fault: `new PageFault().copyFrom(mmu.fault)`). */
  copyFrom(other: PageFault): this {
    this.vector = other.vector;
    this.address = other.address;
    this.errorCode = other.errorCode;
    this.level = other.level;
    this.value = other.value;
    return this;
  }

  /** E.g. `#PF at 0x401000 (P|W|U: protection violation, write, user)`. */
  toString(): string {
    if (this.vector === VECTOR_GP) {
      if (this.value !== undefined || !isVirtAddr(this.address))
        return `#GP(0): address ${describeValue(this.value ?? this.address)} is not a canonical virtual address (an integer in [0, 2^48))`;
      return `#GP(0) at ${formatVirtAddr(this.address)} (an access running into the non-canonical hole)`;
    }
    return `#PF at ${formatVirtAddr(this.address)} (${formatErrorCode(this.errorCode)}: ${describeErrorCode(this.errorCode)})`;
  }
}

const NAMES: ReadonlyArray<[number, string]> = [
  [PF_P, 'P'],
  [PF_W, 'W'],
  [PF_U, 'U'],
  [PF_RSVD, 'RSVD'],
  [PF_ID, 'I/D'],
  [PF_PK, 'PK'],
];

/** The set bits of an error code by name, `|`-separated (`'P|W|U'`); `'-'` for 0. */
export function formatErrorCode(code: number): string {
  const parts = NAMES.filter(([bit]) => (code & bit) !== 0).map(([, n]) => n);
  return parts.length === 0 ? '-' : parts.join('|');
}

/** The error code in words, as the SDM's figure reads it: `'protection violation, write, user'`. */
export function describeErrorCode(code: number): string {
  const parts = [
    (code & PF_P) === 0 ? 'not present' : 'protection violation',
    (code & PF_W) === 0 ? 'read' : 'write',
    (code & PF_U) === 0 ? 'supervisor' : 'user',
  ];
  if (code & PF_RSVD) parts.push('reserved bit set');
  if (code & PF_ID) parts.push('instruction fetch');
  if (code & PF_PK) parts.push('protection key');
  return parts.join(', ');
}
