/**
 * `@vmkit/vmm-manager`: Scarlet OS's per-address-space `VirtualMemoryManager` over x86-64 page tables —
 * an ASID (the TLB's PCID), memory maps held in `@vmkit/memory-set`, a last-hit search cache, lazy
 * mapping from the fault handler, fixed maps, free-area search, coalescing and statistics.
 *
 * @packageDocumentation
 */
export {
  AddressSpaceAllocator,
  type AddressSpaceAllocatorOptions,
  checkAsid,
  MAX_ASID,
} from './address-spaces.js';
export { isVmmError, SeedMessage, VmmError, VmmErrorCode } from './errors.js';
export {
  DEFAULT_MMAP_BASE,
  DEFAULT_MMAP_LIMIT,
  type MemoryStats,
  VirtualMemoryManager,
  type VirtualMemoryManagerOptions,
  type VmmLayout,
} from './manager.js';
export { type RangeLike, VirtualMemoryMap, type VirtualMemoryMapInit } from './map.js';
export {
  type AccessKind,
  AccessOp,
  AnonymousPageOwner,
  accessFromFault,
  BaseMappingOwner,
  type MemoryMappingInfo,
  type MemoryMappingOps,
  ownerDefaults,
  ResolveFaultError,
  type ResolveFaultResult,
} from './owner.js';
export {
  ACCESS_MASK,
  checkPermissions,
  formatPermissions,
  PERMISSION_MASK,
  pageFlagsOf,
  permissionContainedIn,
  VirtualMemoryPermission,
} from './permissions.js';
export { MemmapView, MutableMemmapView } from './view.js';
