/**
 * `@vmkit/memory-set/x86_64`: ready backends over the x86-64 page tables of `@vmkit/paging-x86_64`
 * (`PageMapper`): a linear backend and an allocating backend, plus a page-fault helper. A separate entry
 * point, so the generic core (`@vmkit/memory-set`) never loads the paging package.
 *
 * @packageDocumentation
 */
import { checkVirtAddr, type VirtAddr } from '@vmkit/addr';
import {
  ACCESS_EXEC,
  ACCESS_IMPLICIT,
  ACCESS_LIMIT,
  ACCESS_USER,
  ACCESS_WRITE,
  type PageFlags,
  type PageMapper,
} from '@vmkit/paging-x86_64';
import type { MappingBackend } from '../backend.js';
import { MappingFailure, mappingFail } from '../errors.js';
import { MemorySet } from '../set.js';
import { describe } from '../text.js';
import { checkMapper, isReadable } from './common.js';

export { AllocBackend } from './alloc.js';
export { samePageFlags } from './common.js';
export { LinearBackend } from './linear.js';

/** A backend that can populate a page on fault (e.g. a lazy {@link AllocBackend}). */
interface FaultHandling {
  handlePageFault(va: VirtAddr, flags: PageFlags, pt: PageMapper): boolean;
}

/**
 * Why a page fault was or was not served by {@link resolvePageFault}:
 * - `'populated'`: the area's backend populated the page; re-execute the access.
 * - `'no-area'`: no area holds the address (SIGSEGV, `SEGV_MAPERR`).
 * - `'not-allowed'`: the area's flags forbid the access (a write to a read-only area, a user access to
 *   a supervisor area, a fetch from a non-executable one, anything in a `PROT_NONE` area: SIGSEGV,
 *   `SEGV_ACCERR`).
 * - `'already-present'`: the area allows the access and the page is present: the fault is about the
 *   page, not the area (copy-on-write, a stale TLB entry after a protect…); the caller decides.
 * - `'not-populatable'`: the area allows the access, the page is not present, and its backend does not
 *   populate on fault (an eager or linear area, or a custom backend without `handlePageFault`).
 */
export type PageFaultOutcome =
  | 'populated'
  | 'no-area'
  | 'not-allowed'
  | 'already-present'
  | 'not-populatable';

/**
 * Handles a page fault at `va` for the set's area holding it, and says why it did or did not populate
 * anything: looks the area up, checks that its flags allow `access` (the MMU's `ACCESS_*` bits:
 * `ACCESS_WRITE`, `ACCESS_EXEC`, `ACCESS_USER`, `ACCESS_IMPLICIT`; a write needs `writable`, a fetch
 * `executable`, a user access `user`, every access `readable`), then asks the backend to populate the
 * page with the area's flags.
 *
 * @param access the faulting access, an integer in `[0, ACCESS_LIMIT)` (default `ACCESS_READ`, 0)
 * @throws MappingFailure `InvalidParam` for a `set` that is not a MemorySet, a `va` that is not a
 *   VirtAddr, a `pt` that is not a PageMapper or a bad `access`; `E_NOMEM` from the frame allocator,
 *   having changed nothing
 */
export function resolvePageFault<B extends MappingBackend<PageFlags, PageMapper, VirtAddr>>(
  set: MemorySet<PageFlags, PageMapper, VirtAddr, B>,
  va: VirtAddr,
  pt: PageMapper,
  access = 0,
): PageFaultOutcome {
  return resolveFault(set, va, pt, access);
}

/** `resolvePageFault`; `access` undefined checks only that the area is accessible (not PROT_NONE). */
function resolveFault<B extends MappingBackend<PageFlags, PageMapper, VirtAddr>>(
  set: MemorySet<PageFlags, PageMapper, VirtAddr, B>,
  va: VirtAddr,
  pt: PageMapper,
  access: number | undefined,
): PageFaultOutcome {
  if (!(set instanceof MemorySet)) mappingFail('InvalidParam', `set ${describe(set)} is not a MemorySet`, {});
  try {
    checkVirtAddr(va, 'faulting address');
  } catch (e) {
    throw new MappingFailure('InvalidParam', (e as Error).message.replace(/^E_[A-Z_]+: /, ''), { va }, e);
  }
  checkMapper(pt);
  if (
    access !== undefined &&
    (typeof access !== 'number' || !Number.isInteger(access) || access < 0 || access >= ACCESS_LIMIT)
  ) {
    mappingFail('InvalidParam', `access ${describe(access)} is not an access value in [0, ${ACCESS_LIMIT})`, {
      access,
    });
  }
  const area = set.find(va);
  if (area === undefined) return 'no-area';
  const f = area.flags;
  if (!allows(f, access)) return 'not-allowed';
  if (pt.translate((va - (va % area.backend.pageSize)) as VirtAddr) !== undefined) return 'already-present';
  const b = area.backend as B & Partial<FaultHandling>;
  if (typeof b.handlePageFault !== 'function') return 'not-populatable';
  return b.handlePageFault(va, f, pt) ? 'populated' : 'not-populatable';
}

/** True when `flags` allow an access of kind `access` (MMU `ACCESS_*` bits; undefined: any access). */
function allows(flags: PageFlags, access: number | undefined): boolean {
  if (!isReadable(flags)) return false;
  if (access === undefined) return true;
  if ((access & ACCESS_WRITE) !== 0) {
    if (!flags.writable) return false;
  } else if ((access & ACCESS_EXEC) !== 0 && !flags.executable) return false;
  if ((access & ACCESS_USER) !== 0 && (access & ACCESS_IMPLICIT) === 0 && !flags.user) return false;
  return true;
}

/**
 * Handles a not-present page fault at `va` for the set's area holding it: asks the area's backend to
 * populate the page with the area's flags (the crate's `handle_page_fault` on an address space). The
 * boolean form of {@link resolvePageFault} (which also says why nothing was populated and checks the
 * access against the area's flags); this one checks no access rights except that a `PROT_NONE` area
 * populates nothing.
 *
 * @returns `true` if a page was mapped; `false` if no area holds `va`, the area is `PROT_NONE`, its
 *   backend does not populate on fault, or the page is already present (a protection fault, not a
 *   missing page)
 * @throws as {@link resolvePageFault}
 */
export function handlePageFault<B extends MappingBackend<PageFlags, PageMapper, VirtAddr>>(
  set: MemorySet<PageFlags, PageMapper, VirtAddr, B>,
  va: VirtAddr,
  pt: PageMapper,
): boolean {
  return resolveFault(set, va, pt, undefined) === 'populated';
}
