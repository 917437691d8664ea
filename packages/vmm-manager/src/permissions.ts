import type { PageFlags } from '@vmkit/paging-x86_64';
import { show, vmmFail } from './errors.js';

/**
 * Scarlet OS's `VirtualMemoryPermission` bits. A map's `permissions` is an OR of these (0..15).
 *
 * On x86-64 they become page-table bits: Write → R/W, User → U/S, no Execute → XD. x86-64 has no read
 * bit: a present page is readable, so Read alone, Write or Execute each make a page readable, and a map
 * with none of Read/Write/Execute (a guard map) is never made present.
 */
export const VirtualMemoryPermission = {
  Read: 0x1,
  Write: 0x2,
  Execute: 0x4,
  User: 0x8,
} as const;

/** One of {@link VirtualMemoryPermission}. */
export type VirtualMemoryPermission = (typeof VirtualMemoryPermission)[keyof typeof VirtualMemoryPermission];

/** Every permission bit (`0xf`). */
export const PERMISSION_MASK = 0xf;

/** The access bits (Read, Write, Execute): a map without any of them gets no present page. */
export const ACCESS_MASK = 0x7;

/** True when `perm` is set in `permissions` (the seed's `contained_in`). */
export function permissionContainedIn(perm: VirtualMemoryPermission, permissions: number): boolean {
  return (permissions & perm) !== 0;
}

/**
 * Checks a permissions value: an integer OR of {@link VirtualMemoryPermission} bits.
 *
 * @throws VmmError `E_INVALID` for a non-number, a non-integer or bits outside `0xf` (e.g. a Unix mode
 *   such as `0o644`, which is not a permission set)
 */
export function checkPermissions(permissions: unknown, what = 'permissions'): asserts permissions is number {
  if (
    typeof permissions !== 'number' ||
    !Number.isInteger(permissions) ||
    permissions < 0 ||
    permissions > PERMISSION_MASK
  ) {
    vmmFail(
      'E_INVALID',
      `${what} must be an OR of VirtualMemoryPermission bits (Read 0x1, Write 0x2, Execute 0x4, User 0x8)`,
      `got ${show(permissions)}`,
      { permissions },
    );
  }
}

/** `R-X-U`-style text of a permissions value (for `toString`). */
export function formatPermissions(p: number): string {
  return `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}${p & 8 ? 'u' : '-'}`;
}

const FLAGS: PageFlags[] = [];
for (let p = 0; p <= PERMISSION_MASK; p++) {
  FLAGS.push(
    Object.freeze({
      writable: (p & VirtualMemoryPermission.Write) !== 0,
      user: (p & VirtualMemoryPermission.User) !== 0,
      executable: (p & VirtualMemoryPermission.Execute) !== 0,
    }),
  );
}

/**
 * The x86-64 page flags of a permissions value: R/W = Write, U/S = User, XD = not Execute (frozen,
 * shared objects: no allocation). Meaningful only when the value has an access bit ({@link ACCESS_MASK}).
 */
export function pageFlagsOf(permissions: number): PageFlags {
  return FLAGS[permissions & PERMISSION_MASK]!;
}
