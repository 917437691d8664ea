import { errorCode, propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  alignDown,
  alignUp,
  checkAlign,
  checkAligned,
  checkedAdd,
  checkUint,
  isAligned,
  isPowerOfTwo,
} from './align.js';

const value = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const shift = fc.integer({ min: 0, max: 40 });

describe('alignment laws against a BigInt reference', () => {
  it(
    'alignDown / alignUp / isAligned',
    () => {
      fc.assert(
        fc.property(value, shift, (x, k) => {
          const a = 2 ** k;
          const bx = BigInt(x);
          const ba = BigInt(a);
          const down = alignDown(x, a);
          expect(BigInt(down)).toBe((bx / ba) * ba);
          expect(isAligned(down, a)).toBe(true);
          expect(isAligned(x, a)).toBe(bx % ba === 0n);
          expect(alignDown(down, a)).toBe(down);
          const upRef = ((bx + ba - 1n) / ba) * ba;
          if (upRef < 2n ** 53n) {
            const up = alignUp(x, a);
            expect(BigInt(up)).toBe(upRef);
            expect(alignUp(up, a)).toBe(up);
            expect(up - x).toBeLessThan(a);
          } else expect(errorCode(() => alignUp(x, a))).toBe('E_OVERFLOW');
        }),
        { numRuns: propertyRuns(3000) },
      );
    },
    testTimeout(20_000),
  );
  it('powers of two', () => {
    expect([1, 2, 4096, 2 ** 31, 2 ** 32, 2 ** 52].every(isPowerOfTwo)).toBe(true);
    expect([0, 3, -4, 4096.5, 2 ** 53, Number.NaN, 6 * 2 ** 32].some(isPowerOfTwo)).toBe(false);
    expect(errorCode(() => checkAlign(3))).toBe('E_INVALID');
    expect(errorCode(() => checkAlign(4096))).toBeUndefined();
  });
  it('typed errors for bad values', () => {
    expect(errorCode(() => checkAligned(0x1001, 0x1000, 'start'))).toBe('E_UNALIGNED');
    expect(errorCode(() => checkUint(-1))).toBe('E_RANGE');
    expect(errorCode(() => checkUint(0.5))).toBe('E_INVALID');
    expect(errorCode(() => checkUint(Number.NaN))).toBe('E_INVALID');
    expect(errorCode(() => checkUint(2 ** 53))).toBe('E_OVERFLOW');
    expect(errorCode(() => checkedAdd(2 ** 52, 2 ** 52))).toBe('E_OVERFLOW');
    expect(errorCode(() => checkedAdd(1, -2))).toBe('E_RANGE');
    expect(checkedAdd(2 ** 52, 2 ** 51)).toBe(2 ** 52 + 2 ** 51);
  });
  it('messages name the value and the rule', () => {
    try {
      checkAligned(0x1234, 0x1000, 'start');
    } catch (e) {
      expect(String(e)).toContain('E_UNALIGNED');
      expect(String(e)).toContain('start 0x1234 is not aligned to 0x1000');
    }
  });
});
