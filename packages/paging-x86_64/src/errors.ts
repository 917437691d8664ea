/**
 * Error codes of `@vmkit/paging-x86_64`, added to the address-level codes of `@vmkit/addr`
 * (`E_UNALIGNED`, `E_NONCANONICAL`, `E_RANGE`, `E_OVERFLOW`, `E_INVALID`), which this package reuses
 * where the broken rule is the same. Every error is a `VmkitError` whose `code` is one of these
 * strings; codes never change meaning.
 *
 * @module
 */
import { VmkitError } from '@vmkit/addr';

/** The error codes this package adds. */
export const PagingErrorCode = {
  /** No free frame (or no free run of frames with the requested size and alignment) is left. */
  E_NOMEM: 'E_NOMEM',
  /** A frame that was allocated and has since been freed was released again. */
  E_DOUBLE_FREE: 'E_DOUBLE_FREE',
  /** A reference count was touched (or a frame released) that this allocator never handed out. */
  E_NOT_ALLOCATED: 'E_NOT_ALLOCATED',
  /** A frame's reference count would pass 2^32 - 1. */
  E_REFCOUNT_OVERFLOW: 'E_REFCOUNT_OVERFLOW',
  /**
   * A mapping would have to descend through an entry that is a large-page leaf (PS = 1), or replace
   * a present intermediate table by a leaf: the table operations never split or drop a subtree silently.
   */
  E_MAPPING_CONFLICT: 'E_MAPPING_CONFLICT',
  /** A table operation needs to move a table but its implementation cannot (MayNotMove). */
  E_TABLE_IMMOVABLE: 'E_TABLE_IMMOVABLE',
  /** A snapshot image, root list or reference mapping is not well formed. */
  E_BAD_SNAPSHOT: 'E_BAD_SNAPSHOT',
} as const;

/** One of the codes of {@link PagingErrorCode}. */
export type PagingErrorCode = (typeof PagingErrorCode)[keyof typeof PagingErrorCode];

/** Throws a `VmkitError` with a paging code (internal helper; exported for the package's own modules). */
export function pagingFail(
  code: PagingErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new VmkitError(code, message, details);
}
