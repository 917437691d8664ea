/**
 * Hyperlight's own unit-test scenarios for `hyperlight_common::vmem` on amd64 (arch/amd64/vmem.rs),
 * translated: index extraction, flag helpers, map of single/multiple pages, table reuse, virtToPhys
 * with unaligned starts and lengths, the modify_ptes iterator and entry_addr arithmetic. Like upstream,
 * they run over a mock table store whose table address is a (table index, entry index) pair.
 */
import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import { describe, expect, it } from 'vitest';
import { PTE_HI_XD, PTE_RW } from '../pte.js';
import {
  bits,
  PAGE_PRESENT,
  PAGE_SIZE,
  PAGE_TABLE_ENTRIES_PER_TABLE,
  PAGE_TABLE_SIZE,
  PTE_ADDR_MASK,
} from './constants.js';
import { map } from './map.js';
import { leafFlagsHi, leafFlagsLo, type Mapping, MappingKind } from './mapping.js';
import { modifyPtes } from './modify-ptes.js';
import { MayNotMoveTable, type PteWords, type TableOps } from './table-ops.js';
import { UpdateParentNone } from './update-parent.js';
import { virtToPhys } from './virt-to-phys.js';

type Addr = readonly [table: number, entry: number];

/** Page tables as a list of 512-entry tables (two words an entry); address = [table, entry]. */
class MockTableOps implements TableOps<Addr, MayNotMoveTable> {
  readonly tableMovability = MayNotMoveTable;
  readonly tables: Uint32Array[] = [new Uint32Array(PAGE_TABLE_ENTRIES_PER_TABLE * 2)];
  tableCount(): number {
    return this.tables.length;
  }
  getEntry(table: number, entry: number): bigint {
    const t = this.tables[table]!;
    return (BigInt(t[entry * 2 + 1]!) << 32n) | BigInt(t[entry * 2]!);
  }
  entryAddr(addr: Addr, entryOffset: number): Addr {
    return this.fromPhys((this.toPhys(addr) + entryOffset) as PhysAddr);
  }
  readEntry(addr: Addr, out: PteWords): PteWords {
    const t = this.tables[addr[0]]!;
    out[0] = t[addr[1] * 2]!;
    out[1] = t[addr[1] * 2 + 1]!;
    return out;
  }
  toPhys(addr: Addr): PhysAddr {
    return (addr[0] * PAGE_TABLE_SIZE + addr[1] * 8) as PhysAddr;
  }
  fromPhys(pa: PhysAddr): Addr {
    return [Math.floor(pa / PAGE_TABLE_SIZE), (pa % PAGE_TABLE_SIZE) / 8];
  }
  rootTable(): Addr {
    return [0, 0];
  }
  allocTable(): Addr {
    this.tables.push(new Uint32Array(PAGE_TABLE_ENTRIES_PER_TABLE * 2));
    return [this.tables.length - 1, 0];
  }
  writeEntry(addr: Addr, lo: number, hi: number): undefined {
    const t = this.tables[addr[0]]!;
    t[addr[1] * 2] = lo;
    t[addr[1] * 2 + 1] = hi;
    return undefined;
  }
  updateRoot(_n: never): void {}
}

const rw = MappingKind.basic({ readable: true, writable: true, executable: false });
const m = (phys: number, virt: number, len: number, kind: MappingKind = rw): Mapping => ({
  physBase: phys as PhysAddr,
  virtBase: virt as VirtAddr,
  len,
  kind,
  userAccessible: false,
});
const PAGE_NX = 1n << 63n;
const RW = BigInt(PTE_RW);
const P = BigInt(PAGE_PRESENT);

describe('bits() index extraction (upstream test_bits_*)', () => {
  it('extracts each level index', () => {
    expect(bits(0x0000_0080_0000_0000, 47, 39)).toBe(1);
    expect(bits(0x4000_0000, 38, 30)).toBe(1);
    expect(bits(0x0000_0000_0020_0000, 29, 21)).toBe(1);
    expect(bits(0x1000, 20, 12)).toBe(1);
    expect(bits(0x0000_ff80_0000_0000, 47, 39)).toBe(511);
  });
});

describe('PTE flag helpers (upstream test_page_rw_flag_* / test_page_nx_flag_*)', () => {
  it('R/W only when writable, XD only when not executable', () => {
    expect(
      leafFlagsLo(MappingKind.basic({ readable: true, writable: true, executable: true }), false) & PTE_RW,
    ).toBe(PTE_RW);
    expect(
      leafFlagsLo(MappingKind.basic({ readable: true, writable: false, executable: true }), false) & PTE_RW,
    ).toBe(0);
    expect(leafFlagsHi(MappingKind.basic({ readable: true, writable: false, executable: true }))).toBe(0);
    expect(leafFlagsHi(MappingKind.basic({ readable: true, writable: false, executable: false }))).toBe(
      PTE_HI_XD,
    );
  });
});

describe('map() (upstream test_map_*)', () => {
  it('maps a single page: PML4 + PDPT + PD + PT, flags and address', () => {
    const ops = new MockTableOps();
    map(ops, m(0x1000, 0x1000, PAGE_SIZE));
    expect(ops.tableCount()).toBe(4);
    const pml4 = ops.getEntry(0, 0);
    expect(pml4 & P).not.toBe(0n);
    expect(pml4 & RW).not.toBe(0n);
    const pte = ops.getEntry(3, 1);
    expect(pte & P).not.toBe(0n);
    expect(pte & RW).not.toBe(0n);
    expect(pte & PAGE_NX).not.toBe(0n);
    expect(pte & PTE_ADDR_MASK).toBe(0x1000n);
  });

  it('maps an executable read-only page', () => {
    const ops = new MockTableOps();
    map(
      ops,
      m(0x2000, 0x2000, PAGE_SIZE, MappingKind.basic({ readable: true, writable: false, executable: true })),
    );
    const pte = ops.getEntry(3, 2);
    expect(pte & P).not.toBe(0n);
    expect(pte & RW).toBe(0n);
    expect(pte & PAGE_NX).toBe(0n);
  });

  it('maps multiple pages', () => {
    const ops = new MockTableOps();
    map(ops, m(0x10000, 0x10000, 4 * PAGE_SIZE));
    for (let i = 0; i < 4; i++) {
      const pte = ops.getEntry(3, 16 + i);
      expect(pte & P).not.toBe(0n);
      expect(pte & PTE_ADDR_MASK).toBe(BigInt(0x10000 + i * PAGE_SIZE));
    }
  });

  it('reuses existing tables', () => {
    const ops = new MockTableOps();
    map(ops, m(0x1000, 0x1000, PAGE_SIZE));
    const after = ops.tableCount();
    map(ops, m(0x5000, 0x5000, PAGE_SIZE));
    expect(ops.tableCount()).toBe(after);
  });
});

describe('virtToPhys() (upstream test_virt_to_phys_*)', () => {
  it('finds a mapped address', () => {
    const ops = new MockTableOps();
    map(ops, m(0x1000, 0x1000, PAGE_SIZE));
    expect(virtToPhys(ops, 0x1000, 1).next().value?.physBase).toBe(0x1000);
  });
  it('handles an unaligned address', () => {
    const ops = new MockTableOps();
    map(ops, m(0x1000, 0x1000, PAGE_SIZE));
    expect(virtToPhys(ops, 0x1234, 1).next().value?.physBase).toBe(0x1000);
  });
  it('an unaligned start whose length crosses a page yields both pages', () => {
    const ops = new MockTableOps();
    map(ops, m(0x1000, 0x1000, 2 * PAGE_SIZE));
    const r = [...virtToPhys(ops, 0x1f00, 0x300)];
    expect(r.map((x) => x.physBase)).toEqual([0x1000, 0x2000]);
  });
  it('an unaligned start with a multi-page length yields every page touched', () => {
    const ops = new MockTableOps();
    // upstream maps 2 pages + 512 bytes, i.e. three leaves; our map takes whole pages
    map(ops, m(0x1000, 0x1000, 3 * PAGE_SIZE));
    const r = [...virtToPhys(ops, 0x1234, PAGE_SIZE * 2 + 0x10)];
    expect(r.map((x) => x.physBase)).toEqual([0x1000, 0x2000, 0x3000]);
  });
  it('reads back every kind it maps', () => {
    const kinds: MappingKind[] = [
      MappingKind.basic({ readable: true, writable: false, executable: false }),
      MappingKind.basic({ readable: true, writable: false, executable: true }),
      MappingKind.basic({ readable: true, writable: true, executable: false }),
      MappingKind.basic({ readable: true, writable: true, executable: true }),
      MappingKind.cow({ readable: true, executable: false }),
      MappingKind.cow({ readable: true, executable: true }),
    ];
    for (const kind of kinds) {
      const ops = new MockTableOps();
      map(ops, m(0x1000, 0x1000, PAGE_SIZE, kind));
      expect(virtToPhys(ops, 0x1000, 1).next().value?.kind).toEqual(kind);
    }
  });
  it('yields nothing for an unmapped address, in an empty space or an existing PT', () => {
    expect(virtToPhys(new MockTableOps(), 0x1000, 1).next().done).toBe(true);
    const ops = new MockTableOps();
    map(ops, m(0x1000, 0x1000, PAGE_SIZE));
    expect(virtToPhys(ops, 0x5000, 1).next().done).toBe(true);
  });
});

describe('modifyPtes() iterator (upstream test_modify_pte_iterator_*)', () => {
  const ops = new MockTableOps();
  const req = (vmin: number, len: number) => ({
    tableBase: ops.rootTable(),
    vmin,
    len,
    updateParent: new UpdateParentNone(ops.rootTable()),
  });
  it('one page gives one response', () => {
    const r = [...modifyPtes(ops, req(0x1000, PAGE_SIZE), 20, 12)];
    expect(r.length).toBe(1);
    expect(r[0]!.vmin).toBe(0x1000);
    expect(r[0]!.len).toBe(PAGE_SIZE);
    expect(r[0]!.entryPtr).toEqual([0, 1]);
  });
  it('three pages give three responses', () => {
    expect([...modifyPtes(ops, req(0x1000, 3 * PAGE_SIZE), 20, 12)].length).toBe(3);
  });
  it('zero length gives none', () => {
    expect([...modifyPtes(ops, req(0x1000, 0), 20, 12)].length).toBe(0);
  });
  it('an unaligned start splits at the page boundary', () => {
    const r = [...modifyPtes(ops, req(0x1800, 0x1000), 20, 12)];
    expect(r.map((x) => [x.vmin, x.len])).toEqual([
      [0x1800, 0x800],
      [0x2000, 0x800],
    ]);
  });
});

describe('entryAddr arithmetic (upstream test_entry_addr_* / test_to_phys_from_phys_roundtrip)', () => {
  const ops = new MockTableOps();
  it('adds a byte offset to a table base', () => {
    expect(ops.entryAddr([2, 0], 40)).toEqual([2, 5]);
  });
  it('adds a byte offset to a non-zero entry', () => {
    expect(ops.entryAddr([1, 10], 16)).toEqual([1, 12]);
  });
  it('toPhys and fromPhys round-trip', () => {
    expect(ops.fromPhys(ops.toPhys([3, 42]))).toEqual([3, 42]);
  });
});
