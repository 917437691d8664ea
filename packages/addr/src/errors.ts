/**
 * The toolkit's one error base class and the address-level error codes.
 *
 * Every vmkit package throws {@link VmkitError} (or a subclass of it) with a stable string `code`.
 * Codes never change meaning once published; packages add their own codes but reuse these where the
 * rule broken is the same.
 *
 * @module
 */

/** Error codes defined by `@vmkit/addr`, reused by every package above it. */
export const AddrErrorCode = {
  /** A value is not a multiple of the alignment an operation needs. */
  E_UNALIGNED: 'E_UNALIGNED',
  /** A virtual address is not canonical (bits 63..48 are not copies of bit 47). */
  E_NONCANONICAL: 'E_NONCANONICAL',
  /** A value or range lies outside the set an operation accepts (negative, past the top, end < start). */
  E_RANGE: 'E_RANGE',
  /** Arithmetic would leave the address space or pass 2^53 (the largest exact integer of a Number). */
  E_OVERFLOW: 'E_OVERFLOW',
  /** A value is not of the required kind (NaN, non-integer, not a power of two, unparsable text). */
  E_INVALID: 'E_INVALID',
} as const;

/** One of the codes of {@link AddrErrorCode}. */
export type AddrErrorCode = (typeof AddrErrorCode)[keyof typeof AddrErrorCode];

/**
 * The base class of every error thrown by vmkit.
 *
 * `code` is a stable identifier (for example `E_UNALIGNED`); `message` names the offending value and
 * the rule it broke; `details` carries the values involved for programmatic use.
 */
export class VmkitError<C extends string = string> extends Error {
  /** Stable, documented error code. */
  readonly code: C;
  /** The values involved, for programs (never needed to understand the message). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, details: Record<string, unknown> = {}) {
    super(`${code}: ${message}`);
    this.name = 'VmkitError';
    this.code = code;
    this.details = details;
  }
}

/**
 * True when `err` is a {@link VmkitError}, optionally with the given code.
 *
 * @example `if (isVmkitError(e, 'E_UNALIGNED')) …`
 */
export function isVmkitError<C extends string>(err: unknown, code?: C): err is VmkitError<C> {
  return err instanceof VmkitError && (code === undefined || err.code === code);
}

/** Throws a {@link VmkitError} with an address-level code. Internal helper kept public for packages above. */
export function fail(code: AddrErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new VmkitError(code, message, details);
}
