import { PAGE_SIZE_4K as PAGE, PAGE_SIZE_2M, type PhysAddr } from '@vmkit/addr';
import { BitmapFrameAllocator, PageMapper, PhysicalMemory } from '@vmkit/paging-x86_64';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { va } from '../test/helpers.js';
import { dropResident, presentLeaves } from './resident.js';

const RW = { writable: true, user: true, executable: false };

describe('presentLeaves / dropResident', () => {
  it('finds exactly the present leaves of a range, against the mapper’s own list', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 4095 }), { maxLength: 24 }),
        fc.integer({ min: 0, max: 4096 }),
        fc.integer({ min: 0, max: 4096 }),
        (pages, a, b) => {
          const mem = new PhysicalMemory(4 << 20);
          const pt = new PageMapper(mem, new BitmapFrameAllocator(mem, { start: 0x10_0000 }));
          // Pages scattered over 16 GiB (every 4 MiB): several tables at each level.
          const vaOf = (p: number) => 0x1_0000_0000 + p * 0x40_0000;
          for (const p of pages) pt.map(va(vaOf(p)), (p * PAGE) as PhysAddr, PAGE, RW);
          const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
          const start = vaOf(lo);
          const end = vaOf(hi);
          const want = pages.filter((p) => vaOf(p) >= start && vaOf(p) < end).sort((x, y) => x - y);
          const got = presentLeaves(pt, start, end);
          expect(got).toEqual(want.flatMap((p) => [vaOf(p), PAGE]));
          dropResident(pt, start, end);
          expect(pt.leaves().map((l) => l.va)).toEqual(
            pages
              .filter((p) => !want.includes(p))
              .sort((x, y) => x - y)
              .map(vaOf),
          );
        },
      ),
      { numRuns: 60 },
    );
  }, 20_000);

  it('splits a huge leaf that reaches outside the range', () => {
    const mem = new PhysicalMemory(4 << 20);
    const pt = new PageMapper(mem, new BitmapFrameAllocator(mem, { start: 0x10_0000 }));
    pt.map(va(0x4000_0000), 0x20_0000 as PhysAddr, PAGE_SIZE_2M, RW);
    expect(presentLeaves(pt, 0x4000_1000, 0x4000_3000)).toEqual([0x4000_0000, PAGE_SIZE_2M]);
    dropResident(pt, 0x4000_1000, 0x4000_3000);
    expect(pt.translate(va(0x4000_0000))?.pa).toBe(0x20_0000);
    expect(pt.translate(va(0x4000_1000))).toBeUndefined();
    expect(pt.translate(va(0x4000_2000))).toBeUndefined();
    expect(pt.translate(va(0x4000_3000))?.pa).toBe(0x20_3000);
  });
});
