import { PAGE_SIZE_2M, PAGE_SIZE_4K, type PhysAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import { BitmapFrameAllocator, type PageFlags, PageMapper, PhysicalMemory } from '@vmkit/paging-x86_64';
import { FailingFrameAllocator } from '@vmkit/paging-x86_64/testing';
import { FaultInjector } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryArea, MemorySet } from '../index.js';
import { AllocBackend, handlePageFault, LinearBackend, samePageFlags } from './index.js';

const P = PAGE_SIZE_4K;
const RW: PageFlags = { writable: true, user: true, executable: false };
const RO: PageFlags = { writable: false, user: true, executable: false };
const LOW = 0x10_0000; // the allocator manages [1 MiB, 16 MiB); linear mappings target [0, 1 MiB)

type B = LinearBackend | AllocBackend;
type XSet = MemorySet<PageFlags, PageMapper, VirtAddr, B>;

function machine(memSize = 16 * 2 ** 20, merge = false) {
  const mem = new PhysicalMemory(memSize);
  const frames = new FailingFrameAllocator(new BitmapFrameAllocator(mem, { start: LOW, end: memSize }));
  const pt = new PageMapper(mem, frames);
  const set: XSet = new MemorySet({ merge, flagsEqual: samePageFlags });
  return { mem, frames, pt, set };
}
const area = (start: number, size: number, flags: PageFlags, b: B) =>
  new MemoryArea<PageFlags, PageMapper, VirtAddr, B>(start as VirtAddr, size, flags, b);
const sameFlags = (a: PageFlags | undefined, b: PageFlags) =>
  a !== undefined && a.writable === b.writable && a.user === b.user && a.executable === b.executable;
const LONG = process.env.VMKIT_LONG === '1';

describe('LinearBackend', () => {
  it('maps va to va - offset, splits on unmap and protect, in the higher half', () => {
    const { pt, set } = machine();
    const base = virtAddr('0xffff800000000000'); // physical 0 at the start of the higher half
    set.map(area(base, 16 * P, RW, new LinearBackend(base)), pt, false);
    expect(pt.translate((base + 5 * P + 0x123) as VirtAddr)?.pa).toBe(5 * P + 0x123);
    set.unmap((base + 4 * P) as VirtAddr, 2 * P, pt);
    set.protect((base + 8 * P) as VirtAddr, P, () => RO, pt);
    expect(set.len()).toBe(4);
    expect(pt.translate((base + 4 * P) as VirtAddr)).toBeUndefined();
    expect(pt.translate((base + 6 * P) as VirtAddr)?.pa).toBe(6 * P);
    expect(pt.translate((base + 8 * P) as VirtAddr)?.flags.writable).toBe(false);
    expect(pt.translate((base + 9 * P) as VirtAddr)?.flags.writable).toBe(true);
    expect(pt.translate((base + 15 * P) as VirtAddr)?.pa).toBe(15 * P);
  });

  it('uses 2 MiB leaves and refuses to cut one', () => {
    const { pt, set } = machine(64 * 2 ** 20);
    const base = virtAddr('0xffffffff80000000');
    set.map(area(base, 4 * PAGE_SIZE_2M, RW, new LinearBackend(base, PAGE_SIZE_2M)), pt, false);
    expect(pt.translate(base)?.size).toBe(PAGE_SIZE_2M);
    expect(() => set.unmap((base + P) as VirtAddr, P, pt)).toThrow(/E_INVALID_PARAM/);
    set.unmap((base + PAGE_SIZE_2M) as VirtAddr, PAGE_SIZE_2M, pt);
    expect(pt.translate((base + PAGE_SIZE_2M) as VirtAddr)).toBeUndefined();
    expect(pt.translate((base + 2 * PAGE_SIZE_2M) as VirtAddr)?.pa).toBe(2 * PAGE_SIZE_2M);
  });
});

describe('AllocBackend', () => {
  it('eager: allocates a frame per page, keeps them across splits, returns them on unmap', () => {
    const { frames, pt, set } = machine();
    const free0 = frames.freeFrames;
    set.map(area(0x40_0000, 8 * P, RW, new AllocBackend(true)), pt, false);
    const pas = Array.from({ length: 8 }, (_, i) => pt.translate((0x40_0000 + i * P) as VirtAddr)?.pa);
    expect(new Set(pas).size).toBe(8);
    set.unmap((0x40_0000 + 2 * P) as VirtAddr, 2 * P, pt); // hole: two areas
    set.protect((0x40_0000 + 6 * P) as VirtAddr, P, () => RO, pt);
    expect(set.len()).toBe(4);
    for (const i of [0, 1, 4, 5, 6, 7])
      expect(pt.translate((0x40_0000 + i * P) as VirtAddr)?.pa).toBe(pas[i]);
    expect(frames.refCount(pas[2] as PhysAddr)).toBe(0); // returned
    set.clear(pt);
    expect(frames.freeFrames).toBe(free0); // every leaf frame and every emptied table is back
  });

  it('lazy: maps nothing until a fault, then one page; unmap returns populated frames', () => {
    const { frames, pt, set } = machine();
    const free0 = frames.freeFrames;
    set.map(area(0x40_0000, 8 * P, RW, new AllocBackend(false)), pt, false);
    expect(pt.translate(0x40_0000 as VirtAddr)).toBeUndefined();
    expect(handlePageFault(set, (0x40_0000 + 3 * P + 8) as VirtAddr, pt)).toBe(true);
    expect(handlePageFault(set, (0x40_0000 + 3 * P) as VirtAddr, pt)).toBe(false); // already there
    expect(handlePageFault(set, 0x80_0000 as VirtAddr, pt)).toBe(false); // no area
    expect(sameFlags(pt.translate((0x40_0000 + 3 * P) as VirtAddr)?.flags, RW)).toBe(true);
    set.protect(0x40_0000 as VirtAddr, 8 * P, () => RO, pt);
    expect(handlePageFault(set, (0x40_0000 + 5 * P) as VirtAddr, pt)).toBe(true);
    expect(sameFlags(pt.translate((0x40_0000 + 5 * P) as VirtAddr)?.flags, RO)).toBe(true);
    expect(sameFlags(pt.translate((0x40_0000 + 3 * P) as VirtAddr)?.flags, RO)).toBe(true);
    set.unmap(0x40_0000 as VirtAddr, 8 * P, pt);
    expect(frames.freeFrames).toBe(free0);
  });

  it('2 MiB pages come from aligned runs of frames and go back whole', () => {
    const { frames, pt, set } = machine(32 * 2 ** 20);
    const free0 = frames.freeFrames;
    set.map(area(0x4000_0000, 2 * PAGE_SIZE_2M, RW, new AllocBackend(true, PAGE_SIZE_2M)), pt, false);
    const t = pt.translate(0x4000_0000 as VirtAddr);
    expect(t?.size).toBe(PAGE_SIZE_2M);
    expect((t?.pa ?? 1) % PAGE_SIZE_2M).toBe(0);
    set.clear(pt);
    expect(frames.freeFrames).toBe(free0);
  });

  it('an allocation failure in the middle of a populating map changes nothing', () => {
    const { frames, pt, set } = machine();
    set.map(area(0x40_0000, 4 * P, RW, new AllocBackend(true)), pt, false);
    const before = pt.leaves();
    const free0 = frames.freeFrames;
    frames.failWhen = new FaultInjector([3]);
    expect(() => set.map(area(0x40_2000, 8 * P, RO, new AllocBackend(true)), pt, true)).toThrow(/E_NOMEM/);
    frames.failWhen = undefined;
    expect(pt.leaves()).toEqual(before);
    expect(frames.freeFrames).toBe(free0);
    expect([...set].map((a) => [a.start, a.end])).toEqual([[0x40_0000, 0x40_4000]]);
  });
});

// Random sequences over a real page table: linear, eager and lazy areas in a 64-page window of the
// higher half, random faults, and E_NOMEM injected into the frame allocator at random steps.
const WINDOW = virtAddr('0xffffc00000000000');
const PAGES = 64;
const FLAGS: PageFlags[] = [
  RW,
  RO,
  { writable: true, user: false, executable: true },
  { writable: false, user: false, executable: false },
  { readable: false, writable: true, user: true, executable: false }, // PROT_NONE
];
type Kind = 'linear' | 'eager' | 'lazy';
type Op =
  | { op: 'map'; page: number; len: number; kind: Kind; flags: number; overwrite: boolean }
  | { op: 'unmap'; page: number; len: number }
  | { op: 'protect'; page: number; len: number; flags: number }
  | { op: 'fault'; page: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('map' as const),
    page: fc.nat(PAGES - 1),
    len: fc.integer({ min: 1, max: 10 }),
    kind: fc.constantFrom<Kind>('linear', 'eager', 'lazy'),
    flags: fc.nat(FLAGS.length - 1),
    overwrite: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('unmap' as const),
    page: fc.nat(PAGES - 1),
    len: fc.integer({ min: 1, max: 12 }),
  }),
  fc.record({
    op: fc.constant('protect' as const),
    page: fc.nat(PAGES - 1),
    len: fc.integer({ min: 1, max: 12 }),
    flags: fc.nat(FLAGS.length - 1),
  }),
  fc.record({ op: fc.constant('fault' as const), page: fc.nat(PAGES - 1) }),
);

function run(m: ReturnType<typeof machine>, o: Op): void {
  const va = (WINDOW + o.page * P) as VirtAddr;
  if (o.op === 'map') {
    const len = Math.min(o.len, PAGES - o.page) * P;
    const b = o.kind === 'linear' ? new LinearBackend(WINDOW) : new AllocBackend(o.kind === 'eager');
    m.set.map(area(va, len, FLAGS[o.flags] as PageFlags, b), m.pt, o.overwrite);
  } else if (o.op === 'unmap') m.set.unmap(va, o.len * P, m.pt);
  else if (o.op === 'protect') {
    const f = FLAGS[o.flags] as PageFlags;
    // a fresh object each time: equal flags must change nothing (compared by value)
    m.set.protect(va, o.len * P, (old) => (old === f ? undefined : { ...f }), m.pt);
  } else handlePageFault(m.set, va, m.pt);
}

function checkTable(m: ReturnType<typeof machine>): void {
  for (let i = 0; i < PAGES + 2; i++) {
    const va = (WINDOW + i * P) as VirtAddr;
    const a = m.set.find(va);
    const t = m.pt.translate(va);
    if (a === undefined || a.flags.readable === false) expect(t, `page ${i}`).toBeUndefined();
    else if (a.backend instanceof LinearBackend) {
      expect(t?.pa).toBe(i * P);
      expect(sameFlags(t?.flags, a.flags)).toBe(true);
    } else if (a.backend.populate || t !== undefined) {
      expect(sameFlags(t?.flags, a.flags), `page ${i}`).toBe(true);
      expect(m.frames.refCount(t?.pa as PhysAddr)).toBe(1);
    }
  }
}

/** With merging on: no two touching areas that could merge are left apart. */
function checkMerged(m: ReturnType<typeof machine>): void {
  const areas = [...m.set];
  for (let k = 0; k + 1 < areas.length; k++) {
    const a = areas[k] as (typeof areas)[number];
    const b = areas[k + 1] as (typeof areas)[number];
    if (a.end !== b.start || !samePageFlags(a.flags, b.flags)) continue;
    expect(a.backend.clone().merge(b.backend, a.size), `${a} and ${b} left apart`).toBe(false);
  }
}

/**
 * The data of every allocated page survives what the set does to it (PROT_NONE round trips, splits,
 * merges, rolled-back failures): `marks` holds the marker written into each page's frame.
 */
function checkData(m: ReturnType<typeof machine>, marks: Map<number, number>): void {
  for (const [i] of marks) if (m.set.find((WINDOW + i * P) as VirtAddr) === undefined) marks.delete(i);
  for (const leaf of m.pt.leaves()) {
    if (leaf.pa < LOW) continue; // a linear page (not the backend's frame)
    const i = (leaf.va - WINDOW) / P;
    const mark = marks.get(i);
    if (mark !== undefined) expect(m.mem.read8(leaf.pa), `data of page ${i}`).toBe(mark);
  }
}

/** Writes a marker into the first byte of every present allocated page that has none yet. */
function stamp(m: ReturnType<typeof machine>, n: number, marks: Map<number, number>): number {
  let k = n;
  for (const leaf of m.pt.leaves()) {
    if (leaf.pa >= LOW && m.mem.read8(leaf.pa) === 0) {
      const mark = (++k % 255) + 1;
      m.mem.write8(leaf.pa, mark);
      marks.set((leaf.va - WINDOW) / P, mark);
    }
  }
  return k;
}

/** Every leaf with the first byte of its frame: a rolled-back unmap must bring back the same data. */
function contents(m: ReturnType<typeof machine>): unknown[] {
  return m.pt.leaves().map((l) => [l, m.mem.read8(l.pa)]);
}

describe.each([
  ['no merging', false],
  ['merging on', true],
])('random sequences over a real x86-64 page table (%s)', (_name, merge) => {
  it(
    'the page table agrees with the set page by page; data survives; failures change nothing; clear frees all',
    () => {
      const stepArb = fc.record({ o: opArb, failAt: fc.option(fc.integer({ min: 1, max: 6 }), { freq: 3 }) });
      fc.assert(
        fc.property(fc.array(stepArb, { maxLength: 25 }), (steps) => {
          const m = machine(16 * 2 ** 20, merge);
          const free0 = m.frames.freeFrames;
          const marks = new Map<number, number>();
          let stampNo = 0;
          for (const { o, failAt } of steps) {
            const areasBefore = [...m.set].map((a) => [a.start, a.end, a.flags, a.backend]);
            const leavesBefore = contents(m);
            const freeBefore = m.frames.freeFrames;
            m.frames.failWhen = failAt === null ? undefined : new FaultInjector([failAt]);
            let err: unknown;
            try {
              run(m, o);
            } catch (e) {
              err = e;
            }
            m.frames.failWhen = undefined;
            if (err !== undefined) {
              expect(String(err)).toMatch(/E_NOMEM|E_ALREADY_EXISTS|E_INVALID_PARAM/);
              expect([...m.set].map((a) => [a.start, a.end, a.flags, a.backend])).toEqual(areasBefore);
              expect(contents(m)).toEqual(leavesBefore);
              expect(m.frames.freeFrames).toBe(freeBefore);
            } else if (o.op === 'map') {
              for (let i = o.page; i < o.page + o.len; i++) marks.delete(i); // new pages, new data
            }
            checkTable(m);
            checkData(m, marks);
            if (merge) checkMerged(m);
            stampNo = stamp(m, stampNo, marks);
            for (const a of m.set)
              if (a.backend instanceof AllocBackend) expect(a.backend.pendingFrames).toBe(0);
          }
          m.set.clear(m.pt);
          expect(m.pt.leaves()).toEqual([]);
          expect(m.frames.freeFrames).toBe(free0);
        }),
        { numRuns: LONG ? 2_000 : 120 },
      );
    },
    LONG ? 600_000 : 60_000,
  );
});
