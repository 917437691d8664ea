import { alignDown, checkAlign } from './align.js';
import { EXACT_LIMIT, HIGHER_HALF_BITS, PAGE_SIZE_4K, VIRT_SPACE_END } from './constants.js';
import { canonicalHex, describeValue } from './describe.js';
import { fail } from './errors.js';
import { parseBigInt } from './parse.js';
import type { VirtAddr, VirtPageNum } from './types.js';
import { checkVirtAddr, failVirtRange, VirtRule, virtRangeFault, virtRuleCode } from './virt-range.js';

const TWO_64 = 1n << 64n;
const LOW48 = (1n << 48n) - 1n;
const SIGN_EXT = 0xffff_0000_0000_0000n;

/**
 * Builds a {@link VirtAddr} from a canonical address.
 *
 * - a Number: an integer in `[0, 2^47)` (the lower half; a higher-half address does not fit a Number
 *   exactly, so pass it as a BigInt or a string);
 * - a BigInt: the 64-bit canonical value, `0n..2^64-1`;
 * - a string: hex (`0xffff_8000_0000_0000`, underscores allowed) or decimal.
 *
 * @throws VmkitError `E_NONCANONICAL` for a non-canonical address (e.g. `0x0000800000000000`),
 *   `E_INVALID` for any other type (`null`, `undefined`, an object), NaN, ±Infinity, a non-integer or
 *   unparsable text, `E_RANGE` for a negative value or one past 64 bits, `E_OVERFLOW` for a Number at or
 *   past 2^53.
 */
export function virtAddr(value: number | bigint | string): VirtAddr {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      fail('E_INVALID', `virtual address ${describeValue(value)} is not an integer`, { value });
    }
    if (value < 0) {
      fail(
        'E_RANGE',
        `virtual address ${describeValue(value)} is negative (use virtAddrFromSigned for a sign-extended value)`,
        { value },
      );
    }
    if (value >= EXACT_LIMIT) {
      fail(
        'E_OVERFLOW',
        `virtual address ${describeValue(value)} is not below 2^53: pass it as a BigInt or a string`,
        { value },
      );
    }
    if (value >= HIGHER_HALF_BITS) {
      fail(
        'E_NONCANONICAL',
        `virtual address ${describeValue(value)} is not canonical (bits 63..48 must copy bit 47; pass a higher-half address as a BigInt or a string)`,
        { value },
      );
    }
    return (value + 0) as VirtAddr; // + 0 turns -0 into 0
  }
  if (typeof value === 'bigint') return virtAddrFromBigInt(value);
  if (typeof value === 'string') return virtAddrFromBigInt(parseBigInt(value, 'virtual address'));
  return fail('E_INVALID', `virtual address ${describeValue(value)} is not a Number, a BigInt or a string`, {
    value,
  });
}

/** Builds a {@link VirtAddr} from its 64-bit canonical value. Same errors as {@link virtAddr}. */
export function virtAddrFromBigInt(value: bigint): VirtAddr {
  if (typeof value !== 'bigint') {
    fail('E_INVALID', `virtual address ${describeValue(value)} is not a BigInt`, { value });
  }
  if (value < 0n || value >= TWO_64) {
    fail('E_RANGE', `virtual address ${describeValue(value)} is not a 64-bit unsigned value`, { value });
  }
  if (!isCanonical(value)) {
    fail(
      'E_NONCANONICAL',
      `virtual address 0x${value.toString(16)} is not canonical (bits 63..48 must copy bit 47)`,
      { value },
    );
  }
  return Number(value & LOW48) as VirtAddr;
}

/**
 * True when a 64-bit value (BigInt, or a Number below 2^53) is a canonical 48-bit virtual address:
 * bits 63..48 all equal bit 47. Returns false (never throws) for anything else, including NaN,
 * negative or non-integer values.
 */
export function isCanonical(value: bigint | number): boolean {
  if (typeof value !== 'bigint') {
    return Number.isInteger(value) && value >= 0 && value < HIGHER_HALF_BITS;
  }
  if (value < 0n || value >= TWO_64) return false;
  const top = value >> 47n;
  return top === 0n || top === 0x1_ffffn;
}

/**
 * Makes a value canonical by keeping bits 47..0 and sign-extending bit 47 (what x86-64 does with a
 * truncated address). Accepts any 64-bit BigInt or a Number in `[0, 2^53)`.
 *
 * @throws VmkitError `E_RANGE` for a negative value or one past 64 bits, `E_INVALID` for a non-integer
 */
export function canonicalize(value: bigint | number): VirtAddr {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) fail('E_INVALID', `${describeValue(value)} is not an integer`, { value });
    if (value < 0 || value >= EXACT_LIMIT) {
      fail('E_RANGE', `${describeValue(value)} is not in [0, 2^53)`, { value });
    }
    return (value % VIRT_SPACE_END) as VirtAddr;
  }
  if (typeof value !== 'bigint') {
    fail('E_INVALID', `${describeValue(value)} is not a Number or a BigInt`, { value });
  }
  if (value < 0n || value >= TWO_64) {
    fail('E_RANGE', `${describeValue(value)} is not a 64-bit unsigned value`, { value });
  }
  return Number(value & LOW48) as VirtAddr;
}

/**
 * Builds a {@link VirtAddr} from its low 48 bits (the representation itself), e.g. from a page number
 * times the page size. Checked: an integer in `[0, 2^48)`.
 *
 * @throws VmkitError `E_INVALID` for a non-Number or a non-integer, `E_RANGE` outside `[0, 2^48)`
 */
export function virtAddrFromBits(bits: number): VirtAddr {
  checkVirtAddr(bits, 'virtual address bits');
  return (bits + 0) as VirtAddr; // + 0 turns -0 into 0
}

/**
 * The 64-bit canonical value of `va`, as a BigInt (edges only: printing, interop).
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` unless `va` is an integer in `[0, 2^48)`
 */
export function virtAddrToBigInt(va: VirtAddr): bigint {
  checkVirtAddr(va);
  const b = BigInt(va);
  return va >= HIGHER_HALF_BITS ? b | SIGN_EXT : b;
}

/**
 * The signed (two's complement) value of `va`: the higher half is negative, `-2^47..-1`. Exact.
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` unless `va` is an integer in `[0, 2^48)`
 */
export function virtAddrToSigned(va: VirtAddr): number {
  checkVirtAddr(va);
  return va >= HIGHER_HALF_BITS ? va - VIRT_SPACE_END : va;
}

/**
 * Builds a {@link VirtAddr} from a signed (two's complement, sign-extended) value in `[-2^47, 2^47)`,
 * as an `i64` holds a canonical address.
 *
 * @throws VmkitError `E_INVALID` for a non-Number or a non-integer, `E_NONCANONICAL` outside `[-2^47, 2^47)`
 */
export function virtAddrFromSigned(value: number): VirtAddr {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail('E_INVALID', `signed address ${describeValue(value)} is not an integer Number`, { value });
  }
  if (value < -HIGHER_HALF_BITS || value >= HIGHER_HALF_BITS) {
    fail('E_NONCANONICAL', `${value} is not a sign-extended 48-bit address in [-2^47, 2^47)`, { value });
  }
  return (value < 0 ? value + VIRT_SPACE_END : value) as VirtAddr;
}

/** True when `va` is in the higher (kernel) half, `0xffff800000000000` and above. Unchecked (hot path). */
export function isHigherHalf(va: VirtAddr): boolean {
  return va >= HIGHER_HALF_BITS;
}

/**
 * Formats `va` as users read addresses: `0x401000` for a lower-half address and the full 64-bit value
 * `0xffffffff80000000` for a higher-half one. With `pad`, always 16 hex digits.
 *
 * A raw `VirtAddr` is a Number: `console.log(va)` prints the 48-bit number (`140737488355328` for
 * `0xffff800000000000`); print addresses with this function.
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` unless `va` is an integer in `[0, 2^48)` (a NaN or an
 *   out-of-range Number has no canonical text: it is a bug upstream, not an address)
 */
export function formatVirtAddr(va: VirtAddr, pad = false): string {
  checkVirtAddr(va);
  return canonicalHex(va, pad);
}

/** Parses text (hex `0x…` or decimal, underscores allowed) as a canonical virtual address. */
export function parseVirtAddr(text: string): VirtAddr {
  if (typeof text !== 'string') {
    fail('E_INVALID', `virtual address text ${describeValue(text)} is not a string`, { text });
  }
  return virtAddrFromBigInt(parseBigInt(text, 'virtual address'));
}

/**
 * `va + delta` bytes, checked: the result must be an address in the same half as `va`.
 *
 * @param va a VirtAddr (an integer in `[0, 2^48)`)
 * @param delta an integer number of bytes, negative to go down
 * @throws VmkitError `E_INVALID`/`E_RANGE` if `va` is not a VirtAddr, `E_INVALID` for a delta that is
 *   not an integer Number, `E_NONCANONICAL` if the result would cross into the non-canonical hole,
 *   `E_OVERFLOW` if it would pass the top (`0xffffffffffffffff`) or go below 0
 */
export function virtAdd(va: VirtAddr, delta: number): VirtAddr {
  checkVirtAddr(va);
  if (typeof delta !== 'number' || !Number.isInteger(delta)) {
    fail('E_INVALID', `offset ${describeValue(delta)} is not an integer Number`, { va, delta });
  }
  const r = va + delta;
  if (r < 0 || r >= VIRT_SPACE_END) {
    fail('E_OVERFLOW', `${canonicalHex(va)} + ${describeValue(delta)} leaves the 64-bit address space`, {
      va,
      delta,
    });
  }
  // the same decision as checkVirtRange: [min, max] must lie in one half
  const lo = delta < 0 ? r : va;
  if (virtRangeFault(lo, Math.abs(delta) + 1) !== VirtRule.Ok) {
    fail('E_NONCANONICAL', `${canonicalHex(va)} + ${describeValue(delta)} crosses the canonical hole`, {
      va,
      delta,
    });
  }
  return r as VirtAddr;
}

/**
 * The end (exclusive) of `[va, va + size)`, checked by {@link checkVirtRange}. Unlike {@link virtAdd},
 * the end may be exactly the end of a half (`0x0000800000000000` is held as `2^47`, the end of the
 * lower half; `2^48` is the end of the space), since nothing at the end itself is addressed.
 *
 * @throws VmkitError as {@link checkVirtRange}: `E_INVALID` / `E_RANGE` for a start that is not a
 *   VirtAddr or a size that is not a non-negative integer, `E_NONCANONICAL` if the range would cross the
 *   hole, `E_OVERFLOW` past the top of the space
 */
export function virtEnd(va: VirtAddr, size: number): number {
  const rule = virtRangeFault(va, size);
  if (rule !== VirtRule.Ok) failVirtRange(rule, va, size, 'range');
  return va + size;
}

/**
 * Rounds `va` up to a multiple of `align`, checked: the result is an address in the same half.
 * (Use this, not the generic `alignUp`, for a VirtAddr: `alignUp` cannot see the canonical hole.)
 *
 * @param align a power of two in `[1, 2^52]`
 * @throws VmkitError `E_INVALID`/`E_RANGE` if `va` is not a VirtAddr, `E_INVALID` if `align` is not a
 *   power of two, `E_NONCANONICAL` if the result would be in the hole (`0x7ffffffff001` up to 4 KiB),
 *   `E_OVERFLOW` past the top of the space (`0xfffffffffffff001` up to 4 KiB)
 */
export function virtAlignUp(va: VirtAddr, align: number): VirtAddr {
  checkVirtAddr(va);
  checkAlign(align);
  const down = alignDown(va, align);
  if (down === va) return va;
  const up = down + align;
  const rule = virtRangeFault(va, up - va + 1);
  if (rule !== VirtRule.Ok) {
    fail(
      virtRuleCode(rule),
      `aligning ${canonicalHex(va)} up to ${describeValue(align)} gives ${up >= VIRT_SPACE_END ? 'a value past the top of the address space' : 'an address in the canonical hole'}`,
      { va, align },
    );
  }
  return up as VirtAddr;
}

/**
 * The page offset of `va` within a page of `size` bytes (default 4 KiB). Hot path: unchecked (`size`
 * must be a power of two, `va` an integer in `[0, 2^53)`).
 */
export function pageOffset(va: number, size: number = PAGE_SIZE_4K): number {
  return va - alignDown(va, size);
}

/**
 * The PML4 index (bits 47..39) of a virtual address. No allocation, no BigInt. The four index functions
 * are the hot path and do not check `va` (an out-of-domain value gives a meaningless index): validate
 * addresses from outside once, at the edge.
 */
export function pml4Index(va: VirtAddr): number {
  return (va / 0x80_0000_0000) & 0x1ff;
}
/** The PDPT index (bits 38..30) of a virtual address. */
export function pdptIndex(va: VirtAddr): number {
  return (va / 0x4000_0000) & 0x1ff;
}
/** The PD index (bits 29..21) of a virtual address. */
export function pdIndex(va: VirtAddr): number {
  return (va / 0x20_0000) & 0x1ff;
}
/** The PT index (bits 20..12) of a virtual address. */
export function ptIndex(va: VirtAddr): number {
  return (va / 0x1000) & 0x1ff;
}

const LEVEL_SHIFT_DIV = [0, 0x1000, 0x20_0000, 0x4000_0000, 0x80_0000_0000] as const;

/**
 * The 9-bit table index of `va` at a paging level: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
 *
 * @throws VmkitError `E_INVALID` for a level outside 1..4
 */
export function tableIndex(va: VirtAddr, level: 1 | 2 | 3 | 4): number {
  const div = typeof level === 'number' && level >= 1 ? LEVEL_SHIFT_DIV[level] : undefined;
  if (div === undefined) fail('E_INVALID', `paging level ${describeValue(level)} is not 1..4`, { level });
  return (va / div) & 0x1ff;
}

/** The 4 KiB page number of `va`. Hot path: unchecked. */
export function virtPageNum(va: VirtAddr): VirtPageNum {
  return Math.floor(va / PAGE_SIZE_4K) as VirtPageNum;
}

/**
 * The first byte of the 4 KiB page `vpn`. Hot path: unchecked; the checked form is
 * `virtAddrFromBits(vpn * PAGE_SIZE_4K)`.
 */
export function virtPageAddr(vpn: VirtPageNum): VirtAddr {
  return (vpn * PAGE_SIZE_4K) as VirtAddr;
}
