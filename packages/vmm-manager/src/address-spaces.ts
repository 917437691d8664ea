import { formatPhysAddr, PAGE_SIZE_4K, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import {
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  type FrameAllocator,
  Mmu,
  PageMapper,
  PhysicalMemory,
} from '@vmkit/paging-x86_64';
import { show, vmmFail } from './errors.js';

/** The largest ASID: an x86-64 PCID is 12 bits. */
export const MAX_ASID = 4095;

/** Options of {@link AddressSpaceAllocator}. */
export interface AddressSpaceAllocatorOptions {
  /** The simulated RAM holding the page tables. */
  mem: PhysicalMemory;
  /** Where page-table frames (and frames the managers allocate: copies, forks) come from. */
  frames: FrameAllocator;
  /**
   * The MMU whose TLB is tagged with the ASIDs as PCIDs (CR4.PCIDE must be set). Default: a new `Mmu`
   * over `mem` with CR4.PCIDE = 1 (and the package's other defaults).
   */
  mmu?: Mmu | undefined;
  /**
   * A PML4 whose higher-half entries (256–511) every new root copies, so all address spaces share the
   * kernel half (they are cleared again before a space's tables are freed). Default: none.
   */
  kernelRoot?: PhysAddr | undefined;
  /** Called after the MMU invalidation, with the ASID and page of every present entry changed or removed. */
  onInvalidate?: ((asid: number, va: VirtAddr) => void) | undefined;
}

/**
 * The ASID → address-space registry of Scarlet's architecture layer (`alloc_virtual_address_space`,
 * `free_virtual_address_space`, `is_asid_used`, `get_root_pagetable`) as one explicit object: no global
 * state, so each test, kernel or simulation builds its own.
 *
 * An ASID is a PCID of the MMU's TLB (1..4095; 0 means "no address space" and is never handed out).
 * Allocating one creates a fresh x86-64 PML4 with a {@link PageMapper} whose `flushHook` invalidates the
 * page in this ASID's TLB entries (`INVPCID` type 0), so a manager's changes never leave a stale
 * translation. Freeing one drops its TLB entries (`INVPCID` type 1) and gives every page-table frame back
 * (leaf frames belong to whoever mapped them). Allocation takes the lowest free ASID: O(1) amortized with a
 * free list, O(4096) worst case once.
 */
export class AddressSpaceAllocator {
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly mmu: Mmu;
  readonly kernelRoot: PhysAddr | undefined;
  private readonly onInvalidate: ((asid: number, va: VirtAddr) => void) | undefined;
  private readonly spaces: (PageMapper | undefined)[] = new Array(MAX_ASID + 1).fill(undefined);
  private used = 0;
  /** The lowest ASID that may be free. */
  private hint = 1;

  /**
   * @throws VmmError `E_INVALID` when `options` is not an object, `mem` is not a `PhysicalMemory`, `frames`
   *   lacks `allocFrame` / `decRef`, `mmu` is not an `Mmu` or runs with CR4.PCIDE = 0 (ASIDs could not tag
   *   its TLB), `onInvalidate` is not a function; `E_UNALIGNED` / `E_RANGE` for a `kernelRoot` that is not
   *   a 4 KiB-aligned frame inside `mem`
   */
  constructor(options: AddressSpaceAllocatorOptions) {
    checkAllocatorOptions(options);
    this.mem = options.mem;
    this.frames = options.frames;
    const mmu = options.mmu ?? new Mmu(options.mem, { cr4: CR4_PAE | CR4_PGE | CR4_PCIDE });
    if ((mmu.cr4 & CR4_PCIDE) === 0) {
      vmmFail(
        'E_INVALID',
        'the MMU must run with CR4.PCIDE = 1: ASIDs are its PCIDs',
        `CR4 = ${show(mmu.cr4)}`,
      );
    }
    this.mmu = mmu;
    this.kernelRoot = options.kernelRoot;
    this.onInvalidate = options.onInvalidate;
  }

  /** Number of ASIDs in use. */
  get usedCount(): number {
    return this.used;
  }

  /**
   * Allocates the lowest free ASID (1..4095) with a new, empty address space (a zeroed PML4, sharing the
   * kernel half when `kernelRoot` was given).
   *
   * @throws VmmError `E_NO_ASID` when all 4095 are in use; `E_NOMEM` (from the frame allocator) when no
   *   frame is free for the PML4. Nothing changes on error.
   */
  allocVirtualAddressSpace(): number {
    let asid = this.hint;
    while (asid <= MAX_ASID && this.spaces[asid] !== undefined) asid++;
    if (asid > MAX_ASID) vmmFail('E_NO_ASID', 'every ASID 1..4095 is in use', `${this.used} address spaces`);
    const mapper = new PageMapper(this.mem, this.frames);
    const kr = this.kernelRoot;
    if (kr !== undefined) this.mem.copy(mapper.root + 256 * 8, kr + 256 * 8, 256 * 8);
    const mmu = this.mmu;
    const hook = this.onInvalidate;
    mapper.flushHook = (va: VirtAddr, size: number) => {
      for (let off = 0; off < size; off += PAGE_SIZE_4K) {
        mmu.invpcid(0, asid, (va + off) as VirtAddr);
        hook?.(asid, (va + off) as VirtAddr);
      }
    };
    this.spaces[asid] = mapper;
    this.used++;
    this.hint = asid + 1;
    mmu.invpcid(1, asid); // nothing of a previous space with this PCID survives
    return asid;
  }

  /** True when `asid` has an address space (the seed's `is_asid_used`); false for anything else. */
  isAsidUsed(asid: number): boolean {
    return Number.isInteger(asid) && asid >= 1 && asid <= MAX_ASID && this.spaces[asid] !== undefined;
  }

  /** The root page table of `asid` (the seed's `get_root_pagetable`), or `undefined` when it has none. */
  getRootPageTable(asid: number): PageMapper | undefined {
    return Number.isInteger(asid) && asid >= 1 && asid <= MAX_ASID ? this.spaces[asid] : undefined;
  }

  /**
   * Frees the address space of `asid` (the seed's `free_virtual_address_space`): its TLB entries are
   * dropped and every page-table frame goes back to the allocator. If the MMU's CR3 points at it, CR3 is
   * loaded with an empty root first. An ASID without a space is ignored.
   *
   * @throws VmmError `E_RANGE`/`E_INVALID` for a value that is not an ASID
   */
  freeVirtualAddressSpace(asid: number): void {
    checkAsid(asid);
    const mapper = this.spaces[asid];
    if (mapper === undefined) return;
    const mmu = this.mmu;
    if (mmu.currentPcid === asid && mmu.cr3 - (mmu.cr3 % PAGE_SIZE_4K) === mapper.root) {
      mmu.writeCr3(this.idle(), true);
    }
    mapper.flushHook = () => {};
    if (this.kernelRoot !== undefined) this.mem.fill(mapper.root + 256 * 8, 256 * 8);
    mapper.destroy();
    mmu.invpcid(1, asid);
    this.spaces[asid] = undefined;
    this.used--;
    if (asid < this.hint) this.hint = asid;
  }

  /**
   * Makes `asid` the MMU's current address space: MOV to CR3 with its root and the ASID as PCID, without
   * flushing (the managers invalidate precisely, so its cached entries are valid).
   *
   * @throws VmmError `E_NO_PAGE_TABLE` when `asid` has no address space
   */
  switchTo(asid: number): void {
    checkAsid(asid);
    const mapper = this.spaces[asid];
    if (mapper === undefined)
      vmmFail('E_NO_PAGE_TABLE', 'No root page table available', `ASID ${asid} has no address space`);
    this.mmu.writeCr3(mapper.root + asid, true);
  }

  private idleRoot: PhysAddr | undefined;

  /** An empty PML4 for CR3 while no space is current (allocated once, on first need). */
  private idle(): PhysAddr {
    if (this.idleRoot === undefined) {
      const r = this.frames.allocFrame();
      this.mem.fill(r, PAGE_SIZE_4K);
      if (this.kernelRoot !== undefined) this.mem.copy(r + 256 * 8, this.kernelRoot + 256 * 8, 256 * 8);
      this.idleRoot = r;
    }
    return this.idleRoot;
  }

  /** `asid → root` text for debugging. */
  toString(): string {
    const parts: string[] = [];
    for (let a = 1; a <= MAX_ASID; a++) {
      const m = this.spaces[a];
      if (m !== undefined) parts.push(`${a}:${formatPhysAddr(m.root)}`);
    }
    return `AddressSpaceAllocator(${parts.join(' ')})`;
  }
}

/**
 * Checks an ASID: an integer in 0..4095 (a 12-bit PCID).
 *
 * @throws VmmError `E_INVALID` for a non-number or non-integer, `E_RANGE` outside 0..4095
 */
export function checkAsid(asid: unknown): asserts asid is number {
  if (typeof asid !== 'number' || !Number.isInteger(asid)) {
    vmmFail('E_INVALID', 'an ASID must be an integer in 0..4095', `got ${show(asid)}`, { asid });
  }
  if (asid < 0 || asid > MAX_ASID) {
    vmmFail('E_RANGE', 'an ASID must be in 0..4095 (a 12-bit PCID)', `got ${asid}`, { asid });
  }
}

function checkAllocatorOptions(options: unknown): asserts options is AddressSpaceAllocatorOptions {
  if (typeof options !== 'object' || options === null) {
    vmmFail(
      'E_INVALID',
      'AddressSpaceAllocator options must be an object { mem, frames, mmu?, kernelRoot?, onInvalidate? }',
      `got ${show(options)}`,
    );
  }
  const o = options as Record<string, unknown>;
  const { mem, frames, mmu, kernelRoot, onInvalidate } = o;
  if (!(mem instanceof PhysicalMemory)) {
    vmmFail('E_INVALID', 'options.mem must be a PhysicalMemory', `got ${show(mem)}`);
  }
  const f = frames as { allocFrame?: unknown; decRef?: unknown } | null | undefined;
  if (
    typeof f !== 'object' ||
    f === null ||
    typeof f.allocFrame !== 'function' ||
    typeof f.decRef !== 'function'
  ) {
    vmmFail('E_INVALID', 'options.frames must be a FrameAllocator', `got ${show(frames)}`);
  }
  if (mmu !== undefined && !(mmu instanceof Mmu)) {
    vmmFail('E_INVALID', 'options.mmu must be an Mmu', `got ${show(mmu)}`);
  }
  if (kernelRoot !== undefined) {
    if (typeof kernelRoot !== 'number' || !Number.isInteger(kernelRoot)) {
      vmmFail('E_INVALID', 'options.kernelRoot must be a physical address', `got ${show(kernelRoot)}`);
    }
    if (kernelRoot % PAGE_SIZE_4K !== 0) {
      vmmFail('E_UNALIGNED', 'options.kernelRoot must be 4 KiB-aligned', `got ${show(kernelRoot)}`);
    }
    if (kernelRoot < 0 || kernelRoot + PAGE_SIZE_4K > mem.size) {
      vmmFail('E_RANGE', 'options.kernelRoot must be a frame inside options.mem', `got ${show(kernelRoot)}`);
    }
  }
  if (onInvalidate !== undefined && typeof onInvalidate !== 'function') {
    vmmFail('E_INVALID', 'options.onInvalidate must be a function', `got ${show(onInvalidate)}`);
  }
}
