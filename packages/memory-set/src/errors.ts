import { VmkitError } from '@vmkit/addr';

/**
 * The error codes of `@vmkit/memory-set`, one per variant of the crate's `MappingError`.
 *
 * Codes are stable: they never change meaning once published.
 */
export const MappingErrorCode = {
  /** `MappingError::InvalidParam`: a range, size, alignment, page-size cut or area is not acceptable. */
  E_INVALID_PARAM: 'E_INVALID_PARAM',
  /** `MappingError::AlreadyExists`: the range overlaps an existing area and overwriting was not asked for. */
  E_ALREADY_EXISTS: 'E_ALREADY_EXISTS',
  /** `MappingError::BadState`: a backend refused an operation (returned false) or could not be split. */
  E_BAD_STATE: 'E_BAD_STATE',
} as const;

/** One of the codes of {@link MappingErrorCode}. */
export type MappingErrorCode = (typeof MappingErrorCode)[keyof typeof MappingErrorCode];

/** The seed's names of the error variants, mapped to their codes. */
export const MappingError = {
  InvalidParam: MappingErrorCode.E_INVALID_PARAM,
  AlreadyExists: MappingErrorCode.E_ALREADY_EXISTS,
  BadState: MappingErrorCode.E_BAD_STATE,
} as const;

/** The seed's name of a variant: `'InvalidParam' | 'AlreadyExists' | 'BadState'`. */
export type MappingErrorKind = keyof typeof MappingError;

/**
 * The error thrown by {@link MemorySet} and {@link MemoryArea}: a {@link VmkitError} whose `code` is one of
 * {@link MappingErrorCode} and whose `kind` is the seed's variant name (`InvalidParam`, `AlreadyExists`,
 * `BadState`). `cause` holds the backend's own error when a backend threw.
 */
export class MappingFailure extends VmkitError<MappingErrorCode> {
  /** The seed's variant name of this error. */
  readonly kind: MappingErrorKind;

  constructor(
    kind: MappingErrorKind,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(MappingError[kind], message, { kind, ...details });
    this.name = 'MappingFailure';
    this.kind = kind;
    if (cause !== undefined) this.cause = cause;
  }
}

/** Throws a {@link MappingFailure} of the given kind. */
export function mappingFail(
  kind: MappingErrorKind,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new MappingFailure(kind, message, details);
}

/** True when `err` is a {@link MappingFailure}, optionally of the given seed variant. */
export function isMappingError(err: unknown, kind?: MappingErrorKind): err is MappingFailure {
  return err instanceof MappingFailure && (kind === undefined || err.kind === kind);
}
