/**
 * The `scarlet` personality: each process's address space is a `@vmkit/vmm-manager`
 * `VirtualMemoryManager` (seed 004, Scarlet OS): an ASID (the kernel uses it as the PCID), memory maps
 * with owners resolving faults, lazy mapping of exactly the faulting page, fork by copying (Scarlet
 * copies private pages eagerly: no copy-on-write faults afterwards), mprotect that drops resident pages so
 * they fault back in with the new rights.
 *
 * Owners: private anonymous memory is an `AnonymousPageOwner`; files (and shared anonymous memory, an
 * unnamed file) are a {@link FileOwner} over the kernel's page cache. A page of a file on the slow disk is
 * read into the page cache first (the process waits; a major fault), then the manager maps it.
 *
 * @module
 */
import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import { PF_RSVD } from '@vmkit/paging-x86_64';
import {
  type AccessKind,
  AccessOp,
  AddressSpaceAllocator,
  AnonymousPageOwner,
  accessFromFault,
  BaseMappingOwner,
  isVmmError,
  type MemoryMappingOps,
  ResolveFaultError,
  type ResolveFaultResult,
  VirtualMemoryManager,
  VirtualMemoryMap,
} from '@vmkit/vmm-manager';
import type { FileIo, SimFile } from '../devices.js';
import {
  type AddressSpace,
  type AreaInfo,
  FaultKind,
  type MapRequest,
  type Personality,
  type SpaceContext,
} from '../personality.js';
import { type AreaTag, RangeTags, tagMapping } from './ranges.js';
import { machineState } from './shared.js';

const PAGE = 4096;
const USER = 8; // VirtualMemoryPermission.User; Read/Write/Execute are PROT_READ/WRITE/EXEC's bits

/**
 * A file (or shared anonymous memory) as a Scarlet memory-map owner: page `i` of a map is page
 * `offset / 4096 + i` of the file, taken from the kernel's page cache. The owner holds one reference on
 * each cached frame it handed out until the pages are released, so the cache never drops a mapped frame.
 */
export class FileOwner extends BaseMappingOwner {
  private readonly held = new Map<number, PhysAddr>();
  constructor(
    readonly file: SimFile,
    readonly offset: number,
    private readonly io: FileIo,
  ) {
    super();
  }
  override mmapOwnerName(): string {
    return this.file.path;
  }
  /** The file page of map page `pageIdx`. */
  filePage(pageIdx: number): number {
    return this.offset / PAGE + pageIdx;
  }
  override resolveFault(_access: AccessKind, pageIdx: number): ResolveFaultResult | ResolveFaultError {
    const idx = this.filePage(pageIdx);
    if (!this.file.anonymous && idx * PAGE >= this.file.size) return ResolveFaultError.Unmapped;
    const r = this.file.page(idx, this.io); // cached by the kernel before the fault reaches here
    if (typeof r !== 'number') return ResolveFaultError.Invalid;
    if (!this.held.has(pageIdx)) {
      this.io.frames.incRef(r);
      this.held.set(pageIdx, r);
    }
    return { paddrPageBase: r, isTail: false };
  }
  override releasePages(start: number, count: number): void {
    for (const [i, pa] of [...this.held]) {
      if (i < start || i >= start + count) continue;
      this.held.delete(i);
      this.io.frames.decRef(pa);
    }
  }
  releaseAll(): void {
    for (const pa of this.held.values()) this.io.frames.decRef(pa);
    this.held.clear();
  }
  override forkClone(): FileOwner {
    return new FileOwner(this.file, this.offset, this.io);
  }
}

/** Machine-wide state: the ASID registry sharing the kernel half, routing invalidations per ASID. */
class ScarletMachine {
  readonly spaces: AddressSpaceAllocator;
  readonly byAsid = new Map<number, SpaceContext>();
  constructor(ctx: SpaceContext) {
    this.spaces = new AddressSpaceAllocator({
      mem: ctx.mem,
      frames: ctx.frames,
      kernelRoot: ctx.kernelRoot,
      onInvalidate: (asid, va) => this.byAsid.get(asid)?.invalidate(va),
    });
  }
}

/** A process's address space of the `scarlet` personality. */
export class ScarletSpace implements AddressSpace {
  readonly asid: number;
  readonly root: PhysAddr;
  /**
   * Owners of this space's maps. All are released at exit: a fork clones the owner once per map (part),
   * and each clone holds every page of the original, more than the map's own range.
   */
  private readonly owners = new Set<MemoryMappingOps>();
  private constructor(
    readonly vmm: VirtualMemoryManager,
    private readonly ctx: SpaceContext,
    private readonly m: ScarletMachine,
    private readonly tags: RangeTags<AreaTag>,
  ) {
    this.asid = vmm.getAsid();
    this.root = vmm.getRootPageTable()!.root;
    m.byAsid.set(this.asid, ctx);
    vmm.withMemmaps((maps) => {
      for (const map of maps.values()) if (map.owner !== undefined) this.owners.add(map.owner);
    });
  }

  static create(ctx: SpaceContext): ScarletSpace {
    const m = machineState(ctx, 'scarlet', (c) => new ScarletMachine(c));
    const vmm = new VirtualMemoryManager({ addressSpaces: m.spaces, layout: { mmapLimit: 2 ** 47 } });
    try {
      vmm.setAsid(m.spaces.allocVirtualAddressSpace());
    } catch (e) {
      vmm.dispose();
      throw e;
    }
    return new ScarletSpace(vmm, ctx, m, new RangeTags<AreaTag>());
  }

  map(req: MapRequest): void {
    const owner: MemoryMappingOps =
      req.file === undefined
        ? new AnonymousPageOwner(this.ctx.mem, this.ctx.frames)
        : new FileOwner(req.file, req.offset, this.ctx.io);
    this.owners.add(owner);
    this.vmm.addMemoryMap(
      new VirtualMemoryMap({
        vmarea: { start: req.start, end: req.start + req.len },
        permissions: req.prot | USER,
        isShared: req.shared,
        owner,
      }),
    );
    tagMapping(this.tags, req);
  }

  unmap(start: VirtAddr, len: number): void {
    for (const part of this.vmm.removeMemoryMapRange(start, len)) release(part);
    this.tags.cut(start, start + len);
  }

  protect(start: VirtAddr, len: number, prot: number): void {
    this.vmm.protectMemoryMapRange(start, len, prot | USER);
  }

  areas(): AreaInfo[] {
    const out: AreaInfo[] = [];
    this.vmm.withMemmaps((maps) => {
      for (const m of maps.values()) out.push(this.info(m));
    });
    return out;
  }

  private info(m: VirtualMemoryMap): AreaInfo {
    const owner = m.owner;
    const file = owner instanceof FileOwner ? owner.file : undefined;
    const tag = this.tags.at(m.start);
    return {
      start: m.start,
      end: m.end as VirtAddr,
      prot: m.permissions & 7,
      shared: m.isShared,
      file,
      offset: owner instanceof FileOwner ? owner.offset + (m.start - m.vmStart) : 0,
      mayWrite: tag?.readOnlyFile !== true,
      label: tag?.label,
    };
  }

  areaAt(va: VirtAddr): AreaInfo | undefined {
    const m = this.vmm.searchMemoryMap(va);
    return m === undefined ? undefined : this.info(m);
  }

  areasIn(start: VirtAddr, end: number): AreaInfo[] {
    return this.vmm.getMemoryMapsInRange(start, end - start).map((m) => this.info(m));
  }

  fault(va: VirtAddr, ec: number): FaultKind | Promise<FaultKind> {
    if ((ec & PF_RSVD) !== 0) return FaultKind.SEGV;
    const access = accessFromFault(va, ec);
    const m = this.vmm.searchMemoryMap(va);
    const owner = m?.owner;
    if (m !== undefined && owner instanceof FileOwner) {
      const idx = owner.filePage(Math.floor((va - m.vmStart) / PAGE));
      if (owner.file.needsIo(idx) && idx * PAGE < owner.file.size) {
        let loaded: ReturnType<SimFile['page']>;
        try {
          loaded = owner.file.page(idx, this.ctx.io);
        } catch {
          return FaultKind.OOM;
        }
        return Promise.resolve(loaded).then(
          () => {
            const k = this.lazyMap(access);
            return k === FaultKind.MINOR ? FaultKind.MAJOR : k;
          },
          () => FaultKind.OOM,
        );
      }
      if (!owner.file.anonymous && idx * PAGE >= owner.file.size) return FaultKind.BUS;
      try {
        owner.file.page(idx, this.ctx.io);
      } catch {
        return FaultKind.OOM;
      }
    }
    return this.lazyMap(access);
  }

  private lazyMap(access: AccessKind): FaultKind {
    try {
      this.vmm.lazyMapPageWith(access);
      return FaultKind.MINOR;
    } catch (e) {
      if ((e as { code?: string }).code === 'E_NOMEM') return FaultKind.OOM;
      if (isVmmError(e)) return FaultKind.SEGV;
      throw e;
    }
  }

  fork(ctx: SpaceContext): AddressSpace {
    const child = this.vmm.fork();
    return new ScarletSpace(child, ctx, this.m, this.tags.clone());
  }

  destroy(): void {
    for (const m of this.vmm.removeAllMemoryMaps()) release(m);
    // Pages a private map copied are one-page maps without owner (their file page is still held), and
    // fork clones hold pages outside their map: give everything back.
    for (const o of this.owners) {
      if (o instanceof FileOwner) o.releaseAll();
      else o.releasePages?.(0, Number.MAX_SAFE_INTEGER);
    }
    this.owners.clear();
    this.m.byAsid.delete(this.asid);
    this.vmm.dispose();
  }

  residentPages(): number {
    return this.vmm.residentPageCount();
  }
}

/** Gives back what a removed map (part) held through its owner. */
function release(part: VirtualMemoryMap): void {
  const owner = part.owner;
  if (owner === undefined) return;
  owner.releasePages?.((part.start - part.vmStart) / PAGE, part.size / PAGE);
  owner.onUnmapped?.(part.start, part.size);
}

/** The `scarlet` personality (see the module comment). */
export const scarletPersonality: Personality = {
  name: 'scarlet',
  description:
    '@vmkit/vmm-manager (Scarlet OS): ASIDs, memory maps with owners, lazy mapping, fork by copying',
  create: (ctx) => ScarletSpace.create(ctx),
};

void AccessOp;
