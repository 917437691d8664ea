import { errorCode, propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { forEachPage, pageCount, pagesOf } from './pages.js';
import { AddrRange, formatVirtRange } from './range.js';
import type { VirtAddr } from './types.js';
import { virtAddr } from './virt.js';

const H = 2 ** 47;
const E = 2 ** 48;
/** A range inside one half of the 48-bit space (as VirtAddr bits), drawn from both halves. */
const virtRange = fc
  .tuple(fc.boolean(), fc.integer({ min: 0, max: H }), fc.integer({ min: 0, max: H }))
  .map(([high, a, b]) => {
    const base = high ? H : 0;
    return AddrRange.virt((base + Math.min(a, b)) as VirtAddr, base + Math.max(a, b));
  });

describe('AddrRange algebra against a BigInt reference', () => {
  it(
    'contains / overlaps / intersection / containsRange',
    () => {
      fc.assert(
        fc.property(virtRange, virtRange, fc.integer({ min: 0, max: E - 1 }), (r, s, x) => {
          const [rs, re, ss, se] = [r.start, r.end, s.start, s.end].map(BigInt) as [
            bigint,
            bigint,
            bigint,
            bigint,
          ];
          expect(r.size).toBe(Number(re - rs));
          expect(r.isEmpty()).toBe(re === rs);
          expect(r.contains(x)).toBe(BigInt(x) >= rs && BigInt(x) < re);
          // biome-ignore lint/complexity/useMathMinMax: BigInt operands (Math.max does not take BigInt)
          const lo = rs > ss ? rs : ss;
          // biome-ignore lint/complexity/useMathMinMax: BigInt operands
          const hi = re < se ? re : se;
          expect(r.overlaps(s)).toBe(lo < hi);
          const i = r.intersection(s);
          if (lo < hi) {
            expect(i && BigInt(i.start) === lo && BigInt(i.end) === hi).toBe(true);
            expect(r.containsRange(i!) && s.containsRange(i!)).toBe(true);
          } else expect(i).toBeUndefined();
          expect(r.containsRange(s)).toBe(ss >= rs && se <= re);
          expect(r.overlaps(s)).toBe(s.overlaps(r));
        }),
        { numRuns: propertyRuns(3000) },
      );
    },
    testTimeout(20_000),
  );
  it('an empty range overlaps nothing, even strictly inside another', () => {
    const r = AddrRange.of(0x1000, 0x3000);
    const e = AddrRange.of(0x2000, 0x2000);
    expect(r.overlaps(e)).toBe(false);
    expect(e.overlaps(r)).toBe(false);
    expect(r.intersection(e)).toBeUndefined();
    expect(r.containsRange(e)).toBe(true);
  });
  it(
    'splitAt gives two ranges that partition the original',
    () => {
      fc.assert(
        fc.property(virtRange, fc.double({ min: 0, max: 1, noNaN: true }), (r, f) => {
          const at = (r.start + Math.floor(r.size * f)) as VirtAddr;
          const [a, b] = r.splitAt(at);
          expect(a.start).toBe(r.start);
          expect(a.end).toBe(at);
          expect(b.start).toBe(at);
          expect(b.end).toBe(r.end);
          expect(a.size + b.size).toBe(r.size);
          expect(a.overlaps(b)).toBe(false);
        }),
        { numRuns: propertyRuns(100) },
      );
      const r = AddrRange.of(0x1000, 0x3000);
      expect(errorCode(() => r.splitAt(0x3001))).toBe('E_RANGE');
      expect(errorCode(() => r.splitAt(0xfff))).toBe('E_RANGE');
    },
    testTimeout(20_000),
  );
});

describe('construction', () => {
  it('refuses wrapping, negative, non-integer and huge values', () => {
    expect(errorCode(() => AddrRange.of(0x2000, 0x1000))).toBe('E_RANGE');
    expect(errorCode(() => AddrRange.of(-1, 0x1000))).toBe('E_RANGE');
    expect(errorCode(() => AddrRange.of(0.5, 0x1000))).toBe('E_INVALID');
    expect(errorCode(() => AddrRange.of(0, 2 ** 53))).toBe('E_OVERFLOW');
    expect(errorCode(() => AddrRange.fromSize(2 ** 52, 2 ** 52))).toBe('E_OVERFLOW');
    expect(errorCode(() => AddrRange.fromSize(0, -5))).toBe('E_RANGE');
  });
  it('refuses a virtual range through the hole or past the top', () => {
    expect(errorCode(() => AddrRange.virt(virtAddr(0x7fff_ffff_f000), H + 0x1000))).toBe('E_NONCANONICAL');
    expect(errorCode(() => AddrRange.virtFromSize(virtAddr(0xffff_ffff_ffff_f000n), 0x2000))).toBe(
      'E_OVERFLOW',
    );
    expect(AddrRange.virtFromSize(virtAddr(0x7fff_ffff_f000), 0x1000).end).toBe(H);
  });
  it('formats canonical addresses, including the ends of the halves', () => {
    expect(formatVirtRange(AddrRange.virtFromSize(virtAddr('0xffffffff80000000'), 0x20_0000))).toBe(
      '[0xffffffff80000000, 0xffffffff80200000)',
    );
    expect(formatVirtRange(AddrRange.virtFromSize(virtAddr(0x7fff_ffff_f000), 0x1000))).toBe(
      '[0x7ffffffff000, 0x800000000000)',
    );
    expect(formatVirtRange(AddrRange.virtFromSize(virtAddr(0xffff_ffff_ffff_f000n), 0x1000))).toBe(
      '[0xfffffffffffff000, 0x10000000000000000)',
    );
    expect(AddrRange.of(0x1000, 0x3000).toString()).toBe('[0x1000, 0x3000)');
  });
});

describe('pages', () => {
  it(
    'counts and lists every touched page',
    () => {
      fc.assert(
        fc.property(virtRange, fc.constantFrom(0x1000, 0x20_0000, 0x4000_0000), (r, size) => {
          if (pageCount(r, size) > 5000) return;
          const list = [...pagesOf(r, size)];
          expect(list.length).toBe(pageCount(r, size));
          const seen: number[] = [];
          forEachPage(r, size, (p) => seen.push(p));
          expect(seen).toEqual(list);
          for (const p of list) {
            expect(p % size).toBe(0);
            expect(AddrRange.of(p, p + size).overlaps(r)).toBe(true);
          }
        }),
        { numRuns: propertyRuns(100) },
      );
      expect(pageCount(AddrRange.of(0x1fff, 0x2001))).toBe(2);
      expect(pageCount(AddrRange.of(0x1000, 0x1000))).toBe(0);
      // an empty range touches no page, even off a page boundary (found by the property above)
      expect(pageCount(AddrRange.of(0x1d, 0x1d))).toBe(0);
      expect([...pagesOf(AddrRange.of(0x1d, 0x1d))]).toEqual([]);
      let calls = 0;
      forEachPage(AddrRange.of(0x1d, 0x1d), 0x1000, () => calls++);
      expect(calls).toBe(0);
      expect(errorCode(() => pageCount(AddrRange.of(0, 1), 3))).toBe('E_INVALID');
    },
    testTimeout(20_000),
  );
});
