import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import type { FrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import type { FileIo, SimFile } from './devices.js';

/**
 * The seam between the kernel and an address-space design ("personality"). The kernel does
 * everything Linux-specific (argument checks, error numbers, where a mapping goes, which ranges a
 * call touches, TLB shootdowns, accounting); a personality keeps the areas and programs the x86-64
 * page tables. A third personality is one new file implementing {@link Personality}.
 *
 * Contract: the kernel calls {@link AddressSpace.map} only on a free range, {@link AddressSpace.protect}
 * only on a fully mapped range, and ranges are page-aligned, non-empty and inside the user half.
 * Whenever a personality changes or removes a present page-table entry it calls
 * {@link SpaceContext.invalidate} with the page's address (the kernel flushes the TLBs that may hold it).
 */
export interface Personality {
  /** Name used by `--personality`. */
  readonly name: string;
  /** One line for `--help`. */
  readonly description: string;
  /**
   * False when the design keeps its own page cache for mapped files (kcore): then `read()`/`write()`
   * see a shared mapping's writes only once its pages are written back (at the last unmap), not at
   * once as on Linux. Default true.
   */
  readonly coherentFileIo?: boolean;
  /** A new, empty address space (its page table shares the kernel half). */
  create(ctx: SpaceContext): MaybePromise<AddressSpace>;
}

/** What the kernel hands a personality. */
export interface SpaceContext {
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly io: FileIo;
  /** The kernel's PML4: its entries 256–511 (the higher half) are shared by every address space. */
  readonly kernelRoot: PhysAddr;
  /** Called with the address of each page whose present PTE changed or went away. */
  invalidate(va: VirtAddr): void;
  /** Called when many entries changed at once (the space's whole PCID is flushed where cached). */
  invalidateAll(): void;
  /** One map per kernel for a personality's machine-wide state (e.g. a shared page cache). */
  readonly shared: Map<string, unknown>;
}

/** A request to map a free range (already validated by the kernel). */
export interface MapRequest {
  start: VirtAddr;
  len: number;
  /** `PROT_*` bits. */
  prot: number;
  shared: boolean;
  /** The file (or the object of a shared anonymous mapping); `undefined` for private anonymous memory. */
  file: SimFile | undefined;
  /** Byte offset in the file of `start` (page-aligned). */
  offset: number;
  /** For a shared file mapping: the file was opened for writing (PROT_WRITE allowed later). */
  mayWrite: boolean;
  /** Area label in /proc/PID/maps (`[heap]`), if any. */
  label?: string;
}

/** One area as /proc/PID/maps shows it. */
export interface AreaInfo {
  start: VirtAddr;
  end: VirtAddr;
  prot: number;
  shared: boolean;
  file: SimFile | undefined;
  offset: number;
  mayWrite: boolean;
  label: string | undefined;
}

/** What resolving a fault did (see {@link AddressSpace.fault}). */
export const FaultKind = {
  /** Nothing could be done: the access is not allowed (the kernel sends SIGSEGV). */
  SEGV: 0,
  /** A page was mapped without I/O (demand zero, a cached file page). */
  MINOR: 1,
  /** A page was mapped after I/O. */
  MAJOR: 2,
  /** A write to a copy-on-write page was resolved (copied or reused). */
  COW: 3,
  /** An access past the end of a mapped file (SIGBUS). */
  BUS: 4,
  /** No memory left for the page (the kernel kills the process). */
  OOM: 5,
} as const;

/** One of {@link FaultKind}. */
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

/** A value or a promise of it: an asynchronous design (kcore) returns promises, a synchronous one values. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * An address space of one process, as the kernel sees it. Operations may complete synchronously or
 * return a promise (the process waits for it, in simulated time, while others run).
 */
export interface AddressSpace {
  /** Physical address of the PML4 (what CR3 holds, without the PCID). */
  readonly root: PhysAddr;
  /** The design's own address-space id, used as the PCID if given (1..4095); else the kernel picks one. */
  readonly asid?: number;
  /** Maps a free range lazily (pages appear on first touch). */
  map(req: MapRequest): MaybePromise<void>;
  /** Unmaps whatever lies in `[start, start + len)` (holes allowed), freeing its pages. */
  unmap(start: VirtAddr, len: number): MaybePromise<void>;
  /** Changes the protection of the fully mapped range `[start, start + len)`. */
  protect(start: VirtAddr, len: number, prot: number): MaybePromise<void>;
  /** The areas in address order. */
  areas(): AreaInfo[];
  /** The area holding `va`, if any. */
  areaAt(va: VirtAddr): AreaInfo | undefined;
  /** The areas intersecting `[start, end)` in address order. */
  areasIn(start: VirtAddr, end: number): AreaInfo[];
  /**
   * Resolves a page fault of a user access at `va` with the architectural `errorCode` (PF_* bits);
   * returns the {@link FaultKind}, or a promise of it when the page needs I/O. When it returns
   * MINOR/MAJOR/COW the faulting access succeeds when re-executed.
   */
  fault(va: VirtAddr, errorCode: number): FaultKind | Promise<FaultKind>;
  /** A copy for a child process (copy-on-write or however the design forks). */
  fork(ctx: SpaceContext): MaybePromise<AddressSpace>;
  /** Frees every page and table (the kernel half stays). The space is unusable afterwards. */
  destroy(): MaybePromise<void>;
  /** Present user pages (resident set). */
  residentPages(): number;
}

/** `f(x)` now if `x` is a value, after it settles if it is a promise. */
export function andThen<T, U>(x: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return x instanceof Promise ? x.then(f) : f(x);
}
