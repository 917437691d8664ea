import { PAGE_SIZE_4K, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import { type FrameAllocator, PF_ID, PF_W, type PhysicalMemory } from '@vmkit/paging-x86_64';
import { show, vmmFail } from './errors.js';

/** The kind of access that faulted (Scarlet's `AccessOp`). */
export const AccessOp = {
  /** An instruction fetch. */
  Instruction: 'instruction',
  /** A data read. */
  Load: 'load',
  /** A data write. */
  Store: 'store',
} as const;

/** One of {@link AccessOp}. */
export type AccessOp = (typeof AccessOp)[keyof typeof AccessOp];

/** A faulting access (Scarlet's `AccessKind`): what, where, and how many bytes when known. */
export interface AccessKind {
  op: AccessOp;
  /** The faulting virtual address (any byte of the page). */
  vaddr: VirtAddr;
  /** Bytes accessed, when known. */
  size?: number | undefined;
}

/**
 * The access of an x86-64 page fault: `store` when the error code has W, `instruction` when it has I/D,
 * else `load` — what a fault handler passes to `lazyMapPageWith` (with `vaddr` = CR2).
 *
 * @throws VmmError `E_INVALID` for an error code that is not an integer in `[0, 2^32)`
 */
export function accessFromFault(vaddr: VirtAddr, errorCode: number): AccessKind {
  if (
    typeof errorCode !== 'number' ||
    !Number.isInteger(errorCode) ||
    errorCode < 0 ||
    errorCode >= 2 ** 32
  ) {
    vmmFail('E_INVALID', 'a page-fault error code is an integer in [0, 2^32)', `got ${show(errorCode)}`);
  }
  const op =
    (errorCode & PF_W) !== 0
      ? AccessOp.Store
      : (errorCode & PF_ID) !== 0
        ? AccessOp.Instruction
        : AccessOp.Load;
  return { op, vaddr };
}

/** A page an owner resolved a fault to (Scarlet's `ResolveFaultResult`). */
export interface ResolveFaultResult {
  /** Physical address of the 4 KiB page backing the faulting page. */
  paddrPageBase: PhysAddr;
  /** The page is the tail of the object (past its end): it is mapped without Read and Write. */
  isTail: boolean;
}

/** Why an owner could not resolve a fault (Scarlet's `ResolveFaultError`). */
export const ResolveFaultError = {
  /** The request makes no sense for this owner. */
  Invalid: 'Invalid',
  /** The page index lies outside what the owner backs. */
  Unmapped: 'Unmapped',
} as const;

/** One of {@link ResolveFaultError}. */
export type ResolveFaultError = (typeof ResolveFaultError)[keyof typeof ResolveFaultError];

/** What an object offers to map a region of itself (Scarlet's `MemoryMappingInfo`). */
export interface MemoryMappingInfo {
  paddr: PhysAddr;
  /** VirtualMemoryPermission bits the object allows. */
  permissions: number;
  isShared: boolean;
}

/**
 * The memory-mapping operations of an object that backs memory maps (Scarlet's `MemoryMappingOps`): a
 * file, a device, anonymous memory, a fork's copy-on-write pages. A map whose `owner` is set is resolved
 * through it on a fault: {@link resolveFault} gives the physical page, {@link faultPagePermissions} the
 * rights to install, {@link privateFaultRequiresCopy} whether a private map must copy it first.
 *
 * Every method is optional; {@link BaseMappingOwner} and {@link ownerDefaults} give the defaults
 * (the upstream trait's). Page indexes count 4 KiB pages from the map's `vmStart` (the address the
 * mapping had when it was created: splitting a map keeps it).
 */
export interface MemoryMappingOps {
  /**
   * Mapping information for `[offset, offset + length)` of the object, for an `mmap` call. Throws (any
   * error) when the region cannot be mapped. The manager never calls it; a kernel's mmap does.
   */
  getMappingInfo?(offset: number, length: number): MemoryMappingInfo;
  /** A mapping of the object was created (called by whoever creates maps; the manager does not). */
  onMapped?(vaddr: VirtAddr, paddr: PhysAddr | undefined, length: number, offset: number): void;
  /** A mapping of the object went away; the manager calls it for every owned map when the last handle is disposed. */
  onUnmapped?(vaddr: VirtAddr, length: number): void;
  /** Whether the object can be mapped at all (default `true`). */
  supportsMmap?(): boolean;
  /** Whether private (copy-on-write) mappings are allowed (default `true`). */
  supportsPrivateMmap?(): boolean;
  /** A short name for messages (default `"object"`). */
  mmapOwnerName?(): string;
  /**
   * Whether a fault just past the end of a map of this owner may grow the map when {@link resolveFault}
   * resolves the page (default `false`): for objects that grow after being mapped (a shared memory object
   * resized by `ftruncate`).
   */
  canExtendVmaOnFault?(): boolean;
  /**
   * The physical page for the page `pageIdx` (counted from `vmStart`) of a faulting access, or why there
   * is none (default: {@link ResolveFaultError.Unmapped}). May throw (e.g. `E_NOMEM`): the fault fails.
   */
  resolveFault?(
    access: AccessKind,
    pageIdx: number,
    vmStart: VirtAddr,
  ): ResolveFaultResult | ResolveFaultError;
  /** The rights to install for a resolved fault, at most `defaultPermissions` (default: `defaultPermissions`). */
  faultPagePermissions?(access: AccessKind, defaultPermissions: number): number;
  /**
   * Whether a fault in a private map must copy the resolved page into a page of its own (default
   * `true`: the owner is read-only backing storage). A fork's copy-on-write owner answers `true` only for
   * stores.
   */
  privateFaultRequiresCopy?(access: AccessKind): boolean;
  /** The pages `[startPageIdx, startPageIdx + pageCount)` are no longer needed by a map (default: nothing). */
  releasePages?(startPageIdx: number, pageCount: number): void;
  /** The owner a forked child's copy of the map should use (default: `undefined`, share this one). */
  forkClone?(): MemoryMappingOps | undefined;
}

/** The upstream trait's default behaviour, for owners that leave a method out. */
export const ownerDefaults = {
  supportsMmap: (o: MemoryMappingOps): boolean => o.supportsMmap?.() ?? true,
  supportsPrivateMmap: (o: MemoryMappingOps): boolean => o.supportsPrivateMmap?.() ?? true,
  mmapOwnerName: (o: MemoryMappingOps): string => o.mmapOwnerName?.() ?? 'object',
  canExtendVmaOnFault: (o: MemoryMappingOps): boolean => o.canExtendVmaOnFault?.() ?? false,
  resolveFault: (
    o: MemoryMappingOps,
    access: AccessKind,
    pageIdx: number,
    vmStart: VirtAddr,
  ): ResolveFaultResult | ResolveFaultError =>
    o.resolveFault === undefined ? ResolveFaultError.Unmapped : o.resolveFault(access, pageIdx, vmStart),
  faultPagePermissions: (o: MemoryMappingOps, access: AccessKind, perms: number): number =>
    o.faultPagePermissions === undefined ? perms : o.faultPagePermissions(access, perms) & perms,
  privateFaultRequiresCopy: (o: MemoryMappingOps, access: AccessKind): boolean =>
    o.privateFaultRequiresCopy?.(access) ?? true,
} as const;

/**
 * A base class with the upstream trait's defaults: extend it and override what your object does.
 * `getMappingInfo` throws "mmap not supported for this object" unless overridden.
 */
export class BaseMappingOwner implements MemoryMappingOps {
  getMappingInfo(offset: number, length: number): MemoryMappingInfo {
    return vmmFail(
      'E_INVALID',
      'mmap not supported for this object',
      `offset ${show(offset)}, length ${show(length)}`,
    );
  }
  onMapped(_vaddr: VirtAddr, _paddr: PhysAddr | undefined, _length: number, _offset: number): void {}
  onUnmapped(_vaddr: VirtAddr, _length: number): void {}
  supportsMmap(): boolean {
    return true;
  }
  supportsPrivateMmap(): boolean {
    return true;
  }
  mmapOwnerName(): string {
    return 'object';
  }
  canExtendVmaOnFault(): boolean {
    return false;
  }
  resolveFault(
    _access: AccessKind,
    _pageIdx: number,
    _vmStart: VirtAddr,
  ): ResolveFaultResult | ResolveFaultError {
    return ResolveFaultError.Unmapped;
  }
  faultPagePermissions(_access: AccessKind, defaultPermissions: number): number {
    return defaultPermissions;
  }
  privateFaultRequiresCopy(_access: AccessKind): boolean {
    return true;
  }
  releasePages(_startPageIdx: number, _pageCount: number): void {}
  forkClone(): MemoryMappingOps | undefined {
    return undefined;
  }
}

/**
 * Anonymous memory (Scarlet's `AnonymousPageOwner`): a zero-filled frame from `frames` the first time a
 * page index is resolved, the same frame afterwards. Its pages are its own, so a private fault needs no
 * copy. `releasePages` gives frames back; `forkClone` copies every resident page for a child. Memory is
 * proportional to the pages touched (one Map entry a page), never to the size of the maps it backs.
 */
export class AnonymousPageOwner extends BaseMappingOwner {
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator;
  private readonly pages = new Map<number, PhysAddr>();

  constructor(mem: PhysicalMemory, frames: FrameAllocator) {
    super();
    this.mem = mem;
    this.frames = frames;
  }

  /** Pages holding a frame now. */
  get residentPages(): number {
    return this.pages.size;
  }

  /** The frame of page `pageIdx`, if it has one. */
  pageFrame(pageIdx: number): PhysAddr | undefined {
    return this.pages.get(pageIdx);
  }

  override mmapOwnerName(): string {
    return 'anonymous';
  }

  /** @throws VmkitError `E_NOMEM` from the frame allocator when a new page has no frame */
  override resolveFault(_access: AccessKind, pageIdx: number): ResolveFaultResult | ResolveFaultError {
    if (!Number.isInteger(pageIdx) || pageIdx < 0) return ResolveFaultError.Invalid;
    let pa = this.pages.get(pageIdx);
    if (pa === undefined) {
      pa = this.frames.allocFrame(); // zero-filled
      this.pages.set(pageIdx, pa);
    }
    return { paddrPageBase: pa, isTail: false };
  }

  override privateFaultRequiresCopy(): boolean {
    return false;
  }

  override releasePages(startPageIdx: number, pageCount: number): void {
    if (pageCount <= this.pages.size) {
      for (let i = startPageIdx; i < startPageIdx + pageCount; i++) this.release(i);
    } else {
      for (const i of [...this.pages.keys()])
        if (i >= startPageIdx && i < startPageIdx + pageCount) this.release(i);
    }
  }

  /** A new owner with a copy of every resident page (all or nothing: `E_NOMEM` leaves nothing allocated). */
  override forkClone(): AnonymousPageOwner {
    const child = new AnonymousPageOwner(this.mem, this.frames);
    try {
      for (const [i, pa] of this.pages) {
        const copy = this.frames.allocFrame();
        child.pages.set(i, copy);
        this.mem.copy(copy, pa, PAGE_SIZE_4K);
      }
    } catch (e) {
      child.releaseAll();
      throw e;
    }
    return child;
  }

  /** Gives every frame back. */
  releaseAll(): void {
    for (const pa of this.pages.values()) this.frames.decRef(pa);
    this.pages.clear();
  }

  private release(i: number): void {
    const pa = this.pages.get(i);
    if (pa === undefined) return;
    this.pages.delete(i);
    this.frames.decRef(pa);
  }
}
