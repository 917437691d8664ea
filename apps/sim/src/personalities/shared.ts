/**
 * Pieces every personality needs the same way: its machine-wide state (one per kernel) and the kernel
 * half of a fresh page table.
 *
 * @module
 */
import type { PhysAddr } from '@vmkit/addr';
import type { PhysicalMemory } from '@vmkit/paging-x86_64';
import type { SpaceContext } from '../personality.js';

/** The machine-wide state kept under `key` in the kernel's shared map, made by `make` at first use. */
export function machineState<M>(ctx: SpaceContext, key: string, make: (ctx: SpaceContext) => M): M {
  let m = ctx.shared.get(key) as M | undefined;
  if (m === undefined) {
    m = make(ctx);
    ctx.shared.set(key, m);
  }
  return m;
}

/** Shares the kernel half with the new PML4 at `root`: copies the kernel's non-empty entries 256..511. */
export function shareKernelHalf(ctx: SpaceContext, root: PhysAddr): void {
  const mem = ctx.mem;
  for (let i = 256; i < 512; i++) {
    const lo = mem.read32(ctx.kernelRoot + i * 8);
    const hi = mem.read32(ctx.kernelRoot + i * 8 + 4);
    if (lo !== 0 || hi !== 0) {
      mem.write32(root + i * 8, lo);
      mem.write32(root + i * 8 + 4, hi);
    }
  }
}

/** Clears entries 256..511 of the PML4 at `root`, so that freeing the table leaves the kernel's tables alone. */
export function dropKernelHalf(mem: PhysicalMemory, root: PhysAddr): void {
  for (let i = 256; i < 512; i++) {
    mem.write32(root + i * 8, 0);
    mem.write32(root + i * 8 + 4, 0);
  }
}
