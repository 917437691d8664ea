import { expectVmkitError, propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVmkitError } from './errors.js';
import {
  canonicalize,
  formatVirtAddr,
  isCanonical,
  isHigherHalf,
  pageOffset,
  parseVirtAddr,
  pdIndex,
  pdptIndex,
  pml4Index,
  ptIndex,
  tableIndex,
  virtAdd,
  virtAddr,
  virtAddrFromBigInt,
  virtAddrFromBits,
  virtAddrFromSigned,
  virtAddrToBigInt,
  virtAddrToSigned,
  virtAlignUp,
  virtEnd,
  virtPageAddr,
  virtPageNum,
} from './virt.js';

const TWO_64 = 1n << 64n;
/** Any canonical 64-bit address, both halves. */
const canonical = fc.oneof(fc.bigInt(0n, (1n << 47n) - 1n), fc.bigInt(0xffff_8000_0000_0000n, TWO_64 - 1n));
/** Any 64-bit value that is not canonical. */
const nonCanonical = fc.bigInt(1n << 47n, 0xffff_7fff_ffff_ffffn);

describe('canonical boundaries (Intel SDM Vol. 1 §3.3.7.1)', () => {
  it('accepts the top of the lower half and the bottom of the higher half', () => {
    expect(isCanonical(0x0000_7fff_ffff_ffffn)).toBe(true);
    expect(isCanonical(0xffff_8000_0000_0000n)).toBe(true);
    expect(isCanonical(0xffff_ffff_ffff_ffffn)).toBe(true);
    expect(isCanonical(0n)).toBe(true);
  });
  it('rejects the first address of the hole and the last one', () => {
    expect(isCanonical(0x0000_8000_0000_0000n)).toBe(false);
    expect(isCanonical(0xffff_7fff_ffff_ffffn)).toBe(false);
    expect(isCanonical(0x1234_0000_0000_0000n)).toBe(false);
    expectVmkitError(() => virtAddr(0x0000_8000_0000_0000n), 'E_NONCANONICAL');
    expectVmkitError(() => virtAddr('0xffff_7fff_ffff_ffff'), 'E_NONCANONICAL');
    expectVmkitError(() => virtAddr(0x8000_0000_0000), 'E_NONCANONICAL');
  });
  it('isCanonical never throws on junk', () => {
    expect(isCanonical(-1n)).toBe(false);
    expect(isCanonical(TWO_64)).toBe(false);
    expect(isCanonical(Number.NaN)).toBe(false);
    expect(isCanonical(1.5)).toBe(false);
    expect(isCanonical(-4096)).toBe(false);
  });
});

describe('table indexes (Intel SDM Vol. 3A §4.5, figure 4-8)', () => {
  it('splits the kernel base 0xffffffff80000000 into 511/510/0/0', () => {
    const va = virtAddr('0xffffffff80000000');
    expect([pml4Index(va), pdptIndex(va), pdIndex(va), ptIndex(va), pageOffset(va)]).toEqual([
      511, 510, 0, 0, 0,
    ]);
  });
  it('splits a user address with every field non-zero', () => {
    // 0x00007f12_3456_789a = PML4 254, PDPT 72, PD 418, PT 359, offset 0x89a
    const va = virtAddr(0x7f12_3456_789a);
    expect([pml4Index(va), pdptIndex(va), pdIndex(va), ptIndex(va), pageOffset(va)]).toEqual([
      254, 72, 418, 359, 0x89a,
    ]);
    expect([4, 3, 2, 1].map((l) => tableIndex(va, l as 1 | 2 | 3 | 4))).toEqual([254, 72, 418, 359]);
    expect(pageOffset(va, 0x20_0000)).toBe(0x16_789a);
  });
  it('the first higher-half address has PML4 index 256', () => {
    const va = virtAddr(0xffff_8000_0000_0000n);
    expect(pml4Index(va)).toBe(256);
    expect(isHigherHalf(va)).toBe(true);
  });
  it('tableIndex refuses a bad level', () => {
    expectVmkitError(() => tableIndex(virtAddr(0), 5 as 1), 'E_INVALID');
    expectVmkitError(() => tableIndex(virtAddr(0), 0 as 1), 'E_INVALID');
  });
  it(
    'matches a BigInt reference for every canonical address',
    () => {
      fc.assert(
        fc.property(canonical, (v) => {
          const va = virtAddrFromBigInt(v);
          expect(pml4Index(va)).toBe(Number((v >> 39n) & 511n));
          expect(pdptIndex(va)).toBe(Number((v >> 30n) & 511n));
          expect(pdIndex(va)).toBe(Number((v >> 21n) & 511n));
          expect(ptIndex(va)).toBe(Number((v >> 12n) & 511n));
          expect(pageOffset(va)).toBe(Number(v & 0xfffn));
        }),
        { numRuns: propertyRuns(2000) },
      );
    },
    testTimeout(20_000),
  );
});

describe('conversions and formatting', () => {
  it('formats as users read addresses', () => {
    expect(formatVirtAddr(virtAddr('0xffffffff80000000'))).toBe('0xffffffff80000000');
    expect(formatVirtAddr(virtAddr(0x401000))).toBe('0x401000');
    expect(formatVirtAddr(virtAddr(0x401000), true)).toBe('0x0000000000401000');
    expect(formatVirtAddr(virtAddr(0))).toBe('0x0');
  });
  it('parses hex with underscores, decimal and white space', () => {
    expect(parseVirtAddr(' 0xFFFF_8000_0000_1000 ')).toBe(0x8000_0000_1000);
    expect(virtAddr('4096')).toBe(4096);
    for (const bad of ['', '0x', '-1', '0x_1', '12a', '0b101', '1e3', 'abc'])
      expectVmkitError(() => virtAddr(bad), 'E_INVALID');
  });
  it('rejects bad Numbers with their own codes', () => {
    expectVmkitError(() => virtAddr(Number.NaN), 'E_INVALID');
    expectVmkitError(() => virtAddr(1.5), 'E_INVALID');
    expectVmkitError(() => virtAddr(-1), 'E_RANGE');
    expectVmkitError(() => virtAddr(2 ** 53), 'E_OVERFLOW');
    expectVmkitError(() => virtAddr(0xffff_8000_0000_0000), 'E_OVERFLOW');
    expectVmkitError(() => virtAddr(-1n), 'E_RANGE');
    expectVmkitError(() => virtAddr(TWO_64), 'E_RANGE');
  });
  it(
    'round-trips every canonical address through BigInt, hex and the signed form',
    () => {
      fc.assert(
        fc.property(canonical, (v) => {
          const va = virtAddrFromBigInt(v);
          expect(virtAddrToBigInt(va)).toBe(v);
          expect(BigInt(formatVirtAddr(va))).toBe(v);
          expect(parseVirtAddr(formatVirtAddr(va, true))).toBe(va);
          expect(BigInt.asIntN(64, v)).toBe(BigInt(virtAddrToSigned(va)));
          expect(virtAddrFromSigned(virtAddrToSigned(va))).toBe(va);
          expect(virtAddrFromBits(va)).toBe(va);
          expect(virtPageAddr(virtPageNum(va))).toBe(va - (va % 4096));
        }),
        { numRuns: propertyRuns(2000) },
      );
    },
    testTimeout(20_000),
  );
  it(
    'refuses every non-canonical address',
    () => {
      fc.assert(
        fc.property(nonCanonical, (v) => {
          expect(isCanonical(v)).toBe(false);
          expectVmkitError(() => virtAddr(v), 'E_NONCANONICAL');
        }),
        { numRuns: propertyRuns(100) },
      );
    },
    testTimeout(20_000),
  );
  it(
    'canonicalize keeps bits 47..0 and sign-extends bit 47',
    () => {
      fc.assert(
        fc.property(fc.bigInt(0n, TWO_64 - 1n), (v) => {
          const va = canonicalize(v);
          const ext = BigInt.asUintN(64, BigInt.asIntN(48, v));
          expect(virtAddrToBigInt(va)).toBe(ext);
        }),
        { numRuns: propertyRuns(100) },
      );
      expect(canonicalize(0x8000_0000_0000)).toBe(0x8000_0000_0000);
      expect(formatVirtAddr(canonicalize(0x8000_0000_0000))).toBe('0xffff800000000000');
      expectVmkitError(() => canonicalize(-1), 'E_RANGE');
      expectVmkitError(() => canonicalize(0.5), 'E_INVALID');
      expectVmkitError(() => canonicalize(TWO_64), 'E_RANGE');
    },
    testTimeout(20_000),
  );
  it('virtAddrFromBits and virtAddrFromSigned check their domain', () => {
    expectVmkitError(() => virtAddrFromBits(2 ** 48), 'E_RANGE');
    expectVmkitError(() => virtAddrFromBits(-1), 'E_RANGE');
    expectVmkitError(() => virtAddrFromBits(0.25), 'E_INVALID');
    expectVmkitError(() => virtAddrFromSigned(2 ** 47), 'E_NONCANONICAL');
    expectVmkitError(() => virtAddrFromSigned(-(2 ** 47) - 1), 'E_NONCANONICAL');
    expect(virtAddrFromSigned(-(2 ** 31))).toBe(virtAddr('0xffffffff80000000'));
  });
});

describe('checked arithmetic', () => {
  it(
    'matches a BigInt reference and refuses to cross the hole or the ends',
    () => {
      fc.assert(
        fc.property(canonical, fc.integer({ min: -(2 ** 48), max: 2 ** 48 }), (v, d) => {
          const va = virtAddrFromBigInt(v);
          const ref = v + BigInt(d);
          const valid = ref >= 0n && ref < TWO_64 && isCanonical(ref) && v < 1n << 63n === ref < 1n << 63n;
          if (valid) expect(virtAddrToBigInt(virtAdd(va, d))).toBe(ref);
          else {
            let err: unknown;
            try {
              virtAdd(va, d);
            } catch (e) {
              err = e;
            }
            expect(isVmkitError(err, 'E_NONCANONICAL') || isVmkitError(err, 'E_OVERFLOW')).toBe(true);
          }
        }),
        { numRuns: propertyRuns(2000) },
      );
    },
    testTimeout(20_000),
  );
  it('names the hole and the top', () => {
    const top = virtAddr(0x7fff_ffff_f000);
    expectVmkitError(() => virtAdd(top, 0x1000), 'E_NONCANONICAL');
    expectVmkitError(() => virtAdd(virtAddr(0xffff_ffff_ffff_f000n), 0x1000), 'E_OVERFLOW');
    expectVmkitError(() => virtAdd(virtAddr(0), -1), 'E_OVERFLOW');
    expectVmkitError(() => virtAdd(top, 0.5), 'E_INVALID');
    expect(virtEnd(top, 0x1000)).toBe(2 ** 47);
    expect(virtEnd(virtAddr(0xffff_ffff_ffff_f000n), 0x1000)).toBe(2 ** 48);
    expectVmkitError(() => virtEnd(top, 0x2000), 'E_NONCANONICAL');
    expectVmkitError(() => virtEnd(virtAddr(0xffff_ffff_ffff_f000n), 0x2000), 'E_OVERFLOW');
    expectVmkitError(() => virtEnd(top, -1), 'E_RANGE');
    expect(virtAlignUp(virtAddr(0x1001), 0x1000)).toBe(0x2000);
    expectVmkitError(() => virtAlignUp(virtAddr(0x7fff_ffff_f001), 0x1000), 'E_NONCANONICAL');
  });
});
