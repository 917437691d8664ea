import { VmkitError } from '@vmkit/addr';

/**
 * The error codes of `@vmkit/vmm-manager`. Bad input reuses `@vmkit/addr`'s codes (`E_UNALIGNED`,
 * `E_RANGE`, `E_INVALID`, `E_OVERFLOW`, `E_NONCANONICAL`); the rest are this package's own. Codes are
 * stable: they never change meaning once published.
 */
export const VmmErrorCode = {
  /** An address, size or alignment is not a multiple of what the operation needs (the seed's alignment errors). */
  E_UNALIGNED: 'E_UNALIGNED',
  /** A value is outside the set the operation accepts: negative, past its space, an ASID outside 0..4095, zero length. */
  E_RANGE: 'E_RANGE',
  /** Not of the required kind: not a number, NaN, a non-integer, unknown permission bits, a bad object. */
  E_INVALID: 'E_INVALID',
  /** An integer at or past 2^53, or a range past the top of the 48-bit space. */
  E_OVERFLOW: 'E_OVERFLOW',
  /** A virtual range that crosses the non-canonical hole. */
  E_NONCANONICAL: 'E_NONCANONICAL',
  /** A new map overlaps an existing one (the seed's "overlaps with a preceding / succeeding map"). */
  E_OVERLAP: 'E_OVERLAP',
  /** No memory map holds the faulting address and none can be extended to it. */
  E_NO_MAPPING: 'E_NO_MAPPING',
  /** The manager's ASID has no address space (no root page table): 0, or not allocated. */
  E_NO_PAGE_TABLE: 'E_NO_PAGE_TABLE',
  /** The map's owner could not resolve the faulting page, and the map has no physical area to fall back on. */
  E_OWNER_FAULT: 'E_OWNER_FAULT',
  /** The access is not allowed by the map's permissions (a store to a map without Write, a fetch without Execute, any access to a map without access bits). */
  E_ACCESS: 'E_ACCESS',
  /** A map with neither a physical area nor an owner was faulted on: there is no page to map. */
  E_UNBACKED: 'E_UNBACKED',
  /** Every ASID 1..4095 is in use. */
  E_NO_ASID: 'E_NO_ASID',
  /** A handle used after `dispose()`, or a view used after its callback returned. */
  E_DISPOSED: 'E_DISPOSED',
  /** A change attempted while `withMemmaps` / `memmapsIterWith` lends the maps to a callback. */
  E_BUSY: 'E_BUSY',
} as const;

/** One of the codes of {@link VmmErrorCode}. */
export type VmmErrorCode = (typeof VmmErrorCode)[keyof typeof VmmErrorCode];

/**
 * The error thrown by this package: a {@link VmkitError} with a stable `code`. Where the seed (Scarlet
 * OS) has an error string for the case, `reason` is exactly that string and the message starts with it;
 * the rest of the message names the values as they were passed.
 */
export class VmmError extends VmkitError<VmmErrorCode> {
  /** The seed's error text for this case (e.g. `Address or size is not aligned to PAGE_SIZE`), or a short rule. */
  readonly reason: string;
  /** The rest of the message: the values involved. */
  readonly detail: string;

  constructor(code: VmmErrorCode, reason: string, detail: string, details: Record<string, unknown> = {}) {
    super(code, detail === '' ? reason : `${reason}: ${detail}`, details);
    this.reason = reason;
    this.detail = detail;
  }
}

/** Throws a {@link VmmError}. */
export function vmmFail(
  code: VmmErrorCode,
  reason: string,
  detail = '',
  details: Record<string, unknown> = {},
): never {
  throw new VmmError(code, reason, detail, details);
}

/** True when `err` is a {@link VmmError}, optionally with the given code. */
export function isVmmError(err: unknown, code?: VmmErrorCode): err is VmmError {
  return err instanceof VmmError && (code === undefined || err.code === code);
}

/** The seed's error strings, in one place (tests compare `reason` with these). */
export const SeedMessage = {
  unaligned: 'Address or size is not aligned to PAGE_SIZE',
  pmUnaligned: 'pmarea is not aligned to PAGE_SIZE',
  overlapsPreceding: 'Memory mapping overlaps with a preceding map',
  overlapsSucceeding: 'Memory mapping overlaps with a succeeding map',
  noMapping: 'No memory mapping found for virtual address',
  noExtendable: 'No extendable memory mapping found for virtual address',
  ownerFailed: 'Owner failed to resolve fault',
  noRootPageTable: 'No root page table available',
} as const;

/** Text of a value as the caller passed it: numbers as hex, anything else as JSON or String(). */
export function show(v: unknown): string {
  if (typeof v === 'number') {
    return Number.isInteger(v) && v >= 0 ? `0x${v.toString(16)}` : String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || v === undefined || typeof v === 'boolean') return String(v);
  // An instance of a class is named by its class (its fields may be a megabyte of memory); plain
  // objects and arrays print as JSON, cut short.
  const name =
    typeof v === 'object' ? (v as { constructor?: { name?: unknown } }).constructor?.name : undefined;
  if (typeof name === 'string' && name !== '' && name !== 'Object' && name !== 'Array') return `a ${name}`;
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
