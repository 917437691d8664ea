import { PAGE_SIZE_4K as PAGE, type PhysAddr } from '@vmkit/addr';
import { ACCESS_USER, ACCESS_WRITE } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { halfOpen, machine, RWU, RWXU, seedMap, va } from '../test/helpers.js';
import { SeedMessage, type VmmError } from './errors.js';
import { VirtualMemoryManager } from './manager.js';
import { VirtualMemoryMap } from './map.js';
import { AnonymousPageOwner } from './owner.js';
import { VirtualMemoryPermission as P } from './permissions.js';

function thrown(fn: () => unknown): VmmError {
  try {
    fn();
  } catch (e) {
    return e as VmmError;
  }
  throw new Error('expected an error');
}

// The upstream project's own tests (kernel/src/vm/manager.rs), translated: inclusive ends become
// half-open through seedMap, the Unix-mode permissions 0o644 / 0o755 become RWU / RWXU.
describe('upstream manager tests', () => {
  it('a new manager has ASID 0', () => {
    expect(new VirtualMemoryManager().getAsid()).toBe(0);
  });

  it('sets and gets the ASID', () => {
    const vmm = new VirtualMemoryManager();
    vmm.setAsid(42);
    expect(vmm.getAsid()).toBe(42);
  });

  it('adds and gets a memory map', () => {
    const vmm = new VirtualMemoryManager();
    const vma = { start: 0x1000, end: 0x1fff };
    vmm.addMemoryMap(seedMap(vma, vma, 0));
    expect(vmm.memmapLen()).toBe(1);
    expect(vmm.withMemmaps((m) => m.values().next().value?.vmarea.start)).toBe(0x1000);
    expect(vmm.getMemoryMapByAddr(va(0x1000))?.vmarea.start).toBe(0x1000);
    expect(vmm.getMemoryMapByAddr(va(0x2000))).toBeUndefined();
    expect(vmm.getMemoryMapByAddr(va(0x1800))).toBeUndefined(); // exact start only
  });

  it('removes a memory map', () => {
    const vmm = new VirtualMemoryManager();
    const vma = { start: 0x1000, end: 0x1fff };
    vmm.addMemoryMap(seedMap(vma, vma, 0));
    expect(vmm.removeMemoryMapByAddr(va(0x1000))?.vmarea.start).toBe(0x1000);
    expect(vmm.memmapIsEmpty()).toBe(true);
    expect(vmm.memmapLen()).toBe(0);
    expect(vmm.getMemoryMapByAddr(va(0x1000))).toBeUndefined();
  });

  it('searches for a memory map', () => {
    const vmm = new VirtualMemoryManager();
    const a = { start: 0x1000, end: 0x1fff };
    const b = { start: 0x3000, end: 0x3fff };
    vmm.addMemoryMap(seedMap(a, a, 0));
    vmm.addMemoryMap(seedMap(b, b, 0));
    expect(vmm.searchMemoryMap(va(0x3500))?.vmarea.start).toBe(0x3000);
    expect(vmm.searchMemoryMap(va(0x2000))).toBeUndefined(); // between them (half-open ends)
    expect(vmm.searchMemoryMap(va(0x1fff))?.vmarea.start).toBe(0x1000);
  });

  it('has a root page table once an ASID is assigned', () => {
    const { spaces } = machine();
    const vmm = new VirtualMemoryManager({ addressSpaces: spaces });
    expect(vmm.getRootPageTable()).toBeUndefined();
    const asid = spaces.allocVirtualAddressSpace();
    vmm.setAsid(asid);
    expect(vmm.getRootPageTable()).toBe(spaces.getRootPageTable(asid));
    expect(vmm.getRootPageTable()).toBeDefined();
  });

  it('mmap base, findUnmappedArea, stats and coalescing (memory optimization features)', () => {
    const m = new VirtualMemoryManager();
    expect(m.getMmapBase()).toBe(0x4000_0000);
    m.setMmapBase(0x5000_0000);
    expect(m.getMmapBase()).toBe(0x5000_0000);
    expect(m.findUnmappedArea(PAGE, PAGE)).toBe(0x5000_0000);
    m.addMemoryMap(
      seedMap({ start: 0x8000_0000, end: 0x8000_0fff }, { start: 0x5000_0000, end: 0x5000_0fff }, RWU),
    );
    const addr2 = m.findUnmappedArea(PAGE, PAGE)!;
    expect(addr2).toBeGreaterThan(0x5000_0fff);
    expect(addr2).toBe(0x5000_1000);
    // Regression upstream: a map that starts below the base but covers it is skipped.
    m.setMmapBase(0x6000_0000);
    m.addMemoryMap(
      seedMap({ start: 0x9000_0000, end: 0x9001_ffff }, { start: 0x5fff_0000, end: 0x6000_ffff }, RWU),
    );
    const addr3 = m.findUnmappedArea(PAGE, PAGE)!;
    expect(addr3).toBeGreaterThanOrEqual(0x6001_0000);
    expect(m.getMemoryStats()).toEqual({ totalMaps: 2, totalVirtualSize: 33 * PAGE, gaps: 1 });
    m.addMemoryMap(
      seedMap({ start: 0x8000_2000, end: 0x8000_2fff }, { start: 0x5000_2000, end: 0x5000_2fff }, RWU),
    );
    expect(m.getMemoryStats()).toEqual({ totalMaps: 3, totalVirtualSize: 34 * PAGE, gaps: 2 });
    expect(m.coalesceMemoryMaps()).toBe(0);
  });

  it('coalesces two adjacent physically contiguous maps with equal permissions', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(
      seedMap({ start: 0x8000_0000, end: 0x8000_0fff }, { start: 0x1000_0000, end: 0x1000_0fff }, RWU),
    );
    m.addMemoryMap(
      seedMap({ start: 0x8000_1000, end: 0x8000_1fff }, { start: 0x1000_1000, end: 0x1000_1fff }, RWU),
    );
    expect(m.getMemoryStats().totalMaps).toBe(2);
    expect(m.coalesceMemoryMaps()).toBe(1);
    expect(m.getMemoryStats()).toEqual({ totalMaps: 1, totalVirtualSize: 2 * PAGE, gaps: 0 });
    const merged = m.searchMemoryMap(va(0x1000_0000))!;
    expect(merged.vmarea.start).toBe(0x1000_0000);
    expect(merged.vmarea.end).toBe(0x1000_2000); // the seed's inclusive 0x10001fff
    expect(merged.pmarea?.start).toBe(0x8000_0000);
    expect(merged.pmarea?.end).toBe(0x8000_2000);
  });

  it('complex overlap detection: misaligned, overlapping and touching maps, final order', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_0fff }, { start: 0x1000, end: 0x1fff }, RWU));
    m.addMemoryMap(seedMap({ start: 0x2000_0000, end: 0x2000_0fff }, { start: 0x4000, end: 0x4fff }, RWU));
    m.addMemoryMap(seedMap({ start: 0x3000_0000, end: 0x3000_0fff }, { start: 0x7000, end: 0x7fff }, RWU));
    const bad = [
      seedMap({ start: 0x4000_0000, end: 0x4000_0fff }, { start: 0x1800, end: 0x27ff }, RWU), // overlaps map1's end
      seedMap({ start: 0x5000_0000, end: 0x5000_0fff }, { start: 0x3800, end: 0x47ff }, RWU), // overlaps map2's start
      seedMap({ start: 0x6000_0000, end: 0x6000_05ff }, { start: 0x1200, end: 0x17ff }, RWU), // inside map1
      seedMap({ start: 0x7000_0000, end: 0x7000_1fff }, { start: 0x800, end: 0x27ff }, RWU), // contains map1
    ];
    for (const map of bad) expect(thrown(() => m.addMemoryMap(map)).code).toBe('E_UNALIGNED'); // also misaligned
    // The same overlaps, page-aligned, get the seed's overlap messages.
    const prev = thrown(() => m.addMemoryMap(halfOpen(0x1000, 0x2000, 0x4000_0000)));
    expect([prev.code, prev.reason]).toEqual(['E_OVERLAP', SeedMessage.overlapsSucceeding]);
    const prev2 = thrown(() => m.addMemoryMap(halfOpen(0x3000, 0x2000, 0x5000_0000)));
    expect([prev2.code, prev2.reason]).toEqual(['E_OVERLAP', SeedMessage.overlapsSucceeding]);
    const inside = thrown(() => m.addMemoryMap(halfOpen(0x4000, 0x1000, 0x6000_0000)));
    expect(inside.reason).toBe(SeedMessage.overlapsSucceeding); // same start as map2
    const big = halfOpen(0x4000, 0x4000, 0x6000_0000);
    expect(thrown(() => m.addMemoryMap(big)).reason).toBe(SeedMessage.overlapsSucceeding);
    const tail = thrown(() => m.addMemoryMap(halfOpen(0x7000 + 0x0, 0x2000, 0x6000_0000)));
    expect(tail.reason).toBe(SeedMessage.overlapsSucceeding);
    // Touching maps are fine; gap insertion; the very beginning and end.
    m.addMemoryMap(seedMap({ start: 0x8000_0000, end: 0x8000_0fff }, { start: 0x2000, end: 0x2fff }, RWU));
    m.addMemoryMap(seedMap({ start: 0x9000_0000, end: 0x9000_0fff }, { start: 0x5000, end: 0x5fff }, RWU));
    m.addMemoryMap(seedMap({ start: 0xa000_0000, end: 0xa000_0fff }, { start: 0x0, end: 0xfff }, RWU));
    m.addMemoryMap(seedMap({ start: 0xb000_0000, end: 0xb000_0fff }, { start: 0x8000, end: 0x8fff }, RWU));
    expect(m.memmapLen()).toBe(7);
    expect(m.withMemmaps((mm) => [...mm.keys()])).toEqual([
      0x0, 0x1000, 0x2000, 0x4000, 0x5000, 0x7000, 0x8000,
    ]);
  });

  it('preceding-overlap message', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(halfOpen(0x1000, 0x2000, undefined));
    const e = thrown(() => m.addMemoryMap(halfOpen(0x2000, 0x2000, undefined)));
    expect([e.code, e.reason]).toEqual(['E_OVERLAP', SeedMessage.overlapsPreceding]);
    expect(e.message).toBe(
      'E_OVERLAP: Memory mapping overlaps with a preceding map: [0x2000, 0x4000) overlaps [0x1000, 0x3000)',
    );
  });

  it('alignment and edge cases', () => {
    const m = new VirtualMemoryManager();
    const misVirtual = seedMap({ start: 0x1000_0000, end: 0x1000_0fff }, { start: 0x1001, end: 0x2000 }, RWU);
    expect(thrown(() => m.addMemoryMap(misVirtual)).reason).toBe(SeedMessage.unaligned);
    const misPhys = seedMap({ start: 0x1000_0001, end: 0x1000_1000 }, { start: 0x1000, end: 0x1fff }, RWU);
    const e = thrown(() => m.addMemoryMap(misPhys));
    expect([e.code, e.reason]).toEqual(['E_UNALIGNED', SeedMessage.pmUnaligned]);
    const misSize = seedMap({ start: 0x1000_0000, end: 0x1000_0800 }, { start: 0x1000, end: 0x1800 }, RWU);
    expect(thrown(() => m.addMemoryMap(misSize)).reason).toBe(SeedMessage.unaligned);
    // The seed's "zero size" {start: 0x1000, end: 0x1000} is one byte (inclusive end): unaligned.
    const oneByte = seedMap({ start: 0x1000_0000, end: 0x1000_0000 }, { start: 0x1000, end: 0x1000 }, RWU);
    expect(thrown(() => m.addMemoryMap(oneByte)).reason).toBe(SeedMessage.unaligned);
    // A truly empty half-open map is refused too.
    const empty = halfOpen(0x1000, 0, 0x1000_0000);
    expect(thrown(() => m.addMemoryMap(empty)).code).toBe('E_RANGE');
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_0fff }, { start: 0x1000, end: 0x1fff }, RWU));
    m.addMemoryMap(
      seedMap({ start: 0x2000_0000, end: 0x2000_ffff }, { start: 0x1_0000, end: 0x1_ffff }, RWU),
    );
    expect(m.memmapLen()).toBe(2);
  });

  it('invalidates the search cache on add', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_0fff }, { start: 0x1000, end: 0x1fff }, RWU));
    const found = m.searchMemoryMap(va(0x1500));
    expect(found).toBeDefined();
    expect(m.searchMemoryMap(va(0x1500))).toBe(found); // a cache hit returns the same object
    m.addMemoryMap(seedMap({ start: 0x2000_0000, end: 0x2000_0fff }, { start: 0x3000, end: 0x3fff }, RWU));
    expect(m.searchMemoryMap(va(0x1500))?.vmarea.start).toBe(0x1000);
    expect(m.searchMemoryMap(va(0x3500))?.vmarea.start).toBe(0x3000);
    // Removing the cached map empties the cache (no stale answer).
    m.removeMemoryMapByAddr(va(0x3000));
    expect(m.searchMemoryMap(va(0x3500))).toBeUndefined();
  });

  it('fixed map, complete overlap', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_0fff }, { start: 0x2000, end: 0x2fff }, RWU));
    const fixed = seedMap(
      { start: 0x2000_0000, end: 0x2000_2fff },
      { start: 0x1000, end: 0x3fff },
      RWXU,
      true,
    );
    const over = m.addMemoryMapFixed(fixed);
    expect(over.length).toBe(1);
    expect(over[0]!.vmarea.start).toBe(0x2000);
    expect(m.memmapLen()).toBe(1);
    const r = m.searchMemoryMap(va(0x2000))!;
    expect([r.vmarea.start, r.vmarea.end, r.permissions, r.isShared]).toEqual([0x1000, 0x4000, RWXU, true]);
  });

  it('fixed map, partial overlap', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_1fff }, { start: 0x1000, end: 0x2fff }, RWU));
    const over = m.addMemoryMapFixed(
      seedMap({ start: 0x2000_0000, end: 0x2000_1fff }, { start: 0x2000, end: 0x3fff }, RWXU, true),
    );
    expect(over.length).toBe(1);
    expect([over[0]!.vmarea.start, over[0]!.vmarea.end, over[0]!.pmarea?.start]).toEqual([
      0x2000, 0x3000, 0x1000_1000,
    ]);
    expect(m.memmapLen()).toBe(2);
    const left = m.searchMemoryMap(va(0x1500))!;
    expect([left.vmarea.start, left.vmarea.end, left.permissions]).toEqual([0x1000, 0x2000, RWU]);
    const fixed = m.searchMemoryMap(va(0x3000))!;
    expect([fixed.vmarea.start, fixed.vmarea.end, fixed.permissions, fixed.isShared]).toEqual([
      0x2000,
      0x4000,
      RWXU,
      true,
    ]);
  });

  it('fixed map, split at both ends', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_3fff }, { start: 0x1000, end: 0x4fff }, RWU));
    const over = m.addMemoryMapFixed(
      seedMap({ start: 0x2000_0000, end: 0x2000_1fff }, { start: 0x2000, end: 0x3fff }, RWXU, true),
    );
    expect(over.length).toBe(1);
    expect(m.memmapLen()).toBe(3);
    const before = m.searchMemoryMap(va(0x1500))!;
    expect([before.vmarea.start, before.vmarea.end, before.permissions, before.pmarea?.start]).toEqual([
      0x1000,
      0x2000,
      RWU,
      0x1000_0000,
    ]);
    const fixed = m.searchMemoryMap(va(0x3000))!;
    expect([fixed.vmarea.start, fixed.vmarea.end, fixed.permissions, fixed.isShared]).toEqual([
      0x2000,
      0x4000,
      RWXU,
      true,
    ]);
    const after = m.searchMemoryMap(va(0x4500))!;
    expect([after.vmarea.start, after.vmarea.end, after.permissions, after.pmarea?.start]).toEqual([
      0x4000,
      0x5000,
      RWU,
      0x1000_3000,
    ]);
  });

  it('fixed map, no overlap', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x1000_0000, end: 0x1000_0fff }, { start: 0x1000, end: 0x1fff }, RWU));
    const over = m.addMemoryMapFixed(
      seedMap({ start: 0x2000_0000, end: 0x2000_0fff }, { start: 0x3000, end: 0x3fff }, RWXU, true),
    );
    expect(over).toEqual([]);
    expect(m.memmapLen()).toBe(2);
    expect(m.searchMemoryMap(va(0x1500))?.vmarea.start).toBe(0x1000);
    expect(m.searchMemoryMap(va(0x3500))?.vmarea.start).toBe(0x3000);
  });

  it('lazy mapping then translation keeping the page offset, none after removal', () => {
    const { spaces } = machine();
    const m = new VirtualMemoryManager({ addressSpaces: spaces });
    const ram = 0x20_0000; // a RAM page (the upstream test uses the start of the direct map)
    m.addMemoryMap(seedMap({ start: ram, end: ram + 0xfff }, { start: 0x1000, end: 0x1fff }, RWU));
    m.setAsid(spaces.allocVirtualAddressSpace());
    m.lazyMapPage(va(0x1500));
    const pa = m.translateVaddr(va(0x1500))!;
    expect(pa & (PAGE - 1)).toBe(0x500);
    expect(pa).toBe(ram + 0x500);
    // ... and the real page table says the same (side-effect-free probe through the MMU).
    spaces.switchTo(m.getAsid());
    const probe = spaces.mmu.probe(va(0x1500), ACCESS_USER | ACCESS_WRITE);
    expect(probe.ok && [probe.pa, probe.writable, probe.user, probe.executable]).toEqual([
      ram + 0x500,
      true,
      true,
      false,
    ]);
    m.removeMemoryMapByAddr(va(0x1500));
    expect(m.translateVaddr(va(0x1500))).toBeUndefined();
    expect(spaces.mmu.probe(va(0x1500)).ok).toBe(false);
  });

  it('an unbacked map translates to none', () => {
    const m = new VirtualMemoryManager();
    // Upstream writes "no physical area" as pmarea.start == 0; here it is an absent pmarea.
    m.addMemoryMap(new VirtualMemoryMap({ vmarea: { start: 0x2000, end: 0x3000 }, permissions: 0 }));
    expect(m.translateVaddr(va(0x2000))).toBeUndefined();
  });

  it('range removal splits left and right segments', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x8000_0000, end: 0x8000_3fff }, { start: 0x4000, end: 0x7fff }, RWU));
    const removed = m.removeMemoryMapRange(va(0x5000), PAGE * 2);
    expect(removed.length).toBe(1);
    expect([removed[0]!.vmarea.start, removed[0]!.vmarea.end]).toEqual([0x5000, 0x7000]);
    expect(m.memmapLen()).toBe(2);
    const left = m.searchMemoryMap(va(0x4fff))!;
    expect([left.vmarea.start, left.vmarea.end]).toEqual([0x4000, 0x5000]);
    const right = m.searchMemoryMap(va(0x7000))!;
    expect([right.vmarea.start, right.vmarea.end, right.pmarea?.start]).toEqual([
      0x7000, 0x8000, 0x8000_3000,
    ]);
  });

  it('range removal rounds an unaligned length to pages', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(seedMap({ start: 0x8000_0000, end: 0x8000_4fff }, { start: 0x4000, end: 0x8fff }, RWU));
    const removed = m.removeMemoryMapRange(va(0x4000), PAGE + 0x123);
    expect(removed.length).toBe(1);
    expect([removed[0]!.vmarea.start, removed[0]!.vmarea.end]).toEqual([0x4000, 0x6000]);
    expect(m.searchMemoryMap(va(0x4000))).toBeUndefined();
    expect(m.searchMemoryMap(va(0x5fff))).toBeUndefined();
    const right = m.searchMemoryMap(va(0x6000))!;
    expect([right.vmarea.start, right.vmarea.end]).toEqual([0x6000, 0x9000]);
    expect([right.pmarea?.start, right.pmarea?.end]).toEqual([0x8000_2000, 0x8000_5000]);
    expect(m.removeMemoryMapRange(va(0x6000), 0)).toEqual([]);
  });

  it('an unbacked owner map stays unbacked when split', () => {
    const { mem, frames } = machine();
    const m = new VirtualMemoryManager();
    const owner = new AnonymousPageOwner(mem, frames);
    m.addMemoryMap(new VirtualMemoryMap({ vmarea: { start: 0x4000, end: 0x8000 }, permissions: RWU, owner }));
    const removed = m.addMemoryMapFixed(halfOpen(0x5000, PAGE, 0x8000_0000, P.Read | P.Write));
    expect(removed.length).toBe(1);
    expect(removed[0]!.pmarea).toBeUndefined();
    expect(removed[0]!.owner).toBe(owner);
    const left = m.searchMemoryMap(va(0x4000))!;
    expect([left.vmarea.start, left.vmarea.end, left.pmarea, left.owner, left.vmStart]).toEqual([
      0x4000,
      0x5000,
      undefined,
      owner,
      0x4000,
    ]);
    const right = m.searchMemoryMap(va(0x6000))!;
    expect([right.vmarea.start, right.vmarea.end, right.pmarea, right.owner]).toEqual([
      0x6000,
      0x8000,
      undefined,
      owner,
    ]);
    expect(right.vmStart).toBe(0x4000); // the owner's page indexes still count from the original start
  });
});

describe('clones and dispose', () => {
  it('a clone is a second handle to the same address space', () => {
    const { spaces } = machine();
    const a = new VirtualMemoryManager({ addressSpaces: spaces });
    const asid = spaces.allocVirtualAddressSpace();
    a.setAsid(asid);
    const b = a.clone();
    b.addMemoryMap(halfOpen(0x1000, PAGE, 0x20_0000));
    expect(a.memmapLen()).toBe(1);
    expect(a.isSoleOwner()).toBe(false);
    a.dispose();
    expect(a.disposed).toBe(true);
    expect(() => a.memmapLen()).toThrow(/disposed/);
    expect(spaces.isAsidUsed(asid)).toBe(true); // b still holds it
    b[Symbol.dispose]();
    expect(spaces.isAsidUsed(asid)).toBe(false);
    b.dispose(); // idempotent
  });

  it('the last dispose notifies owners', () => {
    const events: string[] = [];
    const owner = {
      onUnmapped: (v: number, len: number) => events.push(`${v.toString(16)}+${len.toString(16)}`),
    };
    {
      using m = new VirtualMemoryManager();
      m.addMemoryMap(halfOpen(0x1000, 2 * PAGE, undefined, RWU, owner));
      m.addMemoryMap(halfOpen(0x8000, PAGE, 0x5000));
    }
    expect(events).toEqual(['1000+2000']);
  });

  it('changing the ASID releases the old one when it was in use', () => {
    const { spaces, frames } = machine();
    const free = frames.freeFrames;
    const m = new VirtualMemoryManager({ addressSpaces: spaces });
    const a1 = spaces.allocVirtualAddressSpace();
    m.setAsid(a1);
    m.addMemoryMap(halfOpen(0x40_0000, PAGE, 0x20_0000));
    m.lazyMapPage(va(0x40_0000));
    const a2 = spaces.allocVirtualAddressSpace();
    m.setAsid(a2);
    expect(spaces.isAsidUsed(a1)).toBe(false);
    expect(spaces.isAsidUsed(a2)).toBe(true);
    m.setAsid(a2); // same: nothing happens
    expect(spaces.isAsidUsed(a2)).toBe(true);
    m.dispose();
    expect(frames.freeFrames).toBe(free); // every table frame came back
  });
});

describe('page size and types', () => {
  it('physical addresses are PhysAddr numbers', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(halfOpen(0x1000, PAGE, 0x7000));
    const pa: PhysAddr | undefined = m.translateVaddr(va(0x1234));
    expect(pa).toBe(0x7234);
  });
});
