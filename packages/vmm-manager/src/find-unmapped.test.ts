// findUnmappedArea: the seed's default window [0x4000_0000, 2 GiB), the configurable limit (past the
// seed), alignments above 4 KiB, size rounding, and a property against a brute-force search.
import { PAGE_SIZE_4K as PAGE } from '@vmkit/addr';
import { propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { halfOpen } from '../test/helpers.js';
import { DEFAULT_MMAP_BASE, DEFAULT_MMAP_LIMIT, VirtualMemoryManager } from './manager.js';

const MIB2 = 0x20_0000;

describe('findUnmappedArea', () => {
  it("stops at the seed's 2 GiB by default; a layout moves the limit", () => {
    expect([DEFAULT_MMAP_BASE, DEFAULT_MMAP_LIMIT]).toEqual([0x4000_0000, 0x8000_0000]);
    for (const layout of [undefined, { mmapLimit: 2 ** 47 }]) {
      const m = new VirtualMemoryManager({ layout });
      // everything from the base to one page below 2 GiB is taken
      m.addMemoryMap(halfOpen(0x4000_0000, 0x4000_0000 - PAGE, undefined));
      expect(m.findUnmappedArea(PAGE, PAGE)).toBe(0x8000_0000 - PAGE);
      expect(m.findUnmappedArea(2 * PAGE, PAGE)).toBe(layout === undefined ? undefined : 0x7fff_f000);
      expect(m.getLayout().mmapLimit).toBe(layout === undefined ? 0x8000_0000 : 2 ** 47);
    }
    // a size above the whole window never fits, and costs no search
    expect(new VirtualMemoryManager().findUnmappedArea(0x8000_0000 + PAGE, PAGE)).toBeUndefined();
  });

  it('a limit in the higher half keeps the result inside one half', () => {
    const m = new VirtualMemoryManager({ layout: { mmapBase: 2 ** 47 - PAGE, mmapLimit: 2 ** 48 } });
    expect(m.findUnmappedArea(PAGE, PAGE)).toBe(2 ** 47 - PAGE);
    expect(m.findUnmappedArea(2 * PAGE, PAGE)).toBe(2 ** 47); // [2^47 - 4 KiB, +8 KiB) would cross the hole
  });

  it('aligns the start and rounds the size up to the alignment', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(halfOpen(0x4000_0000, PAGE, undefined));
    expect(m.findUnmappedArea(PAGE, PAGE)).toBe(0x4000_1000);
    expect(m.findUnmappedArea(PAGE, MIB2)).toBe(0x4020_0000);
    m.setMmapBase(0x4000_1000); // a base off the alignment rounds up
    expect(m.findUnmappedArea(PAGE, MIB2)).toBe(0x4020_0000);
    // 5,000 bytes take two pages: a one-page hole at 0x40001000 does not fit them
    m.addMemoryMap(halfOpen(0x4000_2000, PAGE, undefined));
    expect(m.findUnmappedArea(PAGE, PAGE)).toBe(0x4000_1000);
    expect(m.findUnmappedArea(5000, PAGE)).toBe(0x4000_3000);
  });

  it(
    'finds the lowest aligned start at or above the base where the rounded size fits below the limit',
    () => {
      const WINDOW = 96; // pages from 0x4000_0000: crowded, so fits land between maps and at the limit
      const arb = fc.record({
        taken: fc.array(fc.tuple(fc.nat(WINDOW - 1), fc.integer({ min: 1, max: 16 })), { maxLength: 30 }),
        base: fc.nat(WINDOW),
        limit: fc.integer({ min: 1, max: WINDOW + 8 }),
        size: fc.integer({ min: 1, max: 8 * PAGE }),
        alignLog: fc.integer({ min: 12, max: 16 }),
      });
      fc.assert(
        fc.property(arb, ({ taken, base, limit, size, alignLog }) => {
          const origin = 0x4000_0000;
          const m = new VirtualMemoryManager({
            layout: { mmapBase: origin + base * PAGE, mmapLimit: origin + limit * PAGE },
          });
          const used = new Set<number>();
          for (const [p, n] of taken) {
            const pages = Math.min(n, WINDOW + 16 - p);
            let free = true;
            for (let k = p; k < p + pages; k++) if (used.has(k)) free = false;
            if (!free) continue;
            m.addMemoryMap(halfOpen(origin + p * PAGE, pages * PAGE, undefined));
            for (let k = p; k < p + pages; k++) used.add(k);
          }
          // brute force over aligned starts
          const align = 2 ** alignLog;
          const aligned = Math.ceil(size / align) * align;
          let want: number | undefined;
          const top = origin + limit * PAGE;
          for (let a = Math.ceil((origin + base * PAGE) / align) * align; a + aligned <= top; a += align) {
            let free = true;
            for (let v = a; v < a + aligned; v += PAGE) if (used.has((v - origin) / PAGE)) free = false;
            if (free) {
              want = a;
              break;
            }
          }
          expect(m.findUnmappedArea(size, align)).toBe(want);
        }),
        { numRuns: propertyRuns(300) },
      );
    },
    testTimeout(20_000),
  );
});
