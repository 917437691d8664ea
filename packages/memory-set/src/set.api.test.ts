// The set as a kernel uses it (issues #9 and #10): argument checks, canonical text, what unmap/protect
// return, areasIn, flags by value, merging, findFreeArea across the canonical hole and against a
// brute-force model.
import { AddrRange, isVmkitError, virtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MockBackend, MockPageTable } from '../test/mock.js';
import {
  type AreaIndexFactory,
  BTreeIndex,
  isMappingError,
  type MappingBackend,
  type MappingFailure,
  MemoryArea,
  MemorySet,
  SortedArrayIndex,
} from './index.js';

const P = 0x1000;
const HALF = 2 ** 47;
type NSet = MemorySet<number, MockPageTable, number, MockBackend>;
const area = (start: number, size: number, flags: number, b = new MockBackend(P)) =>
  new MemoryArea<number, MockPageTable, number, MockBackend>(start, size, flags, b);

function failure(fn: () => unknown, kind: 'InvalidParam' | 'AlreadyExists' | 'BadState'): MappingFailure {
  try {
    fn();
  } catch (e) {
    expect(isMappingError(e, kind), String(e)).toBe(true);
    return e as MappingFailure;
  }
  throw new Error(`expected ${kind}`);
}

/** A backend that records nothing and maps nothing (for sets over the whole 48-bit space). */
class NullBackend implements MappingBackend<unknown, null, number> {
  constructor(
    readonly pageSize = P,
    readonly tag = 0,
  ) {}
  map(): boolean {
    return true;
  }
  unmap(): boolean {
    return true;
  }
  protect(): boolean {
    return true;
  }
  split(): NullBackend {
    return new NullBackend(this.pageSize, this.tag);
  }
  shrinkLeft(): void {}
  shrinkRight(): void {}
  clone(): NullBackend {
    return new NullBackend(this.pageSize, this.tag);
  }
  merge(next: MappingBackend<unknown, null, number>): boolean {
    return next instanceof NullBackend && next.tag === this.tag && next.pageSize === this.pageSize;
  }
}
type USet = MemorySet<unknown, null, number, NullBackend>;
const narea = (start: number, size: number, flags: unknown = 1, tag = 0) =>
  new MemoryArea<unknown, null, number, NullBackend>(start, size, flags, new NullBackend(P, tag));

describe('every public entry checks its arguments (typed errors naming the value, state unchanged)', () => {
  const set: NSet = new MemorySet();
  const pt = new MockPageTable(0x10000, P);
  set.map(area(0x2000, 0x2000, 1), pt, false);
  const snap = () => set.toString() + pt.entries.join('');
  const before = snap();

  it.each([
    [
      'map(area, undefined)',
      () => set.map(area(0x8000, P, 1), undefined as never, false),
      /page table undefined/,
    ],
    [
      'map(area, pt) without unmapOverlap',
      () => set.map(area(0x8000, P, 1), pt, undefined as never),
      /unmapOverlap undefined is not a boolean/,
    ],
    ['map(undefined)', () => set.map(undefined as never, pt, false), /area undefined is not a MemoryArea/],
    ['map({})', () => set.map({} as never, pt, false), /area \{\} is not a MemoryArea/],
    ['unmap("16", …)', () => set.unmap('16' as never, P, pt), /start "16" is not an integer/],
    ['unmap(NaN, …)', () => set.unmap(Number.NaN, P, pt), /start NaN is not an integer/],
    ['unmap(1.5, …)', () => set.unmap(1.5, P, pt), /start 1\.5 is not an integer/],
    ['unmap(0, -1)', () => set.unmap(0, -1, pt), /size -1 is not an integer/],
    ['unmap(0, 1, undefined)', () => set.unmap(0, P, undefined as never), /page table undefined/],
    [
      'protect(…, not a function)',
      () => set.protect(0x2000, P, 3 as never, pt),
      /updateFlags 3 is not a function/,
    ],
    ['find(null)', () => set.find(null as never), /address null is not an integer/],
    ['find(-1)', () => set.find(-1), /address -1 is not an integer/],
    [
      'findFreeArea bad align',
      () => set.findFreeArea(0, P, AddrRange.of(0, 0x10000), 3),
      /alignment 3 is not a power of two/,
    ],
    [
      'findFreeArea align "4096"',
      () => set.findFreeArea(0, P, AddrRange.of(0, 0x10000), '4096' as never),
      /alignment "4096"/,
    ],
    [
      'findFreeArea limit null',
      () => set.findFreeArea(0, P, null as never, P),
      /limit null is not an address range/,
    ],
    [
      'overlaps(undefined)',
      () => set.overlaps(undefined as never),
      /range undefined is not an address range/,
    ],
    ['extendArea("x")', () => set.extendArea('x' as never, P, pt), /address "x"/],
    ['areasIn(0, Infinity)', () => set.areasIn(0, Number.POSITIVE_INFINITY), /size Infinity/],
    [
      'unmapMetadata(2^47 - 4096, 8192)',
      () => set.unmapMetadata(HALF - P, 2 * P),
      /crosses the canonical hole/,
    ],
    ['mergeAdjacent(0, NaN)', () => set.mergeAdjacent(0, Number.NaN), /size NaN/],
    [
      'new MemoryArea(undefined)',
      () => new MemoryArea(undefined as never, P, 1, new MockBackend(P)),
      /area start undefined/,
    ],
    ['new MemoryArea(0, "1")', () => new MemoryArea(0, '1' as never, 1, new MockBackend(P)), /area size "1"/],
    ['new MemoryArea(0, 1, 1, null)', () => new MemoryArea(0, 1, 1, null as never), /area backend null/],
    ['new MemorySet(null)', () => new MemorySet(null as never), /options null is not an object/],
    [
      'new MemorySet({ virtual: 1 })',
      () => new MemorySet({ virtual: 1 as never }),
      /options.virtual 1 is not a boolean/,
    ],
  ])('%s', (_name, fn, message) => {
    const e = failure(fn, 'InvalidParam');
    expect(e.message).toMatch(message);
    expect(e.code).toBe('E_INVALID_PARAM');
    expect(snap()).toBe(before);
  });
});

describe('canonical addresses in toString and messages', () => {
  const hi = virtAddr('0xffff800000000000');
  it('MemoryArea and MemorySet print higher-half addresses canonically', () => {
    const a = narea(hi, 0x2000);
    expect(a.toString()).toBe('MemoryArea([0xffff800000000000, 0xffff800000002000), flags: 1)');
    const set: USet = new MemorySet();
    set.map(a, null, false);
    set.map(narea(virtAddr('0xfffffffffffff000'), P, 2), null, false);
    expect(set.toString()).toBe(
      [
        'MemorySet(2 areas)',
        '  MemoryArea([0xffff800000000000, 0xffff800000002000), flags: 1)',
        '  MemoryArea([0xfffffffffffff000, 0x10000000000000000), flags: 2)',
      ].join('\n'),
    );
    const e = failure(() => set.map(narea(hi + P, P), null, false), 'AlreadyExists');
    expect(e.message).toBe(
      'E_ALREADY_EXISTS: MemoryArea([0xffff800000001000, 0xffff800000002000), flags: 1) overlaps an existing area',
    );
  });
  it('a non-virtual set prints plain hex', () => {
    const set: USet = new MemorySet({ virtual: false });
    set.map(narea(2 ** 50, P), null, false);
    expect(set.toString()).toBe(
      'MemorySet(1 areas)\n  MemoryArea([0x4000000000000, 0x4000000001000), flags: 1)',
    );
  });
});

describe('the virtual rule in the set (default) and its opt-out', () => {
  it('map, unmap, protect, extendArea refuse ranges across the hole or past 2^48', () => {
    const set: USet = new MemorySet();
    failure(() => set.map(narea(HALF - P, 2 * P), null, false), 'InvalidParam');
    failure(() => set.map(narea(2 ** 48, P), null, false), 'InvalidParam');
    failure(() => set.map(narea(2 ** 48 - P, 2 * P), null, false), 'InvalidParam');
    set.map(narea(HALF - P, P), null, false);
    const e = failure(() => set.extendArea(HALF - P, P, null), 'InvalidParam');
    expect(e.message).toMatch(/grown area \[0x7ffffffff000, \+0x2000\) crosses the canonical hole/);
    failure(() => set.unmap(0, 2 ** 48, null), 'InvalidParam');
    failure(() => set.protect(HALF - P, 2 * P, () => 2, null), 'InvalidParam');
    expect(set.len()).toBe(1);
    set.map(narea(HALF, P), null, false); // the first page of the higher half is fine
    expect(set.len()).toBe(2);
  });
  it('{ virtual: false } accepts any integer range below 2^53', () => {
    const set: USet = new MemorySet({ virtual: false });
    set.map(narea(HALF - P, 2 * P), null, false);
    set.unmap(0, 2 ** 50, null);
    expect(set.len()).toBe(0);
  });
});

describe('findFreeArea never crosses the canonical hole', () => {
  it('the reproduction: a search up to 2^48 from the top of the lower half goes to the higher half', () => {
    const set: USet = new MemorySet();
    set.map(narea(0x7fffffe00000, 0x1f0000), null, false); // up to 0x7fffffff0000
    const x = set.findFreeArea(0x7fffffe00000, 0x20000, AddrRange.of(0, 2 ** 48), 0x10000);
    expect(x).toBe(HALF); // 0xffff800000000000, not 0x7fffffff0000 (whose range would cross)
    // with the higher half's start taken too, the next free range after it
    set.map(narea(HALF, 0x30000), null, false);
    expect(set.findFreeArea(0x7fffffe00000, 0x20000, AddrRange.of(0, 2 ** 48), 0x10000)).toBe(HALF + 0x30000);
    // a hint in the higher half never returns a lower-half range
    expect(set.findFreeArea(HALF + 0x1000, P, AddrRange.of(0, 2 ** 48), P)).toBe(HALF + 0x30000);
    // nothing fits below 2^48 at the very top
    expect(set.findFreeArea(2 ** 48 - P, 2 * P, AddrRange.of(0, 2 ** 48), P)).toBeUndefined();
  });

  it('property: the result is the lowest free aligned range in one half (brute force near the hole)', () => {
    // Coordinates in pages around the hole: page k is HALF + k * P, k in [-32, 32).
    const areasArb = fc.array(
      fc.record({ k: fc.integer({ min: -32, max: 31 }), n: fc.integer({ min: 1, max: 6 }) }),
      {
        maxLength: 8,
      },
    );
    fc.assert(
      fc.property(
        areasArb,
        fc.integer({ min: -40, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(1, 2, 4),
        (specs, hintK, m, alignN) => {
          const sizeN = m * alignN; // the crate gives undefined for a size that is not a multiple of align
          const set: USet = new MemorySet();
          const used = new Set<number>();
          for (const { k, n } of specs) {
            const len = Math.min(n, k < 0 ? -k : 32 - k);
            const pages = Array.from({ length: len }, (_, i) => k + i);
            if (pages.some((p) => used.has(p))) continue;
            set.map(narea(HALF + k * P, len * P), null, false);
            for (const p of pages) used.add(p);
          }
          const lo = HALF - 32 * P;
          const hi = HALF + 32 * P;
          const hint = HALF + hintK * P;
          const got = set.findFreeArea(Math.max(hint, 0), sizeN * P, AddrRange.of(lo, hi), alignN * P);
          let want: number | undefined;
          for (let k = -32; k + sizeN <= 32 && want === undefined; k++) {
            const x = HALF + k * P;
            if (x < hint || x % (alignN * P) !== 0) continue;
            if (k < 0 && k + sizeN > 0) continue; // would cross the hole
            let free = true;
            for (let i = 0; i < sizeN; i++) if (used.has(k + i)) free = false;
            if (free) want = x;
          }
          // A hint in the higher half never looks back into the lower half.
          expect(got).toBe(want);
        },
      ),
      { numRuns: 400 },
    );
  }, 20_000);
});

describe('findFreeArea against a brute-force model over many areas (gap index)', () => {
  const indexes: [string, AreaIndexFactory | undefined][] = [
    ['BlockIndex', undefined],
    ['BTreeIndex', () => new BTreeIndex()],
    ['SortedArrayIndex', () => new SortedArrayIndex()],
  ];
  it.each(indexes)(
    '%s: random maps and unmaps, then random queries',
    (_n, index) => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
          let s = seed;
          const rnd = (n: number) => {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            return s % n;
          };
          const PAGES = 4096;
          const set: USet = new MemorySet(index === undefined ? {} : { index });
          const used = new Uint8Array(PAGES);
          for (let step = 0; step < 1500; step++) {
            const k = rnd(PAGES);
            const n = 1 + rnd(3);
            if (rnd(4) === 0) {
              set.unmap(k * P, n * P, null);
              used.fill(0, k, Math.min(PAGES, k + n));
            } else if (k + n <= PAGES && !used.subarray(k, k + n).some((u) => u === 1)) {
              set.map(narea(k * P, n * P), null, false);
              used.fill(1, k, k + n);
            }
          }
          for (let q = 0; q < 60; q++) {
            const hint = rnd(PAGES) * P;
            const align = (1 << rnd(3)) * P;
            const sizeN = (1 + rnd(4)) * (align / P); // a multiple of align (else undefined, as the crate)
            const lim = AddrRange.of(rnd(64) * P, (PAGES - rnd(64)) * P);
            let want: number | undefined;
            for (let x = Math.max(hint, lim.start); x + sizeN * P <= lim.end; x += P) {
              if (x % align !== 0) continue;
              const k = x / P;
              if (!used.subarray(k, k + sizeN).some((u) => u === 1)) {
                want = x;
                break;
              }
            }
            expect(set.findFreeArea(hint, sizeN * P, lim, align)).toBe(want);
          }
        }),
        { numRuns: 12 },
      );
    },
    60_000,
  );
});

describe('unmap and protect say what they did; areasIn lists the areas in a range', () => {
  it('reports covered bytes, holes and areas', () => {
    const set: NSet = new MemorySet();
    const pt = new MockPageTable(0x20000, P);
    set.map(area(0x1000, 0x2000, 1), pt, false);
    set.map(area(0x4000, 0x2000, 1), pt, false);
    expect(set.areasIn(0x2000, 0x3000).map((a) => [a.start, a.end])).toEqual([
      [0x1000, 0x3000],
      [0x4000, 0x6000],
    ]);
    expect(set.areasIn(0x3000, 0x1000)).toEqual([]);
    expect(set.protect(0x1000, 0x5000, () => 2, pt)).toEqual({
      coveredBytes: 0x4000,
      holeBytes: 0x1000,
      areas: 2,
      changedBytes: 0x4000,
    });
    expect(set.protect(0x1000, 0x2000, (f) => (f === 2 ? undefined : 2), pt)).toEqual({
      coveredBytes: 0x2000,
      holeBytes: 0,
      areas: 1,
      changedBytes: 0,
    });
    expect(set.unmap(0x2000, 0x3000, pt)).toEqual({
      coveredBytes: 0x2000,
      holeBytes: 0x1000,
      areas: 2,
      changedBytes: 0x2000,
    });
    expect(set.unmap(0x8000, 0x1000, pt)).toEqual({
      coveredBytes: 0,
      holeBytes: 0x1000,
      areas: 0,
      changedBytes: 0,
    });
    expect(set.unmap(0x8000, 0, pt).holeBytes).toBe(0);
  });
});

describe('protect compares flags by value', () => {
  it('a fresh but equal flags object splits nothing and calls no backend', () => {
    const log: string[] = [];
    class LogBackend extends NullBackend {
      override protect(): boolean {
        log.push('protect');
        return true;
      }
    }
    const set = new MemorySet<{ w: boolean; u: boolean }, null, number, NullBackend>();
    set.map(new MemoryArea(0x10000, 0x4000, { w: true, u: true }, new LogBackend()), null, false);
    const r = set.protect(0x11000, 0x1000, () => ({ u: true, w: true }), null);
    expect(set.len()).toBe(1);
    expect(log).toEqual([]);
    expect(r.changedBytes).toBe(0);
    set.protect(0x11000, 0x1000, () => ({ u: true, w: false }), null);
    expect(set.len()).toBe(3);
    expect(log).toEqual(['protect']);
  });
  it('a custom flagsEqual is used', () => {
    const set = new MemorySet<number, null, number, NullBackend>({ flagsEqual: (a, b) => a % 8 === b % 8 });
    set.map(new MemoryArea(0, 0x4000, 1, new NullBackend()), null, false);
    set.protect(0x1000, 0x1000, () => 9, null);
    expect(set.len()).toBe(1);
  });
});

describe('merging adjacent compatible areas', () => {
  it('option merge: adjacent maps and protect round trips keep the VMA count Linux has', () => {
    const set: USet = new MemorySet({ merge: true });
    // three mmaps next to each other with the same protection: Linux shows one VMA
    set.map(narea(0x10000, 0x2000, 'rw'), null, false);
    set.map(narea(0x12000, 0x2000, 'rw'), null, false);
    set.map(narea(0x0e000, 0x2000, 'rw'), null, false);
    expect([...set].map((a) => [a.start, a.end])).toEqual([[0xe000, 0x14000]]);
    // mprotect the middle read-only: three; back: one again
    set.protect(0x10000, 0x1000, () => 'r', null);
    expect(set.len()).toBe(3);
    set.protect(0x10000, 0x1000, () => 'rw', null);
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([[0xe000, 0x14000, 'rw']]);
    // different flags or an incompatible backend do not merge
    set.map(narea(0x14000, 0x1000, 'r'), null, false);
    set.map(narea(0x15000, 0x1000, 'r', 7), null, false);
    expect(set.len()).toBe(3);
    // extendArea merges with the next area when it reaches it
    set.unmap(0x15000, 0x1000, null);
    set.map(narea(0x16000, 0x1000, 'r'), null, false);
    set.extendArea(0x14000, 0x1000, null);
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([
      [0xe000, 0x14000, 'rw'],
      [0x14000, 0x17000, 'r'],
    ]);
  });
  it('mergeAdjacent merges on demand and counts merges; a throwing merge is no merge', () => {
    const set: USet = new MemorySet();
    for (let k = 0; k < 6; k++) set.map(narea(k * P, P, k < 3 ? 1 : 2), null, false);
    expect(set.len()).toBe(6);
    expect(set.mergeAdjacent(0, P)).toBe(1); // the boundaries inside [0, P]: 0|1 only
    expect(set.len()).toBe(5);
    expect(set.mergeAdjacent()).toBe(3);
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([
      [0, 3 * P, 1],
      [3 * P, 6 * P, 2],
    ]);
    class Throwing extends NullBackend {
      override clone(): Throwing {
        return new Throwing();
      }
      override merge(): boolean {
        throw new Error('no');
      }
    }
    const t = new MemorySet<unknown, null, number, NullBackend>();
    t.map(new MemoryArea(0, P, 1, new Throwing()), null, false);
    t.map(new MemoryArea(P, P, 1, new Throwing()), null, false);
    expect(t.mergeAdjacent()).toBe(0);
    expect(t.len()).toBe(2);
  });
  it('backends without merge never merge (the crate behaviour stays the default)', () => {
    const set: NSet = new MemorySet({ merge: true });
    const pt = new MockPageTable(0x10000, P);
    set.map(area(0, P, 1), pt, false);
    set.map(area(P, P, 1), pt, false);
    expect(set.len()).toBe(2);
    expect(isVmkitError(failure(() => set.map(area(0, P, 1), pt, false), 'AlreadyExists'))).toBe(true);
  });
});
