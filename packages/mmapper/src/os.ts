/**
 * The operating-system interface a mapper calls: MMTk's five memory functions (`dzmmap`,
 * `dzmmap_noreplace`, `mmap_noreserve`, `mprotect`, `munprotect` of `util::memory`), injected so that the
 * core needs nothing but `@vmkit/addr`.
 *
 * @module
 */
import type { VirtAddr } from '@vmkit/addr';
import type { MmapAnnotation, MmapProtection, MmapStrategy } from './strategy.js';

/**
 * A failed OS call: a POSIX error name (`'EEXIST'`, `'ENOMEM'`, `'EINVAL'`, …) and optional text. The
 * mapper throws it as an `E_OS` {@link MmapperError} whose `details.errno` is `errno`.
 */
export interface OsError {
  readonly errno: string;
  readonly message?: string;
}

/** What an OS call returns: nothing (`undefined`) on success, an {@link OsError} on failure. */
export type OsResult = OsError | undefined;

/**
 * The operating system as a mapper sees it. **Synchronous**: each method returns when the call is done.
 *
 * The mapper calls it with the transition lock held, one call at a time per mapper state (also across
 * worker threads sharing the state), always with `start` a multiple of 4 MiB (a chunk) and `bytes` a
 * positive multiple of 4 MiB, the range inside one half of the address space. Each call must be
 * all-or-nothing: on failure, return an {@link OsError} having changed nothing. A method that throws is
 * treated like one that failed (the mapper leaves that chunk's state alone and lets the error through).
 * An implementation must not call back into a state-changing method of the same mapper (that is
 * refused with `E_REENTRANT`); `isMappedAddress` is fine.
 *
 * What each call does (Linux terms, as MMTk issues them):
 */
export interface MmapOs {
  /**
   * Demand-zero map, **replacing** whatever is mapped there (`mmap(MAP_FIXED | MAP_ANON | MAP_PRIVATE)`
   * with `strategy.prot`, then `madvise(MADV_HUGEPAGE)` when `strategy.hugePage` asks, and the range
   * named after `anno`). The mapper uses it to turn a quarantined reservation into usable memory.
   */
  dzmmap(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult;
  /**
   * Demand-zero map **without replacing** (`MAP_FIXED_NOREPLACE`): fails with `EEXIST` if any page of
   * the range is mapped. Used for a chunk the mapper has never touched.
   */
  dzmmapNoreplace(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult;
  /**
   * Reserve address space: map with no access (`PROT_NONE`, `strategy.prot` is ignored) and no swap
   * reservation (`MAP_NORESERVE | MAP_FIXED_NOREPLACE`); fails with `EEXIST` over an existing mapping.
   */
  mmapNoreserve(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult;
  /** Forbid all access to mapped memory (`mprotect(PROT_NONE)`), keeping its contents. */
  mprotect(start: VirtAddr, bytes: number): OsResult;
  /** Allow access again (`mprotect(prot)`). */
  munprotect(start: VirtAddr, bytes: number, prot: MmapProtection): OsResult;
}

/** The name of one of the {@link MmapOs} methods. */
export type MmapOsCallName = 'dzmmap' | 'dzmmapNoreplace' | 'mmapNoreserve' | 'mprotect' | 'munprotect';
