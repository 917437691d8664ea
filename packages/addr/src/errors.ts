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
  /** A virtual address is not canonical (bits 63..48 are not copies of bit 47), or a virtual range crosses the hole. */
  E_NONCANONICAL: 'E_NONCANONICAL',
  /** A value or range lies outside the set an operation accepts (negative, past the top, end < start). */
  E_RANGE: 'E_RANGE',
  /** Arithmetic would leave the address space or pass 2^53 (the largest exact integer of a Number). */
  E_OVERFLOW: 'E_OVERFLOW',
  /** A value is not of the required kind (wrong type, NaN, non-integer, not a power of two, unparsable text). */
  E_INVALID: 'E_INVALID',
} as const;

/** One of the codes of {@link AddrErrorCode}. */
export type AddrErrorCode = (typeof AddrErrorCode)[keyof typeof AddrErrorCode];

/**
 * The registered brand every {@link VmkitError} carries (on its prototype). `Symbol.for` gives the same
 * symbol to every copy of `@vmkit/addr` loaded in one realm, so errors thrown by another copy (two
 * independently released packages each with their own `@vmkit/addr`) are still recognised.
 */
export const VMKIT_ERROR_BRAND: unique symbol = Symbol.for('@vmkit/addr.VmkitError') as never;

function hasBrand(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [VMKIT_ERROR_BRAND]?: unknown })[VMKIT_ERROR_BRAND] === true
  );
}

const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];

/**
 * The base class of every error thrown by vmkit.
 *
 * `code` is a stable identifier (for example `E_UNALIGNED`); `message` (`"CODE: text"`) names the
 * offending value as the caller passed it and the rule it broke; `details` carries the values involved
 * for programmatic use.
 *
 * `err instanceof VmkitError` and {@link isVmkitError} both recognise errors created by another copy of
 * this package (they test a registered brand, not the prototype chain). `instanceof` a subclass keeps
 * its ordinary meaning.
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
Object.defineProperty(VmkitError.prototype, VMKIT_ERROR_BRAND, { value: true });

/**
 * `x instanceof VmkitError` is true for any branded vmkit error, from this copy of `@vmkit/addr` or
 * another; for a subclass (`x instanceof MySubclass`, which inherits this static method) the ordinary
 * prototype test applies. `this` is the class on the right of `instanceof`.
 */
function vmkitHasInstance(this: unknown, value: unknown): boolean {
  if (this === VmkitError) return hasBrand(value);
  return ordinaryHasInstance.call(this, value);
}
Object.defineProperty(VmkitError, Symbol.hasInstance, { value: vmkitHasInstance });

/**
 * True when `err` is a vmkit error (from any copy of `@vmkit/addr`), optionally with the given code.
 *
 * @example `if (isVmkitError(e, 'E_UNALIGNED')) …`
 */
export function isVmkitError<C extends string>(err: unknown, code?: C): err is VmkitError<C> {
  return hasBrand(err) && (code === undefined || (err as { code?: unknown }).code === code);
}

/** Throws a {@link VmkitError} with an address-level code. Internal helper kept public for packages above. */
export function fail(code: AddrErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new VmkitError(code, message, details);
}
