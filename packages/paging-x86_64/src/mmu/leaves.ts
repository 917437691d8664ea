/**
 * Read-only iteration over the present leaves of a 4-level page table in simulated memory (for the
 * mapper, the dumps and tests). Allocates one object per leaf: never on an access path.
 *
 * @module
 */
import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSize,
  type PhysAddr,
  type VirtAddr,
} from '@vmkit/addr';
import type { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW, PTE_US } from '../pte.js';

/** Bytes covered by one entry at each level (index = level: 1 = PT … 4 = PML4). */
export const LEVEL_SPAN = [0, PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G, 0x80_0000_0000] as const;

const TWO32 = 0x1_0000_0000;

/** One present leaf and what the walk to it accumulated. */
export interface LeafVisit {
  /** First virtual address of the leaf. */
  va: VirtAddr;
  /** Physical base of the leaf (the PAT bit of a large leaf is not part of it). */
  pa: PhysAddr;
  size: PageSize;
  /** 1 (PTE), 2 (PDE, 2 MiB) or 3 (PDPTE, 1 GiB). */
  level: 1 | 2 | 3;
  /** The leaf entry's words. */
  lo: number;
  hi: number;
  /** Physical address of the leaf entry. */
  entryAddr: PhysAddr;
  /** R/W = 1 in every entry on the way (leaf included). */
  writable: boolean;
  /** U/S = 1 in every entry on the way. */
  user: boolean;
  /**
   * XD = 0 in every entry on the way (fetches allowed with EFER.NXE = 1; with NXE = 0 everything is
   * executable, which `Mmu.probe` accounts for). The same word as `probe()`'s and `PageFlags`'.
   */
  executable: boolean;
  /** @deprecated use `!executable` (XD = 1 in some entry on the way); kept for compatibility. */
  xd: boolean;
  /** The leaf's A flag. */
  accessed: boolean;
  /** The leaf's D flag. */
  dirty: boolean;
  /** The leaf's G flag (global when CR4.PGE = 1; `probe()` says `global` only with PGE). */
  global: boolean;
  /** The leaf's PWT flag. */
  writeThrough: boolean;
  /** The leaf's PCD flag. */
  cacheDisable: boolean;
  /** The leaf's protection key (bits 62..59). */
  protectionKey: number;
}

/** Reads the two words of the entry at `ea`, or `undefined` when it lies outside memory. */
export function readEntry(mem: PhysicalMemory, ea: number): [number, number] | undefined {
  if (ea + 8 > mem.size) return undefined;
  return [mem.read32(ea), mem.read32(ea + 4)];
}

/** True when an entry at `level` with low word `lo` maps a page (rather than pointing to a table). */
export function isLeafEntry(level: number, lo: number): boolean {
  return level === 1 || ((level === 2 || level === 3) && (lo & PTE_PS) !== 0);
}

/** The physical address an entry points to: a table, or the base of a leaf of its level. */
export function entryTarget(level: number, lo: number, hi: number): number {
  const mask =
    level === 3 && (lo & PTE_PS) !== 0
      ? 0xc0000000
      : level === 2 && (lo & PTE_PS) !== 0
        ? 0xffe00000
        : 0xfffff000;
  return (hi & 0xfffff) * TWO32 + ((lo & mask) >>> 0);
}

/**
 * Calls `fn` for every present leaf reachable from the PML4 at `root`, in ascending virtual order
 * (`va` is a `VirtAddr`: the higher half comes last, print it with `formatVirtAddr`). Each leaf has its
 * raw words (`lo`, `hi`), the rights accumulated over the walk (`writable`, `user`, `executable`) and
 * the leaf's own flags decoded (`accessed`, `dirty`, `global`, `writeThrough`, `cacheDisable`,
 * `protectionKey`): the vocabulary of `Mmu.probe` and `PageFlags`.
 * Entries outside memory read as not present; reserved bits are not checked (this is a software view:
 * use `Mmu.probe` for the architectural one). A PS bit in a PML4E is ignored (treated as a pointer).
 */
export function forEachLeaf(mem: PhysicalMemory, root: number, fn: (leaf: LeafVisit) => void): void {
  visit(mem, root, 4, 0, PTE_RW | PTE_US, 0, fn);
}

/** Every present leaf reachable from `root` (see {@link forEachLeaf}). */
export function collectLeaves(mem: PhysicalMemory, root: number): LeafVisit[] {
  const out: LeafVisit[] = [];
  forEachLeaf(mem, root, (l) => out.push(l));
  return out;
}

function visit(
  mem: PhysicalMemory,
  table: number,
  level: number,
  base: number,
  acc: number,
  xd: number,
  fn: (leaf: LeafVisit) => void,
): void {
  const span = LEVEL_SPAN[level as 1]!;
  for (let i = 0; i < 512; i++) {
    const ea = table + i * 8;
    const e = readEntry(mem, ea);
    if (e === undefined) return;
    const [lo, hi] = e;
    if ((lo & PTE_P) === 0) continue;
    const va = base + i * span;
    const a = acc & lo;
    const x = xd | (hi >>> 31);
    if (isLeafEntry(level, lo)) {
      fn({
        va: va as VirtAddr,
        pa: entryTarget(level, lo, hi) as PhysAddr,
        size: span as PageSize,
        level: level as 1 | 2 | 3,
        lo,
        hi,
        entryAddr: ea as PhysAddr,
        writable: (a & PTE_RW) !== 0,
        user: (a & PTE_US) !== 0,
        executable: x === 0,
        xd: x !== 0,
        accessed: (lo & PTE_A) !== 0,
        dirty: (lo & PTE_D) !== 0,
        global: (lo & PTE_G) !== 0,
        writeThrough: (lo & PTE_PWT) !== 0,
        cacheDisable: (lo & PTE_PCD) !== 0,
        protectionKey: (hi >>> 27) & 15,
      });
    } else {
      visit(mem, entryTarget(level, lo, hi), level - 1, va, a, x, fn);
    }
  }
}
