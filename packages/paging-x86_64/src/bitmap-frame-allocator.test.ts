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
