import { checkAligned, checkUint, fail, formatHex, PAGE_SIZE_4K, type PhysAddr } from '@vmkit/addr';
import type { FrameAllocator } from '../frame-allocator.js';
import type { PhysicalMemory } from '../physical-memory.js';
import { checkTable } from './phys-table-ops.js';
import { MayMoveTable, type PteWords, type TableOps } from './table-ops.js';

/** Options of {@link CowSnapshotTableOps}. */
export interface CowSnapshotTableOpsOptions {
  /** First byte of the read-only snapshot region (4 KiB aligned). */
  snapshotStart: number;
  /** End (exclusive) of the snapshot region (4 KiB aligned). */
  snapshotEnd: number;
  /** Scratch frames for new and copied tables; they must lie outside the snapshot region. */
  scratch: FrameAllocator;
  /** The current root table (CR3), usually a root of a restored snapshot. */
  root: PhysAddr | number;
}

/**
 * {@link TableOps} over page tables that live in a read-only snapshot region (`MayMoveTable`), as
 * Hyperlight's guest runs on a restored snapshot: a write into a table inside the snapshot copies the
 * table to a scratch frame first, writes the entry in the copy and returns the copy's address, so
 * that `map` rewrites the parent entry (moving the parent too if it is in the snapshot) up to the root,
 * whose move is a new CR3 ({@link updateRoot}). Tables outside the snapshot are written in place. The
 * snapshot region itself is never written.
 */
export class CowSnapshotTableOps implements TableOps<PhysAddr, MayMoveTable> {
  readonly tableMovability = MayMoveTable;
  readonly mem: PhysicalMemory;
  readonly scratch: FrameAllocator;
  readonly snapshotStart: number;
  readonly snapshotEnd: number;
  private root: PhysAddr;
  private moved = 0;

  /**
   * @throws VmkitError `E_UNALIGNED`/`E_RANGE`/`E_INVALID` for a bad region or root
   */
  constructor(mem: PhysicalMemory, options: CowSnapshotTableOpsOptions) {
    const { snapshotStart, snapshotEnd } = options;
    checkUint(snapshotStart, 'snapshotStart');
    checkUint(snapshotEnd, 'snapshotEnd');
    checkAligned(snapshotStart, PAGE_SIZE_4K, 'snapshotStart');
    checkAligned(snapshotEnd, PAGE_SIZE_4K, 'snapshotEnd');
    if (snapshotEnd < snapshotStart || snapshotEnd > mem.size) {
      fail(
        'E_RANGE',
        `snapshot region [${formatHex(snapshotStart)}, ${formatHex(snapshotEnd)}) is not inside memory`,
        {
          snapshotStart,
          snapshotEnd,
        },
      );
    }
    this.mem = mem;
    this.scratch = options.scratch;
    this.snapshotStart = snapshotStart;
    this.snapshotEnd = snapshotEnd;
    this.root = checkTable(mem, options.root);
  }

  /** How many tables were copied out of the snapshot so far. */
  get movedTables(): number {
    return this.moved;
  }

  /** True when `pa` lies in the read-only snapshot region. */
  inSnapshot(pa: number): boolean {
    return pa >= this.snapshotStart && pa < this.snapshotEnd;
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

  readEntry(addr: PhysAddr, out: PteWords): PteWords {
    out[0] = this.mem.read32(addr);
    out[1] = this.mem.read32(addr + 4);
    return out;
  }

  /**
   * Writes the entry at `addr`; when its table is in the snapshot, copies the table to a fresh scratch
   * frame, writes there and returns the copy's base.
   *
   * @throws VmkitError `E_NOMEM` when no scratch frame is left (nothing changed)
   */
  writeEntry(addr: PhysAddr, lo: number, hi: number): PhysAddr | undefined {
    this.mem.checkRange(addr, 8);
    if (!this.inSnapshot(addr)) {
      this.mem.write32(addr, lo);
      this.mem.write32(addr + 4, hi);
      return undefined;
    }
    const off = addr % PAGE_SIZE_4K;
    const table = addr - off;
    const copy = this.scratch.allocFrame();
    this.mem.copy(copy, table, PAGE_SIZE_4K);
    this.mem.write32(copy + off, lo);
    this.mem.write32(copy + off + 4, hi);
    this.moved++;
    return copy;
  }

  /** Loads the moved root (the new CR3). */
  updateRoot(newRoot: PhysAddr): void {
    this.root = newRoot;
  }

  /** A zeroed scratch table. @throws VmkitError `E_NOMEM` */
  allocTable(): PhysAddr {
    return this.scratch.allocFrame();
  }

  canAllocTables(count: number): boolean {
    return this.scratch.freeFrames >= count;
  }

  wouldMove(table: PhysAddr): boolean {
    return this.inSnapshot(table);
  }
}
