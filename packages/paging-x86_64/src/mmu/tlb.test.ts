import { PAGE_SIZE_2M, type PhysAddr, type VirtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs, SLOW_TIMEOUT } from '../../test/budget.js';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_USER, ACCESS_WRITE } from './access.js';
import { CR4_PAE, CR4_PCIDE, CR4_PGE } from './control-registers.js';
import { type PageFlags, PageMapper } from './mapper.js';
import { FAULT, Mmu } from './mmu.js';
import { TLB_MAX_SIZE, Tlb } from './tlb.js';

const RW: PageFlags = { writable: true, user: true, executable: true };
const GLOBAL: PageFlags = { writable: true, user: false, executable: true, global: true };
const KERNEL = (2 ** 47 + 0x1000_0000) as VirtAddr; // 0xffff800010000000

function world(cr4 = CR4_PAE | CR4_PGE | CR4_PCIDE) {
  const mem = new PhysicalMemory(16 << 20);
  const frames = new BitmapFrameAllocator(mem, { start: 4 << 20 });
  const a = new PageMapper(mem, frames);
  const b = new PageMapper(mem, frames);
  const mmu = new Mmu(mem, { cr4, cr3: a.root, tlbSize: 256 });
  return { mem, frames, a, b, mmu };
}

describe('TLB: PCIDs, global pages, invalidation (SDM §4.10)', () => {
  it('global entries survive CR3 loads when CR4.PGE = 1, and not when PGE = 0', () => {
    for (const pge of [true, false]) {
      const { a, b, mmu } = world(CR4_PAE | (pge ? CR4_PGE : 0));
      a.map(KERNEL, 0x10_0000 as PhysAddr, 4096, GLOBAL);
      b.map(KERNEL, 0x20_0000 as PhysAddr, 4096, GLOBAL);
      expect(mmu.translate(KERNEL, ACCESS_READ)).toBe(0x10_0000);
      mmu.writeCr3(b.root);
      // stale but architecturally allowed with PGE: the global translation of space A is still used
      expect(mmu.translate(KERNEL, ACCESS_READ)).toBe(pge ? 0x10_0000 : 0x20_0000);
      mmu.invlpg(KERNEL); // INVLPG drops global entries too
      expect(mmu.translate(KERNEL, ACCESS_READ)).toBe(0x20_0000);
    }
  });

  it('PCIDs: entries of another PCID are kept across switches; CR3 without no-flush drops the new PCID’s', () => {
    const { a, b, mmu } = world();
    a.map(0x40_0000 as VirtAddr, 0x10_0000 as PhysAddr, 4096, RW);
    b.map(0x40_0000 as VirtAddr, 0x20_0000 as PhysAddr, 4096, RW);
    mmu.writeCr3(a.root + 1);
    expect(mmu.translate(0x40_0000, ACCESS_USER)).toBe(0x10_0000);
    mmu.writeCr3(b.root + 2);
    expect(mmu.translate(0x40_0000, ACCESS_USER)).toBe(0x20_0000); // other PCID: no confusion
    // change A's mapping behind the TLB's back, come back with the no-flush bit: the stale entry of
    // PCID 1 may be (and is) still used; a flushing CR3 load drops it.
    a.unmap(0x40_0000 as VirtAddr);
    a.map(0x40_0000 as VirtAddr, 0x30_0000 as PhysAddr, 4096, RW);
    mmu.writeCr3(a.root + 1, true);
    // (the direct-mapped slot was taken by PCID 2's entry, so this is a fresh walk)
    expect(mmu.translate(0x40_0000, ACCESS_USER)).toBe(0x30_0000);
    a.unmap(0x40_0000 as VirtAddr);
    a.map(0x40_0000 as VirtAddr, 0x10_0000 as PhysAddr, 4096, RW);
    mmu.writeCr3(b.root + 2, true);
    mmu.writeCr3(a.root + 1, true);
    expect(mmu.translate(0x40_0000, ACCESS_USER)).toBe(0x30_0000); // stale, allowed: no invalidation
    mmu.writeCr3(a.root + 1);
    expect(mmu.translate(0x40_0000, ACCESS_USER)).toBe(0x10_0000);
  });

  it('INVPCID: type 0 keeps globals, type 1 drops one PCID, type 2 everything, type 3 all but globals', () => {
    const { a, mmu } = world();
    a.map(0x40_1000 as VirtAddr, 0x10_0000 as PhysAddr, 4096, RW); // slot 1 (KERNEL is in slot 0)
    a.map(KERNEL, 0x11_0000 as PhysAddr, 4096, GLOBAL);
    const fill = (): void => {
      mmu.translate(0x40_1000, ACCESS_USER);
      mmu.translate(KERNEL, ACCESS_READ);
    };
    const cached = (): number[] => mmu.tlb.entries().map((e) => e.pa);
    fill();
    expect(cached().sort()).toEqual([0x10_0000, 0x11_0000]);
    mmu.invpcid(0, 0, KERNEL); // type 0 never drops a global translation
    expect(cached()).toHaveLength(2);
    mmu.invpcid(0, 0, 0x40_1000 as VirtAddr);
    expect(cached()).toEqual([0x11_0000]);
    fill();
    mmu.invpcid(1, 5); // another PCID: nothing
    expect(cached()).toHaveLength(2);
    mmu.invpcid(1, 0);
    expect(cached()).toEqual([0x11_0000]);
    fill();
    mmu.invpcid(3, 0);
    expect(cached()).toEqual([0x11_0000]);
    mmu.invpcid(2, 0);
    expect(cached()).toEqual([]);
    expect(mmu.stats().flushes.invpcid).toBe(6);
  });

  it('INVLPG of any address in a 2 MiB page drops every cached 4 KiB piece of it', () => {
    const { a, mmu } = world();
    a.map(0x4000_0000 as VirtAddr, 0x20_0000 as PhysAddr, 0x20_0000, RW);
    for (let k = 0; k < 8; k++) mmu.translate(0x4000_0000 + k * 0x4_1000, ACCESS_USER);
    expect(mmu.tlb.entries()).toHaveLength(8);
    expect(mmu.tlb.entries()[0]).toMatchObject({ leafSize: 0x20_0000, pcid: 0 });
    mmu.invlpg((0x4000_0000 + 0x1f_f000) as VirtAddr);
    expect(mmu.tlb.entries()).toHaveLength(0);
  });

  it('changing CR4.PGE flushes everything (globals included); a page fault drops its page’s entry', () => {
    const { a, mmu } = world(CR4_PAE | CR4_PGE);
    a.map(KERNEL, 0x11_0000 as PhysAddr, 4096, GLOBAL);
    mmu.translate(KERNEL, ACCESS_READ);
    mmu.writeCr3(a.root);
    expect(mmu.tlb.validCount).toBe(1);
    mmu.writeCr4(CR4_PAE);
    expect(mmu.tlb.validCount).toBe(0);
    mmu.translate(KERNEL, ACCESS_READ);
    expect(mmu.translate(KERNEL, ACCESS_USER)).toBe(FAULT); // user access to a supervisor page
    expect(mmu.tlb.validCount).toBe(0);
    expect(mmu.stats().flushes).toMatchObject({ cr4: 1, fault: 1 });
  });

  it('a conflicting page evicts the slot (direct-mapped), counted', () => {
    const { a, mmu } = world();
    a.map(0x40_0000 as VirtAddr, 0x10_0000 as PhysAddr, 4096, RW);
    a.map((0x40_0000 + 256 * 4096) as VirtAddr, 0x10_1000 as PhysAddr, 4096, RW);
    mmu.translate(0x40_0000, ACCESS_USER);
    mmu.translate(0x40_0000 + 256 * 4096, ACCESS_USER);
    mmu.translate(0x40_0000, ACCESS_USER);
    expect(mmu.stats()).toMatchObject({ misses: 3, hits: 0, evictions: 2, tlbValid: 1 });
  });
});

// ------------------------------------------------------------------------------------------------
// Model check: after any sequence of accesses, page-table changes (without invalidation), CR3 loads,
// INVLPG and INVPCID, a translation through the TLB equals a fresh walk, except where the
// architecture allows a stale entry. The allowed stale cases, named:
//   STALE_NO_INVLPG   — the tables changed and no invalidation covering the page ran since the
//                       translation was cached (SDM §4.10.4.4: software must invalidate);
//   STALE_GLOBAL      — a global translation (G = 1, CR4.PGE = 1) cached under another CR3, kept by
//                       MOV to CR3 / INVPCID types 0, 1, 3 (§4.10.2.4, §4.10.4.1);
//   STALE_OTHER_PCID  — a translation cached under this PCID before a switch away and back with the
//                       no-flush bit, or a CR3 load of another PCID (§4.10.1: PCIDs retain entries).
// The model keeps, per (PCID or "global", page), every translation cached since the last
// invalidation covering it; a TLB answer that differs from the fresh walk must be one of those and
// its cached rights must allow the access. Faults always come from a fresh walk here (the MMU
// re-walks an entry that lacks rights), so they must equal the fresh walk's error code.

interface Rec {
  tag: number | 'g';
  leafStart: number;
  leafEnd: number;
  vpn: number;
  pa4k: number;
  writable: boolean;
  user: boolean;
  executable: boolean;
}

const VAS = [0x40_0000, 0x40_1000, 0x4000_0000, 0x4000_1000, 0x401f_f000, KERNEL, KERNEL + 0x1000];
const FLAGSETS: PageFlags[] = [
  { writable: true, user: true, executable: true },
  { writable: false, user: true, executable: false },
  { writable: true, user: false, executable: true, global: true },
  { writable: false, user: false, executable: true },
];
const ACCS = [
  ACCESS_READ,
  ACCESS_WRITE,
  ACCESS_EXEC,
  ACCESS_USER,
  ACCESS_USER | ACCESS_WRITE,
  ACCESS_USER | ACCESS_EXEC,
];

type Op =
  | { k: 'access'; va: number; acc: number }
  | { k: 'map'; sp: number; va: number; frame: number; fl: number; huge: boolean }
  | { k: 'unmap'; sp: number; va: number }
  | { k: 'protect'; sp: number; va: number; fl: number }
  | { k: 'cr3'; sp: number; noFlush: boolean }
  | { k: 'invlpg'; va: number }
  | { k: 'invpcid'; type: number; pcid: number; va: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('access' as const),
      va: fc.constantFrom(...VAS),
      acc: fc.constantFrom(...ACCS),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('map' as const),
      sp: fc.integer({ min: 0, max: 1 }),
      va: fc.constantFrom(...VAS),
      frame: fc.integer({ min: 0, max: 3 }),
      fl: fc.integer({ min: 0, max: 3 }),
      huge: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('unmap' as const),
      sp: fc.integer({ min: 0, max: 1 }),
      va: fc.constantFrom(...VAS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('protect' as const),
      sp: fc.integer({ min: 0, max: 1 }),
      va: fc.constantFrom(...VAS),
      fl: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('cr3' as const),
      sp: fc.integer({ min: 0, max: 1 }),
      noFlush: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('invlpg' as const), va: fc.constantFrom(...VAS) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('invpcid' as const),
      type: fc.integer({ min: 0, max: 3 }),
      pcid: fc.integer({ min: 0, max: 2 }),
      va: fc.constantFrom(...VAS),
    }),
  },
);

function allowedBy(r: Rec, acc: number): boolean {
  // CPU state of the model check: WP = 1, NXE = 1, SMEP = SMAP = 0.
  const user = (acc & ACCESS_USER) !== 0;
  if (user && !r.user) return false;
  if ((acc & ACCESS_WRITE) !== 0 && !r.writable) return false;
  if ((acc & ACCESS_EXEC) !== 0 && !r.executable) return false;
  return true;
}

const staleSeen = { STALE_NO_INVLPG: 0, STALE_GLOBAL: 0, STALE_OTHER_PCID: 0 };

function runModel(pcide: boolean, ops: Op[]): void {
  const mem = new PhysicalMemory(16 << 20);
  const frames = new BitmapFrameAllocator(mem, { start: 8 << 20 });
  const spaces = [new PageMapper(mem, frames), new PageMapper(mem, frames)];
  const pcids = pcide ? [1, 2] : [0, 0];
  const mmu = new Mmu(mem, { cr4: CR4_PAE | CR4_PGE, cr3: spaces[0]!.root, tlbSize: 16 });
  if (pcide) {
    mmu.writeCr4(CR4_PAE | CR4_PGE | CR4_PCIDE);
    mmu.writeCr3(spaces[0]!.root + pcids[0]!);
  }
  // Start from populated spaces: every test address mapped in both (different frames), the kernel
  // page global in space 0 only, so that switches and stale entries have something to show.
  for (let k = 0; k < VAS.length; k++) {
    const va = VAS[k]! as VirtAddr;
    const kernel = va >= 2 ** 47;
    spaces[0]!.map(va, (0x10_0000 + k * 4096) as PhysAddr, 4096, kernel ? FLAGSETS[2]! : FLAGSETS[0]!);
    if (!kernel) spaces[1]!.map(va, (0x18_0000 + k * 4096) as PhysAddr, 4096, FLAGSETS[k % 2]!);
  }
  let cur = 0;
  let recs: Rec[] = [];
  const lastSwitchAway = new Map<number, number>(); // pcid → op index of last load of another CR3
  const recTime = new WeakMap<Rec, number>();
  for (let n = 0; n < ops.length; n++) {
    const op = ops[n]!;
    const sp = 'sp' in op ? spaces[op.sp]! : spaces[0]!;
    switch (op.k) {
      case 'access': {
        const pcid = pcids[cur]!;
        const vpn = Math.floor(op.va / 4096);
        const fresh = mmu.probe(op.va as VirtAddr, op.acc);
        const r = mmu.translate(op.va, op.acc);
        if (r === FAULT) {
          expect(fresh.ok, `op ${n}: TLB faulted where a fresh walk succeeds`).toBe(false);
          if (!fresh.ok) expect(mmu.fault.errorCode).toBe(fresh.errorCode);
          recs = recs.filter((x) => !(x.vpn === vpn && (x.tag === pcid || x.tag === 'g')));
        } else if (fresh.ok && fresh.pa === r) {
          const size = fresh.size;
          const rec: Rec = {
            tag: fresh.global ? 'g' : pcid,
            leafStart: fresh.leafVa,
            leafEnd: fresh.leafVa + size,
            vpn,
            pa4k: r - (op.va % 4096),
            writable: fresh.writable,
            user: fresh.user,
            executable: fresh.executable,
          };
          recs.push(rec);
          recTime.set(rec, n);
        } else {
          const ok = recs.find(
            (x) =>
              x.vpn === vpn &&
              (x.tag === pcid || x.tag === 'g') &&
              x.pa4k + (op.va % 4096) === r &&
              allowedBy(x, op.acc),
          );
          expect(
            ok,
            `op ${n}: TLB answered ${r} for ${op.va} that no allowed cached translation explains`,
          ).toBeDefined();
          if (ok) {
            if (ok.tag === 'g') staleSeen.STALE_GLOBAL++;
            else if ((lastSwitchAway.get(pcid) ?? -1) > (recTime.get(ok) ?? 0)) staleSeen.STALE_OTHER_PCID++;
            else staleSeen.STALE_NO_INVLPG++;
          }
        }
        break;
      }
      case 'map': {
        const size = op.huge ? 0x20_0000 : 4096;
        const va = op.va - (op.va % size);
        const pa = op.huge ? 0x20_0000 * (op.frame + 1) : 0x10_0000 + op.frame * 4096;
        try {
          sp.map(va as VirtAddr, pa as PhysAddr, size, FLAGSETS[op.fl]!);
        } catch {
          // already mapped: state unchanged
        }
        break;
      }
      case 'unmap':
        sp.unmap(op.va as VirtAddr);
        break;
      case 'protect':
        sp.protectRange(op.va as VirtAddr, 4096, FLAGSETS[op.fl]!);
        break;
      case 'cr3': {
        const noFlush = pcide && op.noFlush;
        const newPcid = pcids[op.sp]!;
        if (op.sp !== cur) lastSwitchAway.set(pcids[cur]!, n);
        mmu.writeCr3(spaces[op.sp]!.root + newPcid, noFlush);
        cur = op.sp;
        if (!noFlush) recs = recs.filter((x) => x.tag !== newPcid);
        break;
      }
      case 'invlpg': {
        const pcid = pcids[cur]!;
        mmu.invlpg(op.va as VirtAddr);
        recs = recs.filter(
          (x) => !((x.tag === pcid || x.tag === 'g') && op.va >= x.leafStart && op.va < x.leafEnd),
        );
        break;
      }
      case 'invpcid': {
        const pcid = pcide ? op.pcid : 0;
        mmu.invpcid(op.type, pcid, op.va as VirtAddr);
        if (op.type === 0)
          recs = recs.filter((x) => !(x.tag === pcid && op.va >= x.leafStart && op.va < x.leafEnd));
        else if (op.type === 1) recs = recs.filter((x) => x.tag !== pcid);
        else if (op.type === 2) recs = [];
        else recs = recs.filter((x) => x.tag === 'g');
        break;
      }
    }
  }
}

describe('TLB storage', () => {
  it('takes a power of two up to 2^20 entries and refuses anything else with E_INVALID', () => {
    expect(TLB_MAX_SIZE).toBe(2 ** 20);
    expect(new Tlb(1).size).toBe(1);
    expect(new Tlb(2 ** 20).mask).toBe(2 ** 20 - 1);
    for (const bad of [0, 3, 1000, 2 ** 21, -4, 1.5]) expect(() => new Tlb(bad)).toThrow(/E_INVALID|E_RANGE/);
  });

  it('one record per slot: key, rights, leaf geometry and addend read back as filled, and a drop clears them', () => {
    const { a, mmu } = world();
    a.map(0x4020_0000 as VirtAddr, 0x40_0000 as PhysAddr, PAGE_SIZE_2M, RW); // a 2 MiB leaf
    expect(mmu.read32(0x4020_3000, ACCESS_USER)).not.toBe(FAULT);
    const t = mmu.tlb;
    const vpn = 0x4020_3000 / 4096;
    const i = vpn & t.mask;
    expect(t.keyAt(i)).toBe(vpn * 8192 + mmu.currentPcid);
    expect(t.shiftAt(i)).toBe(9);
    expect(t.leafVpnAt(i)).toBe(0x4020_0000 / 4096);
    expect(t.addendOf(i)).toBe(0x40_3000 - 0x4020_3000);
    expect(t.effAt(i) & 3).toBe(3); // EFF_RW | EFF_US
    expect(t.entries()).toEqual([
      expect.objectContaining({ slot: i, vpn, pa: 0x40_3000, leafSize: 2 << 20 }),
    ]);
    mmu.invlpg(0x4020_0000 as VirtAddr); // any address of the leaf drops the piece
    expect(t.keyAt(i)).toBe(-1);
    expect(t.shiftAt(i)).toBe(0);
    expect(t.entries()).toEqual([]);
    expect(t.validCount).toBe(0);
  });
});

describe('TLB model check (fast-check)', () => {
  it(
    'with PCIDs: TLB answers = fresh walk, or an architecturally allowed stale entry',
    () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 10, maxLength: 80, size: 'large' }), (ops) =>
          runModel(true, ops),
        ),
        { numRuns: runs(100, 1000) },
      );
    },
    SLOW_TIMEOUT,
  );

  it(
    'without PCIDs (CR4.PCIDE = 0)',
    () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 10, maxLength: 80, size: 'large' }), (ops) =>
          runModel(false, ops),
        ),
        { numRuns: runs(100, 1000) },
      );
    },
    SLOW_TIMEOUT,
  );

  it(
    'exercises every named stale case (fixed seed, so the coverage is deterministic)',
    () => {
      staleSeen.STALE_NO_INVLPG = staleSeen.STALE_GLOBAL = staleSeen.STALE_OTHER_PCID = 0;
      const arb = fc.array(opArb, { minLength: 10, maxLength: 80, size: 'large' });
      for (const ops of fc.sample(arb, { seed: 4242, numRuns: 300 })) runModel(true, ops);
      expect(staleSeen.STALE_NO_INVLPG).toBeGreaterThan(0);
      expect(staleSeen.STALE_GLOBAL).toBeGreaterThan(0);
      expect(staleSeen.STALE_OTHER_PCID).toBeGreaterThan(0);
    },
    SLOW_TIMEOUT,
  );
});
