import { propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressToChunksDown, chunkAlignDown } from './constants.js';
import {
  chunkIndexToAddress,
  inSlabIndex,
  LOG_MMAP_CHUNKS_PER_SLAB,
  LOG_MMAP_SLAB_BYTES,
  MAX_SLABS,
  MMAP_CHUNKS_PER_SLAB,
  MMAP_SLAB_BYTES,
  slabAlignDown,
  slabIndex,
  slabLimit,
} from './two-level.js';

const addr48 = fc.integer({ min: 0, max: 2 ** 48 - 1 });

describe('two-level slab indexing', () => {
  it("has MMTk's layout: 32 GiB slabs of 8,192 chunks, 8,192 slabs for 48 bits", () => {
    expect(LOG_MMAP_SLAB_BYTES).toBe(22 + (48 - 22) / 2);
    expect(MMAP_SLAB_BYTES).toBe(32 * 2 ** 30);
    expect(MMAP_CHUNKS_PER_SLAB).toBe(2 ** LOG_MMAP_CHUNKS_PER_SLAB);
    expect(MMAP_CHUNKS_PER_SLAB * MAX_SLABS * 2 ** 22).toBe(2 ** 48);
  });

  it(
    'slab and in-slab index recompose the chunk index; the chunk is inside its slab',
    () => {
      fc.assert(
        fc.property(addr48, (a) => {
          const slab = slabIndex(a);
          const k = inSlabIndex(a);
          expect(slab).toBeGreaterThanOrEqual(0);
          expect(slab).toBeLessThan(MAX_SLABS);
          expect(k).toBeGreaterThanOrEqual(0);
          expect(k).toBeLessThan(MMAP_CHUNKS_PER_SLAB);
          expect(slab * MMAP_CHUNKS_PER_SLAB + k).toBe(addressToChunksDown(a));
          const base = slabAlignDown(a);
          expect(base).toBeLessThanOrEqual(a);
          expect(a).toBeLessThan(slabLimit(a));
          expect(slabLimit(a) - base).toBe(MMAP_SLAB_BYTES);
          expect(chunkIndexToAddress(base, k)).toBe(chunkAlignDown(a));
          // the same bit arithmetic MMTk does on usize, here on BigInt as an independent oracle
          const b = BigInt(a);
          expect(BigInt(slab)).toBe(b >> 35n);
          expect(BigInt(k)).toBe((b & ((1n << 35n) - 1n)) >> 22n);
        }),
        { numRuns: propertyRuns(2000) },
      );
    },
    testTimeout(20_000),
  );

  it('neighbouring slabs meet exactly: the last chunk of one, the first of the next', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_SLABS - 1 }), (s) => {
        const boundary = s * MMAP_SLAB_BYTES;
        expect([slabIndex(boundary - 1), inSlabIndex(boundary - 1)]).toEqual([
          s - 1,
          MMAP_CHUNKS_PER_SLAB - 1,
        ]);
        expect([slabIndex(boundary), inSlabIndex(boundary)]).toEqual([s, 0]);
        expect(slabLimit(boundary - 1)).toBe(boundary);
      }),
      { numRuns: propertyRuns(500) },
    );
    expect(slabLimit(2 ** 48 - 1)).toBe(2 ** 48); // MMTk's `slab_limit` may be the end of the space
  });
});
