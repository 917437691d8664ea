/**
 * The `memset` personality: the simulator's own address space, a `@vmkit/memory-set` of areas over an
 * x86-64 page table programmed through `@vmkit/paging-x86_64`'s `PageMapper`, with Linux's page
 * policy: lazy areas, demand-zero anonymous pages, a page cache for files (shared mappings map the
 * cached frame, private ones map it read-only and copy on the first write), and fork by
 * copy-on-write (both sides lose write access; the first write copies, or reuses a frame nobody else
 * holds). The page-table entries are the per-page state: no JS object per page.
 *
 * @module
 */
import { PAGE_SIZE_4K, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import { type MappingBackend, MemoryArea, MemorySet } from '@vmkit/memory-set';
import {
  addrHi,
  addrLo,
  type FrameAllocator,
  PageMapper,
  PF_ID,
  PF_P,
  PF_RSVD,
  PF_W,
  type PhysicalMemory,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_RW,
  PTE_US,
  pteAddr,
} from '@vmkit/paging-x86_64';
import type { SimFile } from '../devices.js';
import { PROT_EXEC, PROT_WRITE } from '../errno.js';
import {
  type AddressSpace,
  type AreaInfo,
  FaultKind,
  type MapRequest,
  type Personality,
  type SpaceContext,
} from '../personality.js';
import { dropKernelHalf, shareKernelHalf } from './shared.js';

const PAGE = 4096;
const XD = 0x8000_0000; // PTE_HI_XD

/** Per-area state (memory-set backend): what backs the pages. Position-dependent only via `offset`. */
class AreaBackend implements MappingBackend<number, MemsetSpace, VirtAddr> {
  readonly pageSize = PAGE_SIZE_4K;
  constructor(
    readonly shared: boolean,
    readonly file: SimFile | undefined,
    public offset: number,
    readonly mayWrite: boolean,
    readonly label: string | undefined,
  ) {}
  map(start: VirtAddr, size: number, _flags: number, sp: MemsetSpace): boolean {
    sp.restoreDeferred(start, size);
    return true;
  }
  unmap(start: VirtAddr, size: number, sp: MemsetSpace): boolean {
    sp.unmapPages(start, size);
    return true;
  }
  protect(start: VirtAddr, size: number, prot: number, sp: MemsetSpace): boolean {
    sp.protectPages(start, size, prot, this.shared);
    return true;
  }
  split(alignDiff: number): AreaBackend {
    return new AreaBackend(this.shared, this.file, this.offset + alignDiff, this.mayWrite, this.label);
  }
  shrinkLeft(n: number): void {
    this.offset += n;
  }
  shrinkRight(): void {}
  clone(): AreaBackend {
    return new AreaBackend(this.shared, this.file, this.offset, this.mayWrite, this.label);
  }
  settle(sp: MemsetSpace): void {
    sp.settle();
  }
}

type Area = MemoryArea<number, MemsetSpace, VirtAddr, AreaBackend>;

/** PTE low-word flags for a page of protection `prot` (write access only when `writable`). */
function loFlags(prot: number, writable: boolean): number {
  return PTE_P | (prot !== 0 ? PTE_US : 0) | (writable && (prot & PROT_WRITE) !== 0 ? PTE_RW : 0);
}

/** Accessed, and dirty when writable: set when the kernel maps a page for an access, as Linux's fault path does. */
function adBits(lo: number): number {
  return PTE_A | ((lo & PTE_RW) !== 0 ? PTE_D : 0);
}

/** An address space of the `memset` personality. */
export class MemsetSpace implements AddressSpace {
  readonly root: PhysAddr;
  readonly mapper: PageMapper;
  private readonly mem: PhysicalMemory;
  private readonly frames: FrameAllocator;
  private readonly set = new MemorySet<number, MemsetSpace, VirtAddr, AreaBackend>();
  private resident = 0;
  private deferred: { va: number; pa: PhysAddr }[] = [];
  private dead = false;

  constructor(private readonly ctx: SpaceContext) {
    this.mem = ctx.mem;
    this.frames = ctx.frames;
    this.mapper = new PageMapper(ctx.mem, ctx.frames);
    this.root = this.mapper.root as PhysAddr;
    shareKernelHalf(ctx, this.root);
    this.mapper.flushHook = (va) => ctx.invalidate(va);
  }

  map(req: MapRequest): void {
    const b = new AreaBackend(req.shared, req.file, req.offset, req.mayWrite, req.label);
    this.set.map(new MemoryArea(req.start, req.len, req.prot, b), this, false);
  }

  unmap(start: VirtAddr, len: number): void {
    this.set.unmap(start, len, this);
  }

  protect(start: VirtAddr, len: number, prot: number): void {
    this.set.protect(start, len, (old) => (old === prot ? undefined : prot), this);
  }

  areas(): AreaInfo[] {
    const out: AreaInfo[] = [];
    for (const a of this.set) out.push(info(a));
    return out;
  }

  areaAt(va: VirtAddr): AreaInfo | undefined {
    const a = this.set.find(va);
    return a === undefined ? undefined : info(a);
  }

  areasIn(start: VirtAddr, end: number): AreaInfo[] {
    const out: AreaInfo[] = [];
    for (const a of this.set) {
      if (a.end <= start) continue;
      if (a.start >= end) break;
      out.push(info(a));
    }
    return out;
  }

  residentPages(): number {
    return this.resident;
  }

  fault(va: VirtAddr, ec: number): FaultKind | Promise<FaultKind> {
    if ((ec & PF_RSVD) !== 0) return FaultKind.SEGV;
    const page = (va - (va % PAGE)) as VirtAddr;
    const area = this.set.find(page);
    if (area === undefined) return FaultKind.SEGV;
    const prot = area.flags;
    const write = (ec & PF_W) !== 0;
    if (
      prot === 0 ||
      (write && (prot & PROT_WRITE) === 0) ||
      ((ec & PF_ID) !== 0 && (prot & PROT_EXEC) === 0)
    )
      return FaultKind.SEGV;
    try {
      if ((ec & PF_P) !== 0) return write ? this.writeProtected(page, area) : FaultKind.SEGV;
      const b = area.backend;
      const file = b.file;
      if (file === undefined) {
        const pa = this.frames.allocFrame();
        this.install(page, pa, loFlags(prot, true), prot);
        return FaultKind.MINOR;
      }
      const idx = (b.offset + (page - area.start)) / PAGE;
      if (!file.anonymous && idx * PAGE >= file.size) return FaultKind.BUS;
      const r = file.page(idx, this.ctx.io);
      if (typeof r === 'number') return this.fileInstall(page, area, r, write, FaultKind.MINOR);
      return r.then(
        (pa) => {
          if (this.dead) return FaultKind.MAJOR;
          const again = this.set.find(page);
          // The area changed while the page was read: let the access re-execute and fault again.
          if (again !== area) return FaultKind.MAJOR;
          return this.fileInstall(page, area, pa, write, FaultKind.MAJOR);
        },
        () => FaultKind.OOM,
      );
    } catch (e) {
      if ((e as { code?: string }).code === 'E_NOMEM') return FaultKind.OOM;
      throw e;
    }
  }

  fork(ctx: SpaceContext): AddressSpace {
    const child = new MemsetSpace(ctx);
    for (const a of this.set) {
      const b = a.backend;
      child.set.map(new MemoryArea(a.start, a.size, a.flags, b.clone()), child, false);
      this.forEachPte(a.start, a.end, (va, ea) => {
        let lo = this.mem.read32(ea);
        const hi = this.mem.read32(ea + 4);
        const pa = pteAddr(lo, hi) as PhysAddr;
        this.frames.incRef(pa);
        if (!b.shared && (lo & PTE_RW) !== 0) {
          lo = (lo & ~PTE_RW) >>> 0;
          this.mem.write32(ea, lo);
          this.ctx.invalidate(va as VirtAddr);
        }
        child.installRaw(va as VirtAddr, pa, lo & (PTE_P | PTE_US | PTE_RW), hi & XD);
      });
    }
    return child;
  }

  destroy(): void {
    if (this.dead) return;
    this.set.clear(this);
    this.settle();
    dropKernelHalf(this.mem, this.root);
    this.mapper.destroy();
    this.dead = true;
  }

  // ------------------------------------------------------------ backend helpers (called by AreaBackend)

  /** Removes the present pages of a range; their frames are released at {@link settle}. */
  unmapPages(start: VirtAddr, size: number): void {
    const removed = this.mapper.unmapRange(start, size);
    for (const r of removed) this.deferred.push({ va: r.va, pa: r.pa });
    this.resident -= removed.length;
  }

  /** Compensation of an unmap in the same operation: puts the same frames back. */
  restoreDeferred(start: VirtAddr, size: number): void {
    const keep: { va: number; pa: PhysAddr }[] = [];
    for (const d of this.deferred) {
      if (d.va >= start && d.va < start + size) {
        this.mapper.map(d.va as VirtAddr, d.pa, PAGE_SIZE_4K, {
          writable: false,
          user: true,
          executable: false,
        });
        this.resident++;
      } else keep.push(d);
    }
    this.deferred = keep;
  }

  /** Releases the frames of pages unmapped by the operation that just ended. */
  settle(): void {
    const d = this.deferred;
    if (d.length === 0) return;
    this.deferred = [];
    for (const { pa } of d) this.frames.decRef(pa);
  }

  /** Rewrites the rights of the present pages of a range for protection `prot`. */
  protectPages(start: VirtAddr, size: number, prot: number, shared: boolean): void {
    this.forEachPte(start, start + size, (va, ea) => {
      const lo = this.mem.read32(ea);
      const hi = this.mem.read32(ea + 4);
      const writable = shared || (lo & PTE_RW) !== 0;
      const nlo = ((lo & ~(PTE_RW | PTE_US)) | loFlags(prot, writable)) >>> 0;
      const nhi = ((hi & ~XD) | ((prot & PROT_EXEC) !== 0 ? 0 : XD)) >>> 0;
      if (nlo !== lo || nhi !== hi) {
        this.mem.write32(ea, nlo);
        this.mem.write32(ea + 4, nhi);
        this.ctx.invalidate(va as VirtAddr);
      }
    });
  }

  // ------------------------------------------------------------ internals

  private fileInstall(page: VirtAddr, area: Area, pa: PhysAddr, write: boolean, kind: FaultKind): FaultKind {
    const prot = area.flags;
    if (area.backend.shared) {
      this.frames.incRef(pa);
      this.install(page, pa, loFlags(prot, true), prot);
    } else if (write) {
      const copy = this.frames.allocFrame();
      this.mem.copy(copy, pa, PAGE);
      this.install(page, copy, loFlags(prot, true), prot);
    } else {
      this.frames.incRef(pa);
      this.install(page, pa, loFlags(prot, false), prot);
    }
    return kind;
  }

  /** A write to a present page the PTE does not allow but the area does: copy-on-write. */
  private writeProtected(page: VirtAddr, area: Area): FaultKind {
    const ea = this.pteAddrOf(page);
    if (ea < 0) return FaultKind.SEGV;
    const lo = this.mem.read32(ea);
    const hi = this.mem.read32(ea + 4);
    if ((lo & PTE_US) === 0) return FaultKind.SEGV;
    const pa = pteAddr(lo, hi) as PhysAddr;
    if (area.backend.shared || this.frames.refCount(pa) === 1) {
      this.mem.write32(ea, (lo | PTE_RW) >>> 0);
      this.ctx.invalidate(page);
      return area.backend.shared ? FaultKind.MINOR : FaultKind.COW;
    }
    const copy = this.frames.allocFrame();
    this.mem.copy(copy, pa, PAGE);
    this.mem.write32(ea, ((lo & 0xfff) | PTE_RW | addrLo(copy)) >>> 0);
    this.mem.write32(ea + 4, ((hi & ~0xfffff) | addrHi(copy)) >>> 0);
    this.ctx.invalidate(page);
    this.frames.decRef(pa);
    return FaultKind.COW;
  }

  /** Maps a fresh page (the fault path): writes the PTE directly when its table exists. */
  private install(page: VirtAddr, pa: PhysAddr, lo: number, prot: number): void {
    this.installRaw(page, pa, lo, (prot & PROT_EXEC) !== 0 ? 0 : XD);
  }

  /** Maps `page` → `pa` with the given P/US/RW bits and XD; counts it resident. */
  installRaw(page: VirtAddr, pa: PhysAddr, lo: number, xd: number): void {
    const ea = this.pteAddrOf(page);
    if (ea >= 0) {
      const old = this.mem.read32(ea);
      this.mem.write32(ea, (lo | adBits(lo) | addrLo(pa)) >>> 0);
      this.mem.write32(ea + 4, (xd | addrHi(pa)) >>> 0);
      if ((old & PTE_P) !== 0) this.ctx.invalidate(page);
      else this.resident++;
      return;
    }
    try {
      this.mapper.map(page, pa, PAGE_SIZE_4K, {
        writable: (lo & PTE_RW) !== 0,
        user: (lo & PTE_US) !== 0,
        executable: xd === 0,
      });
    } catch (e) {
      this.frames.decRef(pa);
      throw e;
    }
    this.resident++;
  }

  /** Address of the PTE of `va` when the PT exists, else −1. */
  private pteAddrOf(va: number): number {
    const f = this.mem.flat32;
    if (f !== undefined) {
      // Fast path over one flat memory (≤ 1 GiB): table addresses fit in 30 bits.
      let table = this.root as number;
      let vpn = Math.floor(va / PAGE);
      const i1 = vpn & 511;
      vpn = Math.floor(vpn / 512);
      const i2 = vpn & 511;
      vpn = Math.floor(vpn / 512);
      const i3 = vpn & 511;
      const i4 = Math.floor(vpn / 512) & 511;
      let w = (table >>> 2) + i4 * 2;
      let lo = f[w]!;
      if ((lo & (PTE_P | 0x80)) !== PTE_P || f[w + 1]! !== 0) return this.pteAddrSlow(va);
      table = (lo & 0xffff_f000) >>> 0;
      w = (table >>> 2) + i3 * 2;
      lo = f[w]!;
      if ((lo & (PTE_P | 0x80)) !== PTE_P || f[w + 1]! !== 0) return this.pteAddrSlow(va);
      table = (lo & 0xffff_f000) >>> 0;
      w = (table >>> 2) + i2 * 2;
      lo = f[w]!;
      if ((lo & (PTE_P | 0x80)) !== PTE_P || f[w + 1]! !== 0) return this.pteAddrSlow(va);
      table = (lo & 0xffff_f000) >>> 0;
      return table + i1 * 8;
    }
    return this.pteAddrSlow(va);
  }

  private pteAddrSlow(va: number): number {
    const mem = this.mem;
    let table: number = this.root;
    for (let level = 4; level > 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(va / 2 ** shift) % 512;
      const lo = mem.read32(table + idx * 8);
      if ((lo & PTE_P) === 0 || (lo & 0x80) !== 0) return -1;
      table = pteAddr(lo, mem.read32(table + idx * 8 + 4));
    }
    return table + (Math.floor(va / PAGE) % 512) * 8;
  }

  /** Calls `fn(va, entryAddress)` for every present 4 KiB leaf in `[start, end)`, skipping empty tables. */
  private forEachPte(start: number, end: number, fn: (va: number, ea: number) => void): void {
    const mem = this.mem;
    const walk = (table: number, level: number, base: number): void => {
      const span = 2 ** (12 + 9 * (level - 1));
      const first = Math.max(0, Math.floor((start - base) / span));
      const last = Math.min(511, Math.floor((end - 1 - base) / span));
      for (let i = first; i <= last; i++) {
        const ea = table + i * 8;
        const lo = mem.read32(ea);
        if ((lo & PTE_P) === 0) continue;
        const va = base + i * span;
        if (level === 1) fn(va, ea);
        else if ((lo & 0x80) === 0) walk(pteAddr(lo, mem.read32(ea + 4)), level - 1, va);
      }
    };
    if (end > start) walk(this.root, 4, 0);
  }
}

function info(a: Area): AreaInfo {
  const b = a.backend;
  return {
    start: a.start,
    end: a.end as VirtAddr,
    prot: a.flags,
    shared: b.shared,
    file: b.file,
    offset: b.offset,
    mayWrite: b.mayWrite,
    label: b.label,
  };
}

/** The `memset` personality (the simulator's own design; see the module comment). */
export const memsetPersonality: Personality = {
  name: 'memset',
  description: "vmkit's own: memory-set areas over x86-64 tables, page cache, Linux-style copy-on-write fork",
  create: (ctx) => new MemsetSpace(ctx),
};
