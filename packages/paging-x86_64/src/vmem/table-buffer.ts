import {
  checkAligned,
  checkUint,
  fail,
  formatHex,
  PAGE_SIZE_4K,
  PHYS_SPACE_END,
  type PhysAddr,
} from '@vmkit/addr';
import { MayNotMoveTable, type PteWords, type TableOps } from './table-ops.js';

/**
 * Page tables built off-line, outside any simulated memory (like Hyperlight's host-side page-table
 * buffer): tables are laid out one after another from physical address `base` (table `i` at
 * `base + i × 4096`), held in one growable `Uint32Array`, and written in place (`MayNotMoveTable`).
 * Table 0 is the initial root. {@link toBytes} gives the raw little-endian tables to place at `base`.
 */
export class TableBuffer implements TableOps<PhysAddr, MayNotMoveTable> {
  readonly tableMovability = MayNotMoveTable;
  /** Physical address of table 0. */
  readonly base: PhysAddr;
  private words: Uint32Array;
  private count = 1;
  private root: PhysAddr;

  /**
   * @param base physical address the tables will live at (4 KiB aligned)
   * @throws VmkitError `E_UNALIGNED`/`E_RANGE`/`E_INVALID` for a bad base
   */
  constructor(base: PhysAddr | number = 0) {
    checkUint(base, 'table buffer base');
    checkAligned(base, PAGE_SIZE_4K, 'table buffer base');
    if (base + PAGE_SIZE_4K > PHYS_SPACE_END)
      fail('E_RANGE', `table buffer base ${formatHex(base)} passes 2^52`, { base });
    this.base = base as PhysAddr;
    this.words = new Uint32Array(1024 * 8);
    this.root = this.base;
  }

  /** The first table (the root unless {@link setRoot} changed it). */
  initialRoot(): PhysAddr {
    return this.base;
  }

  /** Number of tables allocated (including the initial root). */
  get tableCount(): number {
    return this.count;
  }

  /** Switches the space being built to the one rooted at `root` (a table of this buffer). */
  setRoot(root: PhysAddr): void {
    this.index(root);
    checkAligned(root - this.base, PAGE_SIZE_4K, 'root table offset');
    this.root = root;
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

  /** @throws VmkitError `E_RANGE` outside the tables of this buffer */
  readEntry(addr: PhysAddr, out: PteWords): PteWords {
    const i = this.index(addr);
    out[0] = this.words[i]!;
    out[1] = this.words[i + 1]!;
    return out;
  }

  /** @throws VmkitError `E_RANGE` outside the tables of this buffer */
  writeEntry(addr: PhysAddr, lo: number, hi: number): undefined {
    const i = this.index(addr);
    this.words[i] = lo;
    this.words[i + 1] = hi;
    return undefined;
  }

  allocTable(): PhysAddr {
    const need = (this.count + 1) * 1024;
    if (need > this.words.length) {
      const grown = new Uint32Array(Math.max(need, this.words.length * 2));
      grown.set(this.words);
      this.words = grown;
    }
    return (this.base + this.count++ * PAGE_SIZE_4K) as PhysAddr;
  }

  updateRoot(_newRoot: never): void {}

  canAllocTables(count: number): boolean {
    return this.base + (this.count + count) * PAGE_SIZE_4K <= PHYS_SPACE_END;
  }

  wouldMove(_table: PhysAddr): boolean {
    return false;
  }

  /** The tables as raw little-endian bytes (`tableCount × 4096`), a copy; byte 0 belongs at `base`. */
  toBytes(): Uint8Array {
    return new Uint8Array(this.words.buffer.slice(0, this.count * PAGE_SIZE_4K));
  }

  private index(addr: number): number {
    const off = addr - this.base;
    if (!(Number.isInteger(off) && off >= 0 && off + 8 <= this.count * PAGE_SIZE_4K && off % 8 === 0)) {
      fail('E_RANGE', `${formatHex(addr)} is not an entry of this table buffer`, { addr });
    }
    return off / 4;
  }
}
