import { EXACT_LIMIT } from './constants.js';
import { fail } from './errors.js';

/** True when `n` is a positive integer power of two that a Number holds exactly (1 .. 2^52). */
export function isPowerOfTwo(n: number): boolean {
  return (
    Number.isInteger(n) &&
    n > 0 &&
    n <= 2 ** 52 &&
    (n < 2 ** 31 ? (n & (n - 1)) === 0 : Number.isInteger(Math.log2(n)))
  );
}

/** Throws `E_INVALID` unless `align` is a power of two (1 .. 2^52). */
export function checkAlign(align: number): void {
  if (!isPowerOfTwo(align))
    fail('E_INVALID', `alignment ${align} is not a power of two in [1, 2^52]`, { align });
}

/** Throws unless `value` is an integer in `[0, 2^53)`. */
export function checkUint(value: number, what = 'value'): void {
  if (!Number.isInteger(value)) fail('E_INVALID', `${what} ${value} is not an integer`, { value });
  if (value < 0) fail('E_RANGE', `${what} ${value} is negative`, { value });
  if (value >= EXACT_LIMIT) fail('E_OVERFLOW', `${what} ${value} is not below 2^53`, { value });
}

/**
 * Rounds `value` down to a multiple of `align`.
 *
 * @param value a non-negative integer below 2^53 (an address, a page number or a size; the brand is kept)
 * @param align a power of two in bytes (or in whatever unit `value` is in)
 * @returns the largest multiple of `align` that is ≤ `value`
 * @throws VmkitError `E_INVALID` if `align` is not a power of two. `value` is not checked (hot path):
 *   use {@link checkUint} first when it comes from outside.
 */
export function alignDown<T extends number>(value: T, align: number): T {
  // `&` keeps the low 32 bits of an integer below 2^53 (ToInt32), which is exact for masks below 2^31;
  // Number `%` would compile to an fmod call, ~10x slower.
  return (align <= 0x8000_0000 ? value - (value & (align - 1)) : Math.floor(value / align) * align) as T;
}

/**
 * Rounds `value` up to a multiple of `align`.
 *
 * For a `VirtAddr` use `virtAlignUp`, which also refuses to step into the non-canonical hole.
 *
 * @param value a non-negative integer below 2^53
 * @param align a power of two
 * @returns the smallest multiple of `align` that is ≥ `value`
 * @throws VmkitError `E_OVERFLOW` if the result would reach 2^53
 */
export function alignUp<T extends number>(value: T, align: number): T {
  const down = alignDown(value, align);
  if (down === value) return value;
  const r = down + align;
  if (r >= EXACT_LIMIT) fail('E_OVERFLOW', `aligning ${value} up to ${align} passes 2^53`, { value, align });
  return r as T;
}

/** True when `value` (an integer below 2^53) is a multiple of `align` (a power of two). Never throws. */
export function isAligned(value: number, align: number): boolean {
  return align <= 0x8000_0000 ? (value & (align - 1)) === 0 : value % align === 0;
}

/** Throws `E_UNALIGNED` unless `value` is a multiple of `align`; `what` names the value in the message. */
export function checkAligned(value: number, align: number, what = 'value'): void {
  if (!isAligned(value, align)) {
    fail('E_UNALIGNED', `${what} ${formatHex(value)} is not aligned to ${formatHex(align)}`, {
      value,
      align,
    });
  }
}

/**
 * Adds two non-negative integers, throwing `E_OVERFLOW` if the sum reaches 2^53 (beyond which Numbers
 * are no longer exact) and `E_RANGE` if it is negative.
 */
export function checkedAdd(a: number, b: number): number {
  const r = a + b;
  if (r >= EXACT_LIMIT) fail('E_OVERFLOW', `${a} + ${b} is not below 2^53`, { a, b });
  if (r < 0) fail('E_RANGE', `${a} + ${b} is negative`, { a, b });
  return r;
}

/** Formats a non-negative integer Number as `0x…` hex (lower case, no padding). */
export function formatHex(n: number): string {
  return n >= 0 ? `0x${n.toString(16)}` : `-0x${(-n).toString(16)}`;
}
