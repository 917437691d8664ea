import { checkUint, formatHex } from './align.js';
import { HIGHER_HALF_BITS, VIRT_SPACE_END } from './constants.js';
import { fail } from './errors.js';
import type { PhysAddr, PhysFrameNum, VirtAddr, VirtPageNum } from './types.js';

/** The address type a range keeps: an address brand stays, a plain number literal widens to `number`. */
export type RangeAddr<A extends number> = A extends VirtAddr | PhysAddr | VirtPageNum | PhysFrameNum
  ? A
  : number;

import { formatVirtAddr } from './virt.js';

/**
 * A half-open address range `[start, end)` over any address-like Number type (`VirtAddr`, `PhysAddr`,
 * page numbers, plain numbers). Immutable; `end` is exclusive and may equal `start` (an empty range).
 *
 * Build with {@link AddrRange.of} / {@link AddrRange.fromSize} (plain integer checks) or
 * {@link AddrRange.virt} / {@link AddrRange.virtFromSize}, which also refuse a virtual range that
 * crosses the non-canonical hole.
 */
export class AddrRange<A extends number = number> {
  /** First address in the range. */
  readonly start: A;
  /** One past the last address in the range (exclusive). */
  readonly end: A;

  private constructor(start: A, end: A) {
    this.start = start;
    this.end = end;
  }

  /**
   * `[start, end)`.
   *
   * @throws VmkitError `E_INVALID`/`E_RANGE`/`E_OVERFLOW` unless both are integers in `[0, 2^53)`,
   *   `E_RANGE` if `end < start` (a range whose end wraps)
   */
  static of<A extends number>(start: A, end: A | number): AddrRange<RangeAddr<A>> {
    checkUint(start, 'range start');
    checkUint(end, 'range end');
    if (end < start)
      fail('E_RANGE', `range end ${formatHex(end)} is below its start ${formatHex(start)}`, { start, end });
    return new AddrRange(start as RangeAddr<A>, end as RangeAddr<A>);
  }

  /**
   * `[start, start + size)`.
   *
   * @throws VmkitError as {@link AddrRange.of}; `E_OVERFLOW` if `start + size` passes 2^53
   */
  static fromSize<A extends number>(start: A, size: number): AddrRange<RangeAddr<A>> {
    checkUint(start, 'range start');
    checkUint(size, 'range size');
    const end = start + size;
    if (end >= 2 ** 53)
      fail('E_OVERFLOW', `${formatHex(start)} + ${formatHex(size)} passes 2^53`, { start, size });
    return new AddrRange(start as RangeAddr<A>, end as RangeAddr<A>);
  }

  /**
   * A virtual range `[start, end)`; `end` may be `2^47` (the end of the lower half) or `2^48` (the end of
   * the space).
   *
   * @throws VmkitError as {@link AddrRange.of}; `E_OVERFLOW` if `end > 2^48`; `E_NONCANONICAL` if the
   *   range crosses from the lower half into the higher half (through the hole)
   */
  static virt(start: VirtAddr, end: number): AddrRange<VirtAddr> {
    const r = AddrRange.of(start, end as VirtAddr);
    if (end > VIRT_SPACE_END)
      fail('E_OVERFLOW', `range end ${formatHex(end)} passes the top of the 48-bit space`, { end });
    if (start < HIGHER_HALF_BITS && end > HIGHER_HALF_BITS) {
      fail('E_NONCANONICAL', `range [${formatVirtAddr(start)}, …) crosses the non-canonical hole`, {
        start,
        end,
      });
    }
    return r;
  }

  /** A virtual range `[start, start + size)`; errors as {@link AddrRange.virt}. */
  static virtFromSize(start: VirtAddr, size: number): AddrRange<VirtAddr> {
    checkUint(size, 'range size');
    return AddrRange.virt(start, start + size);
  }

  /** Size in bytes (or in the unit of `A`). */
  get size(): number {
    return this.end - this.start;
  }

  /** True when the range holds no address. */
  isEmpty(): boolean {
    return this.end === this.start;
  }

  /** True when `start ≤ addr < end`. */
  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  /** True when `other` lies within this range (`start ≤ other.start` and `other.end ≤ end`). */
  containsRange(other: AddrRange<A>): boolean {
    return other.start >= this.start && other.end <= this.end;
  }

  /** True when the two ranges share at least one address (empty ranges overlap nothing). */
  overlaps(other: AddrRange<A>): boolean {
    return Math.max(this.start, other.start) < Math.min(this.end, other.end);
  }

  /** The addresses in both ranges, or `undefined` when they share none. */
  intersection(other: AddrRange<A>): AddrRange<A> | undefined {
    const s = Math.max(this.start, other.start) as A;
    const e = Math.min(this.end, other.end) as A;
    return s < e ? new AddrRange(s, e) : undefined;
  }

  /**
   * Splits at `at` into `[start, at)` and `[at, end)`; either may be empty.
   *
   * @throws VmkitError `E_RANGE` unless `start ≤ at ≤ end`
   */
  splitAt(at: A): [AddrRange<A>, AddrRange<A>] {
    if (!(at >= this.start && at <= this.end)) {
      fail('E_RANGE', `split point ${formatHex(at)} is outside ${this.toString()}`, { at });
    }
    return [new AddrRange(this.start, at), new AddrRange(at, this.end)];
  }

  /** True when both ranges have the same start and end. */
  equals(other: AddrRange<A>): boolean {
    return this.start === other.start && this.end === other.end;
  }

  /** `[0x1000, 0x3000)`: plain hex of the held Numbers (for virtual ranges see {@link formatVirtRange}). */
  toString(): string {
    return `[${formatHex(this.start)}, ${formatHex(this.end)})`;
  }
}

/**
 * Formats a virtual range with canonical addresses, `[0xffffffff80000000, 0xffffffff80200000)`. An end
 * of `2^47` in a lower-half range prints as `0x800000000000`, and `2^48` as `0x10000000000000000`.
 */
export function formatVirtRange(r: AddrRange<VirtAddr>): string {
  const endText =
    r.end === VIRT_SPACE_END
      ? '0x10000000000000000'
      : r.end === HIGHER_HALF_BITS && r.start < HIGHER_HALF_BITS
        ? '0x800000000000'
        : formatVirtAddr(r.end);
  return `[${formatVirtAddr(r.start)}, ${endText})`;
}
