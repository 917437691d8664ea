/**
 * The seed's `PageTable` role over x86-64 4-level tables in simulated physical memory: leaf entries of
 * 4 KiB pages, the page-table frames they need (allocated from, and given back to, the shared frame
 * allocator), range walks that visit only occupied entries and free tables that become empty, and the
 * fork copy. Tables are in the architectural format `@vmkit/paging-x86_64` defines (and its
 * `PageMapper` reads), so an `Mmu` can run over the root.
 *
 * Leaf entries carry the page state; no JS object per page exists:
 * - P, R/W, U/S (always set: user pages), A (preset), D (set by the MMU on a write, or by
 *   `VmSpace.write`), XD unless the segment is executable, the frame address;
 * - software bit 52 ({@link SW_PRIVATE}): a private page, whose frame's reference count is the number
 *   of leaf entries (in any space) that point to it; clear: a shared page of a channel's page cache;
 * - software bit 53 ({@link SW_PARKED}): the segment is `PROT_NONE`; P is clear (every access faults)
 *   but the entry keeps its frame. An entry is *occupied* when P or PARKED is set.
 *
 * @module
 */
import type { PhysAddr } from '@vmkit/addr';
import type { FrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';

/** `hi`-word mask of software bit 52: the page is private (anonymous) memory. */
export const SW_PRIVATE = 1 << 20;
/** `hi`-word mask of software bit 53: the page is resident but its segment forbids every access. */
export const SW_PARKED = 1 << 21;

// Module-local literals for the hot loops (an exported const is read through a Cell).
const PRIV = 0x10_0000;
const P = 1;
const RW = 2;
const US = 4;
const A = 0x20;
/** Bit 6 of `lo`: dirty. */
export const PTE_DIRTY = 0x40;
/** Bit 1 of `lo`: writable. */
export const PTE_WRITABLE = RW;
/** Bit 0 of `lo`: present. */
export const PTE_PRESENT = P;
/** `hi` bit 31: execute disable. */
export const PTE_XD = 0x8000_0000;
const TABLE_LO = P | RW | US;
const LO_ADDR = 0xfffff000;
const HI_ADDR = 0x000fffff;
const TWO32 = 0x1_0000_0000;
/** Bytes covered by one entry at levels 1 (PT) .. 4 (PML4). */
const SPAN = [0, 0x1000, 0x20_0000, 0x4000_0000, 0x80_0000_0000] as const;

/** The frame an entry points to. */
export function entryFrame(lo: number, hi: number): number {
  return (hi & HI_ADDR) * TWO32 + ((lo & LO_ADDR) >>> 0);
}

/** The `lo` word of a user leaf for `frame` (P, U/S, A, R/W when `writable`). */
export function leafLo(frame: number, writable: boolean): number {
  return (((frame % TWO32) & LO_ADDR) | P | US | A | (writable ? RW : 0)) >>> 0;
}

/** The `hi` word of a leaf for `frame` with the software bits `sw` and XD unless `executable`. */
export function leafHi(frame: number, sw: number, executable: boolean): number {
  return ((Math.floor(frame / TWO32) & HI_ADDR) | sw | (executable ? 0 : PTE_XD)) >>> 0;
}

/** Visitor of occupied leaf entries: `ea` is the entry's physical address. */
export type LeafVisitor = (va: number, lo: number, hi: number, ea: number) => void;

/**
 * One address space's tables: a root (PML4) and everything below it, in `mem`, frames from `frames`.
 */
export class PageTables {
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly root: PhysAddr;

  constructor(mem: PhysicalMemory, frames: FrameAllocator, root: PhysAddr) {
    this.mem = mem;
    this.frames = frames;
    this.root = root;
  }

  /** Physical address of the leaf entry of page `va`, or -1 when a table on the way is missing. */
  leafEa(va: number): number {
    const mem = this.mem;
    let table: number = this.root;
    for (let level = 4; level > 1; level--) {
      const ea = table + (Math.floor(va / SPAN[level as 4]) & 511) * 8;
      const lo = mem.read32(ea);
      if ((lo & P) === 0) return -1;
      table = entryFrame(lo, mem.read32(ea + 4));
    }
    return table + (Math.floor(va / 0x1000) & 511) * 8;
  }

  /**
   * The leaf entry address of page `va`, allocating the missing tables (zeroed by the allocator). All
   * or nothing: when an allocation fails, the tables allocated by this call are freed and the
   * allocator's error is rethrown.
   */
  ensureLeafEa(va: number): number {
    const mem = this.mem;
    let table: number = this.root;
    let fresh: number[] | undefined;
    let firstEa = -1;
    try {
      for (let level = 4; level > 1; level--) {
        const ea = table + (Math.floor(va / SPAN[level as 4]) & 511) * 8;
        const lo = mem.read32(ea);
        if ((lo & P) !== 0) {
          table = entryFrame(lo, mem.read32(ea + 4));
          continue;
        }
        const t = this.frames.allocFrame();
        fresh ??= [];
        fresh.push(t);
        if (firstEa < 0) firstEa = ea;
        mem.write32(ea, (TABLE_LO | ((t % TWO32) & LO_ADDR)) >>> 0);
        mem.write32(ea + 4, Math.floor(t / TWO32) & HI_ADDR);
        table = t;
      }
    } catch (e) {
      if (fresh !== undefined) {
        mem.write32(firstEa, 0);
        mem.write32(firstEa + 4, 0);
        for (const t of fresh) this.frames.decRef(t as PhysAddr);
      }
      throw e;
    }
    return table + (Math.floor(va / 0x1000) & 511) * 8;
  }

  /** Calls `visit` for every occupied leaf in `[start, end)` (page-aligned), ascending. */
  forEachLeaf(start: number, end: number, visit: LeafVisitor): void {
    if (start < end) this.walk(this.root, 4, 0, start, end, visit, false);
  }

  /**
   * Calls `visit` for every occupied leaf in `[start, end)`, clears it, and frees the tables that
   * become empty. Never fails.
   */
  clearRange(start: number, end: number, visit: LeafVisitor): void {
    if (start < end) this.walk(this.root, 4, 0, start, end, visit, true);
  }

  /**
   * Frees every table below the user half of the root (PML4 entries 0..255) and clears those entries;
   * leaves must be gone already (after {@link clearRange} of the whole half nothing is left, so this
   * is a safety net). The root and the higher half are not touched.
   */
  freeUserTables(): void {
    const mem = this.mem;
    for (let i = 0; i < 256; i++) {
      const ea = this.root + i * 8;
      const lo = mem.read32(ea);
      if ((lo & P) === 0) continue;
      this.freeBelow(entryFrame(lo, mem.read32(ea + 4)), 3);
      mem.write32(ea, 0);
      mem.write32(ea + 4, 0);
    }
  }

  private freeBelow(table: number, level: number): void {
    if (level > 1) {
      const mem = this.mem;
      for (let i = 0; i < 512; i++) {
        const lo = mem.read32(table + i * 8);
        if ((lo & P) !== 0) this.freeBelow(entryFrame(lo, mem.read32(table + i * 8 + 4)), level - 1);
      }
    }
    this.frames.decRef(table as PhysAddr);
  }

  /** Number of occupied leaves (walks the tables; for tests and statistics). */
  countLeaves(): number {
    let n = 0;
    this.forEachLeaf(0, 0x8000_0000_0000, () => {
      n++;
    });
    return n;
  }

  /** Number of page-table frames below the user half of the root, root excluded. */
  countTables(): number {
    return this.countBelow(this.root, 4);
  }

  private countBelow(table: number, level: number): number {
    if (level === 1) return 0;
    const mem = this.mem;
    const last = level === 4 ? 256 : 512;
    let n = 0;
    for (let i = 0; i < last; i++) {
      const lo = mem.read32(table + i * 8);
      if ((lo & P) === 0) continue;
      n += 1 + this.countBelow(entryFrame(lo, mem.read32(table + i * 8 + 4)), level - 1);
    }
    return n;
  }

  isEmpty(table: number): boolean {
    const mem = this.mem;
    const f = mem.flat32;
    if (f !== undefined) {
      const w0 = table / 4;
      for (let w = w0; w < w0 + 1024; w++) if (f[w] !== 0) return false;
      return true;
    }
    for (let w = 0; w < 1024; w++) if (mem.read32(table + w * 4) !== 0) return false;
    return true;
  }

  private walk(
    table: number,
    level: number,
    base: number,
    start: number,
    end: number,
    visit: LeafVisitor,
    clear: boolean,
  ): void {
    const mem = this.mem;
    const span = SPAN[level as 1];
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    for (let i = first; i <= last; i++) {
      const ea = table + i * 8;
      const lo = mem.read32(ea);
      const va = base + i * span;
      if (level === 1) {
        const hi = mem.read32(ea + 4);
        if ((lo & P) === 0 && (hi & SW_PARKED) === 0) continue;
        visit(va, lo, hi, ea);
        if (clear) {
          mem.write32(ea, 0);
          mem.write32(ea + 4, 0);
        }
        continue;
      }
      if ((lo & P) === 0) continue;
      const child = entryFrame(lo, mem.read32(ea + 4));
      this.walk(child, level - 1, va, start, end, visit, clear);
      if (clear && this.isEmpty(child)) {
        mem.write32(ea, 0);
        mem.write32(ea + 4, 0);
        this.frames.decRef(child as PhysAddr);
      }
    }
  }

  /**
   * The fork copy: every private leaf of this space's user half is made read-only here and copied
   * read-only into `child` (whose tables must be empty), with one more reference on its frame. Shared
   * leaves are not copied (the child faults them in from the page cache). Child tables come from
   * `pool` (pre-allocated, zeroed; what is left is returned in it). Never fails when `pool` holds at
   * least {@link countTables} frames.
   *
   * @returns the number of parent entries whose R/W bit was cleared (their TLB entries are stale)
   */
  forkInto(child: PageTables, pool: number[]): number {
    return this.forkTable(this.root, child.root, 4, pool);
  }

  private forkTable(src: number, dst: number, level: number, pool: number[]): number {
    const mem = this.mem;
    if (level === 1) return this.forkLeaves(src, dst);
    let downgraded = 0;
    const last = level === 4 ? 256 : 512;
    for (let i = 0; i < last; i++) {
      const ea = src + i * 8;
      const lo = mem.read32(ea);
      if ((lo & P) === 0) continue;
      const child = entryFrame(lo, mem.read32(ea + 4));
      const t = pool.pop()!;
      const before = forkCopies;
      downgraded += this.forkTable(child, t, level - 1, pool);
      if (forkCopies === before) {
        pool.push(t); // nothing private below: the child needs no table here
        continue;
      }
      mem.write32(dst + i * 8, (TABLE_LO | ((t % TWO32) & LO_ADDR)) >>> 0);
      mem.write32(dst + i * 8 + 4, Math.floor(t / TWO32) & HI_ADDR);
    }
    return downgraded;
  }

  /** Copies the private leaves of one page table; counts the copies in `forkCopies`. */
  private forkLeaves(src: number, dst: number): number {
    const frames = this.frames;
    const f = this.mem.flat32;
    let downgraded = 0;
    let copies = 0;
    if (f !== undefined) {
      // Word indexes as Smis (the flat memory is at most 1 GiB, so `>>> 2` is exact).
      const s0 = src >>> 2;
      const d0 = dst >>> 2;
      for (let k = 0; k < 1024; k += 2) {
        const hi = f[s0 + k + 1]!;
        if ((hi & PRIV) === 0) continue; // empty or shared
        const lo = f[s0 + k]!;
        frames.incRef(((hi & HI_ADDR) * TWO32 + ((lo & LO_ADDR) >>> 0)) as PhysAddr);
        const ro = (lo & ~RW) >>> 0;
        if (ro !== lo) {
          f[s0 + k] = ro;
          downgraded++;
        }
        f[d0 + k] = ro;
        f[d0 + k + 1] = hi;
        copies++;
      }
    } else {
      const mem = this.mem;
      for (let k = 0; k < 512; k++) {
        const hi = mem.read32(src + k * 8 + 4);
        if ((hi & SW_PRIVATE) === 0) continue;
        const lo = mem.read32(src + k * 8);
        frames.incRef(entryFrame(lo, hi) as PhysAddr);
        const ro = (lo & ~RW) >>> 0;
        if (ro !== lo) {
          mem.write32(src + k * 8, ro);
          downgraded++;
        }
        mem.write32(dst + k * 8, ro);
        mem.write32(dst + k * 8 + 4, hi);
        copies++;
      }
    }
    forkCopies += copies;
    return downgraded;
  }
}

/** Running count of leaves copied by forks (a module counter: tells a subtree with copies from one without). */
let forkCopies = 0;
