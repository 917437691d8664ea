/**
 * Access kinds and the architectural access-rights decision (Intel SDM Vol. 3A §4.6).
 *
 * An access is a small integer built from the `ACCESS_*` bits: `ACCESS_READ` (0), `| ACCESS_WRITE`
 * or `| ACCESS_EXEC` (an instruction fetch), `| ACCESS_USER` (CPL 3), `| ACCESS_IMPLICIT` (a
 * supervisor access the CPU makes on its own, e.g. to the GDT or a TSS: always supervisor, and SMAP
 * applies to it whatever RFLAGS.AC says). WRITE and EXEC together count as a write; IMPLICIT wins over
 * USER.
 *
 * @module
 */
import { PF_P, PF_PK } from './fault.js';

/** A data read at the current privilege level chosen by the other bits (supervisor by default). */
export const ACCESS_READ = 0;
/** A data write. */
export const ACCESS_WRITE = 1;
/** An instruction fetch. */
export const ACCESS_EXEC = 2;
/** A user-mode (CPL = 3) access; without it the access is supervisor-mode. */
export const ACCESS_USER = 4;
/** An implicit supervisor-mode access (descriptor tables, TSS …): supervisor, and SMAP ignores RFLAGS.AC. */
export const ACCESS_IMPLICIT = 8;
/** Every valid access value is below this. */
export const ACCESS_LIMIT = 16;

/**
 * The 16 access values (`ACCESS_*` combinations) as a TypeScript type: the MMU's access methods take
 * an `Access`. A numeric enum, so that a combination built with `|` of the `ACCESS_*` constants (typed
 * `number` by TypeScript) is accepted, while a literal outside the 16 values (`99`, `1.5`, `-1`) or a
 * string is a compile-time error. At run time a value outside them is refused with `E_INVALID`.
 */
export enum Access {
  Read = 0,
  Write = 1,
  Exec = 2,
  /** WRITE and EXEC together count as a write. */
  WriteExec = 3,
  User = 4,
  UserWrite = 5,
  UserExec = 6,
  UserWriteExec = 7,
  Implicit = 8,
  ImplicitWrite = 9,
  ImplicitExec = 10,
  ImplicitWriteExec = 11,
  /** IMPLICIT wins over USER: these are supervisor accesses. */
  ImplicitUser = 12,
  ImplicitUserWrite = 13,
  ImplicitUserExec = 14,
  ImplicitUserWriteExec = 15,
}

/** True when `access` is one of the 16 access values (an integer in 0..15). */
export function isAccess(access: unknown): access is Access {
  return typeof access === 'number' && (access & 15) === access;
}

/** Effective-rights bit: R/W = 1 in every entry of the walk. */
export const EFF_RW = 1 << 0;
/** Effective-rights bit: U/S = 1 in every entry of the walk (a user-mode address). */
export const EFF_US = 1 << 1;
/** Effective-rights bit: XD = 1 in some entry of the walk. */
export const EFF_XD = 1 << 2;
/** Effective-rights bit: the leaf's D flag is 1. */
export const EFF_D = 1 << 3;
/** Effective-rights bit: the leaf is global (G = 1 and CR4.PGE = 1). */
export const EFF_G = 1 << 4;
/** Shift of the leaf's 4-bit protection key in the effective-rights bits. */
export const EFF_PK_SHIFT = 8;

/** CPU-state bits the rights decision reads, packed (internal to the MMU; exported for tests). */
export const ST_WP = 1 << 0;
export const ST_SMEP = 1 << 1;
export const ST_SMAP = 1 << 2;
export const ST_NXE = 1 << 3;
export const ST_PKE = 1 << 4;

/**
 * The eight TLB access classes: supervisor read/write/fetch, user read/write/fetch, and supervisor
 * read/write with the SMAP override (explicit access with RFLAGS.AC = 1). A TLB entry holds one tag per
 * class, valid when the class is allowed, so a hit is one compare.
 */
export const CLASS_COUNT = 8;
const C_WRITE: readonly number[] = [0, 1, 0, 0, 1, 0, 0, 1];
const C_EXEC: readonly number[] = [0, 0, 1, 0, 0, 1, 0, 0];
const C_USER: readonly number[] = [0, 0, 0, 1, 1, 1, 0, 0];
const C_AC: readonly number[] = [0, 0, 0, 0, 0, 0, 1, 1];

/** True when class `c` is a write class (its TLB tag needs the leaf's D flag). */
export function classIsWrite(c: number): boolean {
  return C_WRITE[c] === 1;
}

/** The class of each access value (0..15) given RFLAGS.AC, as a table the hot path indexes. */
export function classTable(ac: boolean, out: Int8Array = new Int8Array(ACCESS_LIMIT)): Int8Array {
  for (let a = 0; a < ACCESS_LIMIT; a++) {
    const write = (a & ACCESS_WRITE) !== 0;
    const exec = !write && (a & ACCESS_EXEC) !== 0;
    const implicit = (a & ACCESS_IMPLICIT) !== 0;
    const user = !implicit && (a & ACCESS_USER) !== 0;
    let c: number;
    if (user) c = write ? 4 : exec ? 5 : 3;
    else if (exec) c = 2;
    else if (ac && !implicit) c = write ? 7 : 6;
    else c = write ? 1 : 0;
    out[a] = c;
  }
  return out;
}

/**
 * The access-rights decision of SDM §4.6 for one access class against the effective rights of a
 * translation (`EFF_*` bits: R/W and U/S ANDed over all levels, XD ORed, the leaf's protection key).
 *
 * @param cls the access class (0..7, see {@link classTable})
 * @param eff effective-rights bits of the translation
 * @param st CPU state bits (`ST_WP`, `ST_SMEP`, `ST_SMAP`, `ST_NXE`, `ST_PKE`)
 * @param pkru the PKRU register (AD bit 2i, WD bit 2i+1 for key i)
 * @returns 0 when the access is allowed; otherwise `PF_P`, plus `PF_PK` when PKRU denies it (SDM §4.7:
 *   the PK bit reports the key check even when another rule also denies the access)
 */
export function rightsCheck(cls: number, eff: number, st: number, pkru: number): number {
  const write = C_WRITE[cls] === 1;
  const exec = C_EXEC[cls] === 1;
  const user = C_USER[cls] === 1;
  const rw = (eff & EFF_RW) !== 0;
  const us = (eff & EFF_US) !== 0;
  const xd = (eff & EFF_XD) !== 0 && (st & ST_NXE) !== 0;
  let deny: boolean;
  if (user) {
    deny = !us || (write && !rw) || (exec && xd);
  } else if (exec) {
    deny = (us && (st & ST_SMEP) !== 0) || xd;
  } else {
    const smapDenies = us && (st & ST_SMAP) !== 0 && C_AC[cls] === 0;
    deny = smapDenies || (write && !rw && (st & ST_WP) !== 0);
  }
  let pk = 0;
  if ((st & ST_PKE) !== 0 && us && !exec) {
    const key = (eff >>> EFF_PK_SHIFT) & 15;
    const ad = (pkru >>> (2 * key)) & 1;
    const wd = (pkru >>> (2 * key + 1)) & 1;
    if (ad === 1 || (wd === 1 && write && (user || (st & ST_WP) !== 0))) pk = PF_PK;
  }
  return deny || pk !== 0 ? PF_P | pk : 0;
}
