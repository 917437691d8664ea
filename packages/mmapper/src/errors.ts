import { VmkitError } from '@vmkit/addr';

/**
 * The error codes of `@vmkit/mmapper`. The first five are `@vmkit/addr`'s codes, reused where the rule
 * broken is the same. Codes are stable: they never change meaning once published.
 */
export const MmapperErrorCode = {
  /** Not a Number, NaN, not an integer, an unknown strategy/annotation/state, a malformed space map. */
  E_INVALID: 'E_INVALID',
  /** Negative, an address outside `[0, 2^48)` or outside the mapper's mappable range, a start above its end. */
  E_RANGE: 'E_RANGE',
  /** An address that is not a multiple of 4 KiB. */
  E_UNALIGNED: 'E_UNALIGNED',
  /** A range that crosses the canonical hole at `0x800000000000`. */
  E_NONCANONICAL: 'E_NONCANONICAL',
  /** A size at or past 2^53, or a range past the top of the address space. */
  E_OVERFLOW: 'E_OVERFLOW',
  /**
   * A transition MMTk refuses with a panic: protecting an unmapped or quarantined chunk, quarantining a
   * protected one. Checked for the whole range before any OS call: nothing changed.
   */
  E_BAD_TRANSITION: 'E_BAD_TRANSITION',
  /**
   * The OS interface reported an error (`details.errno`, `details.call`, `details.start`, `details.bytes`).
   * The chunks before the failing call keep their new state; the failing chunks keep their old one.
   */
  E_OS: 'E_OS',
  /** The OS interface called back into a state-changing method of the same mapper (would deadlock). */
  E_REENTRANT: 'E_REENTRANT',
  /** `Mmapper.fromShared` was given a buffer that does not hold a mapper's shared state. */
  E_BAD_SHARED_STATE: 'E_BAD_SHARED_STATE',
} as const;

/** One of the codes of {@link MmapperErrorCode}. */
export type MmapperErrorCode = (typeof MmapperErrorCode)[keyof typeof MmapperErrorCode];

/** The error thrown by `@vmkit/mmapper`: a `VmkitError` with one of {@link MmapperErrorCode}. */
export class MmapperError extends VmkitError<MmapperErrorCode> {
  constructor(
    code: MmapperErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(code, message, details);
    this.name = 'VmkitError';
    if (cause !== undefined) this.cause = cause;
  }
}

/** True when `err` is a {@link MmapperError}, optionally with the given code. */
export function isMmapperError(err: unknown, code?: MmapperErrorCode): err is MmapperError {
  return err instanceof MmapperError && (code === undefined || err.code === code);
}

/** @internal Throws a {@link MmapperError}. */
export function mmapperFail(
  code: MmapperErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new MmapperError(code, message, details, cause);
}

/** @internal A value as the caller passed it, for messages (the toolkit's one rule, from `@vmkit/addr`). */
export { describeValue } from '@vmkit/addr';
