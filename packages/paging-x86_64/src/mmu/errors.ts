/**
 * Error codes of the MMU, the TLB and the page mapper (in addition to `@vmkit/addr`'s address codes and
 * `PagingErrorCode.E_NOMEM`, which the mapper passes on from its frame allocator unchanged).
 *
 * @module
 */
import { VmkitError } from '@vmkit/addr';

/** The error codes the MMU modules add. Codes never change meaning. */
export const MmuErrorCode = {
  /** `PageMapper.map`/`mapRange`: some part of the page is already mapped (a leaf or a non-empty table). */
  E_ALREADY_MAPPED: 'E_ALREADY_MAPPED',
  /** A general-protection condition of a control-register write or INVPCID (the CPU would raise #GP(0)). */
  E_GP: 'E_GP',
  /** A mode this model does not implement (32-bit or PAE paging, 5-level paging, PKS). */
  E_UNSUPPORTED: 'E_UNSUPPORTED',
} as const;

/** One of the codes of {@link MmuErrorCode}. */
export type MmuErrorCode = (typeof MmuErrorCode)[keyof typeof MmuErrorCode];

/** Throws a `VmkitError` with an MMU code. */
export function mmuFail(code: MmuErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new VmkitError(code, message, details);
}
