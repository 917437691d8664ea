import { formatVirtAddr, isVmkitError, type PhysAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_HI_XD, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../pte.js';
import { PAGE_AVL_COW } from './constants.js';
import { map } from './map.js';
import { type Mapping, MappingKind } from './mapping.js';
import { PhysTableOps } from './phys-table-ops.js';
import { virtToPhys } from './virt-to-phys.js';

const PAGE = 4096;
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
const HH = 2 ** 47;

/** The reference model: virtual page number → what its leaf should say. */
type Model = Map<number, { pa: number; kind: string; user: boolean }>;

const norm = (k: MappingKind): string =>
  k.type === 'Basic'
    ? `Basic w=${k.writable} x=${k.executable}`
    : k.type === 'Cow'
      ? `Cow x=${k.executable}`
      : 'Unmapped';

function applyModel(model: Model, mp: Mapping): void {
  for (let i = 0; i < mp.len / PAGE; i++) {
    const vpn = mp.virtBase / PAGE + i;
    if (mp.kind.type === 'Unmapped') model.delete(vpn);
    else model.set(vpn, { pa: mp.physBase + i * PAGE, kind: norm(mp.kind), user: mp.userAccessible });
  }
}

function setup(size = 8 << 20) {
  const mem = new PhysicalMemory(size);
  const frames = new BitmapFrameAllocator(mem, { start: PAGE });
  const op = new PhysTableOps(mem, { frames });
  return { mem, frames, op };
}

/** Clusters of virtual pages in both halves, near table boundaries, so random ranges overlap. */
const CLUSTERS = [
  0x1000,
  0x1f_f000, // across a 2 MiB boundary
  0x3fff_0000, // across a 1 GiB boundary
  0x7f_ffff_0000, // across a 512 GiB boundary
  HH - 0x10_000, // top of the lower half
  HH, // bottom of the higher half (0xffff800000000000)
  0xffff_ffe0_0000 - 0x8000, // kernel-ish, near -2 MiB
  2 ** 48 - 0x10_000, // top of the higher half
];

const kindArb: fc.Arbitrary<MappingKind> = fc.oneof(
  fc.constant(MappingKind.Unmapped),
  fc
    .record({ readable: fc.constant(true), writable: fc.boolean(), executable: fc.boolean() })
    .map((p) => MappingKind.basic(p)),
  fc.record({ readable: fc.constant(true), executable: fc.boolean() }).map((p) => MappingKind.cow(p)),
);

const mappingArb: fc.Arbitrary<Mapping> = fc
  .record({
    cluster: fc.nat(CLUSTERS.length - 1),
    page: fc.nat(14),
    pages: fc.integer({ min: 1, max: 12 }),
    // a small pool of frames (aliasing is frequent) and frames past 4 GiB (high word)
    phys: fc.oneof(
      fc.nat(24).map((n) => n * PAGE),
      fc.nat(24).map((n) => 0xf_ffff_0000_0000 + n * PAGE),
    ),
    kind: kindArb,
    user: fc.boolean(),
  })
  .map(({ cluster, page, pages, phys, kind, user }) => {
    const start = CLUSTERS[cluster]! + page * PAGE;
    const limit = start < HH ? HH : 2 ** 48;
    const len = Math.min(pages * PAGE, limit - start);
    return { physBase: phys as PhysAddr, virtBase: start as VirtAddr, len, kind, userAccessible: user };
  });

function checkAgainstModel(op: PhysTableOps, model: Model): void {
  for (const c of CLUSTERS) {
    const from = c;
    const to = Math.min(c + 32 * PAGE, c < HH ? HH : 2 ** 48);
    const got = [...virtToPhys(op, from, to - from)];
    const want = [...model.entries()]
      .filter(([vpn]) => vpn * PAGE >= from && vpn * PAGE < to)
      .sort((a, b) => a[0] - b[0]);
    expect(got.map((g) => [g.virtBase / PAGE, g.physBase, norm(g.kind), g.userAccessible, g.len])).toEqual(
      want.map(([vpn, e]) => [vpn, e.pa, e.kind, e.user, PAGE]),
    );
  }
}

describe('map', () => {
  it('encodes leaves exactly (SDM table 4-20 layout): address, P, A, D, R/W, U/S, bit 9, XD', () => {
    const { op, mem } = setup();
    map(op, {
      physBase: 0x1_2345_6000 as PhysAddr,
      virtBase: 0x40_0000 as VirtAddr,
      len: PAGE,
      kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
      userAccessible: true,
    });
    const leaf = [...virtToPhys(op, 0x40_0000, 1)][0]!;
    expect(leaf.physBase).toBe(0x1_2345_6000);
    // find the PTE by walking by hand: PML4[0] → PDPT[0] → PD[2] → PT[0]
    const next = (table: number, idx: number) => mem.read32(table + idx * 8) & 0xffff_f000;
    const pdpt = next(op.rootTable(), 0);
    const pd = next(pdpt, 0);
    const pt = next(pd, 2);
    expect(mem.read64(pt)).toBe(0x8000_0001_2345_6067n); // XD | addr | D A U/S R/W P
    map(op, {
      physBase: 0x7000 as PhysAddr,
      virtBase: 0x40_1000 as VirtAddr,
      len: PAGE,
      kind: MappingKind.cow({ readable: true, executable: true }),
      userAccessible: false,
    });
    expect(mem.read64(pt + 8)).toBe(BigInt(0x7000 | PAGE_AVL_COW | PTE_D | PTE_A | PTE_P));
    // table entries: P | R/W | U/S | A
    expect(mem.read32(op.rootTable()) & 0xfff).toBe(PTE_P | PTE_RW | PTE_US | PTE_A);
    expect(mem.read32(op.rootTable() + 4)).toBe(0);
    expect(PTE_HI_XD).toBe(0x8000_0000);
  });

  it('works in the higher half: indexes from the 48-bit value, VirtAddr results', () => {
    const { op, mem } = setup();
    const va = virtAddr(0xffff_ffff_8000_0000n); // PML4 511, PDPT 510
    map(op, {
      physBase: 0x20_0000 as PhysAddr,
      virtBase: va,
      len: 2 * PAGE,
      kind: MappingKind.basic({ readable: true, writable: false, executable: true }),
      userAccessible: false,
    });
    expect(mem.read32(op.rootTable() + 511 * 8) & PTE_P).toBe(PTE_P);
    const got = [...virtToPhys(op, va, 2 * PAGE)];
    expect(got.map((g) => formatVirtAddr(g.virtBase))).toEqual(['0xffffffff80000000', '0xffffffff80001000']);
    expect(got.map((g) => g.physBase)).toEqual([0x20_0000, 0x20_1000]);
  });

  it('agrees with a per-page reference model (all kinds, user/supervisor, both halves, aliasing)', () => {
    fc.assert(
      fc.property(fc.array(mappingArb, { minLength: 1, maxLength: 25 }), (ops) => {
        const { op } = setup();
        const model: Model = new Map();
        for (const mp of ops) {
          map(op, mp);
          applyModel(model, mp);
        }
        checkAgainstModel(op, model);
      }),
      { numRuns: 120 },
    );
  });

  it('an aliased frame reads back at both virtual pages', () => {
    const { op } = setup();
    const k = MappingKind.basic({ readable: true, writable: true, executable: false });
    map(op, {
      physBase: 0x5000 as PhysAddr,
      virtBase: 0x1000 as VirtAddr,
      len: PAGE,
      kind: k,
      userAccessible: true,
    });
    map(op, {
      physBase: 0x5000 as PhysAddr,
      virtBase: virtAddr(0xffff_8000_0000_1000n),
      len: PAGE,
      kind: k,
      userAccessible: false,
    });
    expect([...virtToPhys(op, 0x1000, 1)][0]!.physBase).toBe(0x5000);
    expect([...virtToPhys(op, virtAddr(0xffff_8000_0000_1000n), 1)][0]!.physBase).toBe(0x5000);
  });

  it('rejects bad input with typed errors and changes nothing', () => {
    const { op, mem, frames } = setup(1 << 20);
    const k = MappingKind.basic({ readable: true, writable: true, executable: false });
    map(op, { physBase: 0 as PhysAddr, virtBase: 0 as VirtAddr, len: PAGE, kind: k, userAccessible: false });
    const image = mem.exportImage();
    const free = frames.freeFrames;
    const bad: [Partial<Mapping>, string][] = [
      [{ virtBase: 0x1001 as VirtAddr }, 'E_UNALIGNED'],
      [{ physBase: 0x10 as PhysAddr }, 'E_UNALIGNED'],
      [{ len: 0 }, 'E_RANGE'],
      [{ len: 100 }, 'E_UNALIGNED'],
      [{ virtBase: (HH - PAGE) as VirtAddr, len: 2 * PAGE }, 'E_NONCANONICAL'],
      [{ virtBase: (2 ** 48 - PAGE) as VirtAddr, len: 2 * PAGE }, 'E_OVERFLOW'],
      [{ virtBase: (2 ** 48) as VirtAddr }, 'E_RANGE'],
      [{ physBase: (2 ** 52 - PAGE) as PhysAddr, len: 2 * PAGE }, 'E_RANGE'],
      [{ virtBase: 1.5 as VirtAddr }, 'E_INVALID'],
      [{ kind: { type: 'Huge' } as unknown as MappingKind }, 'E_INVALID'],
    ];
    for (const [patch, code] of bad) {
      const mp = {
        physBase: 0x3000 as PhysAddr,
        virtBase: 0x5000 as VirtAddr,
        len: PAGE,
        kind: k,
        userAccessible: false,
        ...patch,
      };
      expect(() => map(op, mp)).toThrow(expect.objectContaining({ code }));
    }
    expect(sameBytes(mem.exportImage(), image)).toBe(true);
    expect(frames.freeFrames).toBe(free);
  });

  it('running out of table frames is E_NOMEM with nothing changed', () => {
    const mem = new PhysicalMemory(16 * PAGE);
    const frames = new BitmapFrameAllocator(mem, { start: PAGE, end: 6 * PAGE }); // root + 4 tables
    const op = new PhysTableOps(mem, { frames });
    const k = MappingKind.basic({ readable: true, writable: true, executable: false });
    map(op, { physBase: 0 as PhysAddr, virtBase: 0 as VirtAddr, len: PAGE, kind: k, userAccessible: false }); // 3 tables
    const image = mem.exportImage();
    // needs a new PD and PT (1 GiB away): 2 tables, only 1 left
    let err: unknown;
    try {
      map(op, {
        physBase: 0 as PhysAddr,
        virtBase: 0x4000_0000 as VirtAddr,
        len: PAGE,
        kind: k,
        userAccessible: false,
      });
    } catch (e) {
      err = e;
    }
    expect(isVmkitError(err, 'E_NOMEM')).toBe(true);
    expect(sameBytes(mem.exportImage(), image)).toBe(true);
    expect(frames.freeFrames).toBe(1);
    // a mapping that needs one table still fits
    map(op, {
      physBase: 0 as PhysAddr,
      virtBase: 0x20_0000 as VirtAddr,
      len: PAGE,
      kind: k,
      userAccessible: false,
    });
    expect(frames.freeFrames).toBe(0);
  });

  it('never splits a large leaf: E_MAPPING_CONFLICT, unless Unmapped covers it whole', () => {
    const { op, mem } = setup();
    const k = MappingKind.basic({ readable: true, writable: true, executable: false });
    map(op, {
      physBase: 0 as PhysAddr,
      virtBase: 0x1000 as VirtAddr,
      len: PAGE,
      kind: k,
      userAccessible: false,
    });
    // turn PD[1] into a 2 MiB leaf by hand
    const pdpt = mem.read32(op.rootTable()) & 0xffff_f000;
    const pd = mem.read32(pdpt) & 0xffff_f000;
    mem.write32(pd + 8, 0x60_0000 | PTE_PS | PTE_P | PTE_RW);
    const image = mem.exportImage();
    expect(() =>
      map(op, {
        physBase: 0 as PhysAddr,
        virtBase: 0x20_1000 as VirtAddr,
        len: PAGE,
        kind: k,
        userAccessible: false,
      }),
    ).toThrow(expect.objectContaining({ code: 'E_MAPPING_CONFLICT' }));
    expect(() =>
      map(op, {
        physBase: 0 as PhysAddr,
        virtBase: 0x20_0000 as VirtAddr,
        len: PAGE,
        kind: MappingKind.Unmapped,
        userAccessible: false,
      }),
    ).toThrow(expect.objectContaining({ code: 'E_MAPPING_CONFLICT' }));
    expect(sameBytes(mem.exportImage(), image)).toBe(true);
    // the large leaf reads back as one 2 MiB mapping
    const got = [...virtToPhys(op, 0x20_0000 + 0x1234, 1)];
    expect(got).toEqual([
      {
        physBase: 0x60_0000,
        virtBase: 0x20_0000,
        len: 0x20_0000,
        kind: { type: 'Basic', readable: true, writable: true, executable: true },
        userAccessible: false,
      },
    ]);
    map(op, {
      physBase: 0 as PhysAddr,
      virtBase: 0x20_0000 as VirtAddr,
      len: 0x20_0000,
      kind: MappingKind.Unmapped,
      userAccessible: false,
    });
    expect([...virtToPhys(op, 0x20_0000, 0x20_0000)]).toEqual([]);
  });

  it('Unmapped allocates no tables', () => {
    const { op, frames } = setup();
    const free = frames.freeFrames;
    map(op, {
      physBase: 0 as PhysAddr,
      virtBase: virtAddr(0xffff_8000_0000_0000n),
      len: 64 * PAGE,
      kind: MappingKind.Unmapped,
      userAccessible: false,
    });
    expect(frames.freeFrames).toBe(free);
  });

  it('adds U/S and R/W to an existing path entry that lacks them', () => {
    const { op, mem } = setup();
    map(op, {
      physBase: 0 as PhysAddr,
      virtBase: 0x1000 as VirtAddr,
      len: PAGE,
      kind: MappingKind.basic({ readable: true, writable: false, executable: false }),
      userAccessible: false,
    });
    mem.write32(op.rootTable(), mem.read32(op.rootTable()) & ~(PTE_US | PTE_RW));
    map(op, {
      physBase: 0 as PhysAddr,
      virtBase: 0x2000 as VirtAddr,
      len: PAGE,
      kind: MappingKind.basic({ readable: true, writable: true, executable: false }),
      userAccessible: true,
    });
    expect(mem.read32(op.rootTable()) & (PTE_US | PTE_RW)).toBe(PTE_US | PTE_RW);
  });
});
