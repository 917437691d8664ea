/**
 * The exported image must mean the same to any correct x86-64 implementation. This file holds an
 * independent decoder of the architectural format (Intel SDM Vol. 3A §4.5: 4-level paging, CR3 →
 * PML4E → PDPTE → PDE → PTE, 8-byte little-endian entries, PS at bit 7 of PDPTE/PDE, address bits
 * 51:12, XD bit 63) that reads only a raw image and a CR3 value, using BigInt and DataView — nothing
 * from this package — and checks it against what the package built.
 */
import { type PhysAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { map } from './map.js';
import { MappingKind } from './mapping.js';
import { PhysTableOps } from './phys-table-ops.js';
import { compactSnapshot } from './snapshot.js';
import { virtToPhys } from './virt-to-phys.js';

interface Decoded {
  va: bigint; // canonical 64-bit
  pa: bigint;
  size: bigint;
  write: boolean;
  user: boolean;
  nx: boolean;
  cow: boolean;
}

/** Walks every present leaf of the tables at `cr3` in a raw image loaded at physical `base`. */
function decode(image: Uint8Array, base: bigint, cr3: bigint): Decoded[] {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const entry = (table: bigint, i: number): bigint => dv.getBigUint64(Number(table - base) + i * 8, true);
  const out: Decoded[] = [];
  const walk = (
    table: bigint,
    level: number,
    vaPrefix: bigint,
    acc: { write: boolean; user: boolean; nx: boolean },
  ) => {
    for (let i = 0; i < 512; i++) {
      const e = entry(table, i);
      if ((e & 1n) === 0n) continue;
      const shift = BigInt(12 + 9 * (level - 1));
      const va = vaPrefix | (BigInt(i) << shift);
      const eff = {
        write: acc.write && (e & 2n) !== 0n,
        user: acc.user && (e & 4n) !== 0n,
        nx: acc.nx || e >> 63n === 1n,
      };
      const addr = e & 0x000f_ffff_ffff_f000n;
      const isLeaf = level === 1 || ((level === 2 || level === 3) && (e & 0x80n) !== 0n);
      if (isLeaf) {
        const size = 1n << shift;
        const canon = (va & (1n << 47n)) !== 0n ? va | 0xffff_0000_0000_0000n : va;
        out.push({ va: canon, pa: addr & ~(size - 1n), size, ...eff, cow: (e & 0xe00n) === 0x200n });
      } else {
        walk(addr, level - 1, va, eff);
      }
    }
  };
  walk(cr3 & 0x000f_ffff_ffff_f000n, 4, 0n, { write: true, user: true, nx: false });
  return out;
}

describe('raw image + CR3 decoded independently', () => {
  it('a hand-checked layout decodes to the same leaves (both halves, high physical addresses)', () => {
    const mem = new PhysicalMemory(1 << 20);
    const frames = new BitmapFrameAllocator(mem, { start: 0x8_0000 });
    const op = new PhysTableOps(mem, { frames });
    map(op, {
      physBase: 0x3_0000_0000 as PhysAddr,
      virtBase: 0x40_0000 as VirtAddr,
      len: 0x2000,
      kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
      userAccessible: true,
    });
    map(op, {
      physBase: 0x7000 as PhysAddr,
      virtBase: virtAddr(0xffff_ffff_8000_0000n),
      len: 0x1000,
      kind: MappingKind.cow({ readable: true, executable: true }),
      userAccessible: false,
    });
    const d = decode(mem.exportImage(), 0n, BigInt(op.rootTable()));
    expect(d).toEqual([
      { va: 0x40_0000n, pa: 0x3_0000_0000n, size: 0x1000n, write: true, user: true, nx: true, cow: false },
      { va: 0x40_1000n, pa: 0x3_0000_1000n, size: 0x1000n, write: true, user: true, nx: true, cow: false },
      {
        va: 0xffff_ffff_8000_0000n,
        pa: 0x7000n,
        size: 0x1000n,
        write: false,
        user: false,
        nx: false,
        cow: true,
      },
    ]);
  });

  it('random mappings and their compacted snapshots decode to what virtToPhys reports', () => {
    const arb = fc.array(
      fc.record({
        vpn: fc.oneof(
          fc.nat(3000),
          fc.nat(3000).map((n) => 2 ** 35 + n),
          fc.nat(3000).map((n) => 2 ** 36 - 1 - n),
        ),
        pages: fc.integer({ min: 1, max: 5 }),
        frame: fc.nat(100),
        w: fc.boolean(),
        x: fc.boolean(),
        cow: fc.boolean(),
        user: fc.boolean(),
      }),
      { minLength: 1, maxLength: 12 },
    );
    fc.assert(
      fc.property(arb, (ms) => {
        const mem = new PhysicalMemory(4 << 20);
        const frames = new BitmapFrameAllocator(mem, { start: 0x20_0000 });
        const op = new PhysTableOps(mem, { frames });
        for (const m of ms) {
          const va = m.vpn * 4096;
          const limit = va < 2 ** 47 ? 2 ** 47 : 2 ** 48;
          const len = Math.min(m.pages * 4096, limit - va);
          const kind = m.cow
            ? MappingKind.cow({ readable: true, executable: m.x })
            : MappingKind.basic({ readable: true, writable: m.w, executable: m.x });
          map(op, {
            physBase: (m.frame * 4096) as PhysAddr,
            virtBase: va as VirtAddr,
            len,
            kind,
            userAccessible: m.user,
          });
        }
        const expected = [...virtToPhys(op, 0, 2 ** 48)].map((m) => ({
          va: m.virtBase >= 2 ** 47 ? BigInt(m.virtBase) | 0xffff_0000_0000_0000n : BigInt(m.virtBase),
          pa: BigInt(m.physBase),
          size: BigInt(m.len),
          write: m.kind.type === 'Basic' && m.kind.writable,
          user: m.userAccessible,
          nx: m.kind.type !== 'Unmapped' && !m.kind.executable,
          cow: m.kind.type === 'Cow',
        }));
        expect(decode(mem.exportImage(), 0n, BigInt(op.rootTable()))).toEqual(expected);
        // the compacted snapshot, decoded from its own bytes at its base
        const snap = compactSnapshot(mem, [op.rootTable()], { base: 0x1_0000_0000 });
        const d = decode(snap.image, 0x1_0000_0000n, BigInt(snap.roots[0]!));
        expect(
          d.map((x) => [
            x.va,
            x.write,
            x.user,
            x.nx,
            x.cow || (expected.find((e) => e.va === x.va)?.write ?? false),
          ]),
        ).toEqual(expected.map((e) => [e.va, false, e.user, e.nx, e.cow || e.write]));
        for (const x of d)
          expect(x.pa >= 0x1_0000_0000n && x.pa < 0x1_0000_0000n + BigInt(snap.dataPages * 4096)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
