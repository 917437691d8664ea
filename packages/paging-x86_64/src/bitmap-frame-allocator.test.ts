import type { PhysAddr } from '@vmkit/addr';
import { expectVmkitError } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BitmapFrameAllocator } from './bitmap-frame-allocator.js';
import { PhysicalMemory } from './physical-memory.js';

const F = 4096;
const pa = (n: number) => n as PhysAddr;

function snapshot(a: BitmapFrameAllocator, mem: PhysicalMemory) {
  const counts: number[] = [];
  for (let p = a.start; p < a.end; p += F) counts.push(a.refCount(pa(p)));
  return { free: a.freeFrames, counts, image: mem.exportImage() };
}

describe('BitmapFrameAllocator', () => {
  it('hands out the frames of [start, end) lowest first, zero-filled, with count 1', () => {
    const mem = new PhysicalMemory(16 * F);
    mem.fill(0, 16 * F, 0xaa);
    const a = new BitmapFrameAllocator(mem, { start: 4 * F, end: 8 * F });
    expect(a.totalFrames).toBe(4);
    const got = [a.allocFrame(), a.allocFrame(), a.allocFrame(), a.allocFrame()];
    expect(got).toEqual([4 * F, 5 * F, 6 * F, 7 * F]);
    for (const f of got) {
      expect(a.refCount(f)).toBe(1);
      expect(mem.readBytes(f, F).every((b) => b === 0)).toBe(true);
    }
    // memory outside the allocated frames is untouched
    expect(mem.read8(3 * F)).toBe(0xaa);
    expect(mem.read8(8 * F)).toBe(0xaa);
    expect(a.freeFrames).toBe(0);
  });

  it('reuses a freed frame and zero-fills it again', () => {
    const mem = new PhysicalMemory(8 * F);
    const a = new BitmapFrameAllocator(mem);
    const f0 = a.allocFrame();
    a.allocFrame();
    mem.write32(f0, 0xdeadbeef);
    expect(a.decRef(f0)).toBe(0);
    expect(a.allocFrame()).toBe(f0);
    expect(mem.read32(f0)).toBe(0);
  });

  it('allocates aligned contiguous runs (2 MiB alignment) and frees them', () => {
    const mem = new PhysicalMemory(8 * 1024 * 1024);
    const a = new BitmapFrameAllocator(mem, { start: F });
    const one = a.allocFrame();
    expect(one).toBe(F);
    const run = a.allocContiguous(512, 0x20_0000);
    expect(run).toBe(0x20_0000);
    expect(a.refCount(pa(run + 511 * F))).toBe(1);
    // the frames before the run are still free and used first by allocFrame
    expect(a.allocFrame()).toBe(2 * F);
    a.freeContiguous(run, 512);
    expect(a.refCount(run)).toBe(0);
    expect(a.allocContiguous(512, 0x20_0000)).toBe(0x20_0000);
  });

  it('counts references; the frame is free only at 0', () => {
    const mem = new PhysicalMemory(4 * F);
    const a = new BitmapFrameAllocator(mem);
    const f = a.allocFrame();
    expect(a.incRef(f)).toBe(2);
    expect(a.decRef(f)).toBe(1);
    expect(a.freeFrames).toBe(3);
    expect(a.decRef(f)).toBe(0);
    expect(a.freeFrames).toBe(4);
  });

  it('exhaustion, double free, unallocated free and bad addresses are typed errors that change nothing', () => {
    const mem = new PhysicalMemory(8 * F);
    const a = new BitmapFrameAllocator(mem, { start: 2 * F, end: 6 * F });
    const f = a.allocFrame();
    a.allocFrame();
    a.allocFrame();
    const g = a.allocFrame();
    a.decRef(g);
    const before = snapshot(a, mem);
    expectVmkitError(() => a.allocContiguous(2, F), 'E_NOMEM');
    a.allocFrame();
    const full = snapshot(a, mem);
    expectVmkitError(() => a.allocFrame(), 'E_NOMEM');
    expect(snapshot(a, mem)).toEqual(full);
    a.decRef(g);
    expect(snapshot(a, mem)).toEqual(before);
    expectVmkitError(() => a.decRef(g), 'E_DOUBLE_FREE');
    expectVmkitError(() => a.incRef(g), 'E_NOT_ALLOCATED');
    const never = new BitmapFrameAllocator(new PhysicalMemory(4 * F));
    expectVmkitError(() => never.decRef(pa(F)), 'E_NOT_ALLOCATED');
    expectVmkitError(() => a.decRef(pa(F)), 'E_RANGE');
    expectVmkitError(() => a.decRef(pa(6 * F)), 'E_RANGE');
    expectVmkitError(() => a.decRef(pa(f + 8)), 'E_UNALIGNED');
    expectVmkitError(() => a.allocContiguous(0, F), 'E_RANGE');
    expectVmkitError(() => a.allocContiguous(1, 3000), 'E_INVALID');
    // a run with one free frame in it is rejected before anything is released
    expectVmkitError(() => a.freeContiguous(f, 4), 'E_DOUBLE_FREE');
    expect(snapshot(a, mem)).toEqual(before);
    expect(a.refCount(f)).toBe(1);
  });

  it('rejects a bad range', () => {
    const mem = new PhysicalMemory(4 * F);
    expectVmkitError(() => new BitmapFrameAllocator(mem, { start: 100 }), 'E_UNALIGNED');
    expectVmkitError(() => new BitmapFrameAllocator(mem, { end: 8 * F }), 'E_RANGE');
    expectVmkitError(() => new BitmapFrameAllocator(mem, { start: 2 * F, end: 2 * F }), 'E_RANGE');
  });

  it('agrees with a reference model under random operations (counts never below zero)', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('alloc' as const) }),
      fc.record({
        t: fc.constant('run' as const),
        n: fc.integer({ min: 1, max: 9 }),
        align: fc.constantFrom(F, 2 * F, 8 * F, 32 * F),
      }),
      fc.record({ t: fc.constantFrom('inc' as const, 'dec' as const), i: fc.nat(69) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const start = 3 * F;
        const total = 70;
        const mem = new PhysicalMemory(80 * F);
        const a = new BitmapFrameAllocator(mem, { start, end: start + total * F });
        const refs = new Array<number>(total).fill(0);
        const freed = new Array<boolean>(total).fill(false);
        for (const o of ops) {
          if (o.t === 'alloc' || o.t === 'run') {
            const n = o.t === 'alloc' ? 1 : o.n;
            const align = o.t === 'alloc' ? F : o.align;
            let expected = -1;
            for (let p = Math.ceil(start / align) * align; (p - start) / F + n <= total; p += align) {
              const i = (p - start) / F;
              if (refs.slice(i, i + n).every((r) => r === 0)) {
                expected = p;
                break;
              }
            }
            if (expected < 0) {
              expectVmkitError(
                () => (o.t === 'alloc' ? a.allocFrame() : a.allocContiguous(n, align)),
                'E_NOMEM',
              );
            } else {
              const got = o.t === 'alloc' ? a.allocFrame() : a.allocContiguous(n, align);
              expect(got).toBe(expected);
              for (let k = 0; k < n; k++) {
                refs[(expected - start) / F + k] = 1;
                freed[(expected - start) / F + k] = false;
              }
            }
          } else {
            const f = pa(start + o.i * F);
            if (refs[o.i] === 0) {
              expectVmkitError(
                () => (o.t === 'inc' ? a.incRef(f) : a.decRef(f)),
                o.t === 'dec' && freed[o.i] ? 'E_DOUBLE_FREE' : 'E_NOT_ALLOCATED',
              );
            } else if (o.t === 'inc') {
              refs[o.i]!++;
              expect(a.incRef(f)).toBe(refs[o.i]);
            } else {
              refs[o.i]!--;
              if (refs[o.i] === 0) freed[o.i] = true;
              expect(a.decRef(f)).toBe(refs[o.i]);
            }
          }
          expect(a.freeFrames).toBe(refs.filter((r) => r === 0).length);
        }
        for (let i = 0; i < total; i++) expect(a.refCount(pa(start + i * F))).toBe(refs[i]);
      }),
      { numRuns: 150 },
    );
  });
});

describe('BitmapFrameAllocator batch reference counts (incRefMany, decRefMany)', () => {
  /** Counts, free frames and the memory image: what an error must leave as it was. */
  function setup() {
    const mem = new PhysicalMemory(16 * F);
    const a = new BitmapFrameAllocator(mem, { start: 2 * F, end: 12 * F });
    const fs = [a.allocFrame(), a.allocFrame(), a.allocFrame(), a.allocFrame()]; // 2F..5F
    a.decRef(fs[3]!); // 5F freed once
    return { mem, a, fs };
  }
  const refsOf = (a: BitmapFrameAllocator) => (a as unknown as { refs: Uint32Array }).refs; // white box: only to reach 2^32 - 1

  it('adds and drops one reference per listed frame (duplicates count twice), from arrays and typed arrays', () => {
    const { mem, a, fs } = setup();
    const [f0, f1, f2] = fs as [PhysAddr, PhysAddr, PhysAddr];
    a.incRefMany([f0, f1, f1]);
    expect([a.refCount(f0), a.refCount(f1), a.refCount(f2)]).toEqual([2, 3, 1]);
    a.incRefMany(new Float64Array([f2, f0, 0]), 2); // only the first two
    a.incRefMany(new Uint32Array([f2]));
    a.incRefMany([], 0);
    expect([a.refCount(f0), a.refCount(f1), a.refCount(f2)]).toEqual([3, 3, 3]);
    expect(a.decRefMany([f1, f1, f1, f0])).toBe(1); // f1 reaches 0: free again
    expect(a.refCount(f1)).toBe(0);
    expect(a.freeFrames).toBe(8);
    expect(a.decRefMany(new Float64Array([f0, f0, f2, f2, f2]))).toBe(2);
    expect(a.freeFrames).toBe(10);
    // a frame freed by a batch is a freed frame: reused lowest first, zero-filled, double free detected
    expectVmkitError(() => a.decRef(f1), 'E_DOUBLE_FREE');
    mem.write32(f0, 0x1234_5678);
    expect(a.allocFrame()).toBe(f0);
    expect(mem.read32(f0)).toBe(0);
  });

  it('bad arguments are typed errors naming the element, and change nothing', () => {
    const { mem, a, fs } = setup();
    const [f0, f1, f2, gone] = fs as [PhysAddr, PhysAddr, PhysAddr, PhysAddr];
    const snap = () => snapshot(a, mem);
    const before = snap();
    const bad = a as unknown as {
      incRefMany(f: unknown, c?: unknown): void;
      decRefMany(f: unknown, c?: unknown): number;
    };
    for (const op of ['incRefMany', 'decRefMany'] as const) {
      const run = (f: unknown, c?: unknown) => () => bad[op](f, c);
      for (const f of [null, undefined, 'abc', { length: 1, 0: f0 }, 42, new DataView(new ArrayBuffer(8))])
        expectVmkitError(run(f), 'E_INVALID');
      expectVmkitError(run([f0], 1.5), 'E_INVALID');
      expectVmkitError(run([f0], '1'), 'E_INVALID');
      expectVmkitError(run([f0], -1), 'E_RANGE');
      expectVmkitError(run([f0], 2), 'E_RANGE');
      const e = expectVmkitError(run([f0, f1, 'x']), 'E_INVALID');
      expect(e.message).toContain(`${op} frames[2]`);
      expect(e.message).toContain('"x"');
      for (const v of [Number.NaN, Number.POSITIVE_INFINITY, -F, 2 ** 53 + F * 2])
        expectVmkitError(
          run([f0, v]),
          v === -F ? 'E_RANGE' : v === 2 ** 53 + F * 2 ? 'E_OVERFLOW' : 'E_INVALID',
        );
      expect(expectVmkitError(run([f0, f1 + 8]), 'E_UNALIGNED').message).toContain('frames[1]');
      expectVmkitError(run([f0, F]), 'E_RANGE'); // below start
      expectVmkitError(run(new Float64Array([f0, 12 * F])), 'E_RANGE'); // at end
      expectVmkitError(run([f0, 8 * F]), 'E_NOT_ALLOCATED'); // never allocated
      expect(snap()).toEqual(before);
    }
    // a freed frame: incRef says not allocated, decRef says double free
    expect(expectVmkitError(() => a.incRefMany([f0, gone]), 'E_NOT_ALLOCATED').message).toContain(
      'frames[1]',
    );
    expectVmkitError(() => a.decRefMany([f0, f1, gone]), 'E_DOUBLE_FREE');
    // listed more times than referenced: nothing dropped, nothing freed
    expectVmkitError(() => a.decRefMany([f2, f0, f2]), 'E_DOUBLE_FREE');
    expect(snap()).toEqual(before);
    // overflow at 2^32 - 1, directly or reached through duplicates
    const refs = refsOf(a);
    const i2 = (f2 - a.start) / F;
    refs[i2] = 0xffff_fffe;
    const mid = snap();
    expectVmkitError(() => a.incRefMany([f0, f2, f1, f2]), 'E_REFCOUNT_OVERFLOW');
    expect(snap()).toEqual(mid);
    a.incRefMany([f2]);
    expect(a.refCount(f2)).toBe(0xffff_ffff);
    expectVmkitError(() => a.incRefMany([f1, f2]), 'E_REFCOUNT_OVERFLOW');
    expectVmkitError(() => a.incRef(f2), 'E_REFCOUNT_OVERFLOW');
    refs[i2] = 1;
    expect(snap()).toEqual(before);
    // the single-frame fast path refuses what the checks refuse
    const one = a as unknown as { incRef(f: unknown): number };
    expectVmkitError(() => one.incRef(String(f0)), 'E_INVALID');
    expectVmkitError(() => one.incRef(f0 + 0.5), 'E_INVALID');
    expectVmkitError(() => one.incRef(f0 + 4), 'E_UNALIGNED');
    expectVmkitError(() => one.incRef(12 * F), 'E_RANGE');
    expect(snap()).toEqual(before);
    // after all the failed batches, allocation goes on where it would have
    expect(a.allocFrame()).toBe(gone);
  }, 10_000);

  it('agrees with a per-frame reference model, all or nothing (random batches with duplicates and bad frames)', () => {
    const start = 3 * F;
    const total = 24;
    const batch = fc.record({
      t: fc.constantFrom('inc' as const, 'dec' as const, 'alloc' as const),
      // frame indexes; total.. stands for a frame outside the allocator
      idx: fc.array(fc.integer({ min: 0, max: total + 1 }), { maxLength: 12 }),
      typed: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(batch, { maxLength: 40 }), (ops) => {
        const mem = new PhysicalMemory(32 * F);
        const a = new BitmapFrameAllocator(mem, { start, end: start + total * F });
        const refs = new Array<number>(total).fill(0);
        const freed = new Array<boolean>(total).fill(false);
        for (const o of ops) {
          if (o.t === 'alloc') {
            const i = refs.indexOf(0);
            if (i < 0) continue;
            expect(a.allocFrame()).toBe(start + i * F);
            refs[i] = 1;
            freed[i] = false;
            continue;
          }
          const addrs = o.idx.map((i) => start + i * F);
          const list = o.typed ? new Float64Array(addrs) : addrs;
          // The model: apply element by element; the first element that fails names the error.
          const next = refs.slice();
          let code: string | undefined;
          for (const i of o.idx) {
            if (i >= total) code = 'E_RANGE';
            else if (o.t === 'inc') {
              if (next[i] === 0) code = 'E_NOT_ALLOCATED';
              else next[i]!++;
            } else if (next[i] === 0) {
              code = refs[i]! > 0 || freed[i] ? 'E_DOUBLE_FREE' : 'E_NOT_ALLOCATED';
            } else next[i]!--;
            if (code) break;
          }
          // (counts and free frames: the image, 128 KiB, is compared by the example tests above)
          const counts = () => [a.freeFrames, ...refs.map((_, i) => a.refCount(pa(start + i * F)))];
          const before = counts();
          if (code) {
            expectVmkitError(() => (o.t === 'inc' ? a.incRefMany(list) : a.decRefMany(list)), code);
            expect(counts()).toEqual(before);
            continue;
          }
          const freedNow = refs.filter((r, i) => r > 0 && next[i] === 0).length;
          if (o.t === 'inc') a.incRefMany(list);
          else expect(a.decRefMany(list)).toBe(freedNow);
          for (let i = 0; i < total; i++) {
            if (refs[i]! > 0 && next[i] === 0) freed[i] = true;
            refs[i] = next[i]!;
          }
          for (let i = 0; i < total; i++) expect(a.refCount(pa(start + i * F))).toBe(refs[i]);
          expect(a.freeFrames).toBe(refs.filter((r) => r === 0).length);
        }
      }),
      { numRuns: 200 },
    );
  }, 20_000);
});
