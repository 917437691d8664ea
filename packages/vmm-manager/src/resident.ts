import type { VirtAddr } from '@vmkit/addr';
import { type PageMapper, PTE_P, PTE_PS, pteAddr } from '@vmkit/paging-x86_64';

/** Bytes a PML4 / PDPT / PD / PT entry spans, by level (4..1). */
const SPAN = [0, 0x1000, 0x20_0000, 0x4000_0000, 0x80_0000_0000];

/**
 * The present leaves (4 KiB, 2 MiB or 1 GiB) that intersect `[start, end)`, in address order, as
 * pairs `first address, size` in one flat array: a read-only walk of the architectural tables under `root` that
 * descends only into present entries and reads only the entries inside the range. Its cost is the
 * tables that hold something in the range, not the size of the range: a terabyte with ten resident
 * pages reads the few tables those pages use.
 */
export function presentLeaves(root: PageMapper, start: number, end: number): number[] {
  const out: number[] = []; // pairs: first address, size
  if (end > start) walk(root, root.root, 4, 0, start, end, out);
  return out;
}

function walk(
  pt: PageMapper,
  table: number,
  level: number,
  base: number,
  start: number,
  end: number,
  out: number[],
): void {
  const mem = pt.mem;
  const span = SPAN[level]!;
  const first = start > base ? Math.floor((start - base) / span) : 0;
  const last = Math.min(511, Math.floor((end - 1 - base) / span));
  for (let i = first; i <= last; i++) {
    const ea = table + i * 8;
    const lo = mem.read32(ea);
    if ((lo & PTE_P) === 0) continue;
    const va = base + i * span;
    if (level === 1 || (level < 4 && (lo & PTE_PS) !== 0)) {
      out.push(va, span);
      continue;
    }
    walk(pt, pteAddr(lo, mem.read32(ea + 4)), level - 1, va, start, end, out);
  }
}

/**
 * Removes the resident pages of `[start, end)` (page-aligned) from the page table, leaf by leaf, freeing
 * the tables that become empty (the mapper's `flushHook` invalidates each page's TLB entry). Leaves that
 * reach outside the range are unmapped through the mapper's range operation, which splits them.
 */
export function dropResident(root: PageMapper, start: number, end: number): void {
  const leaves = presentLeaves(root, start, end);
  for (let k = 0; k < leaves.length; k += 2) {
    const va = leaves[k]!;
    const size = leaves[k + 1]!;
    if (va >= start && va + size <= end) root.unmap(va as VirtAddr);
    else {
      const s = Math.max(va, start);
      root.unmapRange(s as VirtAddr, Math.min(end, va + size) - s);
    }
  }
}
