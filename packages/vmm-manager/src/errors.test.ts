import { PAGE_SIZE_4K as PAGE } from '@vmkit/addr';
import { errorCode } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { halfOpen, machine, RWU, va } from '../test/helpers.js';
import { VirtualMemoryManager } from './manager.js';
import { VirtualMemoryMap, type VirtualMemoryMapInit } from './map.js';

const HOLE = 2 ** 47;

/** Every observable piece of state, to show that a failed call changed nothing. */
function snapshot(m: VirtualMemoryManager): string {
  const root = m.getRootPageTable();
  return JSON.stringify({
    asid: m.getAsid(),
    base: m.getMmapBase(),
    maps: m.withMemmaps((v) => [...v.values()].map((x) => [x.start, x.end, x.pmarea?.start, x.permissions])),
    leaves: root?.leaves().map((l) => [l.va, l.pa]),
  });
}

function loaded(): VirtualMemoryManager {
  const { spaces } = machine();
  const m = new VirtualMemoryManager({ addressSpaces: spaces });
  m.setAsid(spaces.allocVirtualAddressSpace());
  m.addMemoryMap(halfOpen(0x1000, 4 * PAGE, 0x20_0000));
  m.lazyMapPage(va(0x2000));
  return m;
}

describe('bad input gets a typed error naming the value, and nothing changes', () => {
  const m = loaded();
  const before = snapshot(m);
  const cases: [string, () => unknown, string, RegExp?][] = [
    ['setAsid(-1)', () => m.setAsid(-1), 'E_RANGE', /got -1/],
    ['setAsid(4096)', () => m.setAsid(4096), 'E_RANGE', /0\.\.4095.*4096/],
    ['setAsid(1.5)', () => m.setAsid(1.5), 'E_INVALID', /1\.5/],
    ["setAsid('3')", () => m.setAsid('3' as unknown as number), 'E_INVALID', /"3"/],
    ['setAsid(NaN)', () => m.setAsid(Number.NaN), 'E_INVALID', /NaN/],
    ["searchMemoryMap('0x1000')", () => m.searchMemoryMap('0x1000' as never), 'E_INVALID'],
    ['searchMemoryMap(-1)', () => m.searchMemoryMap(va(-1)), 'E_RANGE'],
    ['searchMemoryMap(2^48)', () => m.searchMemoryMap(va(2 ** 48)), 'E_RANGE'],
    ['searchMemoryMap(0x1000.5)', () => m.searchMemoryMap(va(0x1000 + 0.5)), 'E_INVALID'],
    ['getMemoryMapByAddr(null)', () => m.getMemoryMapByAddr(null as never), 'E_INVALID'],
    [
      'removeMemoryMapByAddr(Infinity)',
      () => m.removeMemoryMapByAddr(va(Number.POSITIVE_INFINITY)),
      'E_INVALID',
    ],
    ['removeMemoryMapRange(len -1)', () => m.removeMemoryMapRange(va(0x1000), -1), 'E_RANGE', /-1/],
    ['removeMemoryMapRange(len 1.5)', () => m.removeMemoryMapRange(va(0x1000), 1.5), 'E_INVALID'],
    ['removeMemoryMapRange(len 2^53)', () => m.removeMemoryMapRange(va(0x1000), 2 ** 53), 'E_OVERFLOW'],
    [
      'removeMemoryMapRange across the hole',
      () => m.removeMemoryMapRange(va(HOLE - PAGE), 2 * PAGE),
      'E_NONCANONICAL',
    ],
    [
      'removeMemoryMapRange past the top',
      () => m.removeMemoryMapRange(va(2 ** 48 - PAGE), 2 * PAGE),
      'E_OVERFLOW',
    ],
    [
      'protectMemoryMapRange unaligned',
      () => m.protectMemoryMapRange(va(0x1001), PAGE, RWU),
      'E_UNALIGNED',
      /0x1001/,
    ],
    [
      'protectMemoryMapRange 0o644',
      () => m.protectMemoryMapRange(va(0x1000), PAGE, 0o644),
      'E_INVALID',
      /0x1a4/,
    ],
    ['findUnmappedArea(0, 4096)', () => m.findUnmappedArea(0, PAGE), 'E_RANGE'],
    ['findUnmappedArea(-4096, 4096)', () => m.findUnmappedArea(-PAGE, PAGE), 'E_RANGE'],
    ['findUnmappedArea(4096, 3)', () => m.findUnmappedArea(PAGE, 3), 'E_UNALIGNED'],
    ['findUnmappedArea(4096, 2048)', () => m.findUnmappedArea(PAGE, 2048), 'E_UNALIGNED'],
    ['findUnmappedArea(2^53, 4096)', () => m.findUnmappedArea(2 ** 53, PAGE), 'E_OVERFLOW'],
    ['setMmapBase(-1)', () => m.setMmapBase(-1), 'E_RANGE'],
    ['addMemoryMap({})', () => m.addMemoryMap({} as never), 'E_INVALID'],
    ['unmapRangeFromMmu end < start', () => m.unmapRangeFromMmu(va(0x3000), 0x2000), 'E_RANGE'],
    [
      'lazyMapPageWith bad op',
      () => m.lazyMapPageWith({ op: 'read' as never, vaddr: va(0x1000) }),
      'E_INVALID',
      /"read"/,
    ],
    [
      'lazyMapPageWith bad size',
      () => m.lazyMapPageWith({ op: 'load', vaddr: va(0x1000), size: 0 }),
      'E_INVALID',
    ],
    ['restoreMemoryMaps(42)', () => m.restoreMemoryMaps(42 as never), 'E_INVALID'],
    ['addPageTable(1)', () => m.addPageTable(1 as never), 'E_INVALID'],
  ];
  for (const [name, fn, code, msg] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string })?.code ?? 'nothing thrown').toBe(code);
      if (msg) expect((err as Error).message).toMatch(msg);
      expect(snapshot(m)).toBe(before);
    });
  }
});

describe('VirtualMemoryMap construction', () => {
  const ok: VirtualMemoryMapInit = { vmarea: { start: 0x1000, end: 0x2000 }, permissions: RWU };
  const bad: [string, Partial<VirtualMemoryMapInit> | null, string][] = [
    ['no init', null, 'E_INVALID'],
    ['vmarea string', { vmarea: '0x1000' as never }, 'E_INVALID'],
    ['vmarea NaN', { vmarea: { start: Number.NaN, end: 0x2000 } }, 'E_INVALID'],
    ['vmarea non-integer', { vmarea: { start: 0x1000 + 0.8, end: 0x2000 } }, 'E_INVALID'],
    ['vmarea negative', { vmarea: { start: -4096, end: 0x2000 } }, 'E_RANGE'],
    ['vmarea past 2^53', { vmarea: { start: 0x1000, end: 2 ** 53 } }, 'E_OVERFLOW'],
    ['vmarea end below start', { vmarea: { start: 0x3000, end: 0x2000 } }, 'E_RANGE'],
    ['vmarea across the hole', { vmarea: { start: HOLE - PAGE, end: HOLE + PAGE } }, 'E_NONCANONICAL'],
    ['vmarea past the top', { vmarea: { start: 2 ** 48 - PAGE, end: 2 ** 48 + PAGE } }, 'E_OVERFLOW'],
    ['pmarea of another size', { pmarea: { start: 0, end: 0x2000 } }, 'E_INVALID'],
    ['pmarea past 2^52', { pmarea: { start: 2 ** 52, end: 2 ** 52 + PAGE } }, 'E_RANGE'],
    ['permissions 0o644', { permissions: 0o644 }, 'E_INVALID'],
    ['permissions -1', { permissions: -1 }, 'E_INVALID'],
    ['isShared "yes"', { isShared: 'yes' as never }, 'E_INVALID'],
    ['owner 5', { owner: 5 as never }, 'E_INVALID'],
    ['vmStart above start', { vmStart: 0x3000 }, 'E_INVALID'],
  ];
  for (const [name, patch, code] of bad) {
    it(name, () => {
      const init = patch === null ? null : { ...ok, ...patch };
      expect(errorCode(() => new VirtualMemoryMap(init as VirtualMemoryMapInit))).toBe(code);
    });
  }
  it('accepts a higher-half map and prints it canonically', () => {
    const m = new VirtualMemoryMap({
      vmarea: { start: 2 ** 48 - 2 * PAGE, end: 2 ** 48 },
      pmarea: { start: 0, end: 2 * PAGE },
      permissions: 3,
    });
    expect(m.toString()).toBe(
      'VirtualMemoryMap([0xffffffffffffe000, 0x10000000000000000) -> 0x0 rw-- private)',
    );
  });
});

describe('E_BUSY and E_DISPOSED', () => {
  it('changes are refused while withMemmaps lends the maps, reads are fine', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(halfOpen(0x1000, PAGE, 0x5000));
    const leaked = m.withMemmaps((v) => {
      expect(errorCode(() => m.addMemoryMap(halfOpen(0x8000, PAGE, 0x5000)))).toBe('E_BUSY');
      expect(errorCode(() => m.removeMemoryMapRange(va(0), 0x10000))).toBe('E_BUSY');
      expect(m.searchMemoryMap(va(0x1000))).toBe(v.get(va(0x1000)));
      return v;
    });
    expect(errorCode(() => leaked.size)).toBe('E_DISPOSED');
    m.addMemoryMap(halfOpen(0x8000, PAGE, 0x5000));
  });

  it('the mutable view keeps maps non-overlapping and page tables consistent', () => {
    const { spaces } = machine();
    const m = new VirtualMemoryManager({ addressSpaces: spaces });
    m.setAsid(spaces.allocVirtualAddressSpace());
    m.addMemoryMap(halfOpen(0x1000, 2 * PAGE, 0x20_0000));
    m.lazyMapPage(va(0x1000));
    m.withMemmapsMut((v) => {
      expect(errorCode(() => v.insert(halfOpen(0x2000, 2 * PAGE, 0x30_0000)))).toBe('E_OVERLAP');
      const old = v.insert(halfOpen(0x1000, PAGE, 0x30_0000));
      expect(old?.size).toBe(2 * PAGE);
      expect(m.getRootPageTable()!.leaves()).toEqual([]); // the replaced map's page went
      expect(v.remove(va(0x1000))?.pmarea?.start).toBe(0x30_0000);
      expect(v.size).toBe(0);
    });
  });

  it('a disposed handle refuses every call', () => {
    const m = new VirtualMemoryManager();
    m.dispose();
    expect(errorCode(() => m.getAsid())).toBe('E_DISPOSED');
    expect(errorCode(() => m.searchMemoryMap(va(0)))).toBe('E_DISPOSED');
    expect(errorCode(() => m.clone())).toBe('E_DISPOSED');
  });

  it('restoreMemoryMaps is all or nothing', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(halfOpen(0x10000, PAGE, undefined));
    const maps = [
      halfOpen(0x1000, PAGE, undefined),
      halfOpen(0x3000, 2 * PAGE, undefined),
      halfOpen(0x4000, PAGE, undefined),
    ];
    let err: { code?: string; details?: { index?: number }; message?: string } = {};
    try {
      m.restoreMemoryMaps(maps);
    } catch (e) {
      err = e as typeof err;
    }
    expect([err.code, err.details?.index]).toEqual(['E_OVERLAP', 2]);
    expect(err.message).toMatch(/^E_OVERLAP: Memory mapping overlaps with a preceding map: map 2: /);
    expect(m.memmapLen()).toBe(1);
    m.restoreMemoryMaps(maps.slice(0, 2));
    expect(m.memmapLen()).toBe(3);
  });
});
