import { PAGE_SIZE_4K as PAGE, type PhysAddr } from '@vmkit/addr';
import { ACCESS_USER, BitmapFrameAllocator, Mmu, PageMapper, PhysicalMemory } from '@vmkit/paging-x86_64';
import { errorCode } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { halfOpen, machine, va } from '../test/helpers.js';
import { AddressSpaceAllocator, checkAsid, MAX_ASID } from './address-spaces.js';
import { VirtualMemoryManager } from './manager.js';

describe('AddressSpaceAllocator', () => {
  it('hands out the lowest free ASID from 1, reuses freed ones, and frees every table', () => {
    const { spaces, frames } = machine();
    const free = frames.freeFrames;
    expect([
      spaces.allocVirtualAddressSpace(),
      spaces.allocVirtualAddressSpace(),
      spaces.allocVirtualAddressSpace(),
    ]).toEqual([1, 2, 3]);
    spaces.freeVirtualAddressSpace(2);
    expect(spaces.isAsidUsed(2)).toBe(false);
    expect(spaces.getRootPageTable(2)).toBeUndefined();
    expect(spaces.allocVirtualAddressSpace()).toBe(2);
    expect(spaces.allocVirtualAddressSpace()).toBe(4);
    spaces.freeVirtualAddressSpace(9); // not in use: ignored
    for (const a of [1, 2, 3, 4]) spaces.freeVirtualAddressSpace(a);
    expect(spaces.usedCount).toBe(0);
    expect(frames.freeFrames).toBe(free);
  });

  it('ASID 0 and values outside 0..4095 never have a space', () => {
    const { spaces } = machine();
    for (const a of [0, -1, 4096, 1.5, Number.NaN]) {
      expect(spaces.isAsidUsed(a)).toBe(false);
      expect(spaces.getRootPageTable(a)).toBeUndefined();
    }
    expect(errorCode(() => spaces.freeVirtualAddressSpace(4096))).toBe('E_RANGE');
    expect(errorCode(() => spaces.switchTo(7))).toBe('E_NO_PAGE_TABLE');
    expect(errorCode(() => checkAsid('1'))).toBe('E_INVALID');
    expect(() => checkAsid(MAX_ASID)).not.toThrow();
  });

  it('runs out after 4095 spaces (E_NO_ASID) and changes nothing then', () => {
    const mem = new PhysicalMemory(24 << 20);
    const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
    const spaces = new AddressSpaceAllocator({
      mem,
      frames,
      mmu: new Mmu(mem, { cr4: (1 << 5) | (1 << 17), tlbSize: 16 }),
    });
    for (let a = 1; a <= MAX_ASID; a++) spaces.allocVirtualAddressSpace();
    const free = frames.freeFrames;
    expect(errorCode(() => spaces.allocVirtualAddressSpace())).toBe('E_NO_ASID');
    expect(frames.freeFrames).toBe(free);
    spaces.freeVirtualAddressSpace(100);
    expect(spaces.allocVirtualAddressSpace()).toBe(100);
  }, 20_000);

  it('needs an MMU with PCIDs on', () => {
    const mem = new PhysicalMemory(4 << 20);
    const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
    expect(errorCode(() => new AddressSpaceAllocator({ mem, frames, mmu: new Mmu(mem) }))).toBe('E_INVALID');
  });

  it('tags the TLB with the ASID: entries of one space survive a switch, invalidations are per ASID', () => {
    const { spaces } = machine();
    const seen: string[] = [];
    const s2 = new AddressSpaceAllocator({
      mem: spaces.mem,
      frames: spaces.frames,
      mmu: spaces.mmu,
      onInvalidate: (a, v) => seen.push(`${a}:${v.toString(16)}`),
    });
    const a = new VirtualMemoryManager({ addressSpaces: s2 });
    const b = new VirtualMemoryManager({ addressSpaces: s2 });
    a.setAsid(s2.allocVirtualAddressSpace());
    b.setAsid(s2.allocVirtualAddressSpace());
    a.addMemoryMap(halfOpen(0x40_0000, PAGE, 0x20_0000));
    // b's page sits one page up: the TLB is direct-mapped, so the same page of two spaces would share a slot.
    b.addMemoryMap(halfOpen(0x40_0000, 2 * PAGE, 0x30_0000));
    a.lazyMapPage(va(0x40_0000));
    b.lazyMapPage(va(0x40_1000));
    const mmu = s2.mmu;
    s2.switchTo(a.getAsid());
    expect(mmu.translate(0x40_0010, ACCESS_USER)).toBe(0x20_0010);
    s2.switchTo(b.getAsid());
    expect(mmu.translate(0x40_1010, ACCESS_USER)).toBe(0x30_1010);
    expect(mmu.translate(0x40_0010, ACCESS_USER)).toBe(-1); // b has no page there
    const hits = mmu.stats().hits;
    s2.switchTo(a.getAsid()); // no flush: a's entry is still cached under its PCID
    expect(mmu.translate(0x40_0010, ACCESS_USER)).toBe(0x20_0010);
    expect(mmu.stats().hits).toBe(hits + 1);
    // Removing b's map invalidates b's entry only, even though b is not current.
    b.removeMemoryMapByAddr(va(0x40_0000));
    expect(seen).toEqual([`${b.getAsid()}:401000`]);
    expect(mmu.translate(0x40_0010, ACCESS_USER)).toBe(0x20_0010);
    s2.switchTo(b.getAsid());
    expect(mmu.translate(0x40_1010, ACCESS_USER)).toBe(-1);
  });

  it('freeing the current space moves CR3 to an empty root first', () => {
    const { spaces } = machine();
    const asid = spaces.allocVirtualAddressSpace();
    const root = spaces.getRootPageTable(asid)!.root;
    spaces.switchTo(asid);
    spaces.freeVirtualAddressSpace(asid);
    expect(spaces.mmu.cr3 - (spaces.mmu.cr3 % PAGE)).not.toBe(root);
    expect(spaces.mmu.currentPcid).toBe(0); // the empty root runs under PCID 0
    expect(spaces.mmu.translate(0x1000, ACCESS_USER)).toBe(-1);
  });

  it('shares the kernel half of kernelRoot and never frees it', () => {
    const mem = new PhysicalMemory(8 << 20);
    const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
    const kernel = new PageMapper(mem, frames);
    const kva = va(2 ** 48 - 2 * 2 ** 20); // 0xffffffffffe00000
    kernel.map(kva, 0x5000 as PhysAddr, PAGE, { writable: true, user: false, executable: false });
    const spaces = new AddressSpaceAllocator({ mem, frames, kernelRoot: kernel.root });
    const asid = spaces.allocVirtualAddressSpace();
    expect(spaces.getRootPageTable(asid)!.translate(kva)?.pa).toBe(0x5000);
    spaces.freeVirtualAddressSpace(asid);
    expect(kernel.translate(kva)?.pa).toBe(0x5000); // the shared tables are still the kernel's
    expect(kernel.leaves().length).toBe(1);
  });
});
