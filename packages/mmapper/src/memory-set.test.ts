import type { VirtAddr } from '@vmkit/addr';
import { BitmapFrameAllocator, PageMapper, PhysicalMemory } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { MapState } from './map-state.js';
import { MemorySetOs } from './memory-set.js';
import { MmapAnnotation, MmapStrategy } from './strategy.js';
import { TwoLevelMmapper } from './two-level.js';

const START = 0x4000_0000 as VirtAddr;
const PAGE = 4096;
const CHUNK = 0x40_0000;
const TEST = MmapStrategy.TEST;
const ANNO = MmapAnnotation.test('memory-set.test.ts', 1);

function os(memBytes = 8 << 20) {
  const mem = new PhysicalMemory(memBytes);
  const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
  const pt = new PageMapper(mem, frames);
  return { mem, frames, pt, os: new MemorySetOs(pt) };
}

describe('MemorySetOs: the memory cases of MMTk over real page tables', () => {
  it('test_mmap: map twice with replace (the second map is zero-filled again)', () => {
    const { mem, pt, os: o } = os();
    expect(o.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(o.touch(START)).toBe('mapped');
    mem.write8(pt.translate(START)!.pa, 0x5a);
    expect(o.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(pt.translate(START)).toBeUndefined(); // fresh demand-zero mapping
    expect(o.touch(START)).toBe('mapped');
    expect(mem.read8(pt.translate(START)!.pa)).toBe(0);
    expect(o.set.len()).toBe(1);
  });

  it('test_mmap_noreplace: no-replace fails over a mapping with EEXIST, nothing changed', () => {
    const { os: o } = os();
    expect(o.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(o.dzmmapNoreplace(START, PAGE, TEST, ANNO)?.errno).toBe('EEXIST');
    expect(o.mmapNoreserve(START, 2 * PAGE, TEST, ANNO)?.errno).toBe('EEXIST');
    expect(o.set.len()).toBe(1);
  });

  it('test_mmap_noreserve: quarantine then map', () => {
    const { os: o } = os();
    expect(o.mmapNoreserve(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(o.set.find(START)?.flags).toMatchObject({ prot: 'NoAccess', noReserve: true });
    expect(o.touch(START)).toBe('EACCES');
    expect(o.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(o.set.find(START)?.flags).toEqual({
      prot: 'ReadWrite',
      noReserve: false,
      hugePage: 'No',
      annotation: 'mmtk:test:memory-set.test.ts:1',
    });
    expect(o.touch(START)).toBe('mapped');
  });

  it('mprotect keeps the frames and contents for munprotect; over a hole it is ENOMEM', () => {
    const { mem, frames, pt, os: o } = os();
    o.dzmmap(START, 4 * PAGE, TEST, ANNO);
    o.touch((START + PAGE) as VirtAddr);
    const pa = pt.translate((START + PAGE) as VirtAddr)!.pa;
    mem.write8(pa, 0x77);
    const free = frames.freeFrames;
    expect(o.mprotect(START, 5 * PAGE)?.errno).toBe('ENOMEM');
    expect(o.mprotect(START, 2 * PAGE)).toBeUndefined();
    expect(pt.translate((START + PAGE) as VirtAddr)).toBeUndefined();
    expect(o.touch((START + PAGE) as VirtAddr)).toBe('EACCES');
    expect(o.parkedPages).toBe(1);
    expect(frames.freeFrames).toBeGreaterThanOrEqual(free); // emptied page tables went back, the data frame did not
    expect(o.munprotect(START, 2 * PAGE, 'ReadWriteExec')).toBeUndefined();
    const t = pt.translate((START + PAGE) as VirtAddr)!;
    expect([t.pa, mem.read8(t.pa), t.flags.executable, o.parkedPages]).toEqual([pa, 0x77, true, 0]);
    expect(o.set.len()).toBe(2); // [START, +2 pages) ReadWriteExec, the rest ReadWrite
  });

  it('unmapping a protected range by a replacing map frees its parked frames', () => {
    const { frames, os: o } = os();
    const free0 = frames.freeFrames;
    o.dzmmap(START, PAGE, TEST, ANNO);
    o.touch(START);
    o.mprotect(START, PAGE);
    o.dzmmap(START, PAGE, TEST, ANNO);
    expect(o.parkedPages).toBe(0);
    // only page-table frames stay allocated
    expect(free0 - frames.freeFrames).toBeLessThanOrEqual(3);
  });
});

describe('a TwoLevelMmapper over MemorySetOs', () => {
  it('quarantines a 1 TiB heap in one area, maps, protects and unprotects chunks with real page tables', () => {
    const { pt, os: o } = os(16 << 20);
    const m = new TwoLevelMmapper(o);
    const heap = 0x200_0000_0000 as VirtAddr;
    m.quarantineAddressRange(heap, 2 ** 40 / PAGE, TEST, MmapAnnotation.space('heap'));
    expect(o.set.len()).toBe(1);
    m.ensureMapped(heap, 1536, TEST, MmapAnnotation.space('heap')); // 1.5 chunks: two chunks
    expect([
      m.mapState(heap),
      m.mapState((heap + CHUNK) as VirtAddr),
      m.mapState((heap + 2 * CHUNK) as VirtAddr),
    ]).toEqual([MapState.Mapped, MapState.Mapped, MapState.Quarantined]);
    expect(o.touch((heap + CHUNK + 5 * PAGE) as VirtAddr)).toBe('mapped');
    expect(o.touch((heap + 2 * CHUNK) as VirtAddr)).toBe('EACCES');
    m.protect((heap + CHUNK) as VirtAddr, 1024);
    expect(pt.translate((heap + CHUNK + 5 * PAGE) as VirtAddr)).toBeUndefined();
    m.ensureMapped(heap, 2048, TEST, MmapAnnotation.space('heap'));
    expect(pt.translate((heap + CHUNK + 5 * PAGE) as VirtAddr)).toBeDefined();
    expect([...o.set].map((a) => [a.start - heap, a.size / CHUNK, a.flags.prot])).toEqual([
      [0, 1, 'ReadWrite'],
      [CHUNK, 1, 'ReadWrite'],
      [2 * CHUNK, 2 ** 18 - 2, 'NoAccess'],
    ]);
  });
});
