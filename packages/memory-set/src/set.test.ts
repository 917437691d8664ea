import { AddrRange, isVmkitError, PAGE_SIZE_1G, PAGE_SIZE_2M } from '@vmkit/addr';
import { describe, expect, it } from 'vitest';
import { MockBackend, MockPageTable } from '../test/mock.js';
import { isMappingError, type MappingFailure, MemoryArea, MemorySet } from './index.js';

// The crate's tests (ax-memory-set src/tests.rs), translated: a byte-granular mock page table of 0x10000
// entries and a mock backend of page size 1.
const MAX_ADDR = 0x10000;
type Set = MemorySet<number, MockPageTable, number, MockBackend>;
const newSet = (): Set => new MemorySet<number, MockPageTable, number, MockBackend>();
const area = (start: number, size: number, flags: number, b = new MockBackend()) =>
  new MemoryArea<number, MockPageTable, number, MockBackend>(start, size, flags, b);
const range = (s: number, e: number) => AddrRange.of(s, e);
const offset4k = (a: number) => a % 0x1000;

function expectError(fn: () => void, kind: 'InvalidParam' | 'AlreadyExists' | 'BadState'): MappingFailure {
  try {
    fn();
  } catch (e) {
    expect(isMappingError(e, kind), String(e)).toBe(true);
    return e as MappingFailure;
  }
  throw new Error(`expected ${kind}`);
}

describe('crate scenario: map and unmap, with and without overwrite (test_map_unmap)', () => {
  it('behaves as the crate', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.map(area(s, 0x1000, 1), pt, false);
    for (let s = 0x1000; s < MAX_ADDR; s += 0x2000) set.map(area(s, 0x1000, 2), pt, false);
    expect(set.len()).toBe(16);
    expect(pt.entries.every((f) => f === 1 || f === 2)).toBe(true);

    const found = set.find(0x4100);
    expect([found?.start, found?.end, found?.flags]).toEqual([0x4000, 0x5000, 1]);
    expect(pt.at(0x4200)).toBe(1);

    // [0x4000, 0x8000) is already mapped.
    const e = expectError(() => set.map(area(0x4000, 0x4000, 3), pt, false), 'AlreadyExists');
    expect(e.code).toBe('E_ALREADY_EXISTS');
    expect(set.len()).toBe(16);
    // Unmap overlapped areas before adding the new mapping [0x4000, 0x8000).
    set.map(area(0x4000, 0x4000, 3), pt, true);
    expect(set.len()).toBe(13);
    const big = set.find(0x4100);
    expect([big?.start, big?.end, big?.flags]).toEqual([0x4000, 0x8000, 3]);
    expect(pt.entries.subarray(0x4000, 0x8000).every((f) => f === 3)).toBe(true);

    // Unmap areas in the middle.
    set.unmap(0x4000, 0x8000, pt);
    expect(set.len()).toBe(8);
    // Unmap the remaining areas, including the unmapped ranges.
    set.unmap(0, MAX_ADDR * 2, pt);
    expect(set.len()).toBe(0);
    expect(set.isEmpty()).toBe(true);
    expect(pt.entries.every((f) => f === 0)).toBe(true);
  });
});

describe('crate scenario: unmap shrinks and splits (test_unmap_split)', () => {
  it('behaves as the crate', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.map(area(s, 0x1000, 1), pt, false);
    expect(set.len()).toBe(8);

    // Unmap [0xc00, 0x2400), [0x2c00, 0x4400), …: areas shrink at both boundaries.
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.unmap(s + 0xc00, 0x1800, pt);
    expect(set.len()).toBe(8);
    for (const a of set) {
      if (a.start === 0) expect(a.size).toBe(0xc00);
      else {
        expect(offset4k(a.start)).toBe(0x400);
        expect(offset4k(a.end)).toBe(0xc00);
        expect(a.size).toBe(0x800);
      }
      expect(pt.entries.subarray(a.start, a.end).every((f) => f === 1)).toBe(true);
    }

    // Unmap [0x800, 0x900), [0x2800, 0x2900), …: each area splits in two.
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.unmap(s + 0x800, 0x100, pt);
    expect(set.len()).toBe(16);
    const areas = [...set];
    for (const a of areas) {
      const off = offset4k(a.start);
      expect({ 0: 0x800, 1024: 0x400, 2304: 0x300 }[off as 0 | 0x400 | 0x900]).toBe(a.size);
      expect(pt.entries.subarray(a.start, a.end).every((f) => f === 1)).toBe(true);
    }
    for (let i = 0; i + 1 < areas.length; i++) {
      const gap = pt.entries.subarray(
        (areas[i] as MemoryArea<number, MockPageTable, number>).end,
        areas[i + 1]?.start,
      );
      expect(gap.length > 0 && gap.every((f) => f === 0)).toBe(true);
    }

    set.unmap(0, MAX_ADDR, pt);
    expect(set.len()).toBe(0);
    expect(pt.entries.every((f) => f === 0)).toBe(true);
  });
});

describe('crate scenario: protect splits into 23 then 39 areas (test_protect)', () => {
  const updateFlags = (newFlags: number) => (old: number) => {
    if ((old & 0x7) === (newFlags & 0x7)) return undefined;
    return (newFlags & 0x7) | (old & ~0x7);
  };

  it('behaves as the crate', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.map(area(s, 0x1000, 0x7), pt, false);
    expect(set.len()).toBe(8);

    // Protect [0xc00, 0x2400), [0x2c00, 0x4400), …
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.protect(s + 0xc00, 0x1800, updateFlags(0x1), pt);
    expect(set.len()).toBe(23);
    for (const a of set) {
      const off = offset4k(a.start);
      if (a.start === 0) expect([a.size, a.flags]).toEqual([0xc00, 0x7]);
      else if (off === 0) expect([a.size, a.flags]).toEqual([0x400, 0x1]);
      else if (off === 0x400) expect([a.size, a.flags]).toEqual([0x800, 0x7]);
      else if (off === 0xc00) expect([a.size, a.flags]).toEqual([0x400, 0x1]);
      else throw new Error(`unexpected ${a}`);
      expect(pt.entries.subarray(a.start, a.end).every((f) => f === a.flags)).toBe(true);
    }

    // Protect [0x800, 0x900), [0x2800, 0x2900), …: the middle parts split in three.
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.protect(s + 0x800, 0x100, updateFlags(0x13), pt);
    expect(set.len()).toBe(39);
    for (const a of set) {
      const off = offset4k(a.start);
      if (a.start === 0) expect([a.size, a.flags]).toEqual([0x800, 0x7]);
      else if (off === 0) expect([a.size, a.flags]).toEqual([0x400, 0x1]);
      else if (off === 0x400) expect([a.size, a.flags]).toEqual([0x400, 0x7]);
      else if (off === 0x800) expect([a.size, a.flags]).toEqual([0x100, 0x3]);
      else if (off === 0x900) expect([a.size, a.flags]).toEqual([0x300, 0x7]);
      else if (off === 0xc00) expect([a.size, a.flags]).toEqual([0x400, 0x1]);
      else throw new Error(`unexpected ${a}`);
      expect(pt.entries.subarray(a.start, a.end).every((f) => f === a.flags)).toBe(true);
    }

    // updateFlags says "nothing to change" for [0x880, 0x900): no split.
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.protect(s + 0x880, 0x80, updateFlags(0x3), pt);
    expect(set.len()).toBe(39);

    set.unmap(0, MAX_ADDR, pt);
    expect(set.len()).toBe(0);
    expect(pt.entries.every((f) => f === 0)).toBe(true);
  });
});

describe('crate scenario: findFreeArea with hints and alignments (test_find_free_area)', () => {
  const set = newSet();
  const pt = new MockPageTable(MAX_ADDR);
  for (let s = 0; s < MAX_ADDR; s += 0x2000) set.map(area(s, 0x1000, 1), pt, false);
  const all = range(0, MAX_ADDR);

  it.each([
    [0, 0x1000, 1, 0x1000],
    [0x800, 0x800, 0x800, 0x1000],
    [0x1800, 0x800, 0x800, 0x1800],
    [0x1800, 0x1000, 0x1000, 0x3000],
    [0x2000, 0x1000, 0x1000, 0x3000],
    [0xf000, 0x1000, 0x1000, 0xf000],
    [0xf001, 0x1000, 0x1000, undefined],
  ])('hint %s size %s align %s → %s', (hint, size, align, want) => {
    expect(set.findFreeArea(hint, size, all, align)).toBe(want);
  });

  it('returns undefined when size is not a multiple of align (as the crate)', () => {
    expect(set.findFreeArea(0, 0x800, all, 0x1000)).toBeUndefined();
  });
});

describe('crate README example', () => {
  it('unmapping the middle of an area splits it in two', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x1000, 0x4000, 1), pt, false);
    set.unmap(0x2000, 0x2000, pt);
    const areas = [...set.iter()];
    expect(areas.length).toBe(2);
    expect(areas[0]?.vaRange.equals(range(0x1000, 0x2000))).toBe(true);
    expect(areas[1]?.vaRange.equals(range(0x4000, 0x5000))).toBe(true);
  });
});

describe('huge pages (the crate tests added for 2 MiB / 1 GiB backends)', () => {
  // No page table is touched: the backend records nothing and always succeeds.
  const huge = (ps: number) => new MockBackend(ps);
  const hugeSet = (ps: number) => {
    const set = newSet();
    const pt = new MockPageTable(8 * ps, ps);
    set.map(area(0, 4 * ps, 1, huge(ps)), pt, false);
    return { set, pt };
  };
  const ranges = (set: Set) => [...set].map((a) => [a.start, a.end]);

  for (const ps of [PAGE_SIZE_2M, PAGE_SIZE_1G]) {
    it(`unmap at ${ps / 1024} KiB page boundaries: left, right, middle, whole`, () => {
      let s = hugeSet(ps);
      s.set.unmap(0, ps, s.pt);
      expect(ranges(s.set)).toEqual([[ps, 4 * ps]]);
      s = hugeSet(ps);
      s.set.unmap(3 * ps, ps, s.pt);
      expect(ranges(s.set)).toEqual([[0, 3 * ps]]);
      s = hugeSet(ps);
      s.set.unmap(ps, ps, s.pt);
      expect(ranges(s.set)).toEqual([
        [0, ps],
        [2 * ps, 4 * ps],
      ]);
      s = hugeSet(ps);
      s.set.unmap(0, 4 * ps, s.pt);
      expect(s.set.len()).toBe(0);
    });

    it(`unmap and protect of part of a ${ps / 1024} KiB page are InvalidParam and change nothing`, () => {
      const half = ps / 2;
      for (const [start, size] of [
        [0, half],
        [half, half],
        [4 * ps - half, half],
      ] as const) {
        const s = hugeSet(ps);
        const before = s.pt.entries.slice();
        expectError(() => s.set.unmap(start, size, s.pt), 'InvalidParam');
        expectError(() => s.set.protect(start, size, () => 2, s.pt), 'InvalidParam');
        expect(ranges(s.set)).toEqual([[0, 4 * ps]]);
        expect([...s.set][0]?.flags).toBe(1);
        expect(s.pt.entries).toEqual(before);
      }
    });

    it(`a split at a ${ps / 1024} KiB boundary is accepted (protect the second page)`, () => {
      const s = hugeSet(ps);
      s.set.protect(2 * ps, ps, () => 5, s.pt);
      expect([...s.set].map((a) => [a.start, a.end, a.flags])).toEqual([
        [0, 2 * ps, 1],
        [2 * ps, 3 * ps, 5],
        [3 * ps, 4 * ps, 1],
      ]);
      expect(Array.from(s.pt.entries.subarray(0, 4))).toEqual([1, 1, 5, 1]);
    });

    it(`mapping a ${ps / 1024} KiB-page area at an unaligned start or size is InvalidParam`, () => {
      const set = newSet();
      const pt = new MockPageTable(8 * ps, ps);
      expectError(() => set.map(area(0x1000, ps, 1, huge(ps)), pt, false), 'InvalidParam');
      expectError(() => set.map(area(0, ps + 0x1000, 1, huge(ps)), pt, false), 'InvalidParam');
      expect(set.len()).toBe(0);
    });
  }
});

describe('MemorySet details', () => {
  it('map rejects an empty area (InvalidParam)', () => {
    const set = newSet();
    expectError(() => set.map(area(0x1000, 0, 1), new MockPageTable(MAX_ADDR), false), 'InvalidParam');
  });

  it('overlaps checks the neighbours on both sides, empty ranges overlap nothing', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x2000, 0x1000, 1), pt, false);
    expect(set.overlaps(range(0x1000, 0x2000))).toBe(false);
    expect(set.overlaps(range(0x1000, 0x2001))).toBe(true);
    expect(set.overlaps(range(0x2fff, 0x4000))).toBe(true);
    expect(set.overlaps(range(0x3000, 0x4000))).toBe(false);
    expect(set.overlaps(range(0x2800, 0x2800))).toBe(false);
    expect(set.overlaps(range(0, 0x10000))).toBe(true);
  });

  it('find is exact at area boundaries', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x2000, 0x1000, 1), pt, false);
    set.map(area(0x3000, 0x1000, 2), pt, false);
    expect(set.find(0x1fff)).toBeUndefined();
    expect(set.find(0x2000)?.flags).toBe(1);
    expect(set.find(0x2fff)?.flags).toBe(1);
    expect(set.find(0x3000)?.flags).toBe(2);
    expect(set.find(0x4000)).toBeUndefined();
  });

  it('unmap and protect validate their range (InvalidParam), size 0 does nothing', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x2000, 0x1000, 1), pt, false);
    expectError(() => set.unmap(-1, 0x1000, pt), 'InvalidParam');
    expectError(() => set.unmap(4096.5, 0x1000, pt), 'InvalidParam');
    expectError(() => set.unmap(0x1000, Number.NaN, pt), 'InvalidParam');
    expectError(() => set.unmap(2 ** 52, 2 ** 52, pt), 'InvalidParam');
    expectError(() => set.protect(0x2000, -1, () => 3, pt), 'InvalidParam');
    set.unmap(0x2000, 0, pt);
    set.protect(0x2000, 0, () => 3, pt);
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([[0x2000, 0x3000, 1]]);
  });

  it('MemoryArea rejects an overflowing or non-integer range', () => {
    expectError(() => area(2 ** 53 - 0x1000, 0x1000, 1), 'InvalidParam');
    expectError(() => area(0x1000, -1, 1), 'InvalidParam');
    expectError(() => area(0.5, 1, 1), 'InvalidParam');
    const a = area(0x1000, 0x2000, 3);
    expect([a.start, a.end, a.size, a.flags]).toEqual([0x1000, 0x3000, 0x2000, 3]);
    expect(a.toString()).toBe('MemoryArea([0x1000, 0x3000), flags: 3)');
  });

  it('a backend that refuses to split gives BadState and changes nothing', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    const b = new MockBackend(1, { refuseSplit: true });
    set.map(area(0x1000, 0x4000, 1, b), pt, false);
    const before = pt.entries.slice();
    expectError(() => set.unmap(0x2000, 0x1000, pt), 'BadState');
    expectError(() => set.protect(0x2000, 0x1000, () => 2, pt), 'BadState');
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([[0x1000, 0x5000, 1]]);
    expect(pt.entries.every((v, i) => v === before[i])).toBe(true); // (toEqual on 64 Ki entries is slow)
    // Shrinking needs no split.
    set.unmap(0x1000, 0x1000, pt);
    expect([...set].map((a) => [a.start, a.end])).toEqual([[0x2000, 0x5000]]);
  });

  it('clear unmaps everything', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    for (let s = 0; s < MAX_ADDR; s += 0x2000) set.map(area(s, 0x1000, 1), pt, false);
    set.clear(pt);
    expect(set.len()).toBe(0);
    expect(pt.entries.every((f) => f === 0)).toBe(true);
  });

  it('iterates in address order whatever the insertion order', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    for (const s of [0x5000, 0x1000, 0x9000, 0x3000]) set.map(area(s, 0x1000, 1), pt, false);
    expect([...set].map((a) => a.start)).toEqual([0x1000, 0x3000, 0x5000, 0x9000]);
    expect(set.toString()).toBe(
      [
        'MemorySet(4 areas)',
        '  MemoryArea([0x1000, 0x2000), flags: 1)',
        '  MemoryArea([0x3000, 0x4000), flags: 1)',
        '  MemoryArea([0x5000, 0x6000), flags: 1)',
        '  MemoryArea([0x9000, 0xa000), flags: 1)',
      ].join('\n'),
    );
  });

  it('errors are VmkitErrors with stable codes and the seed names', () => {
    const e = expectError(() => newSet().map(area(0, 0, 1), new MockPageTable(16), false), 'InvalidParam');
    expect(isVmkitError(e, 'E_INVALID_PARAM')).toBe(true);
    expect(e.kind).toBe('InvalidParam');
    expect(e.message.startsWith('E_INVALID_PARAM:')).toBe(true);
  });
});

describe('findFreeArea past the crate', () => {
  const set = newSet();
  const pt = new MockPageTable(MAX_ADDR);
  set.map(area(0x1000, 0x1000, 1), pt, false);
  set.map(area(0x2800, 0x800, 1), pt, false); // starts inside the alignment padding after [0x1000, 0x2000)
  set.map(area(0x8000, 0x1000, 1), pt, false);

  it('never returns a range past limit.end, even with areas after the limit', () => {
    // The crate returns 0x3000 here ([0x3000, 0x7000) lies before the next area) although limit ends at 0x6000.
    expect(set.findFreeArea(0x3000, 0x4000, range(0, 0x6000), 0x1000)).toBeUndefined();
    expect(set.findFreeArea(0x3000, 0x3000, range(0, 0x6000), 0x1000)).toBe(0x3000);
    expect(set.findFreeArea(0x7000, 0x1000, range(0, 0x8000), 0x1000)).toBe(0x7000);
    expect(set.findFreeArea(0x7800, 0x1000, range(0, 0x8000), 0x1000)).toBeUndefined();
  });

  it('does not overlook an area starting inside the alignment padding', () => {
    // From 0x1800: the holder [0x1000, 0x2000) ends at 0x2000; [0x2800, 0x3000) must still be seen.
    expect(set.findFreeArea(0x1800, 0x1000, range(0, MAX_ADDR), 0x1000)).toBe(0x3000);
    expect(set.findFreeArea(0x1800, 0x800, range(0, MAX_ADDR), 0x800)).toBe(0x2000);
  });

  it('respects limit.start and rejects a bad alignment', () => {
    expect(set.findFreeArea(0, 0x1000, range(0x9000, MAX_ADDR), 0x1000)).toBe(0x9000);
    expectError(() => set.findFreeArea(0, 0x1000, range(0, MAX_ADDR), 0x1800), 'InvalidParam');
  });
});

describe('extendArea, unmapMetadata, replaceAreaMetadata (the crate extras)', () => {
  it('extendArea grows the area holding addr and maps the new part', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x1000, 0x1000, 1), pt, false);
    set.map(area(0x4000, 0x1000, 2), pt, false);
    set.extendArea(0x1800, 0x1000, pt);
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([
      [0x1000, 0x3000, 1],
      [0x4000, 0x5000, 2],
    ]);
    expect(pt.at(0x2fff)).toBe(1);
    expectError(() => set.extendArea(0x1000, 0x2000, pt), 'AlreadyExists');
    expectError(() => set.extendArea(0x3800, 0x1000, pt), 'InvalidParam');
    set.extendArea(0x1000, 0x1000, pt); // exactly up to the next area
    expect(set.find(0x3fff)?.start).toBe(0x1000);
    expect(set.len()).toBe(2);
  });

  it('unmapMetadata edits areas like unmap without calling the backend', () => {
    const log: string[] = [];
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x1000, 0x4000, 1, new MockBackend(1, { log })), pt, false);
    log.length = 0;
    set.unmapMetadata(0x2000, 0x1000);
    expect(log).toEqual([]);
    expect([...set].map((a) => [a.start, a.end])).toEqual([
      [0x1000, 0x2000],
      [0x3000, 0x5000],
    ]);
    expect(pt.at(0x2000)).toBe(1);
  });

  it('replaceAreaMetadata swaps part of one area and keeps the rest around it', () => {
    const set = newSet();
    const pt = new MockPageTable(MAX_ADDR);
    set.map(area(0x1000, 0x4000, 1), pt, false);
    set.replaceAreaMetadata(area(0x2000, 0x1000, 9));
    expect([...set].map((a) => [a.start, a.end, a.flags])).toEqual([
      [0x1000, 0x2000, 1],
      [0x2000, 0x3000, 9],
      [0x3000, 0x5000, 1],
    ]);
    set.replaceAreaMetadata(area(0x1000, 0x1000, 8));
    expect(set.find(0x1000)?.flags).toBe(8);
    expectError(() => set.replaceAreaMetadata(area(0x2800, 0x1000, 7)), 'InvalidParam');
    expectError(() => set.replaceAreaMetadata(area(0x6000, 0x1000, 7)), 'InvalidParam');
    expect(set.len()).toBe(3);
  });
});
