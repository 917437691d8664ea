import type { VirtAddr } from '@vmkit/addr';
import { BitmapFrameAllocator, CR4_PAE, CR4_PCIDE, CR4_PGE, Mmu, PhysicalMemory } from '@vmkit/paging-x86_64';
import { AddressSpaceAllocator } from '../src/address-spaces.js';
import { VirtualMemoryMap } from '../src/map.js';
import type { MemoryMappingOps } from '../src/owner.js';
import { VirtualMemoryPermission as P } from '../src/permissions.js';

/** The seed tests' `0o644` (a Unix mode, not a Scarlet permission set) becomes Read|Write|User here. */
export const RWU = P.Read | P.Write | P.User;
/** The seed tests' `0o755` becomes Read|Write|Execute|User. */
export const RWXU = P.Read | P.Write | P.Execute | P.User;

/**
 * `VirtualMemoryMap::new(pmarea, vmarea, permissions, is_shared, owner)` of the seed's tests, with the
 * seed's inclusive `end`s translated to half-open ranges (`end + 1`).
 */
export function seedMap(
  pm: { start: number; end: number } | undefined,
  vm: { start: number; end: number },
  permissions: number,
  isShared = false,
  owner?: MemoryMappingOps,
): VirtualMemoryMap {
  return new VirtualMemoryMap({
    pmarea: pm === undefined ? undefined : { start: pm.start, end: pm.end + 1 },
    vmarea: { start: vm.start, end: vm.end + 1 },
    permissions,
    isShared,
    owner,
  });
}

/** A half-open map `[start, start + size)` backed by `[pa, pa + size)` (or unbacked). */
export function halfOpen(
  start: number,
  size: number,
  pa: number | undefined,
  permissions = RWU,
  owner?: MemoryMappingOps,
): VirtualMemoryMap {
  return new VirtualMemoryMap({
    vmarea: { start, end: start + size },
    pmarea: pa === undefined ? undefined : { start: pa, end: pa + size },
    permissions,
    owner,
  });
}

/** `megs` MiB of RAM, frames from 1 MiB, an MMU with PCIDs on, an ASID registry over them. */
export function machine(megs = 32): {
  mem: PhysicalMemory;
  frames: BitmapFrameAllocator;
  spaces: AddressSpaceAllocator;
} {
  const mem = new PhysicalMemory(megs << 20);
  const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
  const mmu = new Mmu(mem, { cr4: CR4_PAE | CR4_PGE | CR4_PCIDE, tlbSize: 256 }); // a small TLB: cheap to build
  const spaces = new AddressSpaceAllocator({ mem, frames, mmu });
  return { mem, frames, spaces };
}

export const va = (n: number): VirtAddr => n as VirtAddr;
