/**
 * The kcore error enum (seed 001's `kcore::error::Error`) as the toolkit's error type.
 *
 * Every error thrown by this package is a {@link KcoreError}: a `VmkitError` whose `kind` is the seed's
 * variant name (`BadRequest`, `Conflict`, …) and whose `code` is a stable string (`E_BAD_REQUEST`, …).
 * The message starts with the seed's own text (`mmap invalid va range`, `mmap va misaligned`,
 * `mmap segment overlap`, `read page from chan failed`, `vm read`, `vm write`, …) followed by the
 * offending value and the rule it broke.
 *
 * @module
 */
import { VmkitError } from '@vmkit/addr';

/** Stable error codes, one per variant of the seed's `Error` enum. Codes never change meaning. */
export const KcoreErrorCode = {
  /** `OutOfMemory`: no frame (or no page-table frame) could be allocated. */
  E_OUT_OF_MEMORY: 'E_OUT_OF_MEMORY',
  /** `Forbidden`: the access is not allowed (a gap in `read`/`write`, a protection fault). */
  E_FORBIDDEN: 'E_FORBIDDEN',
  /** `NotFound`: something asked for does not exist (e.g. `protect` over an unmapped page). */
  E_NOT_FOUND: 'E_NOT_FOUND',
  /** `BadRequest`: the caller's arguments break a documented rule. */
  E_BAD_REQUEST: 'E_BAD_REQUEST',
  /** `Timeout`: an operation took too long. */
  E_TIMEOUT: 'E_TIMEOUT',
  /** `Conflict`: the request collides with existing state (e.g. overlapping segments). */
  E_CONFLICT: 'E_CONFLICT',
  /** `Gone`: the target is no longer available (a freed address space, a closed channel). */
  E_GONE: 'E_GONE',
  /** `InternalError`: a device failed (a channel read error or short read). */
  E_INTERNAL: 'E_INTERNAL',
  /** `InsufficientStorage`: a device is full. */
  E_INSUFFICIENT_STORAGE: 'E_INSUFFICIENT_STORAGE',
  /** `NotImplemented`: the feature is not implemented. */
  E_NOT_IMPLEMENTED: 'E_NOT_IMPLEMENTED',
  /** `SegmentFault`: a page fault at an address no segment covers. */
  E_SEGMENT_FAULT: 'E_SEGMENT_FAULT',
} as const;

/** One of {@link KcoreErrorCode}. */
export type KcoreErrorCode = (typeof KcoreErrorCode)[keyof typeof KcoreErrorCode];

/** The seed's variant names and their codes. */
export const KcoreErrorKinds = {
  OutOfMemory: KcoreErrorCode.E_OUT_OF_MEMORY,
  Forbidden: KcoreErrorCode.E_FORBIDDEN,
  NotFound: KcoreErrorCode.E_NOT_FOUND,
  BadRequest: KcoreErrorCode.E_BAD_REQUEST,
  Timeout: KcoreErrorCode.E_TIMEOUT,
  Conflict: KcoreErrorCode.E_CONFLICT,
  Gone: KcoreErrorCode.E_GONE,
  InternalError: KcoreErrorCode.E_INTERNAL,
  InsufficientStorage: KcoreErrorCode.E_INSUFFICIENT_STORAGE,
  NotImplemented: KcoreErrorCode.E_NOT_IMPLEMENTED,
  SegmentFault: KcoreErrorCode.E_SEGMENT_FAULT,
} as const;

/** A seed variant name: `'OutOfMemory' | 'Forbidden' | … | 'SegmentFault'`. */
export type KcoreErrorKind = keyof typeof KcoreErrorKinds;

/**
 * The error of `@vmkit/kcore-vmspace`. `kind` is the seed's variant name, `code` its stable code,
 * `seedMessage` the seed's own text (`"mmap va misaligned"`; empty for `SegmentFault`, which has none),
 * `cause` the underlying error when one was wrapped (a channel's exception, the allocator's `E_NOMEM`).
 */
export class KcoreError extends VmkitError<KcoreErrorCode> {
  /** The seed's variant name. */
  readonly kind: KcoreErrorKind;
  /** The seed's message text, without the details this package adds. */
  readonly seedMessage: string;

  constructor(
    kind: KcoreErrorKind,
    seedMessage: string,
    detail: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    if (!Object.hasOwn(KcoreErrorKinds, kind as string))
      throw new KcoreError(
        'BadRequest',
        'kcore error',
        `kind ${describe(kind)} is not one of the seed's kinds`,
      );
    const text = seedMessage === '' ? detail : detail === '' ? seedMessage : `${seedMessage}: ${detail}`;
    super(KcoreErrorKinds[kind], text, { kind, ...details });
    this.name = 'VmkitError';
    this.kind = kind;
    this.seedMessage = seedMessage;
    if (cause !== undefined) this.cause = cause;
  }
}

/** Throws a {@link KcoreError}. */
export function kfail(
  kind: KcoreErrorKind,
  seedMessage: string,
  detail: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new KcoreError(kind, seedMessage, detail, details, cause);
}

/** True when `err` is a {@link KcoreError}, optionally of the given seed variant. */
export function isKcoreError(err: unknown, kind?: KcoreErrorKind): err is KcoreError {
  return err instanceof KcoreError && (kind === undefined || err.kind === kind);
}

/** A value as the caller passed it, for messages: numbers in hex and decimal, others as JSON/String. */
export function describe(v: unknown): string {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0) return v < 4096 ? String(v) : `0x${v.toString(16)}`;
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || v === undefined || typeof v === 'boolean') return String(v);
  if (typeof v === 'function') return `function ${v.name || '(anonymous)'}`;
  if (typeof v === 'symbol') return v.toString();
  if (ArrayBuffer.isView(v))
    return `${v.constructor.name}(${(v as { length?: number }).length ?? v.byteLength})`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) {
    // A class instance: its name, not its (possibly huge) contents.
    return `[${(v as object).constructor?.name ?? 'object'}]`;
  }
  if (Array.isArray(v) && v.length > 16) v = [...v.slice(0, 16), '...'];
  try {
    const j = JSON.stringify(v);
    return j === undefined ? String(v) : j.length > 60 ? `${j.slice(0, 57)}...` : j;
  } catch {
    return Object.prototype.toString.call(v);
  }
}
