/**
 * `VmSpace`: seed 001's `kcore::vm::VmSpace`, an address space of channel-backed segments filled
 * lazily by an async fault handler, shared or private, forked with copy-on-write, over x86-64 page
 * tables in simulated physical memory.
 *
 * @module
 */
import { formatVirtAddr, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import { MemoryArea, MemorySet } from '@vmkit/memory-set';
import { type FrameAllocator, PageMapper, type PhysicalMemory } from '@vmkit/paging-x86_64';
import { type Chan, isChan } from './chan.js';
import { describe, KcoreError, kfail } from './errors.js';
import { Mutex } from './mutex.js';
import { asOutOfMemory, frameView, PageCache, type PageCacheStats, readPage } from './page-cache.js';
import {
  entryFrame,
  leafHi,
  leafLo,
  PageTables,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_WRITABLE,
  PTE_XD,
  SW_PARKED,
  SW_PRIVATE,
} from './page-table.js';
import {
  formatProt,
  PROT_EXEC,
  PROT_NONE,
  PROT_RW,
  PROT_WRITE,
  type Prot,
  SegmentBackend,
  type SegmentHost,
} from './segment.js';

/** `2^47`: user mappings lie in `[0, USER_TOP)`, the lower half of the canonical space. */
export const USER_TOP = 0x8000_0000_0000;
const PAGE = 0x1000;
const EXACT = 2 ** 53;
/** `2^48`: the end of the (48-bit) virtual address space. */
const VIRT_TOP = 2 ** 48;

/** What a fault (or a `read`/`write`) needs: the kind of access that faulted. */
export type FaultAccess = 'read' | 'write' | 'execute';

/** TLB maintenance the space asks for when it changes or removes entries the CPU may have cached. */
export interface TlbShootdown {
  /** One page's translation changed or went (INVLPG). */
  invalidatePage(va: VirtAddr): void;
  /** Many translations changed (fork, free): flush the space's non-global entries. */
  invalidateAll(): void;
}

/** One segment as {@link VmSpace.segments} lists it (for `/proc/PID/maps`). */
export interface SegmentInfo {
  /** First byte. */
  start: VirtAddr;
  /** One past the last byte. */
  end: VirtAddr;
  /** Protection (`PROT_*` bits). */
  prot: Prot;
  /** True for a shared mapping (writes reach the channel), false for a private one (copy-on-write). */
  shared: boolean;
  /** Byte offset in the channel of `start`. */
  offset: number;
  /** The segment's channel handle (do not close it: the space owns it). */
  chan: Chan;
}

/** One resident page as {@link VmSpace.residentPageList} reports it. */
export interface ResidentPage {
  /** First byte of the page. */
  va: VirtAddr;
  /** The physical frame. */
  frame: PhysAddr;
  /** A page of a channel's page cache (a shared segment), else a private page. */
  shared: boolean;
  /** R/W is set (a private page shared copy-on-write is not). */
  writable: boolean;
  /** D is set (written since mapped). */
  dirty: boolean;
  /** Resident in a `PROT_NONE` segment: kept, but not present to the CPU. */
  parked: boolean;
}

/** The memory every space of a context shares: physical memory, the frame allocator, the page cache. */
export interface VmContextOptions {
  /** Simulated RAM: page tables, cached and private pages live here. */
  mem: PhysicalMemory;
  /** Frames and their reference counts (e.g. `BitmapFrameAllocator`). */
  frames: FrameAllocator;
}

/**
 * What the address spaces of one machine share: physical memory, the frame allocator and the page
 * cache (one physical page per channel page across all spaces of the context).
 */
export class VmContext {
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly cache: PageCache;

  /**
   * @throws KcoreError `BadRequest` unless `options` is `{ mem, frames }` with a `PhysicalMemory` (its
   *   `read32`, `write32`, `copy` and `u8`) and a `FrameAllocator` (`allocFrame`, `incRef`, `decRef`,
   *   `refCount`)
   */
  constructor(options: VmContextOptions) {
    if (typeof options !== 'object' || options === null)
      kfail('BadRequest', 'vm context', `options ${describe(options)} is not a { mem, frames } object`);
    const mem = options.mem as unknown as Record<string, unknown> | null | undefined;
    const frames = options.frames as unknown as Record<string, unknown> | null | undefined;
    if (
      typeof mem !== 'object' ||
      mem === null ||
      typeof mem.read32 !== 'function' ||
      typeof mem.write32 !== 'function' ||
      typeof mem.copy !== 'function' ||
      !Array.isArray(mem.u8)
    )
      kfail('BadRequest', 'vm context', `mem ${describe(mem)} is not a PhysicalMemory`);
    if (
      typeof frames !== 'object' ||
      frames === null ||
      typeof frames.allocFrame !== 'function' ||
      typeof frames.incRef !== 'function' ||
      typeof frames.decRef !== 'function' ||
      typeof frames.refCount !== 'function'
    )
      kfail('BadRequest', 'vm context', `frames ${describe(frames)} is not a FrameAllocator`);
    this.mem = options.mem;
    this.frames = options.frames;
    this.cache = new PageCache(options.mem, options.frames);
  }

  /** Counts of the page cache's loads and write-backs. */
  cacheStats(): PageCacheStats {
    return this.cache.stats();
  }
}

type Seg = MemoryArea<Prot, SegmentHost, VirtAddr, SegmentBackend>;

/** A shared page leaving a space, to give back to the cache after the synchronous part. */
interface Leaving {
  chan: Chan;
  pgIdx: number;
  frame: number;
  dirty: boolean;
}

/**
 * An address space (seed 001's `VmSpace`). Every async operation on one space runs alone, in call
 * order (a FIFO mutex per space); operations on different spaces interleave freely, so a fault
 * waiting on a slow channel never blocks another space.
 *
 * Errors are {@link KcoreError}s of the seed's kinds; bad input changes nothing.
 */
export class VmSpace {
  /** The shared context. */
  readonly ctx: VmContext;
  /** A `PageMapper` over this space's tables (translate, dumps); its root is {@link root}. */
  readonly mapper: PageMapper;
  private shootdown: TlbShootdown | undefined;
  private readonly tables: PageTables;
  private readonly set = new MemorySet<Prot, SegmentHost, VirtAddr, SegmentBackend>();
  private readonly lock = new Mutex();
  private isFreed = false;
  /** What the segments' backends reach (kept off the public surface). */
  private readonly host: SegmentHost = {
    protectResident: (start, size, prot, shared) => this.protectResident(start, size, prot, shared),
  };

  private constructor(ctx: VmContext, mapper: PageMapper) {
    this.ctx = ctx;
    this.mapper = mapper;
    this.tables = new PageTables(ctx.mem, ctx.frames, mapper.root);
  }

  /**
   * Creates an empty address space (a zeroed PML4 from the context's allocator).
   *
   * @throws KcoreError `BadRequest` if `ctx` is not a {@link VmContext}; `OutOfMemory` when no frame is
   *   free for the root table
   */
  static create(ctx: VmContext): VmSpace {
    if (!(ctx instanceof VmContext))
      kfail('BadRequest', 'vm space', `context ${describe(ctx)} is not a VmContext`);
    let mapper: PageMapper;
    try {
      mapper = new PageMapper(ctx.mem, ctx.frames);
    } catch (e) {
      return asOutOfMemory(e, 'the root page table');
    }
    return new VmSpace(ctx, mapper);
  }

  /**
   * Called when entries the CPU may cache change: set it to your MMU's INVLPG / flush (or `undefined`).
   * The callbacks run in the middle of an operation and must not throw.
   *
   * @throws KcoreError `BadRequest` (on set) unless the value is `undefined` or an object with
   *   `invalidatePage` and `invalidateAll` functions
   */
  get tlb(): TlbShootdown | undefined {
    return this.shootdown;
  }

  set tlb(value: TlbShootdown | undefined) {
    if (
      value !== undefined &&
      (typeof value !== 'object' ||
        value === null ||
        typeof value.invalidatePage !== 'function' ||
        typeof value.invalidateAll !== 'function')
    )
      kfail(
        'BadRequest',
        'vm space tlb',
        `${describe(value)} is not undefined or { invalidatePage(va), invalidateAll() }`,
      );
    this.shootdown = value;
  }

  /** Physical address of the PML4: what CR3 holds while this space runs. */
  get root(): PhysAddr {
    return this.mapper.root;
  }

  /** True after {@link free}. */
  get freed(): boolean {
    return this.isFreed;
  }

  /**
   * Throws `Conflict` "mmap segment overlap" when `[start, end)` overlaps a segment (the seed's
   * `check_overlap`). An empty range overlaps nothing. Synchronous: it sees the segments as they are
   * between the space's async operations.
   *
   * @param range `{ start, end }` (an `AddrRange` works): integers with `0 ≤ start ≤ end ≤ 2^48` that do
   *   not cross the canonical hole (`start < 2^47 < end`)
   * @throws KcoreError `BadRequest` "check overlap" for a malformed range (naming the value and the
   *   rule), `Conflict` "mmap segment overlap" on overlap
   */
  checkOverlap(range: { readonly start: number; readonly end: number }): void {
    if (typeof range !== 'object' || range === null)
      kfail('BadRequest', 'check overlap', `range ${describe(range)} is not a { start, end } object`);
    const start: unknown = range.start;
    const end: unknown = range.end;
    for (const [what, v] of [
      ['start', start],
      ['end', end],
    ] as const) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > VIRT_TOP)
        kfail('BadRequest', 'check overlap', `range ${what} ${describe(v)} is not an integer in [0, 2^48]`, {
          [what]: v,
        });
    }
    const s = start as number;
    const e = end as number;
    if (e < s)
      kfail('BadRequest', 'check overlap', `range [${fmt(s)}, ${fmt(e)}) ends before it starts`, {
        start,
        end,
      });
    if (s < USER_TOP && e > USER_TOP)
      kfail(
        'BadRequest',
        'check overlap',
        `range [${fmt(s)}, ${fmt(e)}) crosses the canonical hole at 0x800000000000`,
        { start, end },
      );
    if (s === e || s >= USER_TOP) return; // segments lie in the lower half only
    const hit = this.touching(s, e)[0];
    if (hit !== undefined) {
      kfail(
        'Conflict',
        'mmap segment overlap',
        `[${fmt(s)}, ${fmt(e)}) overlaps the segment [${fmt(hit.start)}, ${fmt(hit.end)})`,
        { start, end },
      );
    }
  }

  /**
   * Creates a segment: `[addr, addr + len)` shows the channel's bytes from `offset` on. Nothing is
   * mapped until a fault. A shared mapping (`anonymous` false) reads and writes the channel's pages
   * through the page cache; a private one (`anonymous` true) starts with the channel's contents and
   * never writes back (changes made to the channel afterwards may or may not be visible).
   *
   * The space keeps its own handle on `chan` (a `dup`); the caller may close its handle.
   *
   * @param addr first byte, a multiple of 4096, below `2^47`
   * @param len bytes, a positive multiple of 4096, `addr + len ≤ 2^47`
   * @param offset byte offset in the channel, a multiple of 4096
   * @param prot extension: `PROT_*` bits (default `PROT_READ | PROT_WRITE`, the seed's only mode)
   * @throws KcoreError `BadRequest` "mmap invalid va range" (not an integer, zero length, past 2^47 or
   *   through the canonical hole), then "mmap va misaligned" (addr, len or offset), "mmap invalid offset"
   *   (offset + len past 2^53), "mmap bad chan" (not a channel, or closed), "mmap bad prot"; `Gone` on a
   *   freed space; `Conflict` "mmap segment overlap". Nothing changes on error.
   */
  mmap(
    addr: number,
    len: number,
    chan: Chan,
    offset: number,
    anonymous: boolean,
    prot: Prot = PROT_RW,
  ): Promise<void> {
    return this.lock.run(async () => {
      checkUint('mmap invalid va range', 'address', addr);
      checkUint('mmap invalid va range', 'length', len);
      checkUint('mmap invalid offset', 'offset', offset);
      if (len === 0)
        kfail('BadRequest', 'mmap invalid va range', `length 0 at ${fmt(addr)} is empty`, { addr, len });
      checkUserRange('mmap invalid va range', addr, len);
      for (const [what, v] of [
        ['address', addr],
        ['length', len],
        ['offset', offset],
      ] as const) {
        if (v % PAGE !== 0)
          kfail('BadRequest', 'mmap va misaligned', `${what} ${fmt(v)} is not a multiple of 4096`, {
            [what]: v,
          });
      }
      if (offset + len >= EXACT)
        kfail('BadRequest', 'mmap invalid offset', `offset ${fmt(offset)} + length ${fmt(len)} passes 2^53`);
      if (!isChan(chan)) kfail('BadRequest', 'mmap bad chan', `${describe(chan)} is not a Chan`);
      if (chan.closed) kfail('BadRequest', 'mmap bad chan', `the handle on ${chan.device.name} is closed`);
      if (typeof anonymous !== 'boolean')
        kfail('BadRequest', 'mmap bad flag', `anonymous ${describe(anonymous)} is not a boolean`);
      checkProt('mmap bad prot', prot);
      this.checkLive();
      this.checkOverlap({ start: addr, end: addr + len });
      const handle = chan.dup();
      this.set.map(
        new MemoryArea(addr as VirtAddr, len, prot, new SegmentBackend(handle, offset, !anonymous)),
        this.host,
        false,
      );
    });
  }

  /**
   * Unmaps every page touching `[addr, addr + len)`: segments inside go (their handle is closed), a
   * segment holding the whole range splits in two, partly covered ones shrink (from the left, the
   * channel offset advances). Gaps in the range are fine. A shared page whose last mapper goes is
   * written back to its channel if it was written. Atomic: it fails before changing anything, or
   * completes.
   *
   * @param addr any byte address; @param len bytes, > 0 (the range is widened to whole pages)
   * @returns true when some dirty shared page could not be written back (error or short write), or
   *   a removed segment's device failed to release: the unmapping is complete either way
   * @throws KcoreError `BadRequest` "mmap invalid va range" (not integers, zero length, past 2^47);
   *   `Gone` on a freed space
   */
  munmap(addr: number, len: number): Promise<boolean> {
    return this.lock.run(async () => {
      checkUint('mmap invalid va range', 'address', addr);
      checkUint('mmap invalid va range', 'length', len);
      if (len === 0)
        kfail('BadRequest', 'mmap invalid va range', `length 0 at ${fmt(addr)} is empty`, { addr, len });
      checkUserRange('mmap invalid va range', addr, len);
      this.checkLive();
      const start = addr - (addr % PAGE);
      const end = Math.ceil((addr + len) / PAGE) * PAGE;
      return this.unmapLocked(start, end);
    });
  }

  /**
   * Extension: changes the protection of `[addr, addr + len)`, splitting segments at the range's
   * edges the way munmap does. Resident pages are re-protected at once (`PROT_NONE` keeps them, not
   * present); a private page stays copy-on-write while it is shared with another space.
   *
   * @throws KcoreError `BadRequest` ("protect invalid va range", "protect va misaligned", "protect bad
   *   prot"), `NotFound` when a page of the range is in no segment, `Gone` on a freed space. Nothing
   *   changes on error.
   */
  protect(addr: number, len: number, prot: Prot): Promise<void> {
    return this.lock.run(async () => {
      checkUint('protect invalid va range', 'address', addr);
      checkUint('protect invalid va range', 'length', len);
      if (len === 0)
        kfail('BadRequest', 'protect invalid va range', `length 0 at ${fmt(addr)} is empty`, { addr, len });
      checkUserRange('protect invalid va range', addr, len);
      if (addr % PAGE !== 0)
        kfail('BadRequest', 'protect va misaligned', `address ${fmt(addr)} is not a multiple of 4096`);
      if (len % PAGE !== 0)
        kfail('BadRequest', 'protect va misaligned', `length ${fmt(len)} is not a multiple of 4096`);
      checkProt('protect bad prot', prot);
      this.checkLive();
      const gap = this.firstGap(addr, addr + len);
      if (gap >= 0)
        kfail(
          'NotFound',
          'protect range not mapped',
          `${fmt(gap)} in [${fmt(addr)}, ${fmt(addr + len)}) is in no segment`,
        );
      this.set.protect(addr as VirtAddr, len, (old) => (old === prot ? undefined : prot), this.host);
    });
  }

  /**
   * Forks the space: the child has the same segments (each with its own channel handle); shared
   * segments stay shared (the child faults into the same cached pages); every private page resident
   * in the parent becomes read-only in both and is copied on the first write in either. The cost is
   * one pass over the parent's present entries. On failure the child is freed and the parent is
   * exactly as it was.
   *
   * @throws KcoreError `OutOfMemory` (no frame for the child's tables), `Gone` on a freed space
   */
  fork(): Promise<VmSpace> {
    return this.lock.run(async () => {
      this.checkLive();
      const child = VmSpace.create(this.ctx);
      const frames = this.ctx.frames;
      const pool: number[] = [];
      try {
        for (const seg of this.set) {
          const b = seg.backend;
          child.set.map(
            new MemoryArea(
              seg.start,
              seg.size,
              seg.flags,
              new SegmentBackend(b.chan.dup(), b.offset, b.shared),
            ),
            child.host,
            false,
          );
        }
        const need = this.tables.countTables();
        for (let i = 0; i < need; i++) pool.push(frames.allocFrame());
      } catch (e) {
        for (const t of pool) frames.decRef(t as PhysAddr);
        await child.freeLocked();
        return asOutOfMemory(e, 'the child page tables');
      }
      const downgraded = this.tables.forkInto(child.tables, pool);
      for (const t of pool) frames.decRef(t as PhysAddr);
      if (downgraded > 0) this.shootdown?.invalidateAll();
      return child;
    });
  }

  /**
   * The page-fault handler at `va` (seed cases): (1) a shared page maps the channel page's one cached
   * physical page (loading it once); (2) a write to a copy-on-write private page: a sole owner just
   * regains write permission, otherwise the page's contents are copied to a new frame; (3) an
   * unfetched private page is read from the channel at its own offset (or copied from the page cache
   * when the channel page is cached there); a short read is an error. Afterwards the page is accessible
   * as `access` asks and, when the segment allows writes and `access` is `'write'` (the default for a
   * writable segment), readable and writable.
   *
   * @param access extension: the faulting access (default: `'write'` in a writable segment, else `'read'`)
   * @throws KcoreError `SegmentFault` when no segment holds `va`; `Forbidden` when the segment's
   *   protection forbids `access`; `OutOfMemory`; `InternalError` (channel error, short read);
   *   `BadRequest` for a `va` that is not a virtual address (an integer in [0, 2^48): a higher-half
   *   address, 2^47 and up, is a `SegmentFault`) or a bad `access`; `Gone` on a freed space. Nothing
   *   changes on error.
   */
  fault(va: number, access?: FaultAccess): Promise<void> {
    return this.lock.run(async () => {
      checkUint('fault', 'address', va);
      if (va >= VIRT_TOP)
        kfail('BadRequest', 'fault', `address ${describe(va)} is not a virtual address (below 2^48)`, { va });
      if (access !== undefined && access !== 'read' && access !== 'write' && access !== 'execute')
        kfail('BadRequest', 'fault', `access ${describe(access)} is not 'read', 'write' or 'execute'`);
      this.checkLive();
      const seg = va < USER_TOP ? this.set.find(va as VirtAddr) : undefined;
      if (seg === undefined) kfail('SegmentFault', '', `no segment holds ${fmt(va)}`, { va });
      const a = access ?? (seg.flags & PROT_WRITE ? 'write' : 'read');
      await this.faultLocked(va - (va % PAGE), seg, a);
    });
  }

  /**
   * Unmaps every segment (writing dirty shared pages back), closes their handles and gives every frame
   * of the space back (its lower-half tables and the root; tables reached through higher-half PML4
   * entries, such as a shared kernel half, are not the space's and are left alone). The space cannot be
   * used afterwards (`Gone`). Freeing twice does nothing.
   *
   * @returns true when some dirty shared page could not be written back (as {@link munmap})
   */
  free(): Promise<boolean> {
    return this.lock.run(() => this.freeLocked());
  }

  /**
   * Reads `[offset, offset + buf.length)` of the space into `buf`, faulting pages in as needed (read
   * faults: copy-on-write pages stay shared). Crosses pages and segments.
   *
   * @throws KcoreError `BadRequest` "vm read" (bad buffer or offset, range past 2^47); `Forbidden` "vm
   *   read" when a byte of the range is in no segment or in a `PROT_NONE` one (checked before anything
   *   is read); a fault's errors (every page is faulted in before any byte moves: on error `buf` is
   *   untouched, though pages faulted in before the failing one stay resident)
   */
  read(buf: Uint8Array, offset: number): Promise<void> {
    return this.lock.run(() => this.copyLocked(buf, offset, false));
  }

  /**
   * Writes `buf` to `[offset, offset + buf.length)` of the space, faulting pages in for writing
   * (breaking copy-on-write). Crosses pages and segments. Written shared pages are dirty (written back
   * when their last mapper goes).
   *
   * @throws KcoreError `BadRequest` "vm write"; `Forbidden` "vm write" when a byte of the range is in no
   *   segment or in one without `PROT_WRITE` (checked before anything is written); a fault's errors
   *   (every page is faulted in first: on error no byte was written)
   */
  write(buf: Uint8Array, offset: number): Promise<void> {
    return this.lock.run(() => this.copyLocked(buf, offset, true));
  }

  /** The segments in address order (a snapshot). */
  segments(): SegmentInfo[] {
    const out: SegmentInfo[] = [];
    for (const s of this.set) {
      out.push({
        start: s.start,
        end: s.end,
        prot: s.flags,
        shared: s.backend.shared,
        offset: s.backend.offset,
        chan: s.backend.chan,
      });
    }
    return out;
  }

  /**
   * The segments as Linux prints `/proc/PID/maps`: `start-end perms offset name`, e.g.
   * `00400000-00402000 r-xp 00000000 memfile(8192)` (`p` private, `s` shared).
   */
  formatMaps(): string {
    return this.segments()
      .map(
        (s) =>
          `${hex8(s.start)}-${hex8(s.end)} ${formatProt(s.prot)}${s.shared ? 's' : 'p'} ${hex8(s.offset)} ${s.chan.device.name}`,
      )
      .join('\n');
  }

  /**
   * Every resident page, ascending (one object per page: for inspection, `/proc`-style reports and
   * tests, never a hot path). `parked`: resident in a `PROT_NONE` segment (not present to the CPU).
   */
  residentPageList(): ResidentPage[] {
    const out: ResidentPage[] = [];
    if (this.isFreed) return out;
    this.tables.forEachLeaf(0, USER_TOP, (va, lo, hi) => {
      out.push({
        va: va as VirtAddr,
        frame: entryFrame(lo, hi) as PhysAddr,
        shared: (hi & SW_PRIVATE) === 0,
        writable: (lo & PTE_WRITABLE) !== 0,
        dirty: (lo & PTE_DIRTY) !== 0,
        parked: (hi & SW_PARKED) !== 0,
      });
    });
    return out;
  }

  /** Page-table frames the space holds besides its root (walks the upper levels). */
  tableFrames(): number {
    return this.isFreed ? 0 : this.tables.countTables();
  }

  /** Number of resident pages (occupied leaf entries; walks the tables). */
  residentPages(): number {
    return this.isFreed ? 0 : this.tables.countLeaves();
  }

  // ------------------------------------------------------------------ internals

  /** Re-protects the resident leaves of `[start, start + size)` (for the segments' backends). */
  private protectResident(start: number, size: number, prot: Prot, shared: boolean): void {
    const mem = this.ctx.mem;
    const frames = this.ctx.frames;
    const tlb = this.shootdown;
    this.tables.forEachLeaf(start, start + size, (va, lo, hi, ea) => {
      let nlo: number;
      let nhi: number;
      if (prot === PROT_NONE) {
        nlo = (lo & ~PTE_PRESENT) >>> 0;
        nhi = (hi | SW_PARKED) >>> 0;
      } else {
        let writable = (prot & PROT_WRITE) !== 0;
        if (writable && !shared) writable = frames.refCount(entryFrame(lo, hi) as PhysAddr) === 1;
        nlo = ((lo | PTE_PRESENT) & ~PTE_WRITABLE) >>> 0;
        if (writable) nlo = (nlo | PTE_WRITABLE) >>> 0;
        nhi = (hi & ~SW_PARKED & ~PTE_XD) >>> 0;
        if ((prot & PROT_EXEC) === 0) nhi = (nhi | PTE_XD) >>> 0;
      }
      if (nlo === lo >>> 0 && nhi === hi >>> 0) return;
      mem.write32(ea, nlo);
      mem.write32(ea + 4, nhi);
      tlb?.invalidatePage(va as VirtAddr);
    });
  }

  private checkLive(): void {
    if (this.isFreed) kfail('Gone', 'vm space freed', 'the address space was freed');
  }

  /**
   * The segments overlapping `[start, end)`, ascending (memory-set's `areasIn`: O(log n + k), so the
   * cost never grows with the number of segments outside the range). `[start, end)` lies in `[0, 2^47)`.
   * The common case of `read`/`write`, a range inside one segment, takes one `find` (≈ half the cost).
   */
  private touching(start: number, end: number): Seg[] {
    if (start >= end) return [];
    const hit = this.set.find(start as VirtAddr);
    if (hit !== undefined && hit.end >= end) return [hit];
    return this.set.areasIn(start as VirtAddr, end - start);
  }

  /** The first address of `[start, end)` no segment holds, or -1 when segments cover it all. */
  private firstGap(start: number, end: number, need = -1): number {
    let at = start;
    for (const seg of this.touching(start, end)) {
      if (seg.start > at) return at;
      if (need >= 0 && (need === PROT_NONE ? seg.flags === PROT_NONE : (seg.flags & need) !== need))
        return Math.max(at, seg.start);
      at = seg.end;
      if (at >= end) return -1;
    }
    return at < end ? at : -1;
  }

  private async unmapLocked(start: number, end: number): Promise<boolean> {
    const pieces = this.touching(start, end);
    if (pieces.length === 0) return false;
    const frames = this.ctx.frames;
    const leaving: Leaving[] = [];
    const closing: Chan[] = [];
    // The synchronous part: bookkeeping, then the entries. Nothing in it can fail.
    this.set.unmapMetadata(start as VirtAddr, end - start);
    const tlb = this.shootdown;
    for (const seg of pieces) {
      const cs = Math.max(seg.start, start);
      const ce = Math.min(seg.end, end);
      const b = seg.backend;
      if (cs === seg.start && ce === seg.end) closing.push(b.chan);
      const base = b.offset - seg.start;
      this.tables.clearRange(cs, ce, (va, lo, hi) => {
        const frame = entryFrame(lo, hi);
        if (hi & SW_PRIVATE) frames.decRef(frame as PhysAddr);
        else leaving.push({ chan: b.chan, pgIdx: (base + va) / PAGE, frame, dirty: (lo & PTE_DIRTY) !== 0 });
        tlb?.invalidatePage(va as VirtAddr);
      });
    }
    // The asynchronous part: write-backs, then the handles of removed segments.
    let bad = false;
    for (const l of leaving) if (await this.ctx.cache.release(l.chan, l.pgIdx, l.frame, l.dirty)) bad = true;
    // A device whose release fails does not undo the unmapping: it is reported like a failed flush.
    for (const c of closing) {
      try {
        await c.close();
      } catch {
        bad = true;
      }
    }
    return bad;
  }

  private async freeLocked(): Promise<boolean> {
    if (this.isFreed) return false;
    const bad = await this.unmapLocked(0, USER_TOP);
    this.isFreed = true;
    this.shootdown?.invalidateAll();
    // Only the lower half is ours: entries of the higher half (e.g. a kernel half shared between
    // spaces by copying PML4 entries 256..511) are left alone, and their tables are not freed.
    this.tables.freeUserTables();
    this.ctx.frames.decRef(this.root);
    return bad;
  }

  /** The fault of page `page` of `seg` for `access` (the lock is held). */
  private async faultLocked(page: number, seg: Seg, access: FaultAccess): Promise<void> {
    const prot = seg.flags;
    const write = access === 'write';
    if (
      prot === PROT_NONE ||
      (write && (prot & PROT_WRITE) === 0) ||
      (access === 'execute' && (prot & PROT_EXEC) === 0)
    ) {
      kfail('Forbidden', 'protection fault', `${access} at ${fmt(page)} in a ${formatProt(prot)} segment`, {
        va: page,
        access,
      });
    }
    const mem = this.ctx.mem;
    const frames = this.ctx.frames;
    const b = seg.backend;
    const ea = this.tables.leafEa(page);
    if (ea >= 0) {
      const lo = mem.read32(ea);
      const hi = mem.read32(ea + 4);
      if ((lo & PTE_PRESENT) !== 0) {
        if (!write || (lo & PTE_WRITABLE) !== 0) return;
        const frame = entryFrame(lo, hi);
        if ((hi & SW_PRIVATE) === 0 || frames.refCount(frame as PhysAddr) === 1) {
          mem.write32(ea, (lo | PTE_WRITABLE) >>> 0); // shared page, or the sole owner of a COW page
        } else {
          let copy: number;
          try {
            copy = frames.allocFrame();
          } catch (e) {
            return asOutOfMemory(e, `the copy-on-write copy of ${fmt(page)}`);
          }
          mem.copy(copy, frame, PAGE);
          mem.write32(ea, leafLo(copy, true));
          mem.write32(ea + 4, leafHi(copy, SW_PRIVATE, (prot & PROT_EXEC) !== 0));
          frames.decRef(frame as PhysAddr);
        }
        this.shootdown?.invalidatePage(page as VirtAddr);
        return;
      }
    }
    const pgIdx = (b.offset + (page - seg.start)) / PAGE;
    const writable = (prot & PROT_WRITE) !== 0;
    const exec = (prot & PROT_EXEC) !== 0;
    let frame: number;
    if (b.shared) {
      frame = await this.ctx.cache.acquire(b.chan, pgIdx);
    } else {
      try {
        frame = frames.allocFrame();
      } catch (e) {
        return asOutOfMemory(e, `the private page ${fmt(page)}`);
      }
      try {
        const cached = this.ctx.cache.peek(b.chan.device, pgIdx);
        if (cached >= 0) mem.copy(frame, cached, PAGE);
        else await readPage(b.chan, frameView(mem, frame), pgIdx);
      } catch (e) {
        frames.decRef(frame as PhysAddr);
        throw e;
      }
    }
    let leaf: number;
    try {
      leaf = this.tables.ensureLeafEa(page);
    } catch (e) {
      if (b.shared) await this.ctx.cache.release(b.chan, pgIdx, frame, false);
      else frames.decRef(frame as PhysAddr);
      return asOutOfMemory(e, `the page tables of ${fmt(page)}`);
    }
    mem.write32(leaf, leafLo(frame, writable));
    mem.write32(leaf + 4, leafHi(frame, b.shared ? 0 : SW_PRIVATE, exec));
  }

  private async copyLocked(buf: Uint8Array, offset: number, write: boolean): Promise<void> {
    const what = write ? 'vm write' : 'vm read';
    if (!(buf instanceof Uint8Array))
      kfail('BadRequest', what, `buffer ${describe(buf)} is not a Uint8Array`);
    checkUint(what, 'offset', offset);
    checkUserRange(what, offset, buf.length);
    this.checkLive();
    const len = buf.length;
    if (len === 0) return;
    const end = offset + len;
    const gap = this.firstGap(offset, end, write ? PROT_WRITE : PROT_NONE);
    if (gap >= 0) {
      const seg = this.set.find(gap as VirtAddr);
      kfail(
        'Forbidden',
        what,
        seg === undefined
          ? `${fmt(gap)} in [${fmt(offset)}, ${fmt(end)}) is in no segment`
          : `${fmt(gap)} is in a ${formatProt(seg.flags)} segment`,
        { offset, len, at: gap },
      );
    }
    // Fault every page in first (a failure transfers no byte), then copy.
    const mem = this.ctx.mem;
    const last = end - 1 - ((end - 1) % PAGE);
    let seg: Seg | undefined;
    for (let page = offset - (offset % PAGE); page <= last; page += PAGE) {
      if (seg === undefined || page >= seg.end) seg = this.set.find(Math.max(page, offset) as VirtAddr)!;
      const ea = this.tables.leafEa(page);
      const lo = ea >= 0 ? mem.read32(ea) : 0;
      if ((lo & PTE_PRESENT) === 0 || (write && (lo & PTE_WRITABLE) === 0))
        await this.faultLocked(page, seg, write ? 'write' : 'read');
    }
    let done = 0;
    while (done < len) {
      const va = offset + done;
      const page = va - (va % PAGE);
      const ea = this.tables.leafEa(page);
      const lo = mem.read32(ea);
      const view = frameView(mem, entryFrame(lo, mem.read32(ea + 4)));
      const n = Math.min(len - done, page + PAGE - va);
      if (write) {
        view.set(buf.subarray(done, done + n), va - page);
        mem.write32(ea, (lo | PTE_DIRTY) >>> 0);
      } else {
        buf.set(view.subarray(va - page, va - page + n), done);
      }
      done += n;
    }
  }
}

function fmt(v: number): string {
  return v >= 0 && v < 2 ** 48 && Number.isInteger(v) ? formatVirtAddr(v as VirtAddr) : describe(v);
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
}

/** Throws BadRequest unless `v` is an integer Number in [0, 2^53). */
function checkUint(seedMessage: string, what: string, v: unknown): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new KcoreError('BadRequest', seedMessage, `${what} ${describe(v)} is not an integer in [0, 2^53)`, {
      [what]: v,
    });
  }
}

/** Throws BadRequest unless `[start, start + len)` lies in the user half `[0, 2^47)`. */
function checkUserRange(seedMessage: string, start: number, len: number): void {
  const end = start + len;
  if (end <= USER_TOP) return;
  const rule =
    start >= USER_TOP
      ? `${fmt(start)} is not in the user half [0x0, 0x800000000000)`
      : `[${fmt(start)}, +${describe(len)}) passes the user top 0x800000000000 (the canonical hole)`;
  kfail('BadRequest', seedMessage, rule, { start, len });
}

function checkProt(seedMessage: string, prot: unknown): void {
  if (typeof prot !== 'number' || !Number.isInteger(prot) || prot < 0 || prot > 7)
    kfail(
      'BadRequest',
      seedMessage,
      `protection ${describe(prot)} is not an OR of PROT_READ|PROT_WRITE|PROT_EXEC (0..7)`,
      {
        prot,
      },
    );
}
