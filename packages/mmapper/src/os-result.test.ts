import { describe, expect, it } from 'vitest';
import { BAD_PAGE_RANGE, isPageRange, osError } from './os-result.js';

const P = 0x1000;
const HOLE = 2 ** 47;

describe('isPageRange', () => {
  it('accepts whole pages below 2^48, in either half', () => {
    for (const oneHalf of [false, true]) {
      expect(isPageRange(0, P, oneHalf)).toBe(true);
      expect(isPageRange(HOLE - P, P, oneHalf)).toBe(true);
      expect(isPageRange(HOLE, P, oneHalf)).toBe(true);
      expect(isPageRange(2 ** 48 - P, P, oneHalf)).toBe(true);
    }
  });
  it('refuses unaligned, empty, negative, non-integer and past-2^48 ranges', () => {
    const bad: [number, number][] = [
      [1, P],
      [0, P + 1],
      [0, 0],
      [0, -P],
      [-P, P],
      [0.5, P],
      [0, Number.NaN],
      [Number.POSITIVE_INFINITY, P],
      [2 ** 48 - P, 2 * P],
      [2 ** 48, P],
    ];
    for (const oneHalf of [false, true])
      for (const [s, b] of bad) expect(isPageRange(s, b, oneHalf), `${s}+${b}`).toBe(false);
  });
  it('refuses a range across 2^47 only with oneHalf', () => {
    expect(isPageRange(HOLE - P, 2 * P, false)).toBe(true);
    expect(isPageRange(HOLE - P, 2 * P, true)).toBe(false);
    expect(isPageRange(0, 2 ** 48, true)).toBe(false);
  });
});

describe('osError', () => {
  it('carries the error name and text', () => {
    expect(osError('EINVAL', BAD_PAGE_RANGE)).toEqual({
      errno: 'EINVAL',
      message: 'start not page-aligned or size not a positive multiple of 4 KiB',
    });
  });
});
