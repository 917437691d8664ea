import { checkAligned, checkUint, fail, formatHex, PAGE_SIZE_4K, type PhysAddr } from '@vmkit/addr';
import { PagingErrorCode, pagingFail } from '../errors.js';
import type { FrameAllocator } from '../frame-allocator.js';
import type { PhysicalMemory } from '../physical-memory.js';
import { MayNotMoveTable, type PteWords, type TableOps } from './table-ops.js';

/** Options of {@link PhysTableOps}. */
export interface PhysTableOpsOptions {
  /** Where new tables come from (required to map; a read-only view may omit it). */
  frames?: FrameAllocator;
  /** The root table (CR3 address, 4 KiB aligned); by default a fresh zeroed table from `frames`. */
  root?: PhysAddr | number;
}

/**
 * {@link TableOps} over simulated physical memory, writing tables in place (`MayNotMoveTable`): table
 * addresses are physical addresses, tables come from a {@link FrameAllocator}, entries are read and
 * written as two little-endian 32-bit words (a single typed-array access each when the memory is one
 * chunk). This is what an OS simulator's kernel uses to build its page tables.
 */
export class PhysTableOps implements TableOps<PhysAddr, MayNotMoveTable> {
  readonly tableMovability = MayNotMoveTable;
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator | undefined;
  private root: PhysAddr;
  private readonly flat: Uint32Array | undefined;

  /**
   * @throws VmkitError `E_UNALIGNED`/`E_RANGE` for a `root` that is not a 4 KiB table inside memory;
   *   `E_NOMEM` when no root is given and none can be allocated (or no allocator is given)
   */
  constructor(mem: PhysicalMemory, options: PhysTableOpsOptions = {}) {
    this.mem = mem;
    this.frames = options.frames;
    this.flat = mem.flat32;
    if (options.root === undefined) {
      this.root = this.allocTable();
    } else {
      this.root = checkTable(mem, options.root);
    }
  }

  /** Switches to the space whose root table is `root` (like loading CR3). */
  setRoot(root: PhysAddr | number): void {
    this.root = checkTable(this.mem, root);
  }

  rootTable(): PhysAddr {
    return this.root;
  }

  entryAddr(addr: PhysAddr, entryOffset: number): PhysAddr {
    return (addr + entryOffset) as PhysAddr;
  }

  toPhys(addr: PhysAddr): PhysAddr {
    return addr;
  }

  fromPhys(pa: PhysAddr): PhysAddr {
    return pa;
  }

  /** Reads the entry at physical address `addr` (8-byte aligned). @throws VmkitError `E_RANGE` outside memory */
  readEntry(addr: PhysAddr, out: PteWords): PteWords {
    const f = this.flat;
    if (f !== undefined && addr + 8 <= this.mem.size && (addr & 7) === 0) {
      const i = addr >>> 2;
      out[0] = f[i]!;
      out[1] = f[i + 1]!;
    } else {
      out[0] = this.mem.read32(addr);
      out[1] = this.mem.read32(addr + 4);
    }
    return out;
  }

  /** Writes the entry at `addr` in place; never moves. @throws VmkitError `E_RANGE` outside memory */
  writeEntry(addr: PhysAddr, lo: number, hi: number): undefined {
    const f = this.flat;
    if (f !== undefined && addr + 8 <= this.mem.size && (addr & 7) === 0) {
      const i = addr >>> 2;
      f[i] = lo;
      f[i + 1] = hi;
    } else {
      this.mem.checkRange(addr, 8);
      this.mem.write32(addr, lo);
      this.mem.write32(addr + 4, hi);
    }
    return undefined;
  }

  /** A zeroed table from the frame allocator. @throws VmkitError `E_NOMEM` */
  allocTable(): PhysAddr {
    if (this.frames === undefined)
      pagingFail(PagingErrorCode.E_NOMEM, 'these table operations have no frame allocator', {});
    return this.frames.allocFrame();
  }

  /** Never called: tables never move here. */
  updateRoot(_newRoot: never): void {}

  canAllocTables(count: number): boolean {
    return this.frames !== undefined && this.frames.freeFrames >= count;
  }

  wouldMove(_table: PhysAddr): boolean {
    return false;
  }
}

/** Checks that `pa` is a 4 KiB-aligned table inside `mem` and returns it. */
export function checkTable(mem: PhysicalMemory, pa: number): PhysAddr {
  checkUint(pa, 'table address');
  checkAligned(pa, PAGE_SIZE_4K, 'table address');
  if (pa + PAGE_SIZE_4K > mem.size)
    fail('E_RANGE', `table ${formatHex(pa)} is outside memory of ${formatHex(mem.size)} bytes`, { pa });
  return pa as PhysAddr;
}
