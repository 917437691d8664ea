/**
 * Text for error messages: values shown as the caller passed them. Never throws.
 *
 * @module
 */
import { HIGHER_HALF_BITS, VIRT_SPACE_END } from './constants.js';

const MAX_TEXT = 60;

function clip(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s;
}

/**
 * Describes any value for an error message, as the caller passed it: an integer Number in `(9, 2^64)` as
 * `0x…` hex (0..9 in decimal), any other Number as JavaScript prints it (`NaN`, `-1`, `1.5`, `Infinity`, `-0`), a string
 * quoted (`"16"`), a BigInt with its `n` (`0xffff800000000000n`), `null`, `undefined`, an array or a
 * plain object as short JSON, an object with its own `toString` (an `AddrRange`) through it. Long text
 * is clipped. Never throws.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'number':
      if (Object.is(value, -0)) return '-0';
      // 0..9 read the same in both bases; larger integers below 2^64 (addresses, sizes) in exact hex
      return Number.isInteger(value) && value > 9 && value < 2 ** 64
        ? `0x${value.toString(16)}`
        : String(value);
    case 'string':
      return clip(JSON.stringify(value));
    case 'bigint':
      return value < 0n ? `-0x${(-value).toString(16)}n` : `0x${value.toString(16)}n`;
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return String(value);
    case 'symbol':
      return clip(value.toString());
    case 'function':
      return `function ${value.name || '(anonymous)'}`;
    default:
      return describeObject(value as object | null);
  }
}

function describeObject(value: object | null): string {
  if (value === null) return 'null';
  try {
    const proto: unknown = Object.getPrototypeOf(value);
    const ownToString =
      typeof (value as { toString?: unknown }).toString === 'function' &&
      (value as { toString: unknown }).toString !== Object.prototype.toString &&
      (value as { toString: unknown }).toString !== Array.prototype.toString;
    if (ownToString && !(value instanceof Date)) return clip(String(value));
    if (Array.isArray(value) || proto === Object.prototype || proto === null) {
      const json = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
      if (json !== undefined) return clip(json);
    }
  } catch {
    // a getter or a cycle threw: fall through to the tag
  }
  return Object.prototype.toString.call(value);
}

/** The canonical text of a valid VirtAddr number (no check). */
export function canonicalHex(va: number, pad = false): string {
  if (va >= HIGHER_HALF_BITS) return `0xffff${va.toString(16).padStart(12, '0')}`;
  return `0x${pad ? va.toString(16).padStart(16, '0') : va.toString(16)}`;
}

/**
 * Describes a value meant as a virtual address, for an error message: a valid `VirtAddr` (an integer in
 * `[0, 2^48)`) prints canonically (`0xffff800000000000`), anything else as {@link describeValue} shows
 * it. Never throws.
 */
export function describeVirtAddr(value: unknown): string {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < VIRT_SPACE_END
    ? canonicalHex(value)
    : describeValue(value);
}

/**
 * The canonical text of the end of a virtual range starting at `start` (the end is exclusive and may be
 * the end of a half): `0x800000000000` ends the lower half, `0x10000000000000000` (2^64) ends the space.
 */
export function canonicalEndHex(start: number, end: number): string {
  if (end === VIRT_SPACE_END) return '0x10000000000000000';
  if (end === HIGHER_HALF_BITS && start < HIGHER_HALF_BITS) return '0x800000000000';
  return canonicalHex(end);
}
