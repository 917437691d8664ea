import { checkUint } from './align.js';
import { EXACT_LIMIT } from './constants.js';
import { canonicalEndHex, canonicalHex, describeValue } from './describe.js';
import { fail } from './errors.js';
import type { PhysAddr, PhysFrameNum, VirtAddr, VirtPageNum } from './types.js';
import { checkVirtRange } from './virt-range.js';

/** The address type a range keeps: an address brand stays, a plain number literal widens to `number`. */
export type RangeAddr<A extends number> = A extends VirtAddr | PhysAddr | VirtPageNum | PhysFrameNum
  ? A
  : number;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * A half-open address range `[start, end)` over any address-like Number type (`VirtAddr`, `PhysAddr`,
 * page numbers, plain numbers). Immutable; `end` is exclusive and may equal `start` (an empty range).
 *
 * Two kinds of constructors:
 * - {@link AddrRange.virt} / {@link AddrRange.virtFromSize} build a **virtual** range: checked by
 *   `checkVirtRange` (inside one half, never across the canonical hole, never past 2^48), and printed
 *   with canonical addresses (`[0xffff800000000000, 0xffff800000001000)`). Use them for VirtAddrs.
 * - {@link AddrRange.of} / {@link AddrRange.fromSize} are generic: any integers in `[0, 2^53)`. A
 *   VirtAddr is a plain Number at run time, so they cannot know that a range is virtual and do not
 *   apply the canonical-hole rule (a physical range across 2^47 is perfectly valid); their `toString` is
 *   plain hex. TypeScript flags `AddrRange.of` called with a VirtAddr start as deprecated.
 *
 * Ranges derived from a virtual range (`splitAt`, `intersection`) are virtual too.
 */
export class AddrRange<A extends number = number> {
  /** First address in the range. */
  readonly start: A;
  /** One past the last address in the range (exclusive). */
  readonly end: A;
  /** True for a range built by `virt`/`virtFromSize` (or derived from one): checked and printed as virtual. */
  readonly isVirtual: boolean;

  private constructor(start: A, end: A, isVirtual: boolean) {
    this.start = start;
    this.end = end;
    this.isVirtual = isVirtual;
  }

  /**
   * `[start, end)` over any integers (the generic constructor: no canonical-hole rule, see the class).
   *
   * @deprecated for a VirtAddr start: use {@link AddrRange.virt}, which refuses a range across the
   *   canonical hole (this one cannot see the brand at run time).
   */
  static of(start: VirtAddr, end: VirtAddr | number): AddrRange<VirtAddr>;
  /**
   * `[start, end)` over any integers in `[0, 2^53)` (physical addresses, page numbers, plain numbers).
   * For virtual addresses use {@link AddrRange.virt}.
   *
   * @throws VmkitError `E_INVALID` unless both are integer Numbers, `E_RANGE` for a negative one,
   *   `E_OVERFLOW` at or past 2^53, `E_RANGE` if `end < start` (a range whose end wraps)
   */
  static of<A extends number>(start: A, end: A | number): AddrRange<RangeAddr<A>>;
  static of<A extends number>(start: A, end: A | number): AddrRange<RangeAddr<A>> {
    checkUint(start, 'range start');
    checkUint(end, 'range end');
    if (end < start)
      fail('E_RANGE', `range end ${hex(end)} is below its start ${hex(start)}`, { start, end });
    return new AddrRange(start as RangeAddr<A>, end as RangeAddr<A>, false);
  }

  /**
   * `[start, start + size)` over any integers (generic, as {@link AddrRange.of}).
   *
   * @deprecated for a VirtAddr start: use {@link AddrRange.virtFromSize}.
   */
  static fromSize(start: VirtAddr, size: number): AddrRange<VirtAddr>;
  /**
   * `[start, start + size)` over any integers (generic, as {@link AddrRange.of}).
   *
   * @throws VmkitError as {@link AddrRange.of}; `E_OVERFLOW` if `start + size` reaches 2^53
   */
  static fromSize<A extends number>(start: A, size: number): AddrRange<RangeAddr<A>>;
  static fromSize<A extends number>(start: A, size: number): AddrRange<RangeAddr<A>> {
    checkUint(start, 'range start');
    checkUint(size, 'range size');
    const end = start + size;
    if (end >= EXACT_LIMIT)
      fail('E_OVERFLOW', `range ${hex(start)} + ${hex(size)} passes 2^53`, { start, size });
    return new AddrRange(start as RangeAddr<A>, end as RangeAddr<A>, false);
  }

  /**
   * A virtual range `[start, end)`; `end` may be `2^47` (the end of the lower half) or `2^48` (the end of
   * the space).
   *
   * @throws VmkitError as `checkVirtRange(start, end - start)` (`E_INVALID`, `E_RANGE`, `E_OVERFLOW`,
   *   `E_NONCANONICAL` for a range through the hole); `E_INVALID` if `end` is not an integer Number,
   *   `E_RANGE` if `end < start`
   */
  static virt(start: VirtAddr, end: number): AddrRange<VirtAddr> {
    checkVirtRange(start, 0, 'range');
    if (typeof end !== 'number' || !Number.isInteger(end)) {
      fail('E_INVALID', `range end ${describeValue(end)} is not an integer Number`, { start, end });
    }
    if (end < start) {
      fail('E_RANGE', `range end ${describeValue(end)} is below its start ${canonicalHex(start)}`, {
        start,
        end,
      });
    }
    checkVirtRange(start, end - start, 'range');
    return new AddrRange(start, end as VirtAddr, true);
  }

  /** A virtual range `[start, start + size)`, checked by `checkVirtRange`; errors as {@link AddrRange.virt}. */
  static virtFromSize(start: VirtAddr, size: number): AddrRange<VirtAddr> {
    checkVirtRange(start, size, 'range');
    return new AddrRange(start, (start + size) as VirtAddr, true);
  }

  /** Size in bytes (or in the unit of `A`). */
  get size(): number {
    return this.end - this.start;
  }

  /** True when the range holds no address. */
  isEmpty(): boolean {
    return this.end === this.start;
  }

  /** True when `start ≤ addr < end` (false for anything that is not such a Number, NaN included). */
  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  /** True when `other` lies within this range (`start ≤ other.start` and `other.end ≤ end`). */
  containsRange(other: AddrRange<A>): boolean {
    checkRange(other);
    return other.start >= this.start && other.end <= this.end;
  }

  /** True when the two ranges share at least one address (empty ranges overlap nothing). */
  overlaps(other: AddrRange<A>): boolean {
    checkRange(other);
    return Math.max(this.start, other.start) < Math.min(this.end, other.end);
  }

  /** The addresses in both ranges, or `undefined` when they share none. */
  intersection(other: AddrRange<A>): AddrRange<A> | undefined {
    checkRange(other);
    const s = Math.max(this.start, other.start) as A;
    const e = Math.min(this.end, other.end) as A;
    return s < e ? new AddrRange(s, e, this.isVirtual || other.isVirtual === true) : undefined;
  }

  /**
   * Splits at `at` into `[start, at)` and `[at, end)`; either may be empty.
   *
   * @throws VmkitError `E_INVALID` unless `at` is an integer Number, `E_RANGE` unless `start ≤ at ≤ end`
   */
  splitAt(at: A): [AddrRange<A>, AddrRange<A>] {
    if (typeof at !== 'number' || !Number.isInteger(at)) {
      fail('E_INVALID', `split point ${describeValue(at)} is not an integer Number`, { at });
    }
    if (!(at >= this.start && at <= this.end)) {
      fail('E_RANGE', `split point ${this.describeAddr(at)} is outside ${this.toString()}`, { at });
    }
    return [new AddrRange(this.start, at, this.isVirtual), new AddrRange(at, this.end, this.isVirtual)];
  }

  /** True when both ranges have the same start and end. */
  equals(other: AddrRange<A>): boolean {
    checkRange(other);
    return this.start === other.start && this.end === other.end;
  }

  /**
   * A virtual range prints canonical addresses, `[0xffff800000000000, 0xffff800000001000)` (an end at
   * the end of the lower half is `0x800000000000`, at the top `0x10000000000000000`); any other range
   * plain hex of the held Numbers, `[0x1000, 0x3000)`.
   */
  toString(): string {
    if (this.isVirtual) return `[${canonicalHex(this.start)}, ${canonicalEndHex(this.start, this.end)})`;
    return `[${hex(this.start)}, ${hex(this.end)})`;
  }

  private describeAddr(a: number): string {
    return this.isVirtual && a < 2 ** 48 && a >= 0 ? canonicalHex(a) : describeValue(a);
  }
}

/** Duck-typed, so that a range from another copy of `@vmkit/addr` is accepted. */
function checkRange(r: unknown): void {
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof (r as { start?: unknown }).start !== 'number' ||
    typeof (r as { end?: unknown }).end !== 'number'
  ) {
    fail('E_INVALID', `${describeValue(r)} is not an AddrRange`, { range: r });
  }
}

/**
 * Formats a range of virtual addresses with canonical addresses, `[0xffffffff80000000,
 * 0xffffffff80200000)`, whichever constructor built it. An end of `2^47` in a lower-half range prints as
 * `0x800000000000`, and `2^48` as `0x10000000000000000`.
 *
 * @throws VmkitError as `checkVirtRange(r.start, r.size)` when the range is not a valid virtual range
 *   (for example a range built by `AddrRange.of` across the hole), `E_INVALID` for a non-range
 */
export function formatVirtRange(r: AddrRange<VirtAddr>): string {
  checkRange(r);
  checkVirtRange(r.start, r.size, 'range');
  return `[${canonicalHex(r.start)}, ${canonicalEndHex(r.start, r.end)})`;
}
