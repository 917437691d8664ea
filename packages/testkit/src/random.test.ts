import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';

/** The first outputs, scaled by 2^32 to exact integers. */
function first(seed: number, n: number): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => r() * 4294967296);
}

describe('seededRandom', () => {
  // Known outputs of the mulberry32 generator the benches used before it moved here: benchmark inputs
  // must not change.
  it('gives the known sequences', () => {
    expect(first(42, 5)).toEqual([2581720956, 1925393290, 3661312704, 2876485805, 750819978]);
    expect(first(7, 5)).toEqual([50271532, 266108690, 4195786334, 3002305430, 2239590375]);
    expect(first(0, 5)).toEqual([1144304738, 1416247, 958946056, 627933444, 2007157716]);
  });
  it('keeps to the sequence far out', () => {
    const r = seededRandom(42);
    let x = 0;
    for (let i = 0; i < 1_000_000; i++) x = r();
    expect(x * 4294967296).toBe(3314057631);
  });
  it('reduces the seed to 32 bits', () => {
    expect(first(-1, 5)).toEqual([3850105811, 813802916, 3073704848, 4054706436, 3630262831]);
    expect(first(-1, 5)).toEqual(first(0xffffffff, 5));
    expect(first(2 ** 32 + 5, 5)).toEqual([2962560684, 3318907087, 943874942, 2676532661, 365661495]);
  });
  it('gives integers / 2^32 in [0, 1)', () => {
    const r = seededRandom(123);
    for (let i = 0; i < 10_000; i++) {
      const x = r();
      expect(x >= 0 && x < 1 && Number.isInteger(x * 4294967296)).toBe(true);
    }
  });
  it('rejects a seed that is not a safe integer', () => {
    for (const bad of [0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1' as unknown as number])
      expect(() => seededRandom(bad)).toThrow(TypeError);
  });
});
