/**
 * `@vmkit/mmapper/memory-set`: the OS interface over a `@vmkit/memory-set` `MemorySet` and real x86-64
 * page tables (`@vmkit/paging-x86_64`'s `PageMapper`), for using a mapper on its own, without a kernel.
 *
 * Each mapping is a memory area whose flags record the protection, the no-reserve bit, the huge-page
 * policy and the annotation's display string. Memory is demand-zero: a page gets a zero-filled frame on
 * its first touch ({@link MemorySetOs.touch}). `mprotect(PROT_NONE)` takes a range's present pages out
 * of the page table but keeps their frames ("parked"), so `munprotect` puts the same frames, and the
 * same contents, back. A separate entry point, so the core never loads memory-set or the paging package
 * (both are optional peer dependencies).
 *
 * @packageDocumentation
 */
import { AddrRange, PAGE_SIZE_4K, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import { type MappingBackend, MemoryArea, MemorySet } from '@vmkit/memory-set';
import type { PageFlags, PageMapper } from '@vmkit/paging-x86_64';
import type { MmapOs, OsResult } from './os.js';
import { BAD_PAGE_RANGE, isPageRange, osError } from './os-result.js';
import {
  formatMmapAnnotation,
  type HugePageSupport,
  type MmapAnnotation,
  type MmapProtection,
  type MmapStrategy,
} from './strategy.js';

/** The flags of a mapping's memory area. Frozen. */
export interface MmapAreaFlags {
  readonly prot: MmapProtection;
  /** Mapped with `MAP_NORESERVE` (a quarantine reservation). */
  readonly noReserve: boolean;
  readonly hugePage: HugePageSupport;
  /** The annotation's display string, e.g. `mmtk:space:immix`. */
  readonly annotation: string;
}

/** Options of {@link MemorySetOs}. */
export interface MemorySetOsOptions {
  /** Map pages user-accessible (U/S = 1, default `true`: a managed heap lives in user space). */
  readonly user?: boolean;
}

/** What all areas share: the parked frames (by page address) and the page flags of a protection. */
interface Frames {
  /** Pages made inaccessible by `mprotect`: not in the page table, frame and contents kept. */
  readonly parked: Map<number, PhysAddr>;
  readonly pageFlags: (prot: MmapProtection) => PageFlags;
}

/**
 * The backend of a mapping area: demand-zero pages, parked while the area is `NoAccess`. It follows the
 * set's transactional protocol as memory-set's `AllocBackend` does: `unmap` moves frames to this
 * backend's `pending`, `map` takes them back (a rollback), `settle` frees what is left. A new area gets a
 * new backend, so a replacing map never sees the frames it replaced. Position-independent.
 */
class MmapBackend implements MappingBackend<MmapAreaFlags, PageMapper, VirtAddr> {
  readonly pageSize = PAGE_SIZE_4K;
  /** Pages unmapped by the current set operation: freed at `settle`, or put back if it rolls back. */
  private readonly pending = new Map<number, PhysAddr>();
  constructor(private readonly f: Frames) {}

  map(start: VirtAddr, size: number, flags: MmapAreaFlags, pt: PageMapper): boolean {
    const end = start + size;
    for (const [va, pa] of [...this.pending]) {
      if (va < start || va >= end) continue;
      this.pending.delete(va);
      if (flags.prot === 'NoAccess') this.f.parked.set(va, pa);
      else pt.map(va as VirtAddr, pa, PAGE_SIZE_4K, this.f.pageFlags(flags.prot));
    }
    return true;
  }

  unmap(start: VirtAddr, size: number, pt: PageMapper): boolean {
    for (const leaf of pt.unmapRange(start, size)) this.pending.set(leaf.va, leaf.pa);
    const end = start + size;
    for (const [va, pa] of [...this.f.parked]) {
      if (va < start || va >= end) continue;
      this.f.parked.delete(va);
      this.pending.set(va, pa);
    }
    return true;
  }

  protect(start: VirtAddr, size: number, flags: MmapAreaFlags, pt: PageMapper): boolean {
    if (flags.prot === 'NoAccess') {
      for (const leaf of pt.unmapRange(start, size)) this.f.parked.set(leaf.va, leaf.pa);
      return true;
    }
    const pf = this.f.pageFlags(flags.prot);
    const end = start + size;
    for (const [va, pa] of [...this.f.parked]) {
      if (va < start || va >= end) continue;
      this.f.parked.delete(va);
      pt.map(va as VirtAddr, pa, PAGE_SIZE_4K, pf);
    }
    pt.protectRange(start, size, pf);
    return true;
  }

  split(): MmapBackend {
    return new MmapBackend(this.f);
  }
  shrinkLeft(): void {}
  shrinkRight(): void {}
  clone(): MmapBackend {
    return new MmapBackend(this.f);
  }

  settle(pt: PageMapper): void {
    for (const pa of this.pending.values()) pt.frames.decRef(pa);
    this.pending.clear();
  }
}

/**
 * An {@link MmapOs} over a `MemorySet` and a `PageMapper`: every call changes the areas and the page
 * table transactionally (a failing call changes nothing), and answers as Linux does (`EEXIST` for a
 * no-replace map over a mapping, `ENOMEM` for `mprotect` over a hole or when frames or page tables run
 * out).
 */
export class MemorySetOs implements MmapOs {
  /** The areas, one per mapping piece, with {@link MmapAreaFlags}. */
  readonly set = new MemorySet<MmapAreaFlags, PageMapper, VirtAddr, MmapBackend>();
  /** The page table (and, through it, the frame allocator). */
  readonly pt: PageMapper;
  private readonly frames: Frames;

  constructor(pt: PageMapper, options: MemorySetOsOptions = {}) {
    this.pt = pt;
    const user = options.user ?? true;
    this.frames = {
      parked: new Map(),
      pageFlags: (prot) => ({ writable: true, user, executable: prot === 'ReadWriteExec' }),
    };
  }

  dzmmap(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.mapArea(start, bytes, strategy.prot, false, strategy, anno, true);
  }

  dzmmapNoreplace(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.mapArea(start, bytes, strategy.prot, false, strategy, anno, false);
  }

  mmapNoreserve(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.mapArea(start, bytes, 'NoAccess', true, strategy, anno, false);
  }

  mprotect(start: VirtAddr, bytes: number): OsResult {
    return this.reprotect(start, bytes, 'NoAccess');
  }

  munprotect(start: VirtAddr, bytes: number, prot: MmapProtection): OsResult {
    return this.reprotect(start, bytes, prot);
  }

  /**
   * A touch of `va` (a demand-zero page fault): maps a zero-filled frame for its page if the mapping
   * allows access and the page is not present yet.
   *
   * @returns `'mapped'` (a frame was added), `'present'` (nothing to do), `'SEGV'` (no mapping there),
   *   `'EACCES'` (the mapping is NoAccess: quarantined or protected)
   */
  touch(va: VirtAddr): 'mapped' | 'present' | 'SEGV' | 'EACCES' {
    const area = this.set.find(va);
    if (area === undefined) return 'SEGV';
    if (area.flags.prot === 'NoAccess') return 'EACCES';
    const page = (Math.floor(va / PAGE_SIZE_4K) * PAGE_SIZE_4K) as VirtAddr;
    if (this.pt.translate(page) !== undefined) return 'present';
    const pa = this.pt.frames.allocFrame();
    try {
      this.pt.map(page, pa, PAGE_SIZE_4K, this.frames.pageFlags(area.flags.prot));
    } catch (e) {
      this.pt.frames.decRef(pa);
      throw e;
    }
    return 'mapped';
  }

  /** Frames held by pages made inaccessible by `mprotect` (kept for `munprotect`). */
  get parkedPages(): number {
    return this.frames.parked.size;
  }

  private mapArea(
    start: VirtAddr,
    bytes: number,
    prot: MmapProtection,
    noReserve: boolean,
    strategy: MmapStrategy,
    anno: MmapAnnotation,
    replace: boolean,
  ): OsResult {
    if (!isPageRange(start, bytes, true)) return osError('EINVAL', BAD_PAGE_RANGE);
    if (!replace && this.set.overlaps(AddrRange.of(start, (start + bytes) as VirtAddr))) {
      return osError('EEXIST', 'the range overlaps a mapping');
    }
    const flags: MmapAreaFlags = Object.freeze({
      prot,
      noReserve,
      hugePage: strategy.hugePage,
      annotation: formatMmapAnnotation(anno),
    });
    return this.guard(() =>
      this.set.map(new MemoryArea(start, bytes, flags, new MmapBackend(this.frames)), this.pt, replace),
    );
  }

  private reprotect(start: VirtAddr, bytes: number, prot: MmapProtection): OsResult {
    if (!isPageRange(start, bytes, true)) return osError('EINVAL', BAD_PAGE_RANGE);
    let at: number = start;
    for (const a of this.set.areasIn(start, bytes)) {
      if (a.start > at) break;
      at = a.end;
    }
    if (at < start + bytes) return osError('ENOMEM', 'part of the range is not mapped');
    return this.guard(() =>
      this.set.protect(
        start,
        bytes,
        (old) => (old.prot === prot ? undefined : Object.freeze({ ...old, prot })),
        this.pt,
      ),
    );
  }

  /** Runs a set operation; an error (frames or tables exhausted) becomes ENOMEM, the set unchanged. */
  private guard(op: () => unknown): OsResult {
    try {
      op();
      return undefined;
    } catch (e) {
      const code =
        typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
      return osError(code === 'E_NOMEM' ? 'ENOMEM' : 'EINVAL', e instanceof Error ? e.message : String(e));
    }
  }
}
