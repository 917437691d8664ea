/**
 * A human-level page mapper over 4-level tables in simulated memory: map and unmap pages or ranges at
 * 4 KiB, 2 MiB and 1 GiB, change flags, translate — splitting huge pages where an operation covers
 * only part of one, and freeing page tables that become empty.
 *
 * @module
 */
import {
  checkAligned,
  checkPageSize,
  checkUint,
  checkVirtAddr,
  checkVirtRange,
  describeValue,
  fail,
  formatHex,
  formatVirtAddr,
  PAGE_SIZE_4K,
  type PageSize,
  PHYS_SPACE_END,
  type PhysAddr,
  type VirtAddr,
  VmkitError,
} from '@vmkit/addr';
import { PagingErrorCode } from '../errors.js';
import type { FrameAllocator } from '../frame-allocator.js';
import type { PhysicalMemory } from '../physical-memory.js';
import {
  addrHi,
  addrLo,
  PTE_G,
  PTE_HI_ADDR_MASK,
  PTE_HI_XD,
  PTE_P,
  PTE_PAT_4K,
  PTE_PAT_LARGE,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
} from '../pte.js';
import { MmuErrorCode } from './errors.js';
import { collectLeaves, entryTarget, isLeafEntry, LEVEL_SPAN, type LeafVisit } from './leaves.js';

/** The permissions and attributes of a mapping. */
export interface PageFlags {
  /**
   * Readable (default `true`). x86-64 has no read bit: a present page is always readable, so `false`
   * (POSIX `PROT_NONE`, "mapped, no access") cannot be written into a present PTE. {@link PageMapper}
   * refuses it; a layer above (memory-set's x86-64 backends) keeps such pages not present.
   */
  readable?: boolean;
  /** R/W = 1. */
  writable: boolean;
  /** U/S = 1 (user-mode accessible). */
  user: boolean;
  /** XD = 0 (instruction fetches allowed when EFER.NXE = 1; with NXE = 0 everything is executable). */
  executable: boolean;
  /** G = 1: kept across CR3 loads when CR4.PGE = 1. */
  global?: boolean;
  /** PWT = 1. */
  writeThrough?: boolean;
  /** PCD = 1. */
  cacheDisable?: boolean;
}

/** What {@link PageMapper.translate} returns. */
export interface MapperTranslation {
  /** Physical address of `va` itself (leaf base + offset). */
  pa: PhysAddr;
  /** Size of the leaf holding `va`. */
  size: PageSize;
  /** Effective flags: R/W and U/S ANDed over all levels, XD ORed; G/PWT/PCD from the leaf. */
  flags: PageFlags;
  /** First virtual address of the leaf. */
  leafVa: VirtAddr;
}

/** One leaf removed by {@link PageMapper.unmapRange}. */
export interface UnmappedPage {
  va: VirtAddr;
  pa: PhysAddr;
  size: PageSize;
}

const TABLE_LO = PTE_P | PTE_RW | PTE_US;
const FLAG_LO_MASK = PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_G;

/** Pending hook calls and results of a range operation. */
interface RangeCtx {
  apply: boolean;
  unmap: boolean;
  lo: number;
  hi: number;
  splits: number;
  pool: number[];
  removed: UnmappedPage[];
  changed: number;
  hooks: number[];
}

/** Undo record of one linked leaf in a map operation. */
interface MapUndo {
  ea: number;
  oldLo: number;
  oldHi: number;
  newTables: number[];
  freeLater: number[];
}

/**
 * A read-only view of a 4-level page table in simulated memory: {@link translate} and {@link leaves}
 * without a frame allocator (e.g. over an imported image and its CR3). {@link PageMapper} extends it.
 */
export class PageTableView {
  /** The memory holding the tables. */
  readonly mem: PhysicalMemory;
  /** Physical address of the PML4 (what CR3 holds). */
  readonly root: PhysAddr;

  /**
   * @param root the PML4's physical address (4 KiB aligned, inside `mem`)
   * @throws VmkitError `E_INVALID` for a `mem` that is not a PhysicalMemory or a `root` that is not an
   *   integer, `E_UNALIGNED`/`E_RANGE` for a `root` off a page or outside `mem`
   */
  constructor(mem: PhysicalMemory, root: PhysAddr) {
    checkMemory(mem);
    checkUint(root, 'root table');
    checkAligned(root, PAGE_SIZE_4K, 'root table');
    mem.checkRange(root, PAGE_SIZE_4K);
    this.mem = mem;
    this.root = root;
  }

  /**
   * The translation of `va` (no side effects: no A/D bits, no TLB).
   *
   * @returns `undefined` when `va` is not mapped
   */
  translate(va: VirtAddr): MapperTranslation | undefined {
    checkVa(va);
    let table: number = this.root;
    let acc = PTE_RW | PTE_US;
    let xd = 0;
    for (let level = 4; level >= 1; level--) {
      const ea = table + tableIndex(va, level) * 8;
      if (ea + 8 > this.mem.size) return undefined;
      const lo = this.mem.read32(ea);
      const hi = this.mem.read32(ea + 4);
      if ((lo & PTE_P) === 0) return undefined;
      acc &= lo;
      xd |= hi >>> 31;
      if (isLeafEntry(level, lo)) {
        const size = LEVEL_SPAN[level as 1] as PageSize;
        const off = va % size;
        return {
          pa: (entryTarget(level, lo, hi) + off) as PhysAddr,
          size,
          leafVa: (va - off) as VirtAddr,
          flags: {
            writable: (acc & PTE_RW) !== 0,
            user: (acc & PTE_US) !== 0,
            executable: xd === 0,
            global: (lo & PTE_G) !== 0,
            writeThrough: (lo & PTE_PWT) !== 0,
            cacheDisable: (lo & PTE_PCD) !== 0,
          },
        };
      }
      table = entryTarget(level, lo, hi);
    }
    return undefined;
  }

  /** Every present leaf, ascending (allocates; for dumps, tests and teardown). */
  leaves(): LeafVisit[] {
    return collectLeaves(this.mem, this.root);
  }
}

/**
 * Maps pages in a 4-level page table whose root (PML4) is `root`.
 *
 * Ownership: the mapper owns every page-table frame reachable from its root. It allocates tables from
 * `frames` (`allocFrame`, zero-filled) and gives tables that become empty back with `frames.decRef`
 * (the root is never freed, except by {@link destroy}). It never allocates or frees the frames that
 * leaves point to: those belong to the caller (unmap returns them).
 *
 * New intermediate entries are P|R/W|U/S with XD = 0, so the leaf alone decides the rights of what this
 * mapper maps (the effective rights are still the AND over all levels, as the MMU computes them).
 *
 * Validation (every public method; nothing is changed when it throws): virtual addresses are
 * `VirtAddr` integers in [0, 2^48); `E_UNALIGNED` for a virtual or physical address or a length that is
 * not a multiple of the page size involved (4 KiB for ranges given without a size); `E_RANGE` for a
 * zero length or a physical range past 2^52; `E_NONCANONICAL`/`E_OVERFLOW` for a range that crosses
 * the non-canonical hole or passes the top (`virtEnd`); `E_INVALID` for a bad size or flags object;
 * `E_ALREADY_MAPPED` (MmuErrorCode) for a map over anything present; `E_NOMEM` (PagingErrorCode, from
 * the allocator) when tables cannot be allocated.
 *
 * After changing or removing a leaf the mapper calls {@link flushHook} (if set) with the leaf's first
 * address and size, once the operation has completed — e.g. `(va) => mmu.invlpg(va)` for the MMU whose
 * current CR3 this table is (use `mmu.invpcid(0, pcid, va)` for another PCID).
 */
export class PageMapper extends PageTableView {
  /** Where table frames come from and go back to. */
  readonly frames: FrameAllocator;
  /** Called for each leaf changed or removed (and for each huge leaf split), after the operation. */
  flushHook?: (va: VirtAddr, size: PageSize) => void;

  /**
   * @param frames the allocator of table frames (any {@link FrameAllocator}); to read an existing table
   *   without one, use {@link PageTableView}
   * @param root an existing PML4 (4 KiB aligned, inside `mem`); when omitted a zeroed one is allocated
   * @throws VmkitError `E_INVALID` for a `frames` that is not a FrameAllocator, `E_UNALIGNED`/`E_RANGE`
   *   for a bad `root`, `E_NOMEM` when no frame is free
   */
  constructor(mem: PhysicalMemory, frames: FrameAllocator, root?: PhysAddr) {
    if (
      typeof frames !== 'object' ||
      frames === null ||
      typeof frames.allocFrame !== 'function' ||
      typeof frames.decRef !== 'function'
    ) {
      fail('E_INVALID', `frames ${describeValue(frames)} is not a FrameAllocator`, { frames });
    }
    if (root === undefined) {
      checkMemory(mem);
      const r = frames.allocFrame();
      mem.fill(r, PAGE_SIZE_4K);
      super(mem, r);
    } else {
      super(mem, root);
    }
    this.frames = frames;
  }

  /**
   * Maps one page `[va, va + size)` to `[pa, pa + size)`.
   *
   * @param size 4 KiB, 2 MiB or 1 GiB; `va` and `pa` must be multiples of it
   * @throws VmkitError `E_ALREADY_MAPPED` if any part of the page is mapped (a leaf, or a table with a
   *   present leaf below it; an empty table in the way is replaced and freed), `E_NOMEM`, and the
   *   validation errors of the class doc. Nothing changes on error.
   */
  map(va: VirtAddr, pa: PhysAddr, size: PageSize, flags: PageFlags): void {
    checkPageSize(size);
    checkPage(va, pa, size);
    const [lo, hi] = leafWords(pa, size, flags);
    this.conflictCheck(va, size);
    const u = this.mapOne(va, lo, hi, size);
    this.freeTables(u.freeLater);
  }

  /**
   * Maps `[va, va + len)` to `[pa, pa + len)` with pages of `size` (default 4 KiB). All or nothing.
   *
   * @param len bytes, a positive multiple of `size`
   * @throws VmkitError as {@link map} for any page of the range; nothing changes on error
   */
  mapRange(va: VirtAddr, pa: PhysAddr, len: number, flags: PageFlags, size: PageSize = PAGE_SIZE_4K): void {
    checkPageSize(size);
    checkPage(va, pa, size);
    checkLen(va, len, size);
    if (pa + len > PHYS_SPACE_END)
      fail('E_RANGE', `physical range ${formatHex(pa)} + ${formatHex(len)} passes 2^52`, { pa, len });
    leafWords(pa, size, flags); // validates the flags before anything else
    // One read-only pass over what the tables hold in the range (present tables only; a missing
    // subtree is counted arithmetically): conflicts, and the tables the mapping needs, checked against
    // the allocator's free frames before anything is written.
    const need = this.planMap(this.root, 4, 0, va, va + len, levelOf(size));
    if (need > this.frames.freeFrames) {
      throw new VmkitError(
        PagingErrorCode.E_NOMEM,
        `mapping ${formatVirtAddr(va)} (+${formatHex(len)}) needs ${need} page-table frames, ${this.frames.freeFrames} are free`,
        { va, len, need, freeFrames: this.frames.freeFrames },
      );
    }
    const n = len / size;
    const undo: MapUndo[] = [];
    try {
      for (let k = 0; k < n; k++) {
        const [lo, hi] = leafWords((pa + k * size) as PhysAddr, size, flags);
        undo.push(this.mapOne((va + k * size) as VirtAddr, lo, hi, size));
      }
    } catch (e) {
      for (let k = undo.length - 1; k >= 0; k--) this.undoMap(undo[k]!);
      throw e;
    }
    for (const u of undo) this.freeTables(u.freeLater);
  }

  /**
   * Removes the whole leaf holding `va` (a 2 MiB or 1 GiB page is removed entirely) and frees the
   * tables that become empty. The leaf's frames are not freed: they are returned.
   *
   * @returns the leaf's physical base and size, or `undefined` if `va` is not mapped
   * @throws VmkitError `E_INVALID`/`E_RANGE` for a `va` that is not a VirtAddr
   */
  unmap(va: VirtAddr): { pa: PhysAddr; size: PageSize } | undefined {
    checkVa(va);
    const path: number[] = []; // table addresses, root first
    const eas: number[] = [];
    let table: number = this.root;
    for (let level = 4; level >= 1; level--) {
      const ea = table + tableIndex(va, level) * 8;
      const lo = this.mem.read32(ea);
      const hi = this.mem.read32(ea + 4);
      if ((lo & PTE_P) === 0) return undefined;
      path.push(table);
      eas.push(ea);
      if (isLeafEntry(level, lo)) {
        const size = LEVEL_SPAN[level as 1] as PageSize;
        const pa = entryTarget(level, lo, hi) as PhysAddr;
        this.writeEntry(ea, 0, 0);
        this.pruneUp(path, eas);
        this.flushHook?.((va - (va % size)) as VirtAddr, size);
        return { pa, size };
      }
      table = entryTarget(level, lo, hi);
    }
    return undefined;
  }

  /**
   * Unmaps every page in `[va, va + len)`. A huge leaf only partly inside is split first (1 GiB into
   * 2 MiB, 2 MiB into 4 KiB) so that exactly the range goes; emptied tables are freed. Transactional:
   * the tables a split needs are allocated before anything changes, so `E_NOMEM` leaves all as it was.
   * The leaves' frames are not freed (the caller owns them).
   *
   * @param va 4 KiB aligned; @param len a positive multiple of 4 KiB
   * @returns the leaves removed, ascending (pieces of split huge pages appear at their split size)
   */
  unmapRange(va: VirtAddr, len: number): UnmappedPage[] {
    checkVa(va);
    checkAligned(va, PAGE_SIZE_4K, 'virtual address');
    checkLen(va, len, PAGE_SIZE_4K);
    const ctx = this.runRange(va, va + len, true, 0, 0);
    return ctx.removed;
  }

  /**
   * Sets the flags of every present leaf in `[va, va + len)` (A, D, PAT, PK and software bits are
   * kept). A huge leaf only partly inside whose flags differ is split first. Transactional as
   * {@link unmapRange}.
   *
   * @returns the number of leaves whose entry changed (after splitting)
   */
  protectRange(va: VirtAddr, len: number, flags: PageFlags): number {
    checkVa(va);
    checkAligned(va, PAGE_SIZE_4K, 'virtual address');
    checkLen(va, len, PAGE_SIZE_4K);
    const [lo, hi] = leafWords(0 as PhysAddr, PAGE_SIZE_4K, flags);
    return this.runRange(va, va + len, false, lo & FLAG_LO_MASK, hi & PTE_HI_XD).changed;
  }

  /**
   * Sets the rights bits of the intermediate entry at `level` (4 = PML4E, 3 = PDPTE, 2 = PDE) on the
   * way to `va`: R/W, U/S and XD, which the CPU ANDs (R/W, U/S) and ORs (XD) over every level. New
   * intermediate entries are permissive (P|R/W|U/S, XD = 0) so that leaves alone decide; this builds
   * restrictive upper levels (e.g. a read-only or supervisor-only 512 GiB region, or XD on a PDPTE) for
   * everything below the entry at once. Other bits of the entry are kept. {@link flushHook} is called
   * for every present leaf below it (their effective rights change).
   *
   * @returns the number of leaves below the entry
   * @throws VmkitError `E_INVALID` for a level outside 2..4, bad rights, or an entry that is not
   *   present or is a leaf (use {@link protectRange} for leaves); the validation errors of the class doc
   */
  setTableRights(
    va: VirtAddr,
    level: 2 | 3 | 4,
    rights: { writable: boolean; user: boolean; executable: boolean },
  ): number {
    checkVa(va);
    if (level !== 2 && level !== 3 && level !== 4)
      fail('E_INVALID', `level ${describeValue(level)} is not 2 (PDE), 3 (PDPTE) or 4 (PML4E)`, { level });
    if (
      typeof rights !== 'object' ||
      rights === null ||
      typeof rights.writable !== 'boolean' ||
      typeof rights.user !== 'boolean' ||
      typeof rights.executable !== 'boolean'
    ) {
      fail('E_INVALID', `rights ${describeValue(rights)} must be { writable, user, executable: boolean }`, {
        rights,
      });
    }
    let table: number = this.root;
    for (let l = 4; ; l--) {
      const ea = table + tableIndex(va, l) * 8;
      const lo = this.mem.read32(ea);
      const hi = this.mem.read32(ea + 4);
      if ((lo & PTE_P) === 0 || isLeafEntry(l, lo)) {
        fail(
          'E_INVALID',
          `no ${l === 4 ? 'PML4E' : l === 3 ? 'PDPTE' : 'PDE'} table entry on the way to ${formatVirtAddr(va)}: the entry at level ${l} is ${(lo & PTE_P) === 0 ? 'not present' : 'a leaf'}`,
          { va, level },
        );
      }
      if (l === level) {
        let nlo = lo & ~(PTE_RW | PTE_US);
        if (rights.writable) nlo |= PTE_RW;
        if (rights.user) nlo |= PTE_US;
        const nhi = rights.executable ? hi & ~PTE_HI_XD : hi | PTE_HI_XD;
        this.writeEntry(ea, nlo, nhi);
        const span = LEVEL_SPAN[l as 1]!;
        const base = va - (va % span);
        const hooks: number[] = [];
        forEachLeafUnder(this.mem, entryTarget(l, lo, hi), l - 1, base, (lva, size) => hooks.push(lva, size));
        const hook = this.flushHook;
        if (hook)
          for (let k = 0; k < hooks.length; k += 2) hook(hooks[k] as VirtAddr, hooks[k + 1] as PageSize);
        return hooks.length / 2;
      }
      table = entryTarget(l, lo, hi);
    }
  }

  /**
   * Frees every page-table frame reachable from the root, the root included (leaf frames are left to
   * their owner). The mapper must not be used afterwards.
   */
  destroy(): void {
    const tables: number[] = [];
    this.collectTables(this.root, 4, tables);
    this.freeTables(tables);
    this.frames.decRef(this.root);
  }

  // ------------------------------------------------------------------ internals

  /**
   * The page-table frames a map of `[start, end)` with leaves at level `target` needs below `table`
   * (at `level`, covering from `base`), throwing `E_ALREADY_MAPPED` where something present is in the
   * way (a leaf, or a table holding a leaf where a large leaf goes). Read-only; visits present tables
   * only: a non-present entry's subtree is counted arithmetically.
   */
  private planMap(
    table: number,
    level: number,
    base: number,
    start: number,
    end: number,
    target: number,
  ): number {
    const span = LEVEL_SPAN[level as 1]!;
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    let need = 0;
    for (let i = first; i <= last; i++) {
      const ea = table + i * 8;
      const lo = this.mem.read32(ea);
      const eStart = base + i * span;
      const s = Math.max(start, eStart);
      const e = Math.min(end, eStart + span);
      if ((lo & PTE_P) === 0) {
        // Tables at levels level-1 .. target, each covering 512 entries of its level.
        for (let l = level - 1; l >= target; l--) {
          const tspan = LEVEL_SPAN[(l + 1) as 1]!;
          need += Math.floor((e - 1) / tspan) - Math.floor(s / tspan) + 1;
        }
        continue;
      }
      const hi = this.mem.read32(ea + 4);
      if (level === target) {
        if (isLeafEntry(level, lo) || this.hasPresentLeaf(entryTarget(level, lo, hi), level - 1))
          this.conflictCheck(eStart as VirtAddr, span as PageSize);
        continue; // an empty table in the way is replaced (and freed) by mapOne
      }
      if (isLeafEntry(level, lo)) this.conflictCheck(s as VirtAddr, LEVEL_SPAN[target as 1] as PageSize);
      need += this.planMap(entryTarget(level, lo, hi), level - 1, eStart, start, end, target);
    }
    return need;
  }

  /** Throws E_ALREADY_MAPPED if anything present lies in the page [va, va+size). Read-only. */
  private conflictCheck(va: VirtAddr, size: PageSize): void {
    const target = levelOf(size);
    let table: number = this.root;
    for (let level = 4; ; level--) {
      const ea = table + tableIndex(va, level) * 8;
      const lo = this.mem.read32(ea);
      const hi = this.mem.read32(ea + 4);
      if ((lo & PTE_P) === 0) return;
      if (
        isLeafEntry(level, lo) ||
        (level === target && this.hasPresentLeaf(entryTarget(level, lo, hi), level - 1))
      ) {
        const leafSize = LEVEL_SPAN[level as 1];
        throw new VmkitError(
          MmuErrorCode.E_ALREADY_MAPPED,
          `cannot map ${formatVirtAddr(va)} (+${formatHex(size)}): ${
            isLeafEntry(level, lo)
              ? `a ${formatHex(leafSize)} page at ${formatVirtAddr((va - (va % leafSize)) as VirtAddr)} is mapped there`
              : 'pages inside it are mapped'
          }`,
          { va, size },
        );
      }
      if (level === target) return;
      table = entryTarget(level, lo, hi);
    }
  }

  /** Links one leaf (conflicts already checked); allocates the missing tables first (all or nothing). */
  private mapOne(va: VirtAddr, lo: number, hi: number, size: PageSize): MapUndo {
    const target = levelOf(size);
    let table: number = this.root;
    let level = 4;
    let ea = 0;
    for (;;) {
      ea = table + tableIndex(va, level) * 8;
      const elo = this.mem.read32(ea);
      if (level === target || (elo & PTE_P) === 0) break;
      table = entryTarget(level, elo, this.mem.read32(ea + 4));
      level--;
    }
    const oldLo = this.mem.read32(ea);
    const oldHi = this.mem.read32(ea + 4);
    const freeLater: number[] = [];
    if (level === target && (oldLo & PTE_P) !== 0) {
      // An empty table (no present leaf below: checked) in the way of a huge leaf: freed after success.
      const child = entryTarget(level, oldLo, oldHi);
      this.collectTables(child, level - 1, freeLater);
      freeLater.push(child);
    }
    const newTables = this.allocTables(level - target);
    // Fill the new chain bottom-up, then link it (the leaf last when no table is new).
    let lvl = level - 1;
    for (let k = 0; k < newTables.length; k++, lvl--) {
      const t = newTables[k]!;
      const e = t + tableIndex(va, lvl) * 8;
      if (k + 1 < newTables.length)
        this.writeEntry(e, TABLE_LO | addrLo(newTables[k + 1]!), addrHi(newTables[k + 1]!));
      else this.writeEntry(e, lo, hi);
    }
    if (newTables.length > 0) this.writeEntry(ea, TABLE_LO | addrLo(newTables[0]!), addrHi(newTables[0]!));
    else this.writeEntry(ea, lo, hi);
    return { ea, oldLo, oldHi, newTables, freeLater };
  }

  private undoMap(u: MapUndo): void {
    this.writeEntry(u.ea, u.oldLo, u.oldHi);
    for (const t of u.newTables) {
      this.mem.fill(t, PAGE_SIZE_4K); // as the allocator handed it out
      this.frames.decRef(t as PhysAddr);
    }
  }

  /** Allocates `n` zeroed tables; on failure frees what it got and rethrows. */
  private allocTables(n: number): number[] {
    const got: number[] = [];
    try {
      for (let k = 0; k < n; k++) {
        const t = this.frames.allocFrame();
        got.push(t);
        this.mem.fill(t, PAGE_SIZE_4K);
      }
    } catch (e) {
      for (const t of got) this.frames.decRef(t as PhysAddr);
      throw e;
    }
    return got;
  }

  private freeTables(tables: number[]): void {
    for (const t of tables) this.frames.decRef(t as PhysAddr);
  }

  /** Collects every table below the table `table` at `level` (not `table` itself), children first. */
  private collectTables(table: number, level: number, out: number[]): void {
    if (level <= 1) return;
    for (let i = 0; i < 512; i++) {
      const ea = table + i * 8;
      const lo = this.mem.read32(ea);
      if ((lo & PTE_P) === 0 || isLeafEntry(level, lo)) continue;
      const child = entryTarget(level, lo, this.mem.read32(ea + 4));
      this.collectTables(child, level - 1, out);
      out.push(child);
    }
  }

  private hasPresentLeaf(table: number, level: number): boolean {
    for (let i = 0; i < 512; i++) {
      const ea = table + i * 8;
      const lo = this.mem.read32(ea);
      if ((lo & PTE_P) === 0) continue;
      if (isLeafEntry(level, lo)) return true;
      if (this.hasPresentLeaf(entryTarget(level, lo, this.mem.read32(ea + 4)), level - 1)) return true;
    }
    return false;
  }

  private isEmptyTable(table: number): boolean {
    const f = this.mem.flat32;
    if (f !== undefined && table + PAGE_SIZE_4K <= f.length * 4) {
      const w0 = table / 4;
      for (let w = w0; w < w0 + 1024; w++) if (f[w] !== 0) return false;
      return true;
    }
    for (let w = 0; w < 1024; w++) if (this.mem.read32(table + w * 4) !== 0) return false;
    return true;
  }

  /** The first index in [from, to] of a present entry of `table`, or −1 (a word scan over flat memory). */
  private nextPresent(table: number, from: number, to: number): number {
    const f = this.mem.flat32;
    if (f !== undefined && table + PAGE_SIZE_4K <= f.length * 4) {
      const w0 = table / 4;
      for (let i = from; i <= to; i++) if ((f[w0 + 2 * i]! & 1) !== 0) return i;
      return -1;
    }
    for (let i = from; i <= to; i++) if ((this.mem.read32(table + i * 8) & PTE_P) !== 0) return i;
    return -1;
  }

  /** After clearing the leaf entry `eas[last]`, frees tables on `path` (not the root) that are empty. */
  private pruneUp(path: number[], eas: number[]): void {
    for (let k = path.length - 1; k >= 1; k--) {
      const t = path[k]!;
      if (!this.isEmptyTable(t)) return;
      this.writeEntry(eas[k - 1]!, 0, 0);
      this.frames.decRef(t as PhysAddr);
    }
  }

  private writeEntry(ea: number, lo: number, hi: number): void {
    this.mem.write32(ea, lo >>> 0);
    this.mem.write32(ea + 4, hi >>> 0);
  }

  /** Count pass (read-only), allocation of the split tables, apply pass, then the hooks. */
  private runRange(start: number, end: number, unmap: boolean, lo: number, hi: number): RangeCtx {
    const ctx: RangeCtx = {
      apply: false,
      unmap,
      lo,
      hi,
      splits: 0,
      pool: [],
      removed: [],
      changed: 0,
      hooks: [],
    };
    this.rangeWalk(ctx, this.root, 4, 0, start, end);
    ctx.pool = this.allocTables(ctx.splits);
    ctx.apply = true;
    this.rangeWalk(ctx, this.root, 4, 0, start, end);
    if (ctx.pool.length > 0) this.freeTables(ctx.pool); // never expected: the passes agree
    const hook = this.flushHook;
    if (hook)
      for (let k = 0; k < ctx.hooks.length; k += 2)
        hook(ctx.hooks[k] as VirtAddr, ctx.hooks[k + 1] as PageSize);
    return ctx;
  }

  private rangeWalk(
    ctx: RangeCtx,
    table: number,
    level: number,
    base: number,
    start: number,
    end: number,
  ): void {
    const span = LEVEL_SPAN[level as 1]!;
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    if (!ctx.apply) {
      // The count pass: only the entries at the range's two edges can be partly covered, so splits
      // happen on those two paths only (at most 2 × 3 entries visited).
      this.countEdge(ctx, table, level, base, start, end, first);
      if (last !== first) this.countEdge(ctx, table, level, base, start, end, last);
      return;
    }
    // Only present entries are visited (an empty subtree costs one word test in the scan).
    for (let i = this.nextPresent(table, first, last); i >= 0; i = this.nextPresent(table, i + 1, last)) {
      const ea = table + i * 8;
      const lo = this.mem.read32(ea);
      const hi = this.mem.read32(ea + 4);
      const eStart = base + i * span;
      const eEnd = eStart + span;
      if (isLeafEntry(level, lo)) {
        if (start <= eStart && eEnd <= end) {
          if (ctx.apply) this.leafOp(ctx, ea, lo, hi, level, eStart);
          continue;
        }
        if (!ctx.unmap && (lo & FLAG_LO_MASK) === ctx.lo && (hi & PTE_HI_XD) >>> 0 === ctx.hi >>> 0) continue;
        const t = ctx.pool.pop()!;
        this.splitInto(t, lo, hi, level);
        this.writeEntry(ea, TABLE_LO | addrLo(t), addrHi(t));
        ctx.hooks.push(eStart, span);
        this.rangeWalk(ctx, t, level - 1, eStart, start, end);
        continue;
      }
      const child = entryTarget(level, lo, hi);
      this.rangeWalk(ctx, child, level - 1, eStart, start, end);
      // A child fully inside the range is empty now; one at an edge is checked.
      if (ctx.unmap && ((start <= eStart && eEnd <= end) || this.isEmptyTable(child))) {
        this.writeEntry(ea, 0, 0);
        this.frames.decRef(child as PhysAddr);
      }
    }
  }

  /** The count pass at entry `i` of `table` (an edge of the range): splits its partly covered leaves need. */
  private countEdge(
    ctx: RangeCtx,
    table: number,
    level: number,
    base: number,
    start: number,
    end: number,
    i: number,
  ): void {
    const span = LEVEL_SPAN[level as 1]!;
    const ea = table + i * 8;
    const lo = this.mem.read32(ea);
    if ((lo & PTE_P) === 0) return;
    const eStart = base + i * span;
    if (start <= eStart && eStart + span <= end) return; // fully covered: nothing below splits
    const hi = this.mem.read32(ea + 4);
    if (isLeafEntry(level, lo)) {
      if (!ctx.unmap && (lo & FLAG_LO_MASK) === ctx.lo && (hi & PTE_HI_XD) >>> 0 === ctx.hi >>> 0) return;
      ctx.splits += 1 + (level === 3 ? partialChildren(eStart, start, end) : 0);
      return;
    }
    this.rangeWalk(ctx, entryTarget(level, lo, hi), level - 1, eStart, start, end);
  }

  private leafOp(ctx: RangeCtx, ea: number, lo: number, hi: number, level: number, va: number): void {
    const size = LEVEL_SPAN[level as 1] as PageSize;
    if (ctx.unmap) {
      this.writeEntry(ea, 0, 0);
      ctx.removed.push({ va: va as VirtAddr, pa: entryTarget(level, lo, hi) as PhysAddr, size });
      ctx.hooks.push(va, size);
      return;
    }
    const nlo = ((lo & ~FLAG_LO_MASK) | ctx.lo) >>> 0;
    const nhi = ((hi & ~PTE_HI_XD) | ctx.hi) >>> 0;
    if (nlo === lo >>> 0 && nhi === hi >>> 0) return;
    this.writeEntry(ea, nlo, nhi);
    ctx.changed++;
    ctx.hooks.push(va, size);
  }

  /** Fills table `t` with the 512 next-smaller leaves equivalent to the huge leaf (lo, hi) at `level`. */
  private splitInto(t: number, lo: number, hi: number, level: number): void {
    const base = entryTarget(level, lo, hi);
    const child = LEVEL_SPAN[(level - 1) as 1]!;
    let flags: number;
    if (level === 3)
      flags = lo & 0x1fff; // keeps PS and the large-page PAT bit (12)
    else flags = (lo & 0xfff & ~PTE_PS) | ((lo & PTE_PAT_LARGE) !== 0 ? PTE_PAT_4K : 0);
    const hiFlags = hi & ~PTE_HI_ADDR_MASK;
    for (let i = 0; i < 512; i++) {
      const p = base + i * child;
      this.writeEntry(t + i * 8, (flags | addrLo(p)) >>> 0, (hiFlags | addrHi(p)) >>> 0);
    }
  }
}

/** Number of distinct 2 MiB children of the 1 GiB leaf at `eStart` that [start, end) covers only partly. */
function partialChildren(eStart: number, start: number, end: number): number {
  const c = LEVEL_SPAN[2];
  let n = 0;
  let a = -1;
  if (start > eStart && start % c !== 0) {
    a = start - (start % c);
    n++;
  }
  if (end < eStart + LEVEL_SPAN[3] && end % c !== 0) {
    const b = end - (end % c);
    if (b !== a) n++;
  }
  return n;
}

function levelOf(size: PageSize): number {
  return size === PAGE_SIZE_4K ? 1 : size === LEVEL_SPAN[2] ? 2 : 3;
}

function tableIndex(va: number, level: number): number {
  return Math.floor(va / LEVEL_SPAN[level as 1]!) % 512;
}

function checkMemory(mem: PhysicalMemory): void {
  if (
    typeof mem !== 'object' ||
    mem === null ||
    typeof mem.read32 !== 'function' ||
    typeof mem.checkRange !== 'function'
  ) {
    fail('E_INVALID', `memory ${describeValue(mem)} is not a PhysicalMemory`, { mem });
  }
}

function checkVa(va: unknown): void {
  checkVirtAddr(va);
}

function checkPage(va: number, pa: number, size: PageSize): void {
  checkVa(va);
  checkAligned(va, size, 'virtual address');
  checkUint(pa, 'physical address');
  checkAligned(pa, size, 'physical address');
  if (pa + size > PHYS_SPACE_END) fail('E_RANGE', `physical page ${formatHex(pa)} passes 2^52`, { pa, size });
}

function checkLen(va: number, len: number, size: number): void {
  checkUint(len, 'length');
  if (len === 0) fail('E_RANGE', 'length 0 is not positive', { len });
  checkAligned(len, size, 'length');
  checkVirtRange(va, len);
}

/** The leaf entry words for `pa` with `flags` at `size`. */
function leafWords(pa: PhysAddr, size: PageSize, flags: PageFlags): [number, number] {
  if (
    typeof flags !== 'object' ||
    flags === null ||
    typeof flags.writable !== 'boolean' ||
    typeof flags.user !== 'boolean' ||
    typeof flags.executable !== 'boolean'
  ) {
    fail('E_INVALID', `flags ${describeValue(flags)} must be { writable, user, executable: boolean, ... }`, {
      flags,
    });
  }
  if (flags.readable !== undefined && typeof flags.readable !== 'boolean')
    fail('E_INVALID', `flags.readable ${describeValue(flags.readable)} is not a boolean`, { flags });
  if (flags.readable === false) {
    fail(
      'E_INVALID',
      'flags.readable false (PROT_NONE) cannot be a present x86-64 page (no read bit): keep the page not present',
      { flags },
    );
  }
  let lo = PTE_P | addrLo(pa);
  if (flags.writable) lo |= PTE_RW;
  if (flags.user) lo |= PTE_US;
  if (flags.global) lo |= PTE_G;
  if (flags.writeThrough) lo |= PTE_PWT;
  if (flags.cacheDisable) lo |= PTE_PCD;
  if (size !== PAGE_SIZE_4K) lo |= PTE_PS;
  const hi = addrHi(pa) | (flags.executable ? 0 : PTE_HI_XD);
  return [lo >>> 0, hi >>> 0];
}

/** Calls `fn(va, size)` for every present leaf of the table `table` at `level` covering from `base`. */
function forEachLeafUnder(
  mem: PhysicalMemory,
  table: number,
  level: number,
  base: number,
  fn: (va: number, size: number) => void,
): void {
  const span = LEVEL_SPAN[level as 1]!;
  for (let i = 0; i < 512; i++) {
    const ea = table + i * 8;
    const lo = mem.read32(ea);
    if ((lo & PTE_P) === 0) continue;
    if (isLeafEntry(level, lo)) fn(base + i * span, span);
    else forEachLeafUnder(mem, entryTarget(level, lo, mem.read32(ea + 4)), level - 1, base + i * span, fn);
  }
}
