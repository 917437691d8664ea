/**
 * The virtual-range rule of the toolkit, decided in one place: a virtual address is an integer in
 * `[0, 2^48)` (the low 48 bits of a canonical address), and a virtual range `[start, start + size)`
 * lies inside one half of the space: `[0, 2^47)` (user, `0x0..0x00007fffffffffff`) or `[2^47, 2^48)`
 * (kernel, `0xffff800000000000..0xffffffffffffffff`). It never crosses the canonical hole and never
 * passes the top.
 *
 * @module
 */
import { EXACT_LIMIT, HIGHER_HALF_BITS, VIRT_SPACE_END } from './constants.js';
import { canonicalEndHex, canonicalHex, describeValue, describeVirtAddr } from './describe.js';
import { type AddrErrorCode, fail } from './errors.js';
import type { VirtAddr } from './types.js';

/** The rules of {@link virtRangeFault}, in the order they are checked (`Ok`: none broken). @internal */
export const VirtRule = {
  Ok: 0,
  StartType: 1,
  StartInteger: 2,
  StartRange: 3,
  SizeType: 4,
  SizeInteger: 5,
  SizeNegative: 6,
  SizeExact: 7,
  Hole: 8,
  Top: 9,
} as const;
/** One of {@link VirtRule}. @internal */
export type VirtRule = (typeof VirtRule)[keyof typeof VirtRule];

/**
 * The first rule `[start, start + size)` breaks, or `VirtRule.Ok`. The single decision behind
 * {@link checkVirtRange}, {@link isVirtRange}, `virtEnd`, `virtAdd`, `virtAlignUp` and `AddrRange.virt*`.
 * @internal
 */
export function virtRangeFault(start: unknown, size: unknown): VirtRule {
  if (typeof start !== 'number') return VirtRule.StartType;
  if (!Number.isInteger(start)) return VirtRule.StartInteger;
  if (start < 0 || start >= VIRT_SPACE_END) return VirtRule.StartRange;
  if (typeof size !== 'number') return VirtRule.SizeType;
  if (!Number.isInteger(size)) return VirtRule.SizeInteger;
  if (size < 0) return VirtRule.SizeNegative;
  if (size >= EXACT_LIMIT) return VirtRule.SizeExact;
  const end = start + size;
  if (start < HIGHER_HALF_BITS && end > HIGHER_HALF_BITS) return VirtRule.Hole;
  if (end > VIRT_SPACE_END) return VirtRule.Top;
  return VirtRule.Ok;
}

const CODE: readonly AddrErrorCode[] = [
  'E_INVALID', // unused (Ok)
  'E_INVALID',
  'E_INVALID',
  'E_RANGE',
  'E_INVALID',
  'E_INVALID',
  'E_RANGE',
  'E_OVERFLOW',
  'E_NONCANONICAL',
  'E_OVERFLOW',
];

/** The error code of a broken rule. @internal */
export function virtRuleCode(rule: VirtRule): AddrErrorCode {
  return CODE[rule] ?? 'E_INVALID';
}

const HALVES = 'one half: [0x0, 0x800000000000) or [0xffff800000000000, 0x10000000000000000)';

/** Why a value is not a VirtAddr (for rules StartType..StartRange). @internal */
export function notVirtAddrReason(rule: VirtRule): string {
  if (rule === VirtRule.StartType)
    return 'is not a number (a VirtAddr is a Number: build one with virtAddr())';
  if (rule === VirtRule.StartInteger) return 'is not an integer';
  return 'is outside [0, 2^48) (a VirtAddr holds the low 48 bits of a canonical address: build one with virtAddr())';
}

/**
 * Checks a virtual range `[start, start + size)` and throws a typed error naming the values as passed
 * and the rule broken. An empty range (`size` 0) is fine anywhere a start is.
 *
 * @param start a `VirtAddr`: an integer in `[0, 2^48)` (higher-half addresses are held as `2^47..2^48`)
 * @param size bytes, an integer in `[0, 2^53)`; the end `start + size` may be exactly `2^47` (end of the
 *   lower half) or `2^48` (end of the space)
 * @param what names the range in the message (default `"range"`), e.g. `"area"`
 * @throws VmkitError `E_INVALID` for a start or size that is not a Number, NaN, ±Infinity or a
 *   non-integer; `E_RANGE` for a negative size or a start outside `[0, 2^48)`; `E_OVERFLOW` for a size
 *   at or past 2^53 or a range past the top of the space (`2^48`, i.e. `0xffffffffffffffff`);
 *   `E_NONCANONICAL` when the range crosses the canonical hole at 2^47
 */
export function checkVirtRange(start: unknown, size: unknown, what = 'range'): void {
  const rule = virtRangeFault(start, size);
  if (rule !== VirtRule.Ok) failVirtRange(rule, start, size, what);
}

/** Throws the error of `rule` for `[start, start + size)`. @internal */
export function failVirtRange(rule: VirtRule, start: unknown, size: unknown, what: string): never {
  const code = virtRuleCode(rule);
  const details = { start, size };
  switch (rule) {
    case VirtRule.StartType:
    case VirtRule.StartInteger:
    case VirtRule.StartRange:
      return fail(code, `${what} start ${describeValue(start)} ${notVirtAddrReason(rule)}`, details);
    case VirtRule.SizeType:
      return fail(code, `${what} size ${describeValue(size)} is not a number`, details);
    case VirtRule.SizeInteger:
      return fail(code, `${what} size ${describeValue(size)} is not an integer`, details);
    case VirtRule.SizeNegative:
      return fail(code, `${what} size ${describeValue(size)} is negative`, details);
    case VirtRule.SizeExact:
      return fail(code, `${what} size ${describeValue(size)} is not below 2^53`, details);
    default: {
      const s = start as number;
      const z = size as number;
      const text = `${what} [${canonicalHex(s)}, +${describeValue(z)})`;
      if (rule === VirtRule.Hole) {
        return fail(
          code,
          `${text} crosses the canonical hole at 0x800000000000: a virtual range must lie in ${HALVES}`,
          details,
        );
      }
      return fail(code, `${text} passes the top of the address space (0xffffffffffffffff)`, details);
    }
  }
}

/**
 * True when {@link checkVirtRange} would accept `[start, start + size)`. Never throws.
 */
export function isVirtRange(start: unknown, size: unknown): boolean {
  return virtRangeFault(start, size) === VirtRule.Ok;
}

/**
 * True when `value` is a valid `VirtAddr`: an integer Number in `[0, 2^48)`. Never throws. (Any such
 * Number is the low 48 bits of exactly one canonical address.)
 */
export function isVirtAddr(value: unknown): value is VirtAddr {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < VIRT_SPACE_END;
}

/**
 * Throws unless `value` is a valid `VirtAddr` (an integer Number in `[0, 2^48)`); `what` names it.
 *
 * @throws VmkitError `E_INVALID` for a non-Number, NaN or a non-integer, `E_RANGE` outside `[0, 2^48)`
 */
export function checkVirtAddr(value: unknown, what = 'virtual address'): asserts value is VirtAddr {
  const rule = virtRangeFault(value, 0);
  if (rule !== VirtRule.Ok)
    fail(virtRuleCode(rule), `${what} ${describeValue(value)} ${notVirtAddrReason(rule)}`, { value });
}

/**
 * The signed distance `a - b` in bytes between two virtual addresses of the same half. Use it instead of
 * `a - b` on raw VirtAddrs: across the halves that subtraction silently gives the difference of the
 * 48-bit representations, not of the canonical addresses (which is at least 2^64 - 2^48 and not a
 * byte count any range can hold).
 *
 * @returns `a - b`: positive when `a` is above `b`, negative below, `0` when equal; `|a - b| < 2^47`
 * @throws VmkitError `E_INVALID`/`E_RANGE` unless both are VirtAddrs (integers in `[0, 2^48)`),
 *   `E_NONCANONICAL` when one is in the lower half and the other in the higher half
 */
export function virtDistance(a: VirtAddr, b: VirtAddr): number {
  checkVirtAddr(a, 'virtDistance: first address');
  checkVirtAddr(b, 'virtDistance: second address');
  if (a < HIGHER_HALF_BITS !== b < HIGHER_HALF_BITS) {
    fail(
      'E_NONCANONICAL',
      `${describeVirtAddr(a)} and ${describeVirtAddr(b)} are in different halves: the distance between them spans the canonical hole`,
      { a, b },
    );
  }
  return a - b;
}

/** The canonical text of the range `[start, start + size)` (no check). @internal */
export function rangeHex(start: number, end: number): string {
  return `[${canonicalHex(start)}, ${canonicalEndHex(start, end)})`;
}
