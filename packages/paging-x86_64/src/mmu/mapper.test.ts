import { isVmkitError, type PageSize, type PhysAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import { FaultInjector } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs, SLOW_TIMEOUT } from '../../test/budget.js';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { FailingFrameAllocator } from '../testing/index.js';
import { ACCESS_EXEC, ACCESS_USER, ACCESS_WRITE } from './access.js';
import { type PageFlags, PageMapper } from './mapper.js';
import { Mmu } from './mmu.js';

const K4 = 0x1000 as PageSize;
const M2 = 0x20_0000 as PageSize;
const G1 = 0x4000_0000 as PageSize;
const URW: PageFlags = { writable: true, user: true, executable: false };
const KRX: PageFlags = { writable: false, user: false, executable: true, global: true };
const HIGH = virtAddr('0xffffffff80000000');

function setup(size = 8 << 20) {
  const mem = new PhysicalMemory(size);
  const frames = new BitmapFrameAllocator(mem, { start: 1 << 20 });
  const mapper = new PageMapper(mem, frames);
  return { mem, frames, mapper };
}

/** Byte equality of two memory images (vitest's deep equality is too slow for megabytes). */
function sameImage(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function expectCode(f: () => unknown, code: string): void {
  try {
    f();
  } catch (e) {
    expect(isVmkitError(e) ? e.code : (e as { code?: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('PageMapper: map, translate, unmap', () => {
  it('maps 4 KiB, 2 MiB and 1 GiB pages in both halves and translates with effective flags', () => {
    const { mapper } = setup();
    mapper.map(0x40_1000 as VirtAddr, 0x7000 as PhysAddr, K4, URW);
    mapper.map(0x4000_0000 as VirtAddr, 0x20_0000 as PhysAddr, M2, {
      writable: true,
      user: true,
      executable: true,
    });
    mapper.map(HIGH, 0x4000_0000 as PhysAddr, G1, KRX);
    expect(mapper.translate(0x40_1234 as VirtAddr)).toEqual({
      pa: 0x7234,
      size: K4,
      leafVa: 0x40_1000,
      flags: {
        writable: true,
        user: true,
        executable: false,
        global: false,
        writeThrough: false,
        cacheDisable: false,
      },
    });
    expect(mapper.translate(0x401f_fffc as VirtAddr)).toMatchObject({ pa: 0x3f_fffc, size: M2 });
    expect(mapper.translate((HIGH + 0x1234_5678) as VirtAddr)).toMatchObject({
      pa: 0x4000_0000 + 0x1234_5678,
      size: G1,
      flags: { writable: false, user: false, executable: true, global: true },
    });
    expect(mapper.translate(0x40_2000 as VirtAddr)).toBeUndefined();
    expect(mapper.leaves().map((l) => [l.va, l.size])).toEqual([
      [0x40_1000, K4],
      [0x4000_0000, M2],
      [HIGH, G1],
    ]);
  });

  it('refuses anything overlapping with E_ALREADY_MAPPED and changes nothing', () => {
    const { mem, frames, mapper } = setup();
    mapper.map(0x40_1000 as VirtAddr, 0x7000 as PhysAddr, K4, URW);
    mapper.map(0x4000_0000 as VirtAddr, 0x20_0000 as PhysAddr, M2, URW);
    const image = mem.exportImage();
    const free = frames.freeFrames;
    expectCode(() => mapper.map(0x40_1000 as VirtAddr, 0x8000 as PhysAddr, K4, URW), 'E_ALREADY_MAPPED');
    expectCode(() => mapper.map(0x40_0000 as VirtAddr, 0x40_0000 as PhysAddr, M2, URW), 'E_ALREADY_MAPPED');
    expectCode(() => mapper.map(0x4010_0000 as VirtAddr, 0x8000 as PhysAddr, K4, URW), 'E_ALREADY_MAPPED');
    expectCode(() => mapper.map(0 as VirtAddr, 0 as PhysAddr, G1, URW), 'E_ALREADY_MAPPED');
    expectCode(
      () => mapper.mapRange(0x40_0000 as VirtAddr, 0x9000 as PhysAddr, 0x3000, URW),
      'E_ALREADY_MAPPED',
    );
    expect(sameImage(mem.exportImage(), image)).toBe(true);
    expect(frames.freeFrames).toBe(free);
  });

  it('validates addresses, lengths and flags (typed errors, nothing changed)', () => {
    const { mem, mapper } = setup();
    const image = mem.exportImage();
    expectCode(() => mapper.map(0x40_0800 as VirtAddr, 0 as PhysAddr, K4, URW), 'E_UNALIGNED');
    expectCode(() => mapper.map(0x40_0000 as VirtAddr, 0x1000 as PhysAddr, M2, URW), 'E_UNALIGNED');
    expectCode(() => mapper.map(0x40_0000 as VirtAddr, 0 as PhysAddr, 0x3000 as PageSize, URW), 'E_INVALID');
    expectCode(() => mapper.map((2 ** 48) as VirtAddr, 0 as PhysAddr, K4, URW), 'E_RANGE');
    expectCode(() => mapper.map(0x1000 as VirtAddr, (2 ** 52) as PhysAddr, K4, URW), 'E_RANGE');
    expectCode(
      () => mapper.map(0x1000 as VirtAddr, 0 as PhysAddr, K4, { writable: 1 } as unknown as PageFlags),
      'E_INVALID',
    );
    expectCode(() => mapper.mapRange(0x1000 as VirtAddr, 0 as PhysAddr, 0, URW), 'E_RANGE');
    expectCode(() => mapper.mapRange(0x1000 as VirtAddr, 0 as PhysAddr, 0x1800, URW), 'E_UNALIGNED');
    expectCode(
      () => mapper.mapRange((2 ** 47 - 0x1000) as VirtAddr, 0 as PhysAddr, 0x2000, URW),
      'E_NONCANONICAL',
    );
    expectCode(() => mapper.unmapRange(0x1000 as VirtAddr, 0), 'E_RANGE');
    expectCode(() => mapper.protectRange(0x1001 as VirtAddr, 0x1000, URW), 'E_UNALIGNED');
    expect(sameImage(mem.exportImage(), image)).toBe(true);
  });

  it('unmap removes the whole leaf, returns its frame, frees tables that become empty', () => {
    const { frames, mapper } = setup();
    const free0 = frames.freeFrames;
    mapper.map(0x40_1000 as VirtAddr, 0x7000 as PhysAddr, K4, URW);
    mapper.map(HIGH, 0x4000_0000 as PhysAddr, G1, KRX);
    expect(frames.freeFrames).toBe(free0 - 3 - 1); // PDPT+PD+PT low, PDPT high
    expect(mapper.unmap((HIGH + 0x1234_5000) as VirtAddr)).toEqual({ pa: 0x4000_0000, size: G1 });
    expect(mapper.unmap(0x40_1fff as VirtAddr)).toEqual({ pa: 0x7000, size: K4 });
    expect(mapper.unmap(0x40_1000 as VirtAddr)).toBeUndefined();
    expect(frames.freeFrames).toBe(free0);
    expect(mapper.leaves()).toEqual([]);
  });

  it('mapRange is all or nothing when the allocator runs out; so are splits (E_NOMEM, nothing changed)', () => {
    const mem = new PhysicalMemory(8 << 20);
    const inner = new BitmapFrameAllocator(mem, { start: 1 << 20 });
    const mapper = new PageMapper(mem, inner);
    mapper.map(0x20_0000 as VirtAddr, 0x20_0000 as PhysAddr, M2, URW);
    const failing = (n: number): PageMapper =>
      new PageMapper(mem, new FailingFrameAllocator(inner, new FaultInjector([n])), mapper.root);
    // [0x1fe000, 0x200000) needs a PT; the range also reaches into the 512 GiB slot 1 (PDPT+PD+PT)
    const va = (0x80_0000_0000 - 0x2000) as VirtAddr;
    for (let n = 1; n <= 4; n++) {
      const image = mem.exportImage();
      const free = inner.freeFrames;
      expectCode(() => failing(n).mapRange(va, 0x1000 as PhysAddr, 0x4000, URW), 'E_NOMEM');
      expect(sameImage(mem.exportImage(), image)).toBe(true);
      expect(inner.freeFrames).toBe(free);
    }
    failing(99).mapRange(va, 0x1000 as PhysAddr, 0x4000, URW); // 2 PTs + PDPT + PD
    expect(mapper.leaves()).toHaveLength(5);
    // a split needs one table: it fails before anything changes
    const image = mem.exportImage();
    const free = inner.freeFrames;
    expectCode(() => failing(1).unmapRange(0x20_1000 as VirtAddr, 0x1000), 'E_NOMEM');
    expectCode(() => failing(1).protectRange(0x20_1000 as VirtAddr, 0x1000, KRX), 'E_NOMEM');
    expect(sameImage(mem.exportImage(), image)).toBe(true);
    expect(inner.freeFrames).toBe(free);
    mapper.destroy();
    expect(inner.freeFrames).toBe(inner.totalFrames);
  });

  it('splits a huge page partly unmapped or re-protected, and tells the flush hook', () => {
    const { frames, mapper } = setup(16 << 20);
    const hooks: Array<[number, number]> = [];
    mapper.flushHook = (va, size) => hooks.push([va, size]);
    mapper.map(0 as VirtAddr, 0 as PhysAddr, G1, URW);
    const free = frames.freeFrames;
    const removed = mapper.unmapRange(0x20_1000 as VirtAddr, 0x2000);
    expect(removed).toEqual([
      { va: 0x20_1000, pa: 0x20_1000, size: K4 },
      { va: 0x20_2000, pa: 0x20_2000, size: K4 },
    ]);
    expect(frames.freeFrames).toBe(free - 2); // the 1 GiB page became a PD, its second 2 MiB a PT
    expect(hooks).toEqual([
      [0, G1],
      [0x20_0000, M2],
      [0x20_1000, K4],
      [0x20_2000, K4],
    ]);
    expect(mapper.translate(0x20_0000 as VirtAddr)).toMatchObject({ pa: 0x20_0000, size: K4 });
    expect(mapper.translate(0x20_3000 as VirtAddr)).toMatchObject({ pa: 0x20_3000, size: K4 });
    expect(mapper.translate(0x3fe0_0000 as VirtAddr)).toMatchObject({ pa: 0x3fe0_0000, size: M2 });
    expect(mapper.translate(0x20_1000 as VirtAddr)).toBeUndefined();
    // re-protect with the same flags: nothing to split, nothing changed
    hooks.length = 0;
    expect(mapper.protectRange(0x40_0000 as VirtAddr, 0x1000, URW)).toBe(0);
    expect(hooks).toEqual([]);
    // different flags on 4 KiB of a 2 MiB leaf: split, one leaf changed
    expect(mapper.protectRange(0x40_0000 as VirtAddr, 0x1000, KRX)).toBe(1);
    expect(mapper.translate(0x40_0000 as VirtAddr)).toMatchObject({
      size: K4,
      flags: { writable: false, global: true },
    });
    expect(mapper.translate(0x40_1000 as VirtAddr)).toMatchObject({
      size: K4,
      flags: { writable: true, global: false },
    });
    // removing everything frees every table but the root
    mapper.unmapRange(0 as VirtAddr, G1);
    expect(mapper.leaves()).toEqual([]);
    expect(frames.freeFrames).toBe(free + 1); // + the PDPT the 1 GiB page lived in
  });
});

// ------------------------------------------------------------------------------------------------
// Property: random map / mapRange / unmap / unmapRange / protectRange at all three sizes, in both
// halves, against a reference of extents (start, end, pa, flags); then the MMU's effective rights.

interface Ext {
  start: number;
  end: number;
  pa: number;
  fl: number;
}
const FLAGS: PageFlags[] = [
  { writable: true, user: true, executable: false },
  { writable: false, user: true, executable: true },
  { writable: true, user: false, executable: true },
  { writable: false, user: false, executable: false, global: true },
];
const WINDOWS = [0x4000_0000, 2 ** 48 - 2 * 0x4000_0000]; // 2 GiB in each half
const ANCHORS = [0, 0x20_0000, 0x3fe0_0000, 0x4000_0000];
const SIZES = [K4, M2, G1] as const;

const vaArb = fc
  .record({
    w: fc.integer({ min: 0, max: 1 }),
    a: fc.integer({ min: 0, max: 3 }),
    k: fc.integer({ min: 0, max: 600 }),
  })
  .map(({ w, a, k }) => WINDOWS[w]! + ANCHORS[a]! + k * 0x1000);
type MOp =
  | { k: 'map'; va: number; s: number; pa: number; fl: number }
  | { k: 'mapRange'; va: number; n: number; pa: number; fl: number }
  | { k: 'unmap'; va: number }
  | { k: 'unmapRange'; va: number; n: number }
  | { k: 'protect'; va: number; n: number; fl: number };
const mopArb: fc.Arbitrary<MOp> = fc.oneof(
  fc.record({
    k: fc.constant('map' as const),
    va: vaArb,
    s: fc.constantFrom(0, 0, 1, 1, 2),
    pa: fc.integer({ min: 0, max: 63 }),
    fl: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    k: fc.constant('mapRange' as const),
    va: vaArb,
    n: fc.integer({ min: 1, max: 12 }),
    pa: fc.integer({ min: 0, max: 1000 }),
    fl: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({ k: fc.constant('unmap' as const), va: vaArb }),
  fc.record({ k: fc.constant('unmapRange' as const), va: vaArb, n: fc.integer({ min: 1, max: 1200 }) }),
  fc.record({
    k: fc.constant('protect' as const),
    va: vaArb,
    n: fc.integer({ min: 1, max: 1200 }),
    fl: fc.integer({ min: 0, max: 3 }),
  }),
);

function cut(model: Ext[], s: number, e: number): Ext[] {
  const out: Ext[] = [];
  for (const x of model) {
    if (x.end <= s || x.start >= e) out.push(x);
    else {
      if (x.start < s) out.push({ start: x.start, end: s, pa: x.pa, fl: x.fl });
      if (x.end > e) out.push({ start: e, end: x.end, pa: x.pa + (e - x.start), fl: x.fl });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** Joins neighbours that continue each other (same flags, contiguous frames). */
function merge(model: Ext[]): Ext[] {
  const out: Ext[] = [];
  for (const x of [...model].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && last.end === x.start && last.fl === x.fl && last.pa + (last.end - last.start) === x.pa)
      last.end = x.end;
    else out.push({ ...x });
  }
  return out;
}

function find(model: Ext[], va: number): Ext | undefined {
  return model.find((x) => va >= x.start && va < x.end);
}

describe('PageMapper property (fast-check)', () => {
  it(
    'agrees with a reference of extents after random operations at all sizes, both halves',
    () => {
      const mem = new PhysicalMemory(48 << 20);
      const frames = new BitmapFrameAllocator(mem, { start: 1 << 20 });
      const check = (ops: MOp[]): void => {
        const free0 = frames.freeFrames;
        const mapper = new PageMapper(mem, frames);
        const mmu = new Mmu(mem, { cr3: mapper.root, tlbSize: 16 });
        let model: Ext[] = [];
        const probes: number[] = [];
        for (const op of ops) {
          model = merge(model);
          const va = op.va;
          if (op.k === 'map' || op.k === 'mapRange') {
            const size = op.k === 'map' ? SIZES[op.s]! : K4;
            const start = va - (va % size);
            const len = op.k === 'map' ? size : op.n * K4;
            const pa = op.k === 'map' ? op.pa * size : op.pa * K4;
            if (start + len > (start >= 2 ** 47 ? 2 ** 48 : 2 ** 47)) continue;
            const overlap = model.some((x) => x.start < start + len && start < x.end);
            try {
              if (op.k === 'map') mapper.map(start as VirtAddr, pa as PhysAddr, size, FLAGS[op.fl]!);
              else mapper.mapRange(start as VirtAddr, pa as PhysAddr, len, FLAGS[op.fl]!);
              expect(overlap).toBe(false);
              model = [...model, { start, end: start + len, pa, fl: op.fl }].sort(
                (a, b) => a.start - b.start,
              );
            } catch (e) {
              expect(isVmkitError(e, 'E_ALREADY_MAPPED')).toBe(true);
              expect(overlap).toBe(true);
            }
            probes.push(start, start + len - 1, start + len);
          } else if (op.k === 'unmap') {
            const r = mapper.unmap(va as VirtAddr);
            const x = find(model, va);
            if (x === undefined) expect(r).toBeUndefined();
            else {
              expect(r).toBeDefined();
              const leafVa = va - (va % r!.size);
              // the leaf lies inside one extent, with the matching frame
              expect(x.start <= leafVa && leafVa + r!.size <= x.end).toBe(true);
              expect(r!.pa).toBe(x.pa + (leafVa - x.start));
              model = cut(model, leafVa, leafVa + r!.size);
              probes.push(leafVa - 1, leafVa, leafVa + r!.size);
            }
          } else {
            const len = op.n * K4;
            if (va + len > (va >= 2 ** 47 ? 2 ** 48 : 2 ** 47)) continue;
            if (op.k === 'unmapRange') {
              const removed = mapper.unmapRange(va as VirtAddr, len);
              const before = model.filter((x) => x.start < va + len && va < x.end);
              const bytes = before.reduce((n, x) => n + Math.min(x.end, va + len) - Math.max(x.start, va), 0);
              expect(removed.reduce((n, r) => n + r.size, 0)).toBe(bytes);
              model = cut(model, va, va + len);
            } else {
              mapper.protectRange(va as VirtAddr, len, FLAGS[op.fl]!);
              const inside = model
                .filter((x) => x.start < va + len && va < x.end)
                .map((x) => {
                  const s = Math.max(x.start, va);
                  const e = Math.min(x.end, va + len);
                  return { start: s, end: e, pa: x.pa + (s - x.start), fl: op.fl };
                });
              model = [...cut(model, va, va + len), ...inside].sort((a, b) => a.start - b.start);
            }
            probes.push(va - 1, va, va + len - 1, va + len);
          }
        }
        // every leaf is inside the model with the right frame and flags; the mapped bytes agree
        model = merge(model);
        let bytes = 0;
        for (const l of mapper.leaves()) {
          const x = find(model, l.va);
          expect(x, `leaf ${l.va.toString(16)}`).toBeDefined();
          expect(l.va + l.size <= x!.end).toBe(true);
          expect(l.pa).toBe(x!.pa + (l.va - x!.start));
          const f = FLAGS[x!.fl]!;
          expect([l.writable, l.user, !l.xd]).toEqual([f.writable, f.user, f.executable]);
          bytes += l.size;
        }
        expect(bytes).toBe(model.reduce((n, x) => n + x.end - x.start, 0));
        // translate and the MMU agree with the model at the edges of everything touched
        for (const p of probes) {
          if (p < 0 || p >= 2 ** 48) continue;
          const x = find(model, p);
          const t = mapper.translate(p as VirtAddr);
          expect(t?.pa).toBe(x === undefined ? undefined : x.pa + (p - x.start));
          if (x === undefined) continue;
          const f = FLAGS[x.fl]!;
          expect(t!.flags).toMatchObject({ writable: f.writable, user: f.user, executable: f.executable });
          const q = p - (p % 4);
          expect(mmu.probe(q as VirtAddr, ACCESS_USER).ok).toBe(f.user);
          expect(mmu.probe(q as VirtAddr, ACCESS_USER | ACCESS_WRITE).ok).toBe(f.user && f.writable);
          expect(mmu.probe(q as VirtAddr, ACCESS_EXEC).ok).toBe(f.executable);
        }
        // tear down: unmapping everything frees every table but the root
        mapper.unmapRange(WINDOWS[0] as VirtAddr, 2 * G1);
        mapper.unmapRange(WINDOWS[1] as VirtAddr, 2 * G1);
        expect(mapper.leaves()).toEqual([]);
        expect(frames.freeFrames).toBe(free0 - 1);
        mapper.destroy();
        expect(frames.freeFrames).toBe(free0);
      };
      check([
        { k: 'map', va: 0x4000_0000, s: 2, pa: 0, fl: 2 },
        { k: 'protect', va: 0x4000_0000, n: 1, fl: 2 },
        { k: 'unmap', va: 0x4000_0000 },
        { k: 'unmapRange', va: 0x4000_0000, n: 1 },
      ]);
      fc.assert(fc.property(fc.array(mopArb, { minLength: 1, maxLength: 25 }), check), {
        numRuns: runs(60, 600),
      });
    },
    SLOW_TIMEOUT,
  );
});
