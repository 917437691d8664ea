/**
 * `@vmkit/memory-set/x86_64`: ready backends over the x86-64 page tables of `@vmkit/paging-x86_64`
 * (`PageMapper`): a linear backend and an allocating backend, plus a page-fault helper. A separate entry
 * point, so the generic core (`@vmkit/memory-set`) never loads the paging package.
 *
 * @packageDocumentation
 */
import type { VirtAddr } from '@vmkit/addr';
import type { PageFlags, PageMapper } from '@vmkit/paging-x86_64';
import type { MappingBackend } from '../backend.js';
import type { MemorySet } from '../set.js';

export { AllocBackend } from './alloc.js';
export { LinearBackend } from './linear.js';

/** A backend that can populate a page on fault (e.g. a lazy {@link AllocBackend}). */
interface FaultHandling {
  handlePageFault(va: VirtAddr, flags: PageFlags, pt: PageMapper): boolean;
}

/**
 * Handles a not-present page fault at `va` for the set's area holding it: asks the area's backend to
 * populate the page with the area's flags (the crate's `handle_page_fault` on an address space).
 *
 * @returns `true` if a page was mapped; `false` if no area holds `va`, its backend does not populate on
 *   fault, or the page is already present (a protection fault, not a missing page)
 * @throws `E_NOMEM` from the frame allocator, having changed nothing
 */
export function handlePageFault<B extends MappingBackend<PageFlags, PageMapper, VirtAddr>>(
  set: MemorySet<PageFlags, PageMapper, VirtAddr, B>,
  va: VirtAddr,
  pt: PageMapper,
): boolean {
  const area = set.find(va);
  if (area === undefined) return false;
  const b = area.backend as B & Partial<FaultHandling>;
  return typeof b.handlePageFault === 'function' ? b.handlePageFault(va, area.flags, pt) : false;
}
