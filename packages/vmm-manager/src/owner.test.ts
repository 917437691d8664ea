import { PAGE_SIZE_4K as PAGE, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import { ACCESS_EXEC, ACCESS_USER, ACCESS_WRITE } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { halfOpen, machine, RWU, va } from '../test/helpers.js';
import { SeedMessage, type VmmError } from './errors.js';
import { VirtualMemoryManager } from './manager.js';
import { VirtualMemoryMap } from './map.js';
import {
  type AccessKind,
  AccessOp,
  AnonymousPageOwner,
  BaseMappingOwner,
  type MemoryMappingInfo,
  type MemoryMappingOps,
  ownerDefaults,
  ResolveFaultError,
  type ResolveFaultResult,
} from './owner.js';
import { VirtualMemoryPermission as P } from './permissions.js';

function thrown(fn: () => unknown): VmmError {
  try {
    fn();
  } catch (e) {
    return e as VmmError;
  }
  throw new Error('expected an error');
}

/** The upstream test's MockMappableObject, plus a page resolver so the manager can use it. */
class MockMappableObject extends BaseMappingOwner {
  readonly mappedRegions: [number, number][] = [];
  constructor(
    readonly shouldFail: boolean,
    readonly base = 0x80_0000,
  ) {
    super();
  }
  override getMappingInfo(offset: number, _length: number): MemoryMappingInfo {
    if (this.shouldFail) throw new Error('Mock get_mapping_info failure');
    return { paddr: (0x8000_0000 + offset) as PhysAddr, permissions: 0x3, isShared: false };
  }
  override onMapped(vaddr: VirtAddr, _paddr: PhysAddr | undefined, length: number, _offset: number): void {
    if (!this.shouldFail) this.mappedRegions.push([vaddr, length]);
  }
  override onUnmapped(vaddr: VirtAddr, length: number): void {
    if (this.shouldFail) return;
    const i = this.mappedRegions.findIndex(([v, l]) => v === vaddr && l === length);
    if (i >= 0) this.mappedRegions.splice(i, 1);
  }
  override supportsMmap(): boolean {
    return !this.shouldFail;
  }
  override mmapOwnerName(): string {
    return 'mock_object';
  }
  override resolveFault(_a: AccessKind, pageIdx: number): ResolveFaultResult | ResolveFaultError {
    if (this.shouldFail) return ResolveFaultError.Unmapped;
    return { paddrPageBase: (this.base + pageIdx * PAGE) as PhysAddr, isTail: false };
  }
  override privateFaultRequiresCopy(): boolean {
    return false;
  }
}

describe('the owner interface (upstream memory_mapping tests, translated)', () => {
  it('success cases', () => {
    const mock = new MockMappableObject(false);
    expect(mock.supportsMmap()).toBe(true);
    const info = mock.getMappingInfo(1024, 8192);
    expect(info).toEqual({ paddr: 0x8000_0400, permissions: 0x3, isShared: false });
    mock.onMapped(va(0x1000_0000), 0x8000_0400 as PhysAddr, 8192, 1024);
    expect(mock.mappedRegions).toEqual([[0x1000_0000, 8192]]);
    mock.onUnmapped(va(0x1000_0000), 8192);
    expect(mock.mappedRegions).toEqual([]);
  });

  it('failure cases', () => {
    const mock = new MockMappableObject(true);
    expect(mock.supportsMmap()).toBe(false);
    expect(() => mock.getMappingInfo(0, 4096)).toThrow('Mock get_mapping_info failure');
    mock.onMapped(va(0x1000_0000), 0x8000_0000 as PhysAddr, 4096, 0);
    mock.onUnmapped(va(0x1000_0000), 4096);
    expect(mock.mappedRegions).toEqual([]);
  });

  it('defaults of the trait', () => {
    const bare: MemoryMappingOps = {};
    const access: AccessKind = { op: AccessOp.Load, vaddr: va(0x1000) };
    expect(ownerDefaults.supportsMmap(bare)).toBe(true);
    expect(ownerDefaults.supportsPrivateMmap(bare)).toBe(true);
    expect(ownerDefaults.mmapOwnerName(bare)).toBe('object');
    expect(ownerDefaults.canExtendVmaOnFault(bare)).toBe(false);
    expect(ownerDefaults.resolveFault(bare, access, 0, va(0))).toBe('Unmapped');
    expect(ownerDefaults.faultPagePermissions(bare, access, RWU)).toBe(RWU);
    expect(ownerDefaults.privateFaultRequiresCopy(bare, access)).toBe(true);
    const base = new BaseMappingOwner();
    expect(() => base.getMappingInfo(0, PAGE)).toThrow('mmap not supported for this object');
    expect(base.forkClone()).toBeUndefined();
    // An owner cannot widen the map's rights: faultPagePermissions is masked by them.
    expect(ownerDefaults.faultPagePermissions({ faultPagePermissions: () => 0xf }, access, P.Read)).toBe(
      P.Read,
    );
  });

  it('through the manager: the owner resolves faults, and the last dispose notifies it', () => {
    const { spaces } = machine();
    const mock = new MockMappableObject(false);
    const m = new VirtualMemoryManager({ addressSpaces: spaces });
    m.setAsid(spaces.allocVirtualAddressSpace());
    m.addMemoryMap(halfOpen(0x1000_0000, 2 * PAGE, undefined, RWU, mock));
    mock.onMapped(va(0x1000_0000), undefined, 2 * PAGE, 0);
    m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x1000_1234) });
    spaces.switchTo(m.getAsid());
    const p = spaces.mmu.probe(va(0x1000_1234), ACCESS_USER | ACCESS_WRITE);
    expect(p.ok && p.pa).toBe(0x80_0000 + PAGE + 0x234); // page index 1
    expect(m.translateVaddr(va(0x1000_0010))).toBe(0x80_0010);
    m.dispose();
    expect(mock.mappedRegions).toEqual([]);
  });

  it('through the manager: a failing owner fails the fault, or falls back to the physical area', () => {
    const { spaces } = machine();
    const mock = new MockMappableObject(true);
    const m = new VirtualMemoryManager({ addressSpaces: spaces });
    m.setAsid(spaces.allocVirtualAddressSpace());
    m.addMemoryMap(halfOpen(0x1000_0000, PAGE, undefined, RWU, mock));
    const e = thrown(() => m.lazyMapPage(va(0x1000_0000)));
    expect([e.code, e.reason]).toEqual(['E_OWNER_FAULT', SeedMessage.ownerFailed]);
    expect(e.message).toContain('mock_object answered Unmapped');
    expect(m.getRootPageTable()!.leaves()).toEqual([]);
    m.addMemoryMap(halfOpen(0x2000_0000, PAGE, 0x30_0000, RWU, mock));
    m.lazyMapPage(va(0x2000_0000));
    expect(m.getRootPageTable()!.translate(va(0x2000_0000))?.pa).toBe(0x30_0000);
  });
});

describe('the fault path', () => {
  function setup() {
    const env = machine();
    const m = new VirtualMemoryManager({ addressSpaces: env.spaces });
    m.setAsid(env.spaces.allocVirtualAddressSpace());
    env.spaces.switchTo(m.getAsid());
    return { ...env, m };
  }

  it('maps exactly the one page', () => {
    const { m } = setup();
    m.addMemoryMap(halfOpen(0x40_0000, 16 * PAGE, 0x20_0000));
    m.lazyMapPage(va(0x40_3fff));
    expect(
      m
        .getRootPageTable()!
        .leaves()
        .map((l) => [l.va, l.pa]),
    ).toEqual([[0x40_3000, 0x20_3000]]);
  });

  it('refuses accesses the map does not allow, and maps without access bits', () => {
    const { m } = setup();
    m.addMemoryMap(halfOpen(0x40_0000, PAGE, 0x20_0000, P.Read | P.User));
    m.addMemoryMap(halfOpen(0x50_0000, PAGE, 0x20_0000, P.User));
    expect(thrown(() => m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x40_0000) })).code).toBe(
      'E_ACCESS',
    );
    expect(thrown(() => m.lazyMapPageWith({ op: AccessOp.Instruction, vaddr: va(0x40_0000) })).code).toBe(
      'E_ACCESS',
    );
    expect(thrown(() => m.lazyMapPage(va(0x50_0000))).code).toBe('E_ACCESS');
    expect(m.getRootPageTable()!.leaves()).toEqual([]);
    m.lazyMapPage(va(0x40_0000));
    expect(m.getRootPageTable()!.leaves().length).toBe(1);
  });

  it('maps execute-only as x86-64 can: present, not writable, executable', () => {
    const { m, spaces } = setup();
    m.addMemoryMap(halfOpen(0x40_0000, PAGE, 0x20_0000, P.Execute | P.User));
    m.lazyMapPageWith({ op: AccessOp.Instruction, vaddr: va(0x40_0000) });
    const p = spaces.mmu.probe(va(0x40_0000), ACCESS_USER | ACCESS_EXEC);
    expect(p.ok && [p.writable, p.executable, p.user]).toEqual([false, true, true]);
  });

  it('without an address space: "No root page table available"', () => {
    const m = new VirtualMemoryManager();
    m.addMemoryMap(halfOpen(0x1000, PAGE, 0x5000));
    const e = thrown(() => m.lazyMapPage(va(0x1000)));
    expect([e.code, e.reason]).toEqual(['E_NO_PAGE_TABLE', SeedMessage.noRootPageTable]);
  });

  it('no map: "No extendable memory mapping found"; unbacked and ownerless: E_UNBACKED', () => {
    const { m } = setup();
    const e = thrown(() => m.lazyMapPage(va(0x1000)));
    expect([e.code, e.reason]).toEqual(['E_NO_MAPPING', SeedMessage.noExtendable]);
    m.addMemoryMap(new VirtualMemoryMap({ vmarea: { start: 0x1000, end: 0x2000 }, permissions: RWU }));
    expect(thrown(() => m.lazyMapPage(va(0x1000))).code).toBe('E_UNBACKED');
  });

  it('a private map copies the owner page on a fault (default owner)', () => {
    const { m, mem, frames, spaces } = setup();
    const src = 0x30_0000;
    mem.write32(src, 0xdeadbeef);
    const owner: MemoryMappingOps = {
      resolveFault: () => ({ paddrPageBase: src as PhysAddr, isTail: false }),
    };
    m.addMemoryMap(halfOpen(0x40_0000, 4 * PAGE, undefined, RWU, owner));
    const before = frames.freeFrames;
    m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x40_1008) });
    expect(m.memmapLen()).toBe(3); // [0x400000,+1) owner, [0x401000,+1) the copy, [0x402000,+2) owner
    const copy = m.searchMemoryMap(va(0x40_1000))!;
    expect([copy.owner, copy.isShared, copy.permissions, copy.vmStart]).toEqual([
      undefined,
      false,
      RWU,
      0x40_0000,
    ]);
    const p = spaces.mmu.probe(va(0x40_1000), ACCESS_USER | ACCESS_WRITE);
    expect(p.ok && p.pa).toBe(copy.pmarea!.start);
    expect(mem.read32(copy.pmarea!.start)).toBe(0xdeadbeef);
    expect(spaces.mmu.write32(0x40_1000, 1, ACCESS_USER | ACCESS_WRITE)).toBe(true);
    expect(mem.read32(src)).toBe(0xdeadbeef); // the source is untouched
    m.removeMemoryMapRange(va(0x40_0000), 4 * PAGE);
    expect(frames.freeFrames).toBe(before); // the copy and the emptied page tables went back
  });

  it('a fork-style copy-on-write owner: loads share read-only, stores copy', () => {
    const { m, mem, spaces } = setup();
    const src = 0x30_0000;
    mem.write32(src, 7);
    const owner: MemoryMappingOps = {
      resolveFault: () => ({ paddrPageBase: src as PhysAddr, isTail: false }),
      faultPagePermissions: (a, perms) => (a.op === AccessOp.Store ? perms : perms & ~P.Write),
      privateFaultRequiresCopy: (a) => a.op === AccessOp.Store,
    };
    m.addMemoryMap(halfOpen(0x40_0000, PAGE, undefined, RWU, owner));
    m.lazyMapPage(va(0x40_0000));
    let p = spaces.mmu.probe(va(0x40_0000), ACCESS_USER);
    expect(p.ok && [p.pa, p.writable]).toEqual([src, false]);
    expect(spaces.mmu.write32(0x40_0000, 9, ACCESS_USER | ACCESS_WRITE)).toBe(false); // protection fault
    m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x40_0000) });
    p = spaces.mmu.probe(va(0x40_0000), ACCESS_USER | ACCESS_WRITE);
    expect(p.ok && p.writable).toBe(true);
    expect(p.ok && p.pa).not.toBe(src);
    expect(spaces.mmu.write32(0x40_0000, 9, ACCESS_USER | ACCESS_WRITE)).toBe(true);
    expect(mem.read32(src)).toBe(7);
  });

  it('a tail page loses Read and Write', () => {
    const { m, spaces } = setup();
    const owner: MemoryMappingOps = {
      resolveFault: (_a, idx) => ({ paddrPageBase: (0x30_0000 + idx * PAGE) as PhysAddr, isTail: idx === 1 }),
      privateFaultRequiresCopy: () => false,
    };
    m.addMemoryMap(halfOpen(0x40_0000, 2 * PAGE, undefined, RWU | P.Execute, owner));
    m.addMemoryMap(halfOpen(0x50_0000, 2 * PAGE, undefined, RWU, owner));
    m.lazyMapPage(va(0x40_1000));
    const p = spaces.mmu.probe(va(0x40_1000), ACCESS_USER);
    expect(p.ok && [p.writable, p.executable]).toEqual([false, true]);
    expect(thrown(() => m.lazyMapPage(va(0x50_1000))).code).toBe('E_ACCESS');
  });

  it('grows a map for an access just past its end when its owner can extend and resolve it', () => {
    const { m } = setup();
    let size = 2; // pages the object has
    const owner: MemoryMappingOps = {
      canExtendVmaOnFault: () => true,
      resolveFault: (_a, idx) =>
        idx < size
          ? { paddrPageBase: (0x30_0000 + idx * PAGE) as PhysAddr, isTail: false }
          : ResolveFaultError.Unmapped,
      privateFaultRequiresCopy: () => false,
    };
    m.addMemoryMap(
      new VirtualMemoryMap({
        vmarea: { start: 0x40_0000, end: 0x40_1000 },
        permissions: RWU,
        owner,
        isShared: true,
      }),
    );
    m.lazyMapPage(va(0x40_1010)); // the object has 2 pages: the map grows to cover page 1
    expect(m.searchMemoryMap(va(0x40_1000))?.vmarea.end).toBe(0x40_2000);
    expect(m.getRootPageTable()!.translate(va(0x40_1010))?.pa).toBe(0x30_1010);
    const e = thrown(() => m.lazyMapPage(va(0x40_2000)));
    expect([e.code, e.reason]).toEqual(['E_NO_MAPPING', SeedMessage.noExtendable]);
    expect(m.searchMemoryMap(va(0x40_0000))?.vmarea.end).toBe(0x40_2000);
    size = 4; // ftruncate grew the object
    m.lazyMapPage(va(0x40_3000));
    expect(m.searchMemoryMap(va(0x40_0000))?.vmarea.end).toBe(0x40_4000);
  });

  it('does not grow maps whose owner does not allow it', () => {
    const { m, mem, frames } = setup();
    m.addMemoryMap(halfOpen(0x40_0000, PAGE, undefined, RWU, new AnonymousPageOwner(mem, frames)));
    expect(thrown(() => m.lazyMapPage(va(0x40_1000))).code).toBe('E_NO_MAPPING');
    expect(m.searchMemoryMap(va(0x40_0000))?.vmarea.end).toBe(0x40_1000);
  });

  it('anonymous memory: a zero page per page index, the same page again, released on request', () => {
    const { m, mem, frames } = setup();
    const anon = new AnonymousPageOwner(mem, frames);
    m.addMemoryMap(halfOpen(0x40_0000, 64 * PAGE, undefined, RWU, anon));
    m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x40_5000) });
    expect(anon.residentPages).toBe(1);
    const pa = m.translateVaddr(va(0x40_5000));
    expect(pa).toBe(anon.pageFrame(5));
    m.unmapRangeFromMmu(va(0x40_0000), 0x40_0000 + 64 * PAGE);
    expect(m.getRootPageTable()!.leaves()).toEqual([]);
    m.lazyMapPage(va(0x40_5000));
    expect(m.getRootPageTable()!.translate(va(0x40_5000))?.pa).toBe(pa);
    const free = frames.freeFrames;
    for (const r of m.removeMemoryMapRange(va(0x40_0000), 64 * PAGE)) {
      r.owner?.releasePages?.((r.start - r.vmStart) / PAGE, r.size / PAGE);
    }
    expect(anon.residentPages).toBe(0);
    expect(frames.freeFrames).toBeGreaterThan(free);
  });

  it('a re-fault of a present page replaces its entry (after mprotect)', () => {
    const { m, spaces } = setup();
    m.addMemoryMap(halfOpen(0x40_0000, 4 * PAGE, 0x20_0000, P.Read | P.User));
    m.lazyMapPage(va(0x40_1000));
    expect(spaces.mmu.read32(0x40_1000, ACCESS_USER)).not.toBe(-1); // fills the TLB
    expect(m.protectMemoryMapRange(va(0x40_1000), PAGE, RWU)).toBe(1);
    expect(m.memmapLen()).toBe(3);
    expect(spaces.mmu.probe(va(0x40_1000)).ok).toBe(false); // dropped: faults back in with the new rights
    expect(spaces.mmu.write32(0x40_1000, 5, ACCESS_USER | ACCESS_WRITE)).toBe(false); // no stale TLB entry
    m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x40_1000) });
    expect(spaces.mmu.write32(0x40_1000, 5, ACCESS_USER | ACCESS_WRITE)).toBe(true);
    m.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x40_1000) }); // present already: replaced, same page
    expect(m.getRootPageTable()!.translate(va(0x40_1000))?.pa).toBe(0x20_1000);
    expect(m.protectMemoryMapRange(va(0x40_0000), 4 * PAGE, RWU)).toBe(2);
    expect(m.coalesceMemoryMaps()).toBe(2);
  });
});

describe('fork by copying', () => {
  it('copies private pages, shares shared maps, clones owners', () => {
    const { mem, frames, spaces } = machine();
    const parent = new VirtualMemoryManager({ addressSpaces: spaces });
    parent.setAsid(spaces.allocVirtualAddressSpace());
    const data = frames.allocContiguous(2, PAGE);
    mem.write32(data, 41);
    parent.addMemoryMap(halfOpen(0x40_0000, 2 * PAGE, data, RWU)); // private, backed
    parent.addMemoryMap(
      new VirtualMemoryMap({
        vmarea: { start: 0x50_0000, end: 0x50_1000 },
        pmarea: { start: 0x30_0000, end: 0x30_1000 },
        permissions: RWU,
        isShared: true,
      }),
    );
    const anon = new AnonymousPageOwner(mem, frames);
    parent.addMemoryMap(halfOpen(0x60_0000, 4 * PAGE, undefined, RWU, anon));
    parent.lazyMapPageWith({ op: AccessOp.Store, vaddr: va(0x60_0000) });
    mem.write32(anon.pageFrame(0)!, 99);
    const free = frames.freeFrames;
    const child = parent.fork();
    expect(child.getAsid()).not.toBe(parent.getAsid());
    expect(child.memmapLen()).toBe(3);
    const priv = child.searchMemoryMap(va(0x40_0000))!;
    expect(priv.pmarea!.start).not.toBe(data);
    expect(mem.read32(priv.pmarea!.start)).toBe(41);
    expect(child.searchMemoryMap(va(0x50_0000))!.pmarea!.start).toBe(0x30_0000);
    const childAnon = child.searchMemoryMap(va(0x60_0000))!.owner as AnonymousPageOwner;
    expect(childAnon).not.toBe(anon);
    expect(mem.read32(childAnon.pageFrame(0)!)).toBe(99);
    child.lazyMapPage(va(0x40_0000));
    child.dispose();
    childAnon.releaseAll();
    expect(frames.freeFrames).toBe(free);
  });
});

describe('helpers for a kernel', () => {
  it('accessFromFault reads W and I/D of the error code', async () => {
    const { accessFromFault } = await import('./owner.js');
    expect(accessFromFault(va(0x1000), 0b110).op).toBe('store'); // W|U
    expect(accessFromFault(va(0x1000), 0b10100).op).toBe('instruction'); // I/D|U
    expect(accessFromFault(va(0x1000), 0b100).op).toBe('load');
    expect(() => accessFromFault(va(0x1000), -1)).toThrow(/error code/);
  });

  it('getMemoryMapsInRange and residentPageCount', () => {
    const { spaces } = machine();
    const m = new VirtualMemoryManager({ addressSpaces: spaces });
    m.setAsid(spaces.allocVirtualAddressSpace());
    m.addMemoryMap(halfOpen(0x1000, 4 * PAGE, 0x20_0000));
    m.addMemoryMap(halfOpen(0x8000, 2 * PAGE, 0x30_0000));
    expect(m.getMemoryMapsInRange(va(0x4000), 0x5000).map((x) => x.start)).toEqual([0x1000, 0x8000]);
    expect(m.getMemoryMapsInRange(va(0x5000), 0x3000)).toEqual([]);
    expect(m.residentPageCount()).toBe(0);
    m.lazyMapPage(va(0x1000));
    m.lazyMapPage(va(0x3000));
    m.lazyMapPage(va(0x9000));
    expect(m.residentPageCount()).toBe(3);
    m.removeMemoryMapRange(va(0x3000), PAGE);
    expect(m.residentPageCount()).toBe(2);
  });
});
