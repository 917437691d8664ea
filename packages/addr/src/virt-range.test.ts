import { errorCode, expectVmkitError, propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { alignUp } from './align.js';
import { AddrRange, formatVirtRange } from './range.js';
import type { VirtAddr } from './types.js';
import { virtAdd, virtAddr, virtAddrToBigInt, virtAlignUp, virtEnd } from './virt.js';
import { checkVirtAddr, checkVirtRange, isVirtAddr, isVirtRange, virtDistance } from './virt-range.js';

const H = 2 ** 47;
const E = 2 ** 48;
const TWO_64 = 1n << 64n;
/** The canonical hole in 64-bit terms: [2^47, 2^64 - 2^47). */
const HOLE_END = TWO_64 - (1n << 47n);

/**
 * Reference model in canonical 64-bit BigInt terms, independent of the 48-bit representation: the
 * addresses `[c, c + size)` (c the canonical value of start) must all be canonical and below 2^64.
 */
function reference(start: unknown, size: unknown): string | undefined {
  if (typeof start !== 'number' || !Number.isInteger(start)) return 'E_INVALID';
  if (start < 0 || start >= E) return 'E_RANGE';
  if (typeof size !== 'number' || !Number.isInteger(size)) return 'E_INVALID';
  if (size < 0) return 'E_RANGE';
  if (size >= 2 ** 53) return 'E_OVERFLOW';
  const c = virtAddrToBigInt(start as VirtAddr);
  const end = c + BigInt(size);
  if (c < 1n << 47n) return end <= 1n << 47n ? undefined : 'E_NONCANONICAL';
  expect(c >= HOLE_END).toBe(true);
  return end <= TWO_64 ? undefined : 'E_OVERFLOW';
}

const edge = (p: number) => fc.integer({ min: -4, max: 4 }).map((d) => p + d * 0x1000 + (d & 1));
const anyStart = fc.oneof(
  fc.integer({ min: 0, max: E - 1 }),
  edge(H),
  edge(E),
  edge(0),
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -0, 0.5),
  fc.constantFrom<unknown>('16', null, undefined, {}, 16n, [1]),
);
const anySize = fc.oneof(
  fc.integer({ min: 0, max: 0x10_0000 }),
  fc.integer({ min: 0, max: E + 0x1000 }),
  edge(0),
  edge(H),
  fc.constantFrom(2 ** 53, 2 ** 53 - 1, Number.NaN, 1.5, -1),
  fc.constantFrom<unknown>('4096', null, undefined, 4096n),
);

describe('checkVirtRange: the one virtual-range rule', () => {
  it(
    'agrees with a canonical 64-bit BigInt model; isVirtRange agrees with it; virtEnd too',
    () => {
      fc.assert(
        fc.property(anyStart, anySize, (s, z) => {
          const want = reference(s, z);
          expect(errorCode(() => checkVirtRange(s, z))).toBe(want);
          expect(isVirtRange(s, z)).toBe(want === undefined);
          if (want === undefined)
            expect(virtEnd(s as VirtAddr, z as number)).toBe((s as number) + (z as number));
          else expect(errorCode(() => virtEnd(s as VirtAddr, z as number))).toBe(want);
          const r = errorCode(() => AddrRange.virtFromSize(s as VirtAddr, z as number));
          expect(r).toBe(want);
        }),
        { numRuns: propertyRuns(4000) },
      );
    },
    testTimeout(20_000),
  );

  it('refuses the issue #9 reproductions: a range across the hole, past the top', () => {
    // MemoryArea(virtAddr(0x7ffffffff000), 0x2000) would cover 0x7ffffffff000 and 0xffff800000000000
    const e = expectVmkitError(
      () => checkVirtRange(virtAddr(0x7fff_ffff_f000), 0x2000, 'area'),
      'E_NONCANONICAL',
    );
    expect(e.message).toBe(
      'E_NONCANONICAL: area [0x7ffffffff000, +0x2000) crosses the canonical hole at 0x800000000000: a virtual range must lie in one half: [0x0, 0x800000000000) or [0xffff800000000000, 0x10000000000000000)',
    );
    // findFreeArea(hint, size, AddrRange.of(0, 2 ** 48), align) returned 0x7fffffff0000 for a range across it
    expect(isVirtRange(0x7fff_ffff_0000, 0x20000)).toBe(false);
    expect(isVirtRange(0x7fff_ffff_0000, 0x10000)).toBe(true);
    expectVmkitError(() => checkVirtRange(virtAddr('0xfffffffffffff000'), 0x2000), 'E_OVERFLOW');
    expect(isVirtRange(virtAddr('0xfffffffffffff000'), 0x1000)).toBe(true);
    expectVmkitError(() => AddrRange.virt(virtAddr(0), E + 1), 'E_NONCANONICAL');
    expectVmkitError(() => AddrRange.virt(virtAddr(0x7fff_ffff_f000), H + 0x1000), 'E_NONCANONICAL');
    expectVmkitError(() => AddrRange.virt(virtAddr(0x2000), 0x1000), 'E_RANGE');
    expectVmkitError(() => AddrRange.virt(virtAddr(0x2000), Number.NaN), 'E_INVALID');
    // the generic constructor cannot see the brand, but printing the result as a virtual range refuses it
    const generic = AddrRange.of(0x7fff_ffff_f000, H + 0x1000);
    expectVmkitError(() => formatVirtRange(generic as unknown as AddrRange<VirtAddr>), 'E_NONCANONICAL');
  });

  it('names the values as passed and the rule', () => {
    const msg = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    expect(msg(() => checkVirtRange('16', 1))).toBe(
      'E_INVALID: range start "16" is not a number (a VirtAddr is a Number: build one with virtAddr())',
    );
    expect(msg(() => checkVirtRange(Number.NaN, 1))).toBe('E_INVALID: range start NaN is not an integer');
    expect(msg(() => checkVirtRange(1.5, 1))).toBe('E_INVALID: range start 1.5 is not an integer');
    expect(msg(() => checkVirtRange(-1, 1))).toMatch(/^E_RANGE: range start -1 is outside \[0, 2\^48\)/);
    expect(msg(() => checkVirtRange(E, 0))).toMatch(/^E_RANGE: range start 0x1000000000000 is outside/);
    expect(msg(() => checkVirtRange(0, 1.5, 'mapping'))).toBe(
      'E_INVALID: mapping size 1.5 is not an integer',
    );
    expect(msg(() => checkVirtRange(0, -4096))).toBe('E_RANGE: range size -4096 is negative');
    expect(msg(() => checkVirtRange(0, null))).toBe('E_INVALID: range size null is not a number');
    expect(msg(() => checkVirtRange(0, 2 ** 53))).toBe(
      'E_OVERFLOW: range size 0x20000000000000 is not below 2^53',
    );
    expect(msg(() => checkVirtRange(virtAddr('0xfffffffffffff000'), 0x2000))).toBe(
      'E_OVERFLOW: range [0xfffffffffffff000, +0x2000) passes the top of the address space (0xffffffffffffffff)',
    );
  });

  it('accepts empty ranges anywhere a start is, and ranges that end exactly at the end of a half', () => {
    for (const s of [0, H - 1, H, E - 1]) expect(isVirtRange(s, 0)).toBe(true);
    expect(isVirtRange(0, H)).toBe(true);
    expect(isVirtRange(0, H + 1)).toBe(false);
    expect(isVirtRange(H, H)).toBe(true);
    expect(isVirtRange(H, H + 1)).toBe(false);
    expect(isVirtRange(E, 0)).toBe(false);
  });
});

describe('isVirtAddr / checkVirtAddr', () => {
  it('accept exactly the integers in [0, 2^48)', () => {
    for (const v of [0, 1, H - 1, H, E - 1]) expect(isVirtAddr(v)).toBe(true);
    for (const v of [-1, E, 0.5, Number.NaN, Number.POSITIVE_INFINITY, '0', null, undefined, 0n, {}]) {
      expect(isVirtAddr(v)).toBe(false);
      expect(errorCode(() => checkVirtAddr(v))).toBe(
        typeof v === 'number' && Number.isInteger(v) ? 'E_RANGE' : 'E_INVALID',
      );
    }
  });
});

describe('virtDistance', () => {
  const lowerOrUpper = fc.tuple(
    fc.boolean(),
    fc.integer({ min: 0, max: H - 1 }),
    fc.integer({ min: 0, max: H - 1 }),
  );
  it(
    'is the signed canonical difference within one half (BigInt reference)',
    () => {
      fc.assert(
        fc.property(lowerOrUpper, ([high, x, y]) => {
          const a = ((high ? H : 0) + x) as VirtAddr;
          const b = ((high ? H : 0) + y) as VirtAddr;
          const d = virtDistance(a, b);
          expect(BigInt(d)).toBe(virtAddrToBigInt(a) - virtAddrToBigInt(b));
          expect(virtAdd(b, d)).toBe(a);
        }),
        { numRuns: propertyRuns(1000) },
      );
    },
    testTimeout(20_000),
  );
  it('refuses addresses of different halves (a - b would silently give the 48-bit difference)', () => {
    const k = virtAddr('0xffff800000000000');
    const u = virtAddr(0x1000);
    expect(k - u).toBe(H - 0x1000); // what the raw subtraction gives: not the canonical difference
    const e = expectVmkitError(() => virtDistance(k, u), 'E_NONCANONICAL');
    expect(e.message).toContain('0xffff800000000000 and 0x1000 are in different halves');
    expectVmkitError(() => virtDistance(u, k), 'E_NONCANONICAL');
    expectVmkitError(() => virtDistance(Number.NaN as VirtAddr, u), 'E_INVALID');
    expectVmkitError(() => virtDistance(u, E as VirtAddr), 'E_RANGE');
    expect(virtDistance(virtAddr('0xffffffffffffffff'), k)).toBe(H - 1);
  });
});

describe('alignUp and the hole (issue #9)', () => {
  it('the generic alignUp refuses a VirtAddr at compile time (checked by tsc over this file)', () => {
    const low = virtAddr('0x7ffffffff001');
    const high = virtAddr('0xfffffffffffff001');
    // @ts-expect-error alignUp cannot see the canonical hole: use virtAlignUp for a VirtAddr
    const a: VirtAddr = alignUp(low, 4096);
    // @ts-expect-error the same for a value whose rounding passes 2^48
    const b: VirtAddr = alignUp(high, 4096);
    // at run time (a JavaScript caller) it is plain numeric rounding, documented as such
    expect([a, b]).toEqual([H, E]);
    expect(alignUp(0x7fff_ffff_f001, 4096)).toBe(H); // a plain number (e.g. a physical address) is fine
  });
  it('virtAlignUp refuses to step into the hole or past the top', () => {
    const e1 = expectVmkitError(() => virtAlignUp(virtAddr('0x7ffffffff001'), 4096), 'E_NONCANONICAL');
    expect(e1.message).toBe(
      'E_NONCANONICAL: aligning 0x7ffffffff001 up to 0x1000 gives an address in the canonical hole',
    );
    expectVmkitError(() => virtAlignUp(virtAddr('0xfffffffffffff001'), 4096), 'E_OVERFLOW');
    expect(virtAlignUp(virtAddr('0xffff800000000001'), 4096)).toBe(virtAddr('0xffff800000001000'));
    expect(virtAlignUp(virtAddr('0xfffffffffffff000'), 4096)).toBe(virtAddr('0xfffffffffffff000'));
    expectVmkitError(() => virtAlignUp(virtAddr(0x1001), 3), 'E_INVALID');
    expectVmkitError(() => virtAlignUp(Number.NaN as VirtAddr, 4096), 'E_INVALID');
  });
  it(
    'virtAlignUp agrees with a BigInt reference on both halves',
    () => {
      fc.assert(
        fc.property(
          fc.boolean(),
          fc.integer({ min: 0, max: H - 1 }),
          fc.integer({ min: 0, max: 47 }),
          (high, x, k) => {
            const va = ((high ? H : 0) + x) as VirtAddr;
            const a = 2 ** k;
            const c = virtAddrToBigInt(va);
            const up = ((c + BigInt(a) - 1n) / BigInt(a)) * BigInt(a);
            const ok = high ? up < TWO_64 : up < 1n << 47n;
            if (ok) expect(virtAddrToBigInt(virtAlignUp(va, a))).toBe(up);
            else expect(errorCode(() => virtAlignUp(va, a))).toBe(high ? 'E_OVERFLOW' : 'E_NONCANONICAL');
          },
        ),
        { numRuns: propertyRuns(2000) },
      );
    },
    testTimeout(20_000),
  );
});
