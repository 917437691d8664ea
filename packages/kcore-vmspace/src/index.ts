/**
 * `@vmkit/kcore-vmspace`: seed 001's `kcore::vm::VmSpace` — an async address space of channel-backed
 * segments with lazy faults, a shared page cache, fork with copy-on-write, over x86-64 page tables.
 *
 * @packageDocumentation
 */
export {
  type Chan,
  type ChanDevice,
  type Clock,
  isChan,
  ManualClock,
  MemoryFile,
  openChan,
  SlowDevice,
  type SlowDeviceOptions,
  ZeroDevice,
} from './chan.js';
export {
  isKcoreError,
  KcoreError,
  KcoreErrorCode,
  type KcoreErrorKind,
  KcoreErrorKinds,
} from './errors.js';
export type { PageCache, PageCacheStats } from './page-cache.js';
export { SW_PARKED, SW_PRIVATE } from './page-table.js';
export {
  formatProt,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_RW,
  PROT_WRITE,
  type Prot,
} from './segment.js';
export {
  type FaultAccess,
  type ResidentPage,
  type SegmentInfo,
  type TlbShootdown,
  USER_TOP,
  VmContext,
  type VmContextOptions,
  VmSpace,
} from './vm-space.js';
