import { alignDown, formatHex } from './align.js';
import { EXACT_LIMIT, HIGHER_HALF_BITS, PAGE_SIZE_4K, VIRT_SPACE_END } from './constants.js';
import { fail } from './errors.js';
import { parseBigInt } from './parse.js';
import type { VirtAddr, VirtPageNum } from './types.js';

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
 *   `E_INVALID` for NaN, a non-integer or unparsable text, `E_RANGE` for a negative value or one past
 *   64 bits, `E_OVERFLOW` for a Number at or past 2^53.
 */
export function virtAddr(value: number | bigint | string): VirtAddr {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) fail('E_INVALID', `virtual address ${value} is not an integer`, { value });
    if (value < 0) {
      fail(
        'E_RANGE',
        `virtual address ${value} is negative (use virtAddrFromSigned for a sign-extended value)`,
        {
          value,
        },
      );
    }
    if (value >= EXACT_LIMIT) {
      fail('E_OVERFLOW', `virtual address ${value} is not below 2^53: pass it as a BigInt or a string`, {
        value,
      });
    }
    if (value >= HIGHER_HALF_BITS) {
      fail(
        'E_NONCANONICAL',
        `virtual address ${formatHex(value)} is not canonical (bits 63..48 must copy bit 47)`,
        {
          value,
        },
      );
    }
    return value as VirtAddr;
  }
  const big = typeof value === 'bigint' ? value : parseBigInt(value, 'virtual address');
  return virtAddrFromBigInt(big);
}

/** Builds a {@link VirtAddr} from its 64-bit canonical value. Same errors as {@link virtAddr}. */
export function virtAddrFromBigInt(value: bigint): VirtAddr {
  if (value < 0n || value >= TWO_64) {
    fail('E_RANGE', `virtual address ${value} is not a 64-bit unsigned value`, { value });
  }
  if (!isCanonical(value)) {
    fail(
      'E_NONCANONICAL',
      `virtual address 0x${value.toString(16)} is not canonical (bits 63..48 must copy bit 47)`,
      {
        value,
      },
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
  if (typeof value === 'number') {
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
    if (!Number.isInteger(value)) fail('E_INVALID', `${value} is not an integer`, { value });
    if (value < 0 || value >= EXACT_LIMIT) fail('E_RANGE', `${value} is not in [0, 2^53)`, { value });
    return (value % VIRT_SPACE_END) as VirtAddr;
  }
  if (value < 0n || value >= TWO_64) fail('E_RANGE', `${value} is not a 64-bit unsigned value`, { value });
  return Number(value & LOW48) as VirtAddr;
}

/**
 * Builds a {@link VirtAddr} from its low 48 bits (the representation itself), e.g. from a page number
 * times the page size. Checked: an integer in `[0, 2^48)`.
 *
 * @throws VmkitError `E_INVALID` for a non-integer, `E_RANGE` outside `[0, 2^48)`
 */
export function virtAddrFromBits(bits: number): VirtAddr {
  if (!Number.isInteger(bits)) fail('E_INVALID', `${bits} is not an integer`, { bits });
  if (bits < 0 || bits >= VIRT_SPACE_END) fail('E_RANGE', `${formatHex(bits)} is not in [0, 2^48)`, { bits });
  return bits as VirtAddr;
}

/** The 64-bit canonical value of `va`, as a BigInt (edges only: printing, interop). */
export function virtAddrToBigInt(va: VirtAddr): bigint {
  const b = BigInt(va);
  return va >= HIGHER_HALF_BITS ? b | SIGN_EXT : b;
}

/** The signed (two's complement) value of `va`: the higher half is negative, `-2^47..-1`. Exact. */
export function virtAddrToSigned(va: VirtAddr): number {
  return va >= HIGHER_HALF_BITS ? va - VIRT_SPACE_END : va;
}

/**
 * Builds a {@link VirtAddr} from a signed (two's complement, sign-extended) value in `[-2^47, 2^47)`,
 * as an `i64` holds a canonical address.
 *
 * @throws VmkitError `E_INVALID` for a non-integer, `E_NONCANONICAL` outside `[-2^47, 2^47)`
 */
export function virtAddrFromSigned(value: number): VirtAddr {
  if (!Number.isInteger(value)) fail('E_INVALID', `${value} is not an integer`, { value });
  if (value < -HIGHER_HALF_BITS || value >= HIGHER_HALF_BITS) {
    fail('E_NONCANONICAL', `${value} is not a sign-extended 48-bit address`, { value });
  }
  return (value < 0 ? value + VIRT_SPACE_END : value) as VirtAddr;
}

/** True when `va` is in the higher (kernel) half, `0xffff800000000000` and above. */
export function isHigherHalf(va: VirtAddr): boolean {
  return va >= HIGHER_HALF_BITS;
}

/**
 * Formats `va` as users read addresses: `0x401000` for a lower-half address and the full 64-bit value
 * `0xffffffff80000000` for a higher-half one. With `pad`, always 16 hex digits.
 */
export function formatVirtAddr(va: VirtAddr, pad = false): string {
  let s: string;
  if (va >= HIGHER_HALF_BITS) s = `ffff${va.toString(16).padStart(12, '0')}`;
  else s = pad ? va.toString(16).padStart(16, '0') : va.toString(16);
  return `0x${s}`;
}

/** Parses text (hex `0x…` or decimal, underscores allowed) as a canonical virtual address. */
export function parseVirtAddr(text: string): VirtAddr {
  return virtAddrFromBigInt(parseBigInt(text, 'virtual address'));
}

/**
 * `va + delta` bytes, checked: the result must stay in the same half of the address space.
 *
 * @param delta an integer number of bytes, negative to go down
 * @throws VmkitError `E_NONCANONICAL` if the result would cross into the non-canonical hole,
 *   `E_OVERFLOW` if it would pass the top (`0xffffffffffffffff`) or go below 0, `E_INVALID` for a
 *   non-integer delta
 */
export function virtAdd(va: VirtAddr, delta: number): VirtAddr {
  if (!Number.isInteger(delta)) fail('E_INVALID', `offset ${delta} is not an integer`, { va, delta });
  const r = va + delta;
  if (r < 0 || r >= VIRT_SPACE_END) {
    fail('E_OVERFLOW', `${formatVirtAddr(va)} + ${delta} leaves the 64-bit address space`, { va, delta });
  }
  if (va < HIGHER_HALF_BITS !== r < HIGHER_HALF_BITS) {
    fail('E_NONCANONICAL', `${formatVirtAddr(va)} + ${delta} crosses the non-canonical hole`, { va, delta });
  }
  return r as VirtAddr;
}

/**
 * The end (exclusive) of `[va, va + size)`, checked. Unlike {@link virtAdd}, the end may be exactly the
 * end of a half (`0x0000800000000000` is held as `2^47`, the end of the lower half; `2^48` is the end of
 * the space), since nothing at the end itself is addressed.
 *
 * @throws VmkitError `E_INVALID` / `E_RANGE` for a size that is not a non-negative integer,
 *   `E_NONCANONICAL` if the range would cross the hole, `E_OVERFLOW` past the top of the space
 */
export function virtEnd(va: VirtAddr, size: number): number {
  if (!Number.isInteger(size)) fail('E_INVALID', `size ${size} is not an integer`, { va, size });
  if (size < 0) fail('E_RANGE', `size ${size} is negative`, { va, size });
  const r = va + size;
  if (r > VIRT_SPACE_END)
    fail('E_OVERFLOW', `${formatVirtAddr(va)} + ${size} passes the top of the space`, { va, size });
  if (va < HIGHER_HALF_BITS && r > HIGHER_HALF_BITS) {
    fail('E_NONCANONICAL', `[${formatVirtAddr(va)}, +${formatHex(size)}) crosses the non-canonical hole`, {
      va,
      size,
    });
  }
  return r;
}

/**
 * Rounds `va` up to a multiple of `align`, checked against the hole and the top of the space.
 *
 * @throws VmkitError `E_NONCANONICAL` if the result would be in the hole, `E_OVERFLOW` past the top
 */
export function virtAlignUp(va: VirtAddr, align: number): VirtAddr {
  const down = alignDown(va, align);
  if (down === va) return va;
  return virtAdd(va, down + align - va);
}

/** The page offset of `va` within a page of `size` bytes (default 4 KiB). */
export function pageOffset(va: number, size: number = PAGE_SIZE_4K): number {
  return va - alignDown(va, size);
}

/** The PML4 index (bits 47..39) of a virtual address. No allocation, no BigInt. */
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
  const div = LEVEL_SHIFT_DIV[level];
  if (div === undefined || level < 1) fail('E_INVALID', `paging level ${level} is not 1..4`, { level });
  return (va / div) & 0x1ff;
}

/** The 4 KiB page number of `va`. */
export function virtPageNum(va: VirtAddr): VirtPageNum {
  return Math.floor(va / PAGE_SIZE_4K) as VirtPageNum;
}

/** The first byte of the 4 KiB page `vpn`. */
export function virtPageAddr(vpn: VirtPageNum): VirtAddr {
  return (vpn * PAGE_SIZE_4K) as VirtAddr;
}
