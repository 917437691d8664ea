import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { CowSnapshotTableOps } from './cow-table-ops.js';
import { map } from './map.js';
import { type Mapping, MappingKind } from './mapping.js';
import { PhysTableOps } from './phys-table-ops.js';
import { compactSnapshot, restoreSnapshot } from './snapshot.js';
import { virtToPhys } from './virt-to-phys.js';
import { depthSpan, type SpaceAwareMapping, type SpaceWalk, spaceAwareMap, walkVaSpaces } from './walk.js';

const PAGE = 4096;
const TOP = 2 ** 48;
const DATA_FRAMES = 64;
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

type Leaf = [va: number, pa: number, kind: string, user: boolean];
const kindStr = (m: Mapping) => JSON.stringify(m.kind);
const leaves = (it: Iterable<Mapping>): Leaf[] =>
  [...it].map((m) => [m.virtBase, m.physBase, kindStr(m), m.userAccessible]);

/** Expands a walk's space into all its leaves in [from, to), following AnotherSpace references. */
function expand(walk: SpaceWalk[], space: number, from: number, to: number): Leaf[] {
  const sw = walk.find((w) => w.space === space)!;
  const out: Leaf[] = [];
  for (const m of sw.mappings) {
    if (m.type === 'ThisSpace') {
      if (m.mapping.virtBase >= from && m.mapping.virtBase < to)
        out.push([m.mapping.virtBase, m.mapping.physBase, kindStr(m.mapping), m.mapping.userAccessible]);
    } else {
      const span = depthSpan(m.ref.depth);
      const lo = Math.max(from, m.ref.ourVa);
      const hi = Math.min(to, m.ref.ourVa + span);
      if (lo >= hi) continue;
      const delta = m.ref.ourVa - m.ref.theirVa;
      for (const l of expand(walk, m.ref.space, lo - delta, hi - delta))
        out.push([l[0] + delta, l[1], l[2], l[3]]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

// Virtual blocks at which random layouts place pages: both halves, around table boundaries.
const BASES = [
  0,
  0x20_0000,
  0x4000_0000,
  0x80_0000_0000,
  2 ** 47,
  2 ** 47 + 0x4000_0000,
  TOP - 0x4000_0000,
  TOP - 0x20_0000,
];

interface Layout {
  roots: number;
  maps: {
    root: number;
    base: number;
    page: number;
    pages: number;
    frame: number;
    kind: MappingKind;
    user: boolean;
  }[];
  shares: { depth: 1 | 2 | 3; from: number; fromBase: number; to: number; toBase: number }[];
}

const layoutArb: fc.Arbitrary<Layout> = fc.integer({ min: 1, max: 4 }).chain((roots) =>
  fc.record({
    roots: fc.constant(roots),
    maps: fc.array(
      fc.record({
        root: fc.nat(roots - 1),
        base: fc.constantFrom(...BASES),
        page: fc.nat(600),
        pages: fc.integer({ min: 1, max: 6 }),
        frame: fc.nat(DATA_FRAMES - 6),
        kind: fc.oneof(
          fc
            .record({ readable: fc.constant(true), writable: fc.boolean(), executable: fc.boolean() })
            .map((p) => MappingKind.basic(p) as MappingKind),
          fc
            .record({ readable: fc.constant(true), executable: fc.boolean() })
            .map((p) => MappingKind.cow(p) as MappingKind),
        ),
        user: fc.boolean(),
      }),
      { minLength: 1, maxLength: 14 },
    ),
    shares: fc.array(
      fc.record({
        depth: fc.constantFrom(1 as const, 2 as const, 3 as const),
        from: fc.nat(roots - 1),
        fromBase: fc.constantFrom(...BASES),
        to: fc.nat(roots - 1),
        toBase: fc.constantFrom(...BASES),
      }),
      { maxLength: 6 },
    ),
  }),
);

function build(layout: Layout) {
  const mem = new PhysicalMemory(4 << 20);
  for (let f = 0; f < DATA_FRAMES; f++) mem.fill(f * PAGE, PAGE, f + 1);
  const frames = new BitmapFrameAllocator(mem, { start: DATA_FRAMES * PAGE });
  const op = new PhysTableOps(mem, { frames });
  const roots: PhysAddr[] = [op.rootTable()];
  for (let i = 1; i < layout.roots; i++) roots.push(frames.allocFrame());
  for (const mp of layout.maps) {
    const va = mp.base + mp.page * PAGE;
    const len = Math.min(mp.pages * PAGE, (mp.base < 2 ** 47 && va < 2 ** 47 ? 2 ** 47 : TOP) - va);
    if (len <= 0) continue;
    op.setRoot(roots[mp.root]!);
    map(op, {
      physBase: (mp.frame * PAGE) as PhysAddr,
      virtBase: va as VirtAddr,
      len,
      kind: mp.kind,
      userAccessible: mp.user,
    });
  }
  for (const s of layout.shares) {
    // link root `to`'s block at toBase to the table root `from` has at fromBase (if any, if free)
    const span = depthSpan(s.depth);
    const ourVa = s.toBase - (s.toBase % span);
    const theirVa = s.fromBase - (s.fromBase % span);
    if (s.from === s.to && ourVa === theirVa) continue;
    op.setRoot(roots[s.to]!);
    try {
      spaceAwareMap(
        op,
        { depth: s.depth, space: roots[s.from]!, ourVa: ourVa as VirtAddr, theirVa: theirVa as VirtAddr },
        new Map([[roots[s.from]!, roots[s.from]!]]),
      );
    } catch (e) {
      if ((e as { code?: string }).code !== 'E_MAPPING_CONFLICT') throw e;
    }
  }
  return { mem, frames, op, roots };
}

function refsOf(walk: SpaceWalk[], roots: readonly number[]) {
  return walk.map((w) =>
    w.mappings
      .filter((m): m is Extract<SpaceAwareMapping, { type: 'AnotherSpace' }> => m.type === 'AnotherSpace')
      .map((m) => [m.ref.depth, roots.indexOf(m.ref.space), m.ref.ourVa, m.ref.theirVa]),
  );
}

describe('walkVaSpaces', () => {
  it('reports a subtree shared at each depth once, by its first owner', () => {
    for (const depth of [1, 2, 3] as const) {
      const mem = new PhysicalMemory(4 << 20);
      const frames = new BitmapFrameAllocator(mem, { start: 1 << 20 });
      const op = new PhysTableOps(mem, { frames });
      const a = op.rootTable();
      const b = frames.allocFrame();
      const kva = 2 ** 47 + 0x4000_0000 + 0x20_0000; // 0xffff800040200000
      map(op, {
        physBase: 0x5000 as PhysAddr,
        virtBase: kva as VirtAddr,
        len: PAGE,
        kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
        userAccessible: false,
      });
      op.setRoot(b);
      map(op, {
        physBase: 0x6000 as PhysAddr,
        virtBase: 0x1000 as VirtAddr,
        len: PAGE,
        kind: MappingKind.cow({ readable: true, executable: false }),
        userAccessible: true,
      });
      const span = depthSpan(depth);
      const block = kva - (kva % span);
      spaceAwareMap(
        op,
        { depth, space: a, ourVa: block as VirtAddr, theirVa: block as VirtAddr },
        new Map([[a, a]]),
      );
      const walk = walkVaSpaces(op, [a, b], 0, TOP);
      expect(walk.map((w) => w.space)).toEqual([a, b]);
      expect(walk[0]!.mappings.map((m) => m.type)).toEqual(['ThisSpace']);
      expect(walk[1]!.mappings).toEqual([
        {
          type: 'ThisSpace',
          mapping: {
            physBase: 0x6000,
            virtBase: 0x1000,
            len: PAGE,
            kind: { type: 'Cow', readable: true, executable: false },
            userAccessible: true,
          },
        },
        { type: 'AnotherSpace', ref: { depth, space: a, ourVa: block, theirVa: block } },
      ]);
      // reversed primacy: b owns it, a references it
      const rev = walkVaSpaces(op, [b, a], 0, TOP);
      expect(rev[1]!.mappings).toEqual([
        { type: 'AnotherSpace', ref: { depth, space: b, ourVa: block, theirVa: block } },
      ]);
    }
  });

  it('matches every root translated alone, with random layouts sharing subtrees at every depth', () => {
    const depths = new Set<number>();
    fc.assert(
      fc.property(layoutArb, (layout) => {
        const { op, roots } = build(layout);
        const walk = walkVaSpaces(op, roots, 0, TOP);
        roots.forEach((root, i) => {
          op.setRoot(root);
          expect(expand(walk, root, 0, TOP)).toEqual(leaves(virtToPhys(op, 0, TOP)));
          // references only point back (topological order)
          for (const m of walk[i]!.mappings) {
            if (m.type !== 'AnotherSpace') continue;
            depths.add(m.ref.depth);
            expect(roots.indexOf(m.ref.space as PhysAddr)).toBeLessThanOrEqual(i);
          }
        });
      }),
      { numRuns: 60 },
    );
    // the generator did produce sharing at every depth
    expect([...depths].sort()).toEqual([1, 2, 3]);
  }, 30_000);
});

describe('snapshot compaction and restore', () => {
  it('round-trips every mapping (contents, permissions, writable → COW), stores each page once and keeps sharing', () => {
    fc.assert(
      fc.property(layoutArb, fc.nat(64), (layout, basePage) => {
        const { mem, op, roots } = build(layout);
        const before = mem.exportImage();
        const walk = walkVaSpaces(op, roots, 0, TOP);
        const base = (1 << 20) + basePage * PAGE;
        const snap = compactSnapshot(mem, roots, { base });
        expect(sameBytes(mem.exportImage(), before)).toBe(true);
        const mem2 = new PhysicalMemory(4 << 20);
        const newRoots = restoreSnapshot(mem2, snap);
        const op2 = new PhysTableOps(mem2, { root: newRoots[0]! });
        const distinct = new Set<number>();
        roots.forEach((root, i) => {
          op.setRoot(root);
          op2.setRoot(newRoots[i]!);
          const orig = [...virtToPhys(op, 0, TOP)];
          const copy = [...virtToPhys(op2, 0, TOP)];
          expect(copy.map((m) => m.virtBase)).toEqual(orig.map((m) => m.virtBase));
          orig.forEach((o, k) => {
            const c = copy[k]!;
            distinct.add(o.physBase);
            const want =
              o.kind.type === 'Basic' && o.kind.writable
                ? { type: 'Cow', readable: true, executable: o.kind.executable }
                : o.kind;
            expect(c.kind).toEqual(want);
            expect(c.userAccessible).toBe(o.userAccessible);
            expect(c.physBase).toBeGreaterThanOrEqual(base);
            expect(c.physBase).toBeLessThan(base + snap.dataPages * PAGE);
            expect(sameBytes(mem2.readBytes(c.physBase, PAGE), mem.readBytes(o.physBase, PAGE))).toBe(true);
          });
        });
        expect(snap.dataPages).toBe(distinct.size);
        // the same subtrees are shared, at the same depths, with the same owners
        expect(refsOf(walkVaSpaces(op2, newRoots, 0, TOP), newRoots)).toEqual(refsOf(walk, roots));
      }),
      { numRuns: 40 },
    );
  }, 30_000);

  it('a copy-on-write TableOps over the restored snapshot never writes it and moves tables up to CR3', () => {
    const { mem, roots } = build({
      roots: 2,
      maps: [
        {
          root: 0,
          base: 0,
          page: 1,
          pages: 2,
          frame: 3,
          kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
          user: true,
        },
        {
          root: 0,
          base: 2 ** 47,
          page: 0,
          pages: 1,
          frame: 7,
          kind: MappingKind.basic({ readable: true, writable: false, executable: true }),
          user: false,
        },
        {
          root: 1,
          base: 0,
          page: 5,
          pages: 1,
          frame: 9,
          kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
          user: true,
        },
      ],
      shares: [{ depth: 1, from: 0, fromBase: 2 ** 47, to: 1, toBase: 2 ** 47 }],
    });
    const snap = compactSnapshot(mem, roots, { base: 0x10_0000 });
    const mem2 = new PhysicalMemory(8 << 20);
    const r = restoreSnapshot(mem2, snap);
    const end = 0x10_0000 + snap.image.length;
    const cow = new CowSnapshotTableOps(mem2, {
      snapshotStart: 0x10_0000,
      snapshotEnd: end,
      scratch: new BitmapFrameAllocator(mem2, { start: 0x40_0000 }),
      root: r[1]!,
    });
    const region = mem2.readBytes(0x10_0000, snap.image.length);
    const other = [...virtToPhys(new PhysTableOps(mem2, { root: r[0]! }), 0, TOP)];
    // write into the shared kernel subtree from space 1: PT, PD, PDPT and PML4 all move
    map(cow, {
      physBase: 0x9000 as PhysAddr,
      virtBase: (2 ** 47 + PAGE) as VirtAddr,
      len: PAGE,
      kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
      userAccessible: false,
    });
    expect(cow.movedTables).toBe(4);
    expect(cow.rootTable()).not.toBe(r[1]);
    expect(cow.inSnapshot(cow.rootTable())).toBe(false);
    expect(sameBytes(mem2.readBytes(0x10_0000, snap.image.length), region)).toBe(true);
    const mine = [...virtToPhys(cow, 0, TOP)];
    expect(mine.map((m) => m.virtBase)).toEqual([5 * PAGE, 2 ** 47, 2 ** 47 + PAGE]);
    // space 0 still sees the snapshot
    expect([...virtToPhys(new PhysTableOps(mem2, { root: r[0]! }), 0, TOP)]).toEqual(other);
    // a second write in the same (now scratch) tables moves nothing
    map(cow, {
      physBase: 0xa000 as PhysAddr,
      virtBase: (2 ** 47 + 2 * PAGE) as VirtAddr,
      len: PAGE,
      kind: MappingKind.Unmapped,
      userAccessible: false,
    });
    map(cow, {
      physBase: 0xa000 as PhysAddr,
      virtBase: (2 ** 47 + 2 * PAGE) as VirtAddr,
      len: PAGE,
      kind: MappingKind.cow({ readable: true, executable: false }),
      userAccessible: false,
    });
    expect(cow.movedTables).toBe(4);
  });

  it('COW table moves are checked first: E_NOMEM leaves CR3, scratch and memory unchanged', () => {
    const { mem, roots } = build({
      roots: 1,
      maps: [
        {
          root: 0,
          base: 0,
          page: 1,
          pages: 1,
          frame: 1,
          kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
          user: false,
        },
      ],
      shares: [],
    });
    const snap = compactSnapshot(mem, roots);
    const mem2 = new PhysicalMemory(1 << 20);
    const r = restoreSnapshot(mem2, snap);
    const scratch = new BitmapFrameAllocator(mem2, { start: 0x8_0000, end: 0x8_3000 }); // 3 frames, 4 moves needed
    const cow = new CowSnapshotTableOps(mem2, {
      snapshotStart: 0,
      snapshotEnd: snap.image.length,
      scratch,
      root: r[0]!,
    });
    const image = mem2.exportImage();
    expect(() =>
      map(cow, {
        physBase: 0 as PhysAddr,
        virtBase: 0x2000 as VirtAddr,
        len: PAGE,
        kind: MappingKind.basic({ readable: true, writable: false, executable: false }),
        userAccessible: false,
      }),
    ).toThrow(expect.objectContaining({ code: 'E_NOMEM' }));
    expect(cow.rootTable()).toBe(r[0]);
    expect(scratch.freeFrames).toBe(3);
    expect(sameBytes(mem2.exportImage(), image)).toBe(true);
  });

  it('rejects malformed snapshots', () => {
    const { mem, roots } = build({ roots: 1, maps: [], shares: [] });
    const snap = compactSnapshot(mem, roots);
    expect(snap.dataPages).toBe(0);
    expect(snap.tablePages).toBe(1);
    const mem2 = new PhysicalMemory(1 << 20);
    expect(() => restoreSnapshot(mem2, { ...snap, roots: [0x5000 as PhysAddr] })).toThrow(
      expect.objectContaining({ code: 'E_BAD_SNAPSHOT' }),
    );
    expect(() =>
      restoreSnapshot(mem2, { ...snap, base: (1 << 20) as PhysAddr, roots: [(1 << 20) as PhysAddr] }),
    ).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    expect(() => compactSnapshot(mem, [roots[0]!, roots[0]!])).toThrow(
      expect.objectContaining({ code: 'E_INVALID' }),
    );
  });
});
