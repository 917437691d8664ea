import { EXACT_LIMIT } from './constants.js';
import { describeValue } from './describe.js';
import { fail } from './errors.js';
import type { VirtAddr } from './types.js';

/** True when `n` is a positive integer power of two that a Number holds exactly (1 .. 2^52). Never throws. */
export function isPowerOfTwo(n: number): boolean {
  return (
    Number.isInteger(n) &&
    n > 0 &&
    n <= 2 ** 52 &&
    (n < 2 ** 31 ? (n & (n - 1)) === 0 : Number.isInteger(Math.log2(n)))
  );
}

/** Throws `E_INVALID` unless `align` is a power of two (1 .. 2^52) held in a Number. */
export function checkAlign(align: number, what = 'alignment'): void {
  if (!isPowerOfTwo(align)) {
    fail('E_INVALID', `${what} ${describeValue(align)} is not a power of two in [1, 2^52]`, { align });
  }
}

/**
 * Throws unless `value` is an integer Number in `[0, 2^53)`; `what` names it in the message.
 *
 * @throws VmkitError `E_INVALID` for a non-Number, NaN, ±Infinity or a non-integer, `E_RANGE` for a
 *   negative value, `E_OVERFLOW` at or past 2^53
 */
export function checkUint(value: unknown, what = 'value'): asserts value is number {
  if (typeof value !== 'number')
    fail('E_INVALID', `${what} ${describeValue(value)} is not a number`, { value });
  if (!Number.isInteger(value))
    fail('E_INVALID', `${what} ${describeValue(value)} is not an integer`, { value });
  if (value < 0) fail('E_RANGE', `${what} ${describeValue(value)} is negative`, { value });
  if (value >= EXACT_LIMIT)
    fail('E_OVERFLOW', `${what} ${describeValue(value)} is not below 2^53`, { value });
}

/**
 * Rounds `value` down to a multiple of `align`.
 *
 * **Hot path, unchecked**: `value` must be an integer in `[0, 2^53)` and `align` a power of two; anything
 * else gives a meaningless result. Use {@link checkedAlignDown} for values from outside.
 *
 * @param value a non-negative integer below 2^53 (an address, a page number or a size; the brand is kept)
 * @param align a power of two in bytes (or in whatever unit `value` is in)
 * @returns the largest multiple of `align` that is ≤ `value` (for a VirtAddr, always in the same half
 *   when `align ≤ 2^47`)
 */
export function alignDown<T extends number>(value: T, align: number): T {
  // `&` keeps the low 32 bits of an integer below 2^53 (ToInt32), which is exact for masks below 2^31;
  // Number `%` would compile to an fmod call, ~10x slower.
  return (align <= 0x8000_0000 ? value - (value & (align - 1)) : Math.floor(value / align) * align) as T;
}

/**
 * {@link alignDown} with its arguments checked.
 *
 * @throws VmkitError as {@link checkUint} for `value`, `E_INVALID` unless `align` is a power of two
 */
export function checkedAlignDown<T extends number>(value: T, align: number): T {
  checkUint(value, 'value');
  checkAlign(align);
  return alignDown(value, align);
}

/**
 * The parameter type of {@link alignUp}: any Number type but a `VirtAddr`, for which `alignUp` cannot see
 * the canonical hole (use `virtAlignUp`).
 */
export type NotVirtAddr<T extends number> = [T] extends [VirtAddr]
  ? T & { readonly 'alignUp cannot see the canonical hole: use virtAlignUp for a VirtAddr': never }
  : T;

/**
 * Rounds `value` up to a multiple of `align` (generic: physical addresses, sizes, page numbers).
 *
 * Not for a `VirtAddr`: rounding `0x7ffffffff001` up to 4 KiB would step into the canonical hole and
 * `0xfffffffffffff001` past the top; TypeScript refuses a `VirtAddr` argument here and `virtAlignUp`
 * does it checked. (At run time a VirtAddr is a plain Number, so a JavaScript caller gets the plain
 * numeric result, e.g. `2^47`.)
 *
 * @param value an integer in `[0, 2^53)`
 * @param align a power of two in `[1, 2^52]`
 * @returns the smallest multiple of `align` that is ≥ `value`
 * @throws VmkitError `E_INVALID`/`E_RANGE`/`E_OVERFLOW` for a `value` that is not an integer in
 *   `[0, 2^53)`, `E_INVALID` unless `align` is a power of two, `E_OVERFLOW` if the result would reach 2^53
 */
export function alignUp<T extends number>(value: NotVirtAddr<T>, align: number): T {
  checkUint(value, 'value');
  checkAlign(align);
  const v = value as number;
  const down = alignDown(v, align);
  if (down === v) return v as T;
  const r = down + align;
  if (r >= EXACT_LIMIT) {
    fail('E_OVERFLOW', `aligning ${describeValue(v)} up to ${describeValue(align)} passes 2^53`, {
      value,
      align,
    });
  }
  return r as T;
}

/**
 * True when `value` is a multiple of `align` (a power of two). **Hot path, unchecked**: `value` must be an
 * integer below 2^53 (NaN is not detected); {@link checkAligned} checks. Never throws.
 */
export function isAligned(value: number, align: number): boolean {
  return align <= 0x8000_0000 ? (value & (align - 1)) === 0 : value % align === 0;
}

/**
 * Throws `E_UNALIGNED` unless `value` is a multiple of `align`; `what` names the value in the message.
 *
 * @param value a safe integer (negative offsets allowed)
 * @throws VmkitError `E_INVALID` for a `value` that is not an integer Number, `E_OVERFLOW` past 2^53 in
 *   magnitude, `E_INVALID` unless `align` is a power of two, `E_UNALIGNED` for a misaligned value
 */
export function checkAligned(value: number, align: number, what = 'value'): void {
  checkSafeInteger(value, what);
  checkAlign(align);
  if (!isAligned(value, align)) {
    fail('E_UNALIGNED', `${what} ${formatHex(value)} is not aligned to ${formatHex(align)}`, {
      value,
      align,
    });
  }
}

function checkSafeInteger(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail('E_INVALID', `${what} ${describeValue(value)} is not an integer Number`, { value });
  }
  if (!Number.isSafeInteger(value)) {
    fail('E_OVERFLOW', `${what} ${describeValue(value)} is not below 2^53 in magnitude`, { value });
  }
}

/**
 * Adds two integers, checked: throws `E_OVERFLOW` if the sum reaches 2^53 (beyond which Numbers are no
 * longer exact) and `E_RANGE` if it is negative.
 *
 * @param a a safe integer
 * @param b a safe integer (may be negative)
 * @throws VmkitError `E_INVALID` if either is not an integer Number (NaN included), `E_OVERFLOW` if either
 *   or the sum is not below 2^53, `E_RANGE` for a negative sum
 */
export function checkedAdd(a: number, b: number): number {
  checkSafeInteger(a, 'operand');
  checkSafeInteger(b, 'operand');
  const r = a + b;
  if (r >= EXACT_LIMIT) {
    fail('E_OVERFLOW', `${describeValue(a)} + ${describeValue(b)} is not below 2^53`, { a, b });
  }
  if (r < 0) fail('E_RANGE', `${describeValue(a)} + ${describeValue(b)} is negative`, { a, b });
  return r;
}

/**
 * Formats a non-negative integer Number as `0x…` hex (lower case, no padding). Meant for messages, it
 * never throws: anything else is shown as the caller passed it (`NaN`, `-1`, `1.5`, `"16"`), never as
 * `0xNaN` or `0x1.8`. For virtual addresses use `formatVirtAddr` (canonical text).
 */
export function formatHex(n: number): string {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? `0x${n.toString(16)}` : describeValue(n);
}
