import {
  AddrRange,
  checkVirtAddr,
  checkVirtRange,
  EXACT_LIMIT,
  formatVirtAddr,
  formatVirtRange,
  HIGHER_HALF_BITS,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from '@vmkit/addr';
import { BlockIndex, MemoryArea, MemorySet } from '@vmkit/memory-set';
import type { PageMapper } from '@vmkit/paging-x86_64';
import { AddressSpaceAllocator, checkAsid } from './address-spaces.js';
import { MapBackend, type PendingDrop, type PendingSink, PROTECT_MARK } from './backend.js';
import { SeedMessage, show, VmmError, vmmFail } from './errors.js';
import { VirtualMemoryMap } from './map.js';
import { type AccessKind, AccessOp, type MemoryMappingOps, ownerDefaults } from './owner.js';
import { ACCESS_MASK, checkPermissions, pageFlagsOf, VirtualMemoryPermission } from './permissions.js';
import { dropResident, presentLeaves } from './resident.js';
import { MemmapView, MutableMemmapView, type MutableViewSource } from './view.js';

/** The seed's default mmap base (1 GiB). */
export const DEFAULT_MMAP_BASE = 0x4000_0000;
/** The seed's fixed upper limit of `find_unmapped_area` (2 GiB), the default of {@link VmmLayout.mmapLimit}. */
export const DEFAULT_MMAP_LIMIT = 0x8000_0000;

const PAGE = 4096;
const PAGE_MASK = 4095;
const VIRT_END = 2 ** 48;

/** Where `findUnmappedArea` looks: `[mmapBase, mmapLimit)`. */
export interface VmmLayout {
  /** Where the search starts (default `0x4000_0000`, the seed's). */
  mmapBase?: number | undefined;
  /** The search's upper limit, exclusive (default `0x8000_0000`, the seed's fixed 2 GiB). */
  mmapLimit?: number | undefined;
}

/** Options of {@link VirtualMemoryManager}. */
export interface VirtualMemoryManagerOptions {
  /**
   * The ASID registry whose address spaces this manager programs. Without one the manager still keeps
   * maps and an ASID, but no ASID has a root page table (as an ASID that was never allocated).
   */
  addressSpaces?: AddressSpaceAllocator | undefined;
  /** The `findUnmappedArea` window. */
  layout?: VmmLayout | undefined;
}

/** What {@link VirtualMemoryManager.getMemoryStats} returns (the seed's tuple, named). */
export interface MemoryStats {
  /** Number of maps. */
  totalMaps: number;
  /** Sum of the maps' sizes in bytes. */
  totalVirtualSize: number;
  /** Gaps between consecutive maps (the seed's fragmentation figure). */
  gaps: number;
}

type Area = MemoryArea<number, PendingSink, VirtAddr, MapBackend>;

/** The state shared by every handle of one address space (the seed's `Arc<RwLock<InnerVmm>>`). */
class VmmState implements PendingSink {
  readonly index: BlockIndex<Area>;
  readonly set: MemorySet<number, PendingSink, VirtAddr, MapBackend>;
  readonly spaces: AddressSpaceAllocator | undefined;
  readonly mmapLimit: number;
  mmapBase: number;
  asid = 0;
  handles = 1;
  borrowed = 0;
  pending: PendingDrop[] = [];
  pageTables: PageMapper[] = [];
  // The last-hit search cache: [cStart, cEnd) -> cMap (cEnd = 0: empty).
  cStart = 0;
  cEnd = 0;
  cMap: VirtualMemoryMap | undefined = undefined;

  constructor(options: VirtualMemoryManagerOptions) {
    checkOptions(options);
    let index: BlockIndex<Area> | undefined;
    // memory-set is the one interval container; the manager keeps a handle on the set's own ordered
    // index for read-only range queries (lower / forEachFrom), which the set does not expose (yet).
    this.set = new MemorySet<number, PendingSink, VirtAddr, MapBackend>({
      merge: false, // maps merge only in coalesceMemoryMaps, as in the seed
      index: <V extends { start: number; end: number }>() => {
        const i = new BlockIndex<V>();
        index = i as unknown as BlockIndex<Area>;
        return i;
      },
    });
    if (index === undefined) throw new Error('@vmkit/vmm-manager: memory-set did not build its index');
    this.index = index;
    this.spaces = options.addressSpaces;
    const layout = options.layout;
    const base = layout?.mmapBase === undefined ? DEFAULT_MMAP_BASE : layout.mmapBase;
    const limit = layout?.mmapLimit === undefined ? DEFAULT_MMAP_LIMIT : layout.mmapLimit;
    checkVirtAddr(base, 'layout.mmapBase');
    if (typeof limit !== 'number' || !Number.isInteger(limit)) {
      vmmFail('E_INVALID', 'layout.mmapLimit must be an integer address', `got ${show(limit)}`, { limit });
    }
    if (limit <= 0 || limit > VIRT_END) {
      vmmFail('E_RANGE', 'layout.mmapLimit must be an address in (0, 2^48]', `got ${show(limit)}`, { limit });
    }
    this.mmapBase = base;
    this.mmapLimit = limit;
  }

  invalidate(): void {
    this.cStart = 0;
    this.cEnd = 0;
    this.cMap = undefined;
  }
}

/**
 * Scarlet OS's per-address-space `VirtualMemoryManager` over x86-64 page tables: an ASID (the PCID of
 * the MMU's TLB), an ordered set of memory maps with a last-hit search cache, lazy mapping from the
 * page-fault handler, fixed maps that overwrite, free-area search, coalescing and statistics.
 *
 * Ranges are half-open (`[start, end)`) where the seed's are inclusive. Every method checks its
 * arguments and throws a {@link VmmError} (or `@vmkit/addr`'s `VmkitError` for a malformed address)
 * naming the value and the rule, leaving everything as it was. `clone()` is a second handle to the same
 * address space (the seed's `Arc` clone); `dispose()` is the seed's `Drop`.
 */
export class VirtualMemoryManager implements Disposable {
  private s: VmmState | undefined;

  /**
   * A new manager: ASID 0, no maps, mmap base `0x4000_0000` (or `options.layout`).
   *
   * @throws VmkitError for a layout outside the address space
   */
  constructor(options: VirtualMemoryManagerOptions = {}) {
    this.s = new VmmState(options);
  }

  // ------------------------------------------------------------------ handles

  /** A second handle to the same address space (the seed's `Clone`: an `Arc` clone, not a copy). */
  clone(): VirtualMemoryManager {
    const s = this.st();
    const h = Object.create(VirtualMemoryManager.prototype) as VirtualMemoryManager;
    h.s = s;
    s.handles++;
    return h;
  }

  /** True when no other live handle shares this address space. */
  isSoleOwner(): boolean {
    return this.st().handles === 1;
  }

  /** True after `dispose()` on this handle. */
  get disposed(): boolean {
    return this.s === undefined;
  }

  /**
   * Releases this handle (the seed's `Drop`). When it was the last one: every map's owner gets
   * `onUnmapped(start, size)`, frames the manager allocated (copy-on-write and fork copies) go back, and
   * the ASID's address space is freed when it is in use. Idempotent on a handle.
   */
  dispose(): void {
    const s = this.s;
    if (s === undefined) return;
    this.s = undefined;
    s.handles--;
    if (s.handles > 0) return;
    const maps: Area[] = [...s.set.iter()];
    s.pending.length = 0;
    s.set.clear(s);
    s.invalidate();
    for (const a of maps) a.backend.owner?.onUnmapped?.(a.start, a.size);
    const spaces = s.spaces;
    if (s.asid !== 0 && spaces?.isAsidUsed(s.asid)) spaces.freeVirtualAddressSpace(s.asid);
    for (const a of maps) if (a.backend.ownsFrames) this.freeFrames(s, a.start, a.size, a.backend);
    s.pending.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ------------------------------------------------------------------ ASID and page tables

  /**
   * Sets the ASID. Changing it frees the old ASID's address space when the old one is not 0 and in use
   * (its resident pages go with it; they fault back in under the new ASID).
   *
   * @param asid an integer in 0..4095 (a PCID)
   * @throws VmmError `E_INVALID` / `E_RANGE` for anything else
   */
  setAsid(asid: number): void {
    const s = this.st();
    checkAsid(asid);
    if (s.asid === asid) return;
    const old = s.asid;
    s.asid = asid;
    if (old !== 0 && s.spaces?.isAsidUsed(old)) s.spaces.freeVirtualAddressSpace(old);
  }

  /** The ASID (0 for a new manager). */
  getAsid(): number {
    return this.st().asid;
  }

  /** Keeps a page table alive with this address space (the seed's `add_page_table`). */
  addPageTable(pageTable: PageMapper): void {
    const s = this.st();
    if (
      typeof pageTable !== 'object' ||
      pageTable === null ||
      typeof pageTable.map !== 'function' ||
      typeof pageTable.unmap !== 'function' ||
      typeof pageTable.translate !== 'function'
    ) {
      vmmFail('E_INVALID', 'addPageTable takes a PageMapper', `got ${show(pageTable)}`);
    }
    s.pageTables.push(pageTable);
  }

  /** The page tables added with {@link addPageTable}. */
  getPageTables(): readonly PageMapper[] {
    return [...this.st().pageTables];
  }

  /** The root page table of the current ASID, or `undefined` when the ASID has no address space. */
  getRootPageTable(): PageMapper | undefined {
    const s = this.st();
    return s.spaces?.getRootPageTable(s.asid);
  }

  /** The ASID registry this manager uses, if any. */
  get addressSpaces(): AddressSpaceAllocator | undefined {
    return this.st().spaces;
  }

  // ------------------------------------------------------------------ reading maps

  /** Number of maps. */
  memmapLen(): number {
    return this.st().index.size;
  }

  /** True when there is no map. */
  memmapIsEmpty(): boolean {
    return this.st().index.size === 0;
  }

  /**
   * Runs `f` with a read-only ordered view of the maps keyed by start address, valid inside `f` only.
   * While `f` runs, methods that change the maps throw `E_BUSY` (the seed holds a read lock).
   */
  withMemmaps<R>(f: (maps: MemmapView) => R): R {
    const s = this.st();
    checkCallback(f, 'withMemmaps');
    const view = new MemmapView({
      size: () => s.index.size,
      get: (start) => this.mapStartingAt(s, start),
      values: () => this.mapValues(s),
    });
    s.borrowed++;
    try {
      return f(view);
    } finally {
      s.borrowed--;
      view.close();
    }
  }

  /**
   * Runs `f` with a mutable view of the maps (the seed's escape hatch; prefer the methods). Its
   * `insert`, `remove` and `clear` are checked like the methods and keep the page table consistent.
   */
  withMemmapsMut<R>(f: (maps: MutableMemmapView) => R): R {
    const s = this.st();
    checkCallback(f, 'withMemmapsMut');
    this.notBorrowed(s);
    const src: MutableViewSource = {
      size: () => s.index.size,
      get: (start) => this.mapStartingAt(s, start),
      values: () => this.mapValues(s),
      insert: (map) => {
        this.notBorrowed(s);
        this.checkNewMap(map);
        const old = this.mapStartingAt(s, map.start);
        if (old !== undefined) {
          this.checkOverlap(s, map, old.start);
          this.run(s, () => {
            s.set.unmap(old.start, old.size, s);
            s.set.map(this.areaOf(map), s, false);
          });
        } else this.addMemoryMap(map);
        return old;
      },
      remove: (start) => {
        this.notBorrowed(s);
        const old = this.mapStartingAt(s, start);
        if (old !== undefined) this.run(s, () => s.set.unmap(old.start, old.size, s));
        return old;
      },
      clear: () => {
        this.notBorrowed(s);
        this.run(s, () => s.set.clear(s));
      },
    };
    const view = new MutableMemmapView(src);
    try {
      return f(view);
    } finally {
      view.close();
    }
  }

  /** Runs `f` with an iterator over the maps in address order, valid inside `f` only. */
  memmapsIterWith<R>(f: (maps: IterableIterator<VirtualMemoryMap>) => R): R {
    checkCallback(f, 'memmapsIterWith');
    return this.withMemmaps((view) => f(view.values()));
  }

  /**
   * The map that starts exactly at `startAddr`.
   *
   * @throws VmkitError `E_INVALID` / `E_RANGE` unless `startAddr` is a VirtAddr
   */
  getMemoryMapByAddr(startAddr: VirtAddr): VirtualMemoryMap | undefined {
    const s = this.st();
    checkVirtAddr(startAddr, 'start address');
    return this.mapStartingAt(s, startAddr);
  }

  /**
   * The map holding `vaddr`, through the last-hit cache (a hit is a compare and a return; any change to
   * the maps empties the cache).
   *
   * @throws VmkitError `E_INVALID` / `E_RANGE` unless `vaddr` is a VirtAddr
   */
  searchMemoryMap(vaddr: VirtAddr): VirtualMemoryMap | undefined {
    const s = this.s;
    if (s === undefined) return disposedFail();
    if (typeof vaddr === 'number' && vaddr >= s.cStart && vaddr < s.cEnd && Number.isInteger(vaddr))
      return s.cMap;
    // The domain test inline (addr's checkVirtAddr, a call through an imported binding, only to throw).
    if (!(typeof vaddr === 'number' && vaddr >= 0 && vaddr < VIRT_END && Number.isInteger(vaddr)))
      checkVirtAddr(vaddr);
    return searchMiss(s, vaddr);
  }

  /**
   * The physical address of `vaddr` by the maps (not the page table): through the owner when the map
   * has one (`resolveFault` for a load; it may allocate, as upstream), else through the physical area;
   * `undefined` when no map holds `vaddr` or the map has neither.
   */
  translateVaddr(vaddr: VirtAddr): PhysAddr | undefined {
    const map = this.searchMemoryMap(vaddr);
    if (map === undefined) return undefined;
    const off = vaddr & PAGE_MASK;
    const owner = map.owner;
    if (owner !== undefined) {
      const page = vaddr - off;
      const res = ownerDefaults.resolveFault(
        owner,
        { op: AccessOp.Load, vaddr, size: 1 },
        (page - map.vmStart) / PAGE,
        map.vmStart,
      );
      if (typeof res !== 'string') return (res.paddrPageBase + off) as PhysAddr;
    }
    return map.getPaddr(vaddr);
  }

  /**
   * The maps that intersect `[vaddr, vaddr + len)`, whole, in address order (O(log n + maps)): what a
   * kernel lists or checks before `munmap` / `mprotect`. Not in the seed.
   *
   * @throws VmkitError for a bad range (as {@link removeMemoryMapRange})
   */
  getMemoryMapsInRange(vaddr: VirtAddr, len: number): VirtualMemoryMap[] {
    const s = this.st();
    checkVirtRange(vaddr, len, 'range');
    const out: VirtualMemoryMap[] = [];
    if (len === 0) return out;
    const end = vaddr + len;
    const before = s.index.lower(vaddr);
    if (before !== undefined && before.end > vaddr) out.push(viewOf(before));
    s.index.forEachFrom(vaddr, (a) => {
      if (a.start >= end) return false;
      out.push(viewOf(a));
      return true;
    });
    return out;
  }

  /**
   * The number of pages present in the page table inside the maps (the resident set): a walk of the
   * tables under the maps that may have pages (those faulted in since they were created), reading only
   * present entries. Not in the seed.
   */
  residentPageCount(): number {
    const s = this.st();
    const root = s.spaces?.getRootPageTable(s.asid);
    if (root === undefined) return 0;
    let pages = 0;
    for (const a of s.index.values()) {
      if (!a.backend.touched) continue;
      const leaves = presentLeaves(root, a.start, a.end);
      for (let k = 1; k < leaves.length; k += 2) pages += leaves[k]! / PAGE;
    }
    return pages;
  }

  /** Maps, their total size and the gaps between them (the seed's `get_memory_stats`). O(n). */
  getMemoryStats(): MemoryStats {
    const s = this.st();
    let totalMaps = 0;
    let totalVirtualSize = 0;
    let gaps = 0;
    let prevEnd = -1;
    for (const a of s.index.values()) {
      totalMaps++;
      totalVirtualSize += a.end - a.start;
      if (prevEnd >= 0 && a.start > prevEnd) gaps++;
      prevEnd = a.end;
    }
    return { totalMaps, totalVirtualSize, gaps };
  }

  // ------------------------------------------------------------------ adding and removing

  /**
   * Adds `map` (the seed's `add_memory_map`): no page-table entry is written (pages appear on fault).
   * Touching maps are fine; any overlap is refused.
   *
   * @throws VmmError `E_UNALIGNED` "Address or size is not aligned to PAGE_SIZE" (virtual start or size
   *   not a multiple of 4 KiB) or "pmarea is not aligned to PAGE_SIZE"; `E_RANGE` for an empty map;
   *   `E_OVERLAP` "Memory mapping overlaps with a preceding map" / "… with a succeeding map";
   *   `E_INVALID` for something that is not a VirtualMemoryMap; `E_BUSY` inside `withMemmaps`
   */
  addMemoryMap(map: VirtualMemoryMap): void {
    const s = this.st();
    this.notBorrowed(s);
    this.checkNewMap(map);
    this.checkOverlap(s, map, -1);
    this.run(s, () => s.set.map(this.areaOf(map), s, false));
  }

  /**
   * Adds `map` at its address, overwriting what is there (the seed's `add_memory_map_fixed`, for
   * `MAP_FIXED`): maps it overlaps lose the overlapped part (kept before and after it, each with its
   * physical area and owner at the right offset) and their resident pages there leave the page table.
   *
   * @returns the overwritten intersections, one per map overlapped, in address order (the caller
   *   handles their pages, as in the seed)
   * @throws VmmError as {@link addMemoryMap} except `E_OVERLAP`; nothing changes on error
   */
  addMemoryMapFixed(map: VirtualMemoryMap): VirtualMemoryMap[] {
    const s = this.st();
    this.notBorrowed(s);
    this.checkNewMap(map);
    const removed = this.intersections(s, map.start, map.end);
    this.run(s, () => s.set.map(this.areaOf(map), s, true));
    return removed;
  }

  /**
   * Removes the map holding `vaddr` (the seed's `remove_memory_map_by_addr`) and unmaps its resident
   * pages from the page table.
   *
   * @returns the removed map, or `undefined` when no map holds `vaddr`
   */
  removeMemoryMapByAddr(vaddr: VirtAddr): VirtualMemoryMap | undefined {
    const s = this.st();
    this.notBorrowed(s);
    checkVirtAddr(vaddr);
    const area = s.index.find(vaddr);
    if (area === undefined) return undefined;
    const map = viewOf(area);
    this.run(s, () => s.set.unmap(area.start, area.end - area.start, s));
    return map;
  }

  /**
   * Removes everything in `[vaddr, vaddr + len)`, rounded out to whole pages (the kernel's `munmap`):
   * maps inside go, maps across an edge are split and keep their outside parts (physical area and owner
   * at the right offset), resident pages in the range leave the page table. Holes are fine.
   *
   * @param len bytes, an integer ≥ 0; 0 removes nothing
   * @returns the removed parts, one per map touched, in address order
   * @throws VmkitError `E_INVALID` / `E_RANGE` / `E_OVERFLOW` / `E_NONCANONICAL` for a bad address or
   *   length or a range across the canonical hole or past the top; `E_BUSY` inside `withMemmaps`
   */
  removeMemoryMapRange(vaddr: VirtAddr, len: number): VirtualMemoryMap[] {
    const s = this.st();
    this.notBorrowed(s);
    checkVirtRange(vaddr, len, 'removed range');
    if (len === 0) return [];
    const start = vaddr - (vaddr & PAGE_MASK);
    const end = alignUpPage(vaddr + len);
    checkVirtRange(start, end - start, 'removed range (rounded to pages)');
    const removed = this.intersections(s, start, end);
    if (removed.length > 0) this.run(s, () => s.set.unmap(start as VirtAddr, end - start, s));
    return removed;
  }

  /**
   * Removes every map (the seed's `remove_all_memory_maps`) and, unlike the seed, their resident pages
   * too, so the page table never keeps pages of maps that are gone. Owners are not notified (the caller
   * has the maps; `restoreMemoryMaps` can put them back).
   *
   * @returns the removed maps in address order
   */
  removeAllMemoryMaps(): VirtualMemoryMap[] {
    const s = this.st();
    this.notBorrowed(s);
    const maps = [...this.mapValues(s)];
    this.run(s, () => s.set.clear(s));
    return maps;
  }

  /**
   * Adds every map of `maps` (the seed's `restore_memory_maps`), all or nothing: every map is checked
   * against the manager and the maps before it first, and only then are they added. The seed stops at
   * the first error with the earlier maps added; we chose all-or-nothing because a caller that restores
   * after a failed exec cannot tell which maps went in, and a half-restored space is worse than none.
   *
   * @throws VmmError the error `addMemoryMap` would give for the first map that fails (with `index` in
   *   its details); nothing is added then
   */
  restoreMemoryMaps(maps: Iterable<VirtualMemoryMap>): void {
    const s = this.st();
    this.notBorrowed(s);
    if (
      maps === null ||
      typeof maps !== 'object' ||
      typeof (maps as Iterable<unknown>)[Symbol.iterator] !== 'function'
    ) {
      vmmFail('E_INVALID', 'restoreMemoryMaps takes an iterable of VirtualMemoryMap', `got ${show(maps)}`);
    }
    const list = [...maps];
    const accepted: VirtualMemoryMap[] = []; // sorted by start
    list.forEach((map, i) => {
      try {
        this.checkNewMap(map);
        this.checkOverlap(s, map, -1);
        // against the maps of this batch already accepted
        let lo = 0;
        let hi = accepted.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (accepted[mid]!.start < map.start) lo = mid + 1;
          else hi = mid;
        }
        const prev = accepted[lo - 1];
        if (prev !== undefined && prev.end > map.start) overlapFail(map, prev, true);
        const next = accepted[lo];
        if (next !== undefined && next.start < map.end) overlapFail(map, next, false);
        accepted.splice(lo, 0, map);
      } catch (e) {
        if (e instanceof VmmError)
          throw new VmmError(e.code, e.reason, `map ${i}: ${e.detail}`, { ...e.details, index: i });
        throw e;
      }
    });
    this.run(s, () => {
      for (const map of list) s.set.map(this.areaOf(map), s, false);
    });
  }

  /**
   * Changes the permissions of the maps in `[vaddr, vaddr + len)` (the kernel's `mprotect`; not in the
   * seed): maps across an edge are split, and the resident pages of the range leave the page table so
   * that the next access faults them back in with the new rights.
   *
   * @param vaddr page-aligned; @param len bytes, rounded up to pages; 0 changes nothing
   * @returns the number of maps whose permissions changed (after splitting)
   * @throws VmmError `E_UNALIGNED` for an unaligned `vaddr`; `E_INVALID` for bad permissions; the
   *   range errors of {@link removeMemoryMapRange}
   */
  protectMemoryMapRange(vaddr: VirtAddr, len: number, permissions: number): number {
    const s = this.st();
    this.notBorrowed(s);
    checkVirtRange(vaddr, len, 'protected range');
    if ((vaddr & PAGE_MASK) !== 0) {
      vmmFail('E_UNALIGNED', SeedMessage.unaligned, `protected range start ${formatVirtAddr(vaddr)}`, {
        vaddr,
      });
    }
    checkPermissions(permissions);
    if (len === 0) return 0;
    const end = alignUpPage(vaddr + len);
    checkVirtRange(vaddr, end - vaddr, 'protected range (rounded to pages)');
    let changed = 0;
    for (const m of this.intersections(s, vaddr, end)) if (m.permissions !== permissions) changed++;
    if (changed > 0) {
      this.run(s, () =>
        s.set.protect(vaddr, end - vaddr, (old) => (old === permissions ? undefined : permissions), s),
      );
    }
    return changed;
  }

  /**
   * Merges runs of adjacent compatible maps (the seed's `coalesce_memory_maps`): equal permissions,
   * sharing, owner and `vmStart` (when owned), and physical areas that continue each other (or none on
   * both). Unlike the seed, a whole run merges in one call (the seed merges one pair per run per call).
   * Resident pages stay.
   *
   * @returns the number of maps removed by merging (the seed's count of merged pairs, for runs of two)
   */
  coalesceMemoryMaps(): number {
    const s = this.st();
    this.notBorrowed(s);
    let removed = 0;
    // memory-set merges (its merge hook asks each pair's backend, `MapBackend.merge`); it rewrites the
    // bookkeeping only, so resident pages stay.
    this.run(s, () => {
      removed = s.set.mergeAdjacent();
    });
    return removed;
  }

  // ------------------------------------------------------------------ faults and the page table

  /**
   * Maps the one page holding `vaddr` into the page table on demand (called from the page-fault
   * handler), as a load: {@link lazyMapPageWith} with `{ op: 'load', vaddr }`.
   */
  lazyMapPage(vaddr: VirtAddr): void {
    this.lazyMapPageWith({ op: AccessOp.Load, vaddr });
  }

  /**
   * Maps exactly the page holding `access.vaddr` (the seed's `lazy_map_page_with`). The physical page is
   * the owner's answer when the map has an owner (a private map copies it into a page of its own when
   * the owner says a copy is needed: a one-page map replaces that page of the map), else the physical
   * area's page. The page-table entry gets the map's permissions (narrowed by the owner for this fault;
   * a tail page loses Read and Write); a present entry for the page is replaced and its TLB entry
   * invalidated. When no map holds the address, the map just below it grows to cover the page if its
   * owner allows it (`canExtendVmaOnFault`) and resolves the page.
   *
   * @throws VmmError `E_NO_PAGE_TABLE` "No root page table available"; `E_NO_MAPPING` "No extendable
   *   memory mapping found for virtual address"; `E_OWNER_FAULT` "Owner failed to resolve fault";
   *   `E_ACCESS` for a store without Write, a fetch without Execute or a map with no access bits (x86-64
   *   cannot keep such a page present: the fault is the caller's to report); `E_UNBACKED` for a map with
   *   neither a physical area nor an owner; `E_NOMEM` from the frame allocator; `E_INVALID` for a bad
   *   access object. Nothing changes on error.
   */
  lazyMapPageWith(access: AccessKind): void {
    const s = this.st();
    this.notBorrowed(s);
    checkAccess(access);
    const root = s.spaces?.getRootPageTable(s.asid);
    const area = s.index.find(access.vaddr);
    if (area === undefined) {
      this.extendForAccess(s, access, root);
      return;
    }
    if (root === undefined)
      vmmFail('E_NO_PAGE_TABLE', SeedMessage.noRootPageTable, `ASID ${s.asid} has no address space`);
    this.mapFault(s, area, access, root);
  }

  /**
   * Unmaps `[vaddrStart, vaddrEnd)` (rounded out to pages) from the page table, leaving the maps (the
   * seed's `unmap_range_from_mmu`; its end is inclusive, ours exclusive). Pages fault back in.
   *
   * @throws VmkitError for a bad range (end below start, across the hole, past the top)
   */
  unmapRangeFromMmu(vaddrStart: VirtAddr, vaddrEnd: number): void {
    const s = this.st();
    checkVirtAddr(vaddrStart, 'range start');
    if (typeof vaddrEnd !== 'number' || !Number.isInteger(vaddrEnd)) {
      vmmFail('E_INVALID', 'range end must be an integer', `got ${show(vaddrEnd)}`, { vaddrEnd });
    }
    if (vaddrEnd < vaddrStart || vaddrEnd > VIRT_END) {
      vmmFail(
        'E_RANGE',
        'range end must be at or above its start and at most 2^48',
        `[${formatVirtAddr(vaddrStart)}, ${show(vaddrEnd)})`,
        { vaddrStart, vaddrEnd },
      );
    }
    checkVirtRange(vaddrStart, vaddrEnd - vaddrStart, 'range');
    const start = vaddrStart - (vaddrStart & PAGE_MASK);
    const end = alignUpPage(vaddrEnd);
    const root = s.spaces?.getRootPageTable(s.asid);
    if (root !== undefined) dropResident(root, start, end);
  }

  // ------------------------------------------------------------------ mmap base and free areas

  /** The mmap base (default `0x4000_0000`). */
  getMmapBase(): number {
    return this.st().mmapBase;
  }

  /**
   * Sets where {@link findUnmappedArea} starts.
   *
   * @throws VmkitError unless `base` is a VirtAddr
   */
  setMmapBase(base: number): void {
    const s = this.st();
    checkVirtAddr(base, 'mmap base');
    s.mmapBase = base;
  }

  /** The `findUnmappedArea` window `{ mmapBase, mmapLimit }`. */
  getLayout(): Required<VmmLayout> {
    const s = this.st();
    return { mmapBase: s.mmapBase, mmapLimit: s.mmapLimit };
  }

  /**
   * The lowest address at or above the mmap base (rounded up to `alignment`) where `size` bytes
   * (rounded up to `alignment`) fit between the maps, below the layout's `mmapLimit` (the seed's fixed
   * 2 GiB by default). A map straddling the base is skipped. O(log n + maps skipped).
   *
   * @param size bytes, an integer > 0
   * @param alignment a power of two, at least 4 KiB (typically 4 KiB)
   * @returns the address, or `undefined` when nothing fits
   * @throws VmmError `E_RANGE` / `E_INVALID` / `E_UNALIGNED` for a bad size or alignment
   */
  findUnmappedArea(size: number, alignment: number): VirtAddr | undefined {
    const s = this.st();
    if (typeof size !== 'number' || !Number.isInteger(size))
      vmmFail('E_INVALID', 'size must be an integer', `got ${show(size)}`);
    if (size <= 0) vmmFail('E_RANGE', 'size must be positive', `got ${show(size)}`);
    if (size >= EXACT_LIMIT) vmmFail('E_OVERFLOW', 'size must be below 2^53', `got ${show(size)}`);
    if (
      typeof alignment !== 'number' ||
      !Number.isInteger(alignment) ||
      alignment < PAGE ||
      alignment > HIGHER_HALF_BITS ||
      !isPow2(alignment)
    ) {
      vmmFail('E_UNALIGNED', 'alignment must be a power of two from 4 KiB to 2^47', `got ${show(alignment)}`);
    }
    const aligned = Math.ceil(size / alignment) * alignment;
    if (aligned > s.mmapLimit) return undefined;
    const r = s.set.findFreeArea(
      s.mmapBase as VirtAddr,
      aligned,
      AddrRange.of(0 as VirtAddr, s.mmapLimit) as AddrRange<VirtAddr>,
      alignment,
    );
    return r;
  }

  // ------------------------------------------------------------------ fork

  /**
   * A copy of this address space for a forked child (eager copy, not copy-on-write): a new manager with
   * the same layout, registry and mmap base, a new ASID when this one has an address space, and one map
   * per map: shared maps keep their physical area and owner (or the owner's `forkClone()`); private maps
   * with a physical area get a copy of its pages in frames of their own (from the registry's allocator);
   * private owned maps without one get the owner's `forkClone()` (or share the owner). All or nothing.
   *
   * @throws VmmError `E_NO_ASID`; `E_NOMEM` when frames run out (everything allocated is given back)
   */
  fork(): VirtualMemoryManager {
    const s = this.st();
    const spaces = s.spaces;
    const child = new VirtualMemoryManager({
      addressSpaces: spaces,
      layout: { mmapBase: s.mmapBase, mmapLimit: s.mmapLimit },
    });
    const cs = child.s!;
    const cloned: MemoryMappingOps[] = [];
    try {
      if (spaces !== undefined && s.asid !== 0 && spaces.isAsidUsed(s.asid))
        child.setAsid(spaces.allocVirtualAddressSpace());
      for (const a of s.index.values()) {
        const b = a.backend;
        const size = a.end - a.start;
        let owner = b.owner;
        if (owner !== undefined) {
          const c = owner.forkClone?.();
          if (c !== undefined && c !== owner) {
            cloned.push(c);
            owner = c;
          }
        }
        if (b.isShared || b.delta === undefined) {
          const nb = new MapBackend(b.delta, owner, b.vmStart, b.isShared, false, false);
          cs.set.map(new MemoryArea(a.start, size, a.flags, nb), cs, false);
          continue;
        }
        if (spaces === undefined)
          vmmFail(
            'E_NO_PAGE_TABLE',
            'fork needs an AddressSpaceAllocator to copy private pages',
            formatVirtRange(AddrRange.virt(a.start, a.end)),
          );
        // The physical area is what the process sees (x86 pages map it directly): copy it whole.
        const pages = size / PAGE;
        const pa = spaces.frames.allocContiguous(pages, PAGE);
        const nb = new MapBackend(pa - a.start, owner, b.vmStart, false, true, false);
        try {
          spaces.mem.copy(pa, a.start + b.delta, size);
          cs.set.map(new MemoryArea(a.start, size, a.flags, nb), cs, false);
        } catch (e) {
          spaces.frames.freeContiguous(pa, pages);
          throw e;
        }
      }
    } catch (e) {
      child.dispose();
      // Owners cloned for the child go with it (an AnonymousPageOwner's copied frames, say).
      for (const c of cloned) c.releasePages?.(0, Number.MAX_SAFE_INTEGER);
      throw e;
    }
    return child;
  }

  /** `VirtualMemoryManager(asid 3, 2 maps)` and one line per map. */
  toString(): string {
    const s = this.st();
    const lines = [`VirtualMemoryManager(asid ${s.asid}, ${s.index.size} maps)`];
    for (const m of this.mapValues(s)) lines.push(`  ${m}`);
    return lines.join('\n');
  }

  // ------------------------------------------------------------------ internals

  private st(): VmmState {
    const s = this.s;
    if (s === undefined) return disposedFail();
    return s;
  }

  private notBorrowed(s: VmmState): void {
    if (s.borrowed > 0)
      vmmFail('E_BUSY', 'the memory maps are lent to a withMemmaps callback: change them after it returns');
  }

  /** Runs a memory-set change, then (only if it succeeded) the page-table work its backends asked for. */
  private run(s: VmmState, change: () => void): void {
    s.pending.length = 0;
    try {
      change();
    } catch (e) {
      s.pending.length = 0;
      throw e;
    }
    s.invalidate();
    const pending = s.pending;
    if (pending.length === 0) return;
    s.pending = [];
    const root = s.spaces?.getRootPageTable(s.asid);
    for (const p of pending) {
      if (root !== undefined) dropResident(root, p.start, p.start + p.size);
      if (p.backend !== PROTECT_MARK && p.backend.ownsFrames) this.freeFrames(s, p.start, p.size, p.backend);
    }
  }

  private freeFrames(s: VmmState, start: number, size: number, b: MapBackend): void {
    const frames = s.spaces?.frames;
    if (frames === undefined || b.delta === undefined) return;
    for (let va = start; va < start + size; va += PAGE) frames.decRef((va + b.delta) as PhysAddr);
  }

  private checkNewMap(map: VirtualMemoryMap): void {
    if (!(map instanceof VirtualMemoryMap)) {
      vmmFail('E_INVALID', 'a memory map must be a VirtualMemoryMap', `got ${show(map)}`);
    }
    const { start } = map;
    const size = map.size;
    if ((start & PAGE_MASK) !== 0 || size % PAGE !== 0) {
      vmmFail(
        'E_UNALIGNED',
        SeedMessage.unaligned,
        `vmarea ${formatVirtRange(map.vmarea)} (size ${show(size)})`,
        {
          start,
          size,
        },
      );
    }
    if (size === 0)
      vmmFail('E_RANGE', 'Memory map is empty', `vmarea ${formatVirtRange(map.vmarea)}`, { start });
    const pm = map.pmarea;
    if (pm !== undefined && pm.start % PAGE !== 0) {
      vmmFail('E_UNALIGNED', SeedMessage.pmUnaligned, `pmarea [${show(pm.start)}, ${show(pm.end)})`, {
        pmarea: pm,
      });
    }
  }

  /** Throws the seed's overlap errors when `map` overlaps a map of the manager (other than one starting at `except`). */
  private checkOverlap(s: VmmState, map: VirtualMemoryMap, except: number): void {
    const prev = s.index.lower(map.start);
    if (prev !== undefined && prev.end > map.start) overlapFail(map, viewOf(prev), true);
    let next: Area | undefined;
    s.index.forEachFrom(map.start, (a) => {
      if (a.start === except) return true;
      next = a;
      return false;
    });
    if (next !== undefined && next.start < map.end) overlapFail(map, viewOf(next), false);
  }

  private areaOf(map: VirtualMemoryMap): Area {
    const pm = map.pmarea;
    const b = new MapBackend(
      pm === undefined ? undefined : pm.start - map.start,
      map.owner,
      map.vmStart,
      map.isShared,
      false,
      false,
    );
    const area = new MemoryArea(map.start, map.size, map.permissions, b);
    keepView(area, map);
    return area;
  }

  /** The parts of the maps inside `[start, end)`, in address order. */
  private intersections(s: VmmState, start: number, end: number): VirtualMemoryMap[] {
    const out: VirtualMemoryMap[] = [];
    const add = (a: Area): void => {
      const cs = Math.max(a.start, start);
      const ce = Math.min(a.end, end);
      if (cs === a.start && ce === a.end) {
        out.push(viewOf(a));
        return;
      }
      const b = a.backend;
      out.push(
        VirtualMemoryMap.trusted(
          cs,
          ce,
          b.delta === undefined ? undefined : cs + b.delta,
          a.flags,
          b.isShared,
          b.owner,
          b.vmStart,
        ),
      );
    };
    const before = s.index.lower(start);
    if (before !== undefined && before.end > start) add(before);
    s.index.forEachFrom(start, (a) => {
      if (a.start >= end) return false;
      add(a);
      return true;
    });
    return out;
  }

  private mapStartingAt(s: VmmState, start: number): VirtualMemoryMap | undefined {
    if (typeof start !== 'number') return undefined;
    const a = s.index.find(start);
    return a !== undefined && a.start === start ? viewOf(a) : undefined;
  }

  private *mapValues(s: VmmState): IterableIterator<VirtualMemoryMap> {
    for (const a of s.index.values()) yield viewOf(a);
  }

  /** The fault path for an address inside `area`. */
  private mapFault(s: VmmState, area: Area, access: AccessKind, root: PageMapper): void {
    let perms = area.flags;
    checkRights(area, perms, access);
    const b = area.backend;
    const vaddr = access.vaddr;
    const page = vaddr - (vaddr & PAGE_MASK);
    let pa: number;
    const owner = b.owner;
    if (owner !== undefined) {
      const ownerAccess: AccessKind = b.isShared ? access : { op: AccessOp.Load, vaddr, size: access.size };
      const res = ownerDefaults.resolveFault(
        owner,
        ownerAccess,
        (page - b.vmStart) / PAGE,
        b.vmStart as VirtAddr,
      );
      if (typeof res !== 'string') {
        checkOwnerPage(owner, res.paddrPageBase);
        perms = ownerDefaults.faultPagePermissions(owner, access, perms);
        if (res.isTail) perms &= ~(VirtualMemoryPermission.Read | VirtualMemoryPermission.Write);
        if (!b.isShared && ownerDefaults.privateFaultRequiresCopy(owner, access)) {
          this.copyOnFault(s, area, page, res.paddrPageBase, perms, root);
          return;
        }
        pa = res.paddrPageBase;
      } else if (b.delta !== undefined) pa = page + b.delta;
      else {
        vmmFail(
          'E_OWNER_FAULT',
          SeedMessage.ownerFailed,
          `${ownerDefaults.mmapOwnerName(owner)} answered ${res} for ${formatVirtAddr(page as VirtAddr)}`,
          {
            vaddr,
            error: res,
          },
        );
      }
    } else if (b.delta !== undefined) pa = page + b.delta;
    else {
      vmmFail(
        'E_UNBACKED',
        'Memory map has neither a physical area nor an owner',
        `${formatVirtAddr(page as VirtAddr)} in ${viewOf(area)}`,
        { vaddr },
      );
    }
    installPage(root, page, pa, perms);
    b.touched = true;
  }

  /** A private map's page that must be copied: a new frame with the page's data replaces the page's bookkeeping. */
  private copyOnFault(
    s: VmmState,
    area: Area,
    page: number,
    src: PhysAddr,
    perms: number,
    root: PageMapper,
  ): void {
    const spaces = s.spaces!;
    if ((perms & ACCESS_MASK) === 0)
      vmmFail('E_ACCESS', 'The resolved page permits no access', formatVirtAddr(page as VirtAddr));
    const pa = spaces.frames.allocFrame();
    try {
      spaces.mem.copy(pa, src, PAGE);
      const b = new MapBackend(pa - page, undefined, area.backend.vmStart, false, true, true);
      this.run(s, () => s.set.map(new MemoryArea(page as VirtAddr, PAGE, area.flags, b), s, true));
    } catch (e) {
      spaces.frames.decRef(pa);
      throw e;
    }
    installPage(root, page, pa, perms);
  }

  /** The seed's `try_extend_mapping_for_access`: grow the map just below `access.vaddr` when its owner allows. */
  private extendForAccess(s: VmmState, access: AccessKind, root: PageMapper | undefined): void {
    const vaddr = access.vaddr;
    const page = vaddr - (vaddr & PAGE_MASK);
    const prev = s.index.lower(vaddr);
    const owner = prev?.backend.owner;
    if (
      prev === undefined ||
      owner === undefined ||
      !ownerDefaults.canExtendVmaOnFault(owner) ||
      prev.start < HIGHER_HALF_BITS !== page < HIGHER_HALF_BITS
    ) {
      noExtendable(vaddr);
    }
    if (root === undefined)
      vmmFail('E_NO_PAGE_TABLE', SeedMessage.noRootPageTable, `ASID ${s.asid} has no address space`);
    checkRights(prev, prev.flags, access);
    const b = prev.backend;
    const res = ownerDefaults.resolveFault(
      owner,
      { op: access.op, vaddr: page as VirtAddr, size: access.size },
      (page - b.vmStart) / PAGE,
      b.vmStart as VirtAddr,
    );
    if (typeof res === 'string') noExtendable(vaddr);
    const oldEnd = prev.end;
    const growth = page + PAGE - oldEnd;
    this.run(s, () => s.set.extendArea(prev.start, growth, s));
    try {
      this.mapFault(s, s.index.find(page)!, access, root);
    } catch (e) {
      this.run(s, () => s.set.unmapMetadata(oldEnd as VirtAddr, growth));
      throw e;
    }
  }
}

/** Where a built view is kept on a memory-set area (areas are immutable: a view never goes stale). */
const VIEW: unique symbol = Symbol('vmm-manager: the VirtualMemoryMap of this area');
type ViewedArea = Area & { [VIEW]?: VirtualMemoryMap };

/**
 * `searchMemoryMap` past its cache (kept out of it so that the hit path stays small enough to inline).
 * Containment and the cache bounds come from the index's own arrays and the map from the entry's tag:
 * the area object is never read here, which at 100,000 maps is a cache miss the search does not need.
 */
function searchMiss(s: VmmState, vaddr: number): VirtualMemoryMap | undefined {
  const index = s.index;
  const pos = index.locate(vaddr);
  if (pos < 0) return undefined;
  let map = index.tagAt(pos) as VirtualMemoryMap | undefined;
  if (map === undefined) {
    map = viewOf(index.valueAt(pos));
    index.setTagAt(pos, map);
  }
  s.cStart = index.startAt(pos);
  s.cEnd = index.endAt(pos);
  s.cMap = map;
  return map;
}

/**
 * The map of an area, built once per area and kept on the area object itself: the search path then
 * touches one object after the index (the area), not a chain area → backend → view, which at 100,000
 * maps is a cache miss per link. memory-set replaces an area by a new object on every change (split,
 * shrink, re-flag, growth), so a kept view always describes its area. If an area cannot take the
 * property (frozen), the view is kept on its backend, checked against the area's identity.
 */
function viewOf(area: Area): VirtualMemoryMap {
  const v = (area as ViewedArea)[VIEW];
  if (v !== undefined) return v;
  const b = area.backend;
  if (b.viewArea === area) return b.view!;
  const nv = VirtualMemoryMap.trusted(
    area.start,
    area.end,
    b.delta === undefined ? undefined : area.start + b.delta,
    area.flags,
    b.isShared,
    b.owner,
    b.vmStart,
  );
  keepView(area, nv);
  return nv;
}

function keepView(area: Area, map: VirtualMemoryMap): void {
  if (Object.isExtensible(area)) (area as ViewedArea)[VIEW] = map;
  else {
    area.backend.view = map;
    area.backend.viewArea = area;
  }
}

function overlapFail(map: VirtualMemoryMap, other: VirtualMemoryMap, preceding: boolean): never {
  return vmmFail(
    'E_OVERLAP',
    preceding ? SeedMessage.overlapsPreceding : SeedMessage.overlapsSucceeding,
    `${formatVirtRange(map.vmarea)} overlaps ${formatVirtRange(other.vmarea)}`,
    { start: map.start, end: map.end, other: other.start },
  );
}

function checkAccess(access: AccessKind): void {
  if (typeof access !== 'object' || access === null) {
    vmmFail('E_INVALID', 'an access must be { op, vaddr, size? }', `got ${show(access)}`);
  }
  const op = access.op;
  if (op !== AccessOp.Load && op !== AccessOp.Store && op !== AccessOp.Instruction) {
    vmmFail('E_INVALID', "access.op must be 'load', 'store' or 'instruction'", `got ${show(op)}`);
  }
  checkVirtAddr(access.vaddr, 'faulting address');
  const size = access.size;
  if (
    size !== undefined &&
    (typeof size !== 'number' || !Number.isInteger(size) || size <= 0 || size > PAGE)
  ) {
    vmmFail('E_INVALID', 'access.size must be a positive integer up to 4096 when given', `got ${show(size)}`);
  }
}

function checkRights(area: Area, perms: number, access: AccessKind): void {
  const op = access.op;
  let why: string | undefined;
  if ((perms & ACCESS_MASK) === 0) why = 'the memory map permits no access';
  else if (op === AccessOp.Store && (perms & VirtualMemoryPermission.Write) === 0)
    why = 'a store to a memory map without Write';
  else if (op === AccessOp.Instruction && (perms & VirtualMemoryPermission.Execute) === 0)
    why = 'a fetch from a memory map without Execute';
  if (why !== undefined)
    vmmFail('E_ACCESS', why, `${formatVirtAddr(access.vaddr)} in ${viewOf(area)}`, { vaddr: access.vaddr });
}

function checkOwnerPage(owner: MemoryMappingOps, pa: unknown): void {
  if (typeof pa !== 'number' || !Number.isInteger(pa) || pa < 0 || pa >= 2 ** 52 || pa % PAGE !== 0) {
    vmmFail(
      'E_INVALID',
      'resolveFault must give a 4 KiB-aligned physical page below 2^52',
      `${ownerDefaults.mmapOwnerName(owner)} gave ${show(pa)}`,
    );
  }
}

/** Writes the leaf for `page`, replacing a present one (its TLB entry is invalidated by the mapper's hook). */
function installPage(root: PageMapper, page: number, pa: number, perms: number): void {
  if ((perms & ACCESS_MASK) === 0)
    vmmFail('E_ACCESS', 'The resolved page permits no access', formatVirtAddr(page as VirtAddr));
  const flags = pageFlagsOf(perms);
  try {
    root.map(page as VirtAddr, pa as PhysAddr, PAGE_SIZE_4K, flags);
  } catch (e) {
    if (!(e instanceof Error && (e as { code?: unknown }).code === 'E_ALREADY_MAPPED')) throw e;
    root.unmap(page as VirtAddr);
    root.map(page as VirtAddr, pa as PhysAddr, PAGE_SIZE_4K, flags);
  }
}

function checkCallback(f: unknown, what: string): void {
  if (typeof f !== 'function') vmmFail('E_INVALID', `${what} takes a callback function`, `got ${show(f)}`);
}

function checkOptions(options: unknown): asserts options is VirtualMemoryManagerOptions {
  if (typeof options !== 'object' || options === null) {
    vmmFail(
      'E_INVALID',
      'VirtualMemoryManager options must be an object { addressSpaces?, layout? }',
      `got ${show(options)}`,
    );
  }
  const { addressSpaces, layout } = options as { addressSpaces?: unknown; layout?: unknown };
  if (addressSpaces !== undefined && !(addressSpaces instanceof AddressSpaceAllocator)) {
    vmmFail(
      'E_INVALID',
      'options.addressSpaces must be an AddressSpaceAllocator',
      `got ${show(addressSpaces)}`,
    );
  }
  if (layout !== undefined && (typeof layout !== 'object' || layout === null)) {
    vmmFail('E_INVALID', 'options.layout must be an object { mmapBase?, mmapLimit? }', `got ${show(layout)}`);
  }
}

function alignUpPage(v: number): number {
  const r = v % PAGE;
  return r === 0 ? v : v - r + PAGE;
}

function isPow2(v: number): boolean {
  return v > 0 && 2 ** Math.round(Math.log2(v)) === v;
}

function noExtendable(vaddr: VirtAddr): never {
  return vmmFail('E_NO_MAPPING', SeedMessage.noExtendable, formatVirtAddr(vaddr), { vaddr });
}

function disposedFail(): never {
  return vmmFail('E_DISPOSED', 'this VirtualMemoryManager handle was disposed');
}
