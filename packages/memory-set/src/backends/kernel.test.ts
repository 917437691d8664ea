// The x86-64 backends as a kernel uses them (issues #9 and #10): nothing crosses the canonical hole,
// PROT_NONE, page-fault reasons, merging, lazy terabytes, requests that cannot fit.
import { isVmkitError, PAGE_SIZE_2M, PAGE_SIZE_4K, type VirtAddr, virtAddr } from '@vmkit/addr';
import {
  ACCESS_EXEC,
  ACCESS_USER,
  ACCESS_WRITE,
  BitmapFrameAllocator,
  type PageFlags,
  PageMapper,
  PhysicalMemory,
} from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { isMappingError, MemoryArea, MemorySet } from '../index.js';
import { AllocBackend, handlePageFault, LinearBackend, resolvePageFault, samePageFlags } from './index.js';

const P = PAGE_SIZE_4K;
const RW: PageFlags = { writable: true, user: true, executable: false };
const RO: PageFlags = { writable: false, user: true, executable: false };
const NONE: PageFlags = { readable: false, writable: false, user: true, executable: false };
const KRX: PageFlags = { writable: false, user: false, executable: true };

type B = AllocBackend | LinearBackend;
function machine(memSize = 16 * 2 ** 20, options: { merge?: boolean; virtual?: boolean } = {}) {
  const mem = new PhysicalMemory(memSize);
  const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
  const pt = new PageMapper(mem, frames);
  const set = new MemorySet<PageFlags, PageMapper, VirtAddr, B>({ ...options, flagsEqual: samePageFlags });
  return { mem, frames, pt, set };
}
const area = (start: number, size: number, flags: PageFlags, b: B) =>
  new MemoryArea<PageFlags, PageMapper, VirtAddr, B>(start as VirtAddr, size, flags, b);
const va = (n: number) => n as VirtAddr;

describe('nothing crosses the canonical hole (#9 §1)', () => {
  const lastLow = virtAddr(0x7ffffffff000);
  const firstHigh = virtAddr('0xffff800000000000');

  it('the reproduction: a lazy-or-eager AllocBackend area across the hole is refused, nothing mapped', () => {
    for (const populate of [true, false]) {
      const { frames, pt, set } = machine();
      const free0 = frames.freeFrames;
      const e = (() => {
        try {
          set.map(area(lastLow, 0x2000, RW, new AllocBackend(populate)), pt, false);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(isMappingError(e, 'InvalidParam'), String(e)).toBe(true);
      expect(String(e)).toMatch(/\[0x7ffffffff000, \+0x2000\) crosses the canonical hole/);
      expect(pt.translate(firstHigh)).toBeUndefined();
      expect(pt.leaves()).toEqual([]);
      expect(set.len()).toBe(0);
      expect(frames.freeFrames).toBe(free0);
    }
  });

  it('the backends refuse it themselves, whatever set (even { virtual: false }) or caller', () => {
    const { frames, pt, set } = machine(16 * 2 ** 20, { virtual: false });
    const free0 = frames.freeFrames;
    for (const b of [new AllocBackend(true), new AllocBackend(false), new LinearBackend(0x7fff_f000_0000)]) {
      expect(() => set.map(area(lastLow, 0x2000, RW, b), pt, false)).toThrow(/crosses the canonical hole/);
      expect(() => b.map(lastLow, 0x2000, RW, pt)).toThrow(/crosses the canonical hole/);
      expect(() => b.map(va(2 ** 48 - P), 2 * P, RW, pt)).toThrow(/passes the top/);
      expect(() => b.map(va(2 ** 48), P, RW, pt)).toThrow(/outside \[0, 2\^48\)/);
      expect(() => b.unmap(lastLow, 0x2000, pt)).toThrow(/crosses the canonical hole/);
      expect(() => b.protect(lastLow, 0x2000, RO, pt)).toThrow(/crosses the canonical hole/);
    }
    expect(pt.leaves()).toEqual([]);
    expect(frames.freeFrames).toBe(free0);
    expect(set.len()).toBe(0);
  });

  it('areas touching the hole from either side are fine', () => {
    const { pt, set } = machine();
    set.map(area(lastLow, P, RW, new AllocBackend(true)), pt, false);
    set.map(area(firstHigh, P, KRX, new AllocBackend(true)), pt, false);
    expect(pt.leaves().map((l) => l.va)).toEqual([lastLow, firstHigh]);
    expect(set.toString()).toBe(
      [
        'MemorySet(2 areas)',
        '  MemoryArea([0x7ffffffff000, 0x800000000000), flags: {"writable":true,"user":true,"executable":false})',
        '  MemoryArea([0xffff800000000000, 0xffff800000001000), flags: {"writable":false,"user":false,"executable":true})',
      ].join('\n'),
    );
  });
});

describe('PROT_NONE (#10 §1)', () => {
  it('eager: pages stay not present, keep frames and data, and come back on protect', () => {
    const { mem, frames, pt, set } = machine();
    const base = 0x40_0000;
    set.map(area(base, 4 * P, RW, new AllocBackend(true)), pt, false);
    const pas = [0, 1, 2, 3].map((i) => pt.translate(va(base + i * P))?.pa as number);
    pas.forEach((pa, i) => {
      mem.write32(pa, 0xc0de0 + i);
    });
    const free = frames.freeFrames;
    const r = set.protect(va(base + P), 2 * P, () => NONE, pt);
    expect(r.changedBytes).toBe(2 * P);
    expect(pt.translate(va(base + P))).toBeUndefined();
    expect(pt.translate(va(base + 2 * P))).toBeUndefined();
    expect(pt.translate(va(base))?.pa).toBe(pas[0]);
    expect(frames.freeFrames).toBe(free); // the frames are kept
    expect(resolvePageFault(set, va(base + P), pt)).toBe('not-allowed');
    expect(handlePageFault(set, va(base + P), pt)).toBe(false);
    set.protect(va(base), 4 * P, () => RO, pt);
    for (let i = 0; i < 4; i++) {
      const t = pt.translate(va(base + i * P));
      expect(t?.pa).toBe(pas[i]);
      expect(t?.flags.writable).toBe(false);
      expect(mem.read32(t?.pa as number)).toBe(0xc0de0 + i);
    }
    set.clear(pt);
    expect(pt.leaves()).toEqual([]);
  });

  it('a PROT_NONE area maps nothing, faults are not allowed, unmap frees kept frames', () => {
    const { frames, pt, set } = machine();
    const free0 = frames.freeFrames;
    set.map(area(0x40_0000, 8 * P, NONE, new AllocBackend(true)), pt, false);
    expect(pt.leaves()).toEqual([]);
    expect(free0 - frames.freeFrames).toBe(8); // populated, kept not present
    set.map(area(0x80_0000, 8 * P, NONE, new AllocBackend(false)), pt, false);
    expect(resolvePageFault(set, va(0x80_0000), pt, ACCESS_USER)).toBe('not-allowed');
    expect(free0 - frames.freeFrames).toBe(8);
    // a lazy page touched, then PROT_NONE, then unmapped: every frame goes back
    set.protect(va(0x80_0000), 8 * P, () => RW, pt);
    expect(resolvePageFault(set, va(0x80_3000), pt, ACCESS_USER | ACCESS_WRITE)).toBe('populated');
    set.protect(va(0x80_0000), 8 * P, () => NONE, pt);
    expect(pt.translate(va(0x80_3000))).toBeUndefined();
    set.unmap(va(0x40_0000), 0x80_0000, pt);
    expect(set.len()).toBe(0);
    expect(frames.freeFrames).toBe(free0);
  });

  it('linear: PROT_NONE removes the translations, protecting back restores them', () => {
    const { pt, set } = machine();
    const base = virtAddr('0xffff800000000000');
    set.map(area(base, 4 * P, KRX, new LinearBackend(base)), pt, false);
    set.protect(va(base + P), 2 * P, () => ({ ...KRX, readable: false }), pt);
    expect(pt.translate(va(base + P))).toBeUndefined();
    expect(pt.translate(va(base + 3 * P))?.pa).toBe(3 * P);
    set.protect(va(base), 4 * P, () => KRX, pt);
    expect(pt.translate(va(base + 2 * P))?.pa).toBe(2 * P);
    expect(set.len()).toBe(3); // no merge option here
  });

  it('a failing restore (no frame for a table) changes nothing', () => {
    const { frames, pt, set } = machine(2 * 2 ** 20);
    const base = 0x4000_0000;
    set.map(area(base, 2 * P, RW, new AllocBackend(true)), pt, false);
    set.protect(va(base), 2 * P, () => NONE, pt);
    // Use every frame, then ask for the restore: the tables are gone, so it needs new ones.
    const held: number[] = [];
    while (frames.freeFrames > 0) held.push(frames.allocFrame());
    expect(() => set.protect(va(base), 2 * P, () => RW, pt)).toThrow(/E_NOMEM/);
    expect(set.find(va(base))?.flags).toBe(NONE);
    expect(pt.leaves()).toEqual([]);
    for (const f of held) frames.decRef(f as never);
    set.protect(va(base), 2 * P, () => RW, pt);
    expect(pt.leaves().length).toBe(2);
  });
});

describe('resolvePageFault says why (#10 §1)', () => {
  it('no area, not allowed, already present, populated, not populatable', () => {
    const { pt, set } = machine();
    set.map(area(0x40_0000, 4 * P, RO, new AllocBackend(false)), pt, false);
    set.map(area(0x80_0000, 4 * P, RW, new AllocBackend(true)), pt, false);
    set.map(area(0xc0_0000, 4 * P, KRX, new AllocBackend(false)), pt, false);
    expect(resolvePageFault(set, va(0x10_0000), pt)).toBe('no-area');
    expect(resolvePageFault(set, va(0x40_0000), pt, ACCESS_USER | ACCESS_WRITE)).toBe('not-allowed');
    expect(resolvePageFault(set, va(0x40_0000), pt, ACCESS_USER | ACCESS_EXEC)).toBe('not-allowed');
    expect(resolvePageFault(set, va(0xc0_0000), pt, ACCESS_USER)).toBe('not-allowed');
    expect(resolvePageFault(set, va(0xc0_0000), pt, ACCESS_EXEC)).toBe('populated');
    expect(resolvePageFault(set, va(0x40_0010), pt, ACCESS_USER)).toBe('populated');
    expect(resolvePageFault(set, va(0x40_0020), pt, ACCESS_USER)).toBe('already-present');
    expect(resolvePageFault(set, va(0x80_0000), pt, ACCESS_USER | ACCESS_WRITE)).toBe('already-present');
    pt.unmap(va(0x80_1000)); // an eager page gone behind the set's back: nothing can populate it
    expect(resolvePageFault(set, va(0x80_1000), pt, ACCESS_USER)).toBe('not-populatable');
    expect(() => resolvePageFault(set, va(2 ** 48), pt)).toThrow(/E_INVALID_PARAM: faulting address/);
    expect(() => resolvePageFault(set, va(0x40_0000), pt, -1)).toThrow(/access -1/);
    expect(() => resolvePageFault({} as never, va(0x40_0000), pt)).toThrow(/is not a MemorySet/);
  });
});

describe('the backends check their own arguments (#9 §3)', () => {
  it('typed errors naming the value as passed', () => {
    const { pt } = machine();
    const b = new AllocBackend(false);
    expect(() => b.handlePageFault('0x1000' as never, RW, pt)).toThrow(
      /faulting address "0x1000" is not a VirtAddr/,
    );
    expect(() => b.map(va(0x1000), P, { writable: 1 } as never, pt)).toThrow(
      /flags \{"writable":1\} are not PageFlags/,
    );
    expect(() => b.map(va(0x1000), P, RW, undefined as never)).toThrow(
      /page table undefined is not a PageMapper/,
    );
    expect(() => b.map(va(0x1800), P, RW, pt)).toThrow(/not aligned to the page size 0x1000/);
    expect(() => b.unmap(va(0x1000), 0, pt)).toThrow(/is empty/);
    expect(() => new AllocBackend('yes' as never)).toThrow(/populate "yes" is not a boolean/);
    expect(() => new AllocBackend(true, 0x3000 as never)).toThrow(
      /page size 0x3000 is not an x86-64 page size/,
    );
    expect(() => new LinearBackend(Number.NaN)).toThrow(/offset NaN is not an integer multiple of 0x1000/);
    expect(pt.leaves()).toEqual([]);
  });
});

describe('merging x86-64 areas (#10 §1)', () => {
  it('adjacent lazy areas with equal flags become one, as Linux VMAs', () => {
    const { pt, set } = machine(16 * 2 ** 20, { merge: true });
    set.map(area(0x40_0000, 4 * P, RW, new AllocBackend(false)), pt, false);
    set.map(area(0x40_4000, 4 * P, { ...RW, readable: true }, new AllocBackend(false)), pt, false);
    set.map(area(0x40_8000, 4 * P, RW, new AllocBackend(true)), pt, false); // eager: another kind
    expect(set.len()).toBe(2);
    handlePageFault(set, va(0x40_5000), pt);
    set.protect(va(0x40_2000), 4 * P, () => RO, pt);
    expect(set.len()).toBe(4);
    set.protect(va(0x40_2000), 4 * P, () => RW, pt);
    expect([...set].map((a) => [a.start, a.end])).toEqual([
      [0x40_0000, 0x40_8000],
      [0x40_8000, 0x40_c000],
    ]);
    expect(pt.translate(va(0x40_5000))?.flags.writable).toBe(true);
    const base = virtAddr('0xffff800000000000');
    set.map(area(base, 2 * PAGE_SIZE_2M, KRX, new LinearBackend(base, PAGE_SIZE_2M)), pt, false);
    set.map(
      area(base + 2 * PAGE_SIZE_2M, PAGE_SIZE_2M, KRX, new LinearBackend(base, PAGE_SIZE_2M)),
      pt,
      false,
    );
    set.map(area(base + 3 * PAGE_SIZE_2M, PAGE_SIZE_2M, KRX, new LinearBackend(0, PAGE_SIZE_2M)), pt, false);
    expect(set.len()).toBe(4);
  });
});

describe('work proportional to what is done (#10 §2)', () => {
  it('a lazy 2^46-byte area maps, protects and unmaps without populating or writing anything', () => {
    const { frames, pt, set } = machine();
    const free0 = frames.freeFrames;
    set.map(area(0, 2 ** 46, RW, new AllocBackend(false)), pt, false);
    expect(frames.freeFrames).toBe(free0);
    expect(pt.leaves()).toEqual([]);
    for (let k = 0; k < 10; k++) handlePageFault(set, va(k * 2 ** 40 + 0x123), pt);
    expect(pt.leaves().length).toBe(10);
    set.protect(va(0), 2 ** 46, () => RO, pt);
    expect(pt.leaves().every((l) => (l.lo & 2) === 0)).toBe(true);
    set.protect(va(0), 2 ** 46, () => NONE, pt);
    expect(pt.leaves()).toEqual([]);
    set.protect(va(0), 2 ** 46, () => RW, pt);
    expect(pt.leaves().length).toBe(10);
    set.unmap(va(0), 2 ** 46, pt);
    expect(frames.freeFrames).toBe(free0);
  });

  it('an eager request that cannot fit fails before it starts', () => {
    const { frames, pt, set } = machine(4 * 2 ** 20);
    const free0 = frames.freeFrames;
    const e = (() => {
      try {
        set.map(area(0x4000_0000, 2 ** 40, RW, new AllocBackend(true)), pt, false);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(isVmkitError(e, 'E_NOMEM'), String(e)).toBe(true);
    expect(frames.freeFrames).toBe(free0);
    expect(set.len()).toBe(0);
  });
});
