import type { VirtAddr } from '@vmkit/addr';
import { isVmkitError } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LONG, runs, SLOW_TIMEOUT } from '../../test/budget.js';
import { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_HI_XD, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../pte.js';
import { ACCESS_EXEC, ACCESS_IMPLICIT, ACCESS_READ, ACCESS_USER, ACCESS_WRITE } from './access.js';
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PKE,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LME,
  EFER_NXE,
} from './control-registers.js';
import { formatErrorCode, PF_ID, PF_P, PF_PK, PF_RSVD, PF_U, PF_W, VECTOR_GP } from './fault.js';
import { FAULT, Mmu } from './mmu.js';

// A hand-built 4-level table (no mapper): PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000, the data
// page at 0x10000. VA uses index 1 / 2 / 3 / 4 at the four levels.
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000;
const PT = 0x4000;
const DATA = 0x10000;
const VA = 1 * 2 ** 39 + 2 * 2 ** 30 + 3 * 2 ** 21 + 4 * 2 ** 12;
const E4 = PML4 + 1 * 8;
const E3 = PDPT + 2 * 8;
const E2 = PD + 3 * 8;
const E1 = PT + 4 * 8;

interface Levels {
  us: [boolean, boolean, boolean, boolean];
  rw: [boolean, boolean, boolean, boolean];
  xd: [boolean, boolean, boolean, boolean];
}

function build(mem: PhysicalMemory, l: Levels, extraLo: number[] = [0, 0, 0, 0]): void {
  const addrs = [E4, E3, E2, E1];
  const targets = [PDPT, PD, PT, DATA];
  for (let k = 0; k < 4; k++) {
    const lo = targets[k]! | PTE_P | (l.rw[k] ? PTE_RW : 0) | (l.us[k] ? PTE_US : 0) | extraLo[k]!;
    mem.write32(addrs[k]!, lo >>> 0);
    mem.write32(addrs[k]! + 4, l.xd[k] ? PTE_HI_XD : 0);
  }
}

const ALL = (v: boolean): [boolean, boolean, boolean, boolean] => [v, v, v, v];

interface Cpu {
  wp: boolean;
  smep: boolean;
  smap: boolean;
  ac: boolean;
  nxe: boolean;
}

function mmuFor(mem: PhysicalMemory, c: Cpu): Mmu {
  return new Mmu(mem, {
    tlbSize: 64,
    cr0: CR0_PE | CR0_PG | (c.wp ? CR0_WP : 0),
    cr4: CR4_PAE | (c.smep ? CR4_SMEP : 0) | (c.smap ? CR4_SMAP : 0),
    efer: EFER_LME | (c.nxe ? EFER_NXE : 0),
    cr3: PML4,
    ac: c.ac,
  });
}

/**
 * An independent reading of SDM Vol. 3A §4.6.1 ("Determination of Access Rights"), written as the
 * section's bullet lists, without sharing code with the MMU.
 */
function sdmAllowed(access: number, l: Levels, c: Cpu): boolean {
  const implicit = (access & ACCESS_IMPLICIT) !== 0;
  const userMode = !implicit && (access & ACCESS_USER) !== 0;
  const write = (access & ACCESS_WRITE) !== 0;
  const fetch = !write && (access & ACCESS_EXEC) !== 0;
  // "If the U/S flag (bit 2) is 0 in at least one of the paging-structure entries, the address is a
  // supervisor-mode address. Otherwise, the address is a user-mode address."
  const userAddress = l.us.every((x) => x);
  // R/W: "If the R/W flag is 0 in at least one ... read-only".
  const readOnly = l.rw.some((x) => !x);
  // XD: "with IA32_EFER.NXE = 1, ... if the XD flag is 1 in any of the entries ... not allowed".
  const xd = c.nxe && l.xd.some((x) => x);
  if (!userMode) {
    if (fetch) {
      if (userAddress && c.smep) return false; // SMEP: supervisor fetches from user-mode addresses
      return !xd;
    }
    if (userAddress && c.smap && (implicit || !c.ac)) return false; // SMAP (reads and writes)
    if (write) return !(readOnly && c.wp); // CR0.WP
    return true;
  }
  if (!userAddress) return false; // user-mode accesses only to user-mode addresses
  if (write) return !readOnly; // regardless of CR0.WP
  if (fetch) return !xd;
  return true;
}

const ACCESSES = [
  ACCESS_READ,
  ACCESS_WRITE,
  ACCESS_EXEC,
  ACCESS_USER,
  ACCESS_USER | ACCESS_WRITE,
  ACCESS_USER | ACCESS_EXEC,
  ACCESS_IMPLICIT,
  ACCESS_IMPLICIT | ACCESS_WRITE,
];

describe('Mmu: access rights (SDM §4.6) and error codes (§4.7)', () => {
  it(
    'agrees with the SDM rules for every U/S and R/W combination across levels, XD, WP, SMEP, SMAP, AC, NXE',
    () => {
      const mem = new PhysicalMemory(0x20000);
      let checked = 0;
      for (let cpuBits = 0; cpuBits < 32; cpuBits++) {
        const c: Cpu = {
          wp: (cpuBits & 1) !== 0,
          smep: (cpuBits & 2) !== 0,
          smap: (cpuBits & 4) !== 0,
          ac: (cpuBits & 8) !== 0,
          nxe: (cpuBits & 16) !== 0,
        };
        const mmu = mmuFor(mem, c);
        for (let us = 0; us < 16; us++) {
          for (let rw = 0; rw < 16; rw++) {
            // By default a quarter of the U/S × R/W combinations for each CPU state (every value of each
            // dimension still occurs); all of them with VMKIT_LONG=1.
            if (!LONG && (us + rw + cpuBits) % 4 !== 0) continue;
            for (const xdAt of [-1, 0, 3]) {
              const l: Levels = {
                us: [0, 1, 2, 3].map((k) => ((us >> k) & 1) === 1) as Levels['us'],
                rw: [0, 1, 2, 3].map((k) => ((rw >> k) & 1) === 1) as Levels['rw'],
                xd: [0, 1, 2, 3].map((k) => k === xdAt) as Levels['xd'],
              };
              if (!c.nxe && xdAt >= 0) continue; // XD is reserved then: covered below
              build(mem, l);
              for (const a of ACCESSES) {
                const r = mmu.probe(VA as VirtAddr, a);
                const want = sdmAllowed(a, l, c);
                expect(r.ok, `${JSON.stringify({ c, l, a })}`).toBe(want);
                if (!r.ok) {
                  const userMode = (a & ACCESS_IMPLICIT) === 0 && (a & ACCESS_USER) !== 0;
                  const fetch = (a & ACCESS_EXEC) !== 0 && (a & ACCESS_WRITE) === 0;
                  const code =
                    PF_P |
                    ((a & ACCESS_WRITE) !== 0 ? PF_W : 0) |
                    (userMode ? PF_U : 0) |
                    (fetch && (c.smep || c.nxe) ? PF_ID : 0);
                  expect(r.errorCode).toBe(code);
                }
                checked++;
              }
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(LONG ? 100_000 : 25_000);
    },
    SLOW_TIMEOUT,
  );

  it('the access path (TLB on) decides like probe, and faults fill the record and CR2', () => {
    const mem = new PhysicalMemory(0x20000);
    const c: Cpu = { wp: true, smep: true, smap: true, ac: false, nxe: true };
    const mmu = mmuFor(mem, c);
    for (let us = 0; us < 16; us += 5) {
      for (let rw = 0; rw < 16; rw += 3) {
        const l: Levels = {
          us: [0, 1, 2, 3].map((k) => ((us >> k) & 1) === 1) as Levels['us'],
          rw: [0, 1, 2, 3].map((k) => ((rw >> k) & 1) === 1) as Levels['rw'],
          xd: ALL(false),
        };
        build(mem, l);
        mmu.flushTlb();
        for (const a of ACCESSES) {
          for (let round = 0; round < 2; round++) {
            const pr = mmu.probe(VA as VirtAddr, a);
            const pa = mmu.translate(VA, a);
            if (pr.ok) expect(pa).toBe(DATA);
            else {
              expect(pa).toBe(FAULT);
              expect(mmu.fault.errorCode).toBe(pr.errorCode);
              expect(mmu.fault.address).toBe(VA);
              expect(mmu.cr2).toBe(VA);
            }
          }
        }
      }
    }
  });
});

describe('Mmu: the miss path against the full walk (fast-check)', () => {
  // The access path serves a miss through a read-only walk that checks everything once at the end
  // (P and A in every entry, reserved and high address bits in any high word, PS in the PML4E, the
  // large leaves' reserved bits) and falls back to the full walk for anything else. `probe` is the
  // full walk without side effects: for random, often malformed, entries at the four levels and a
  // random CPU state, every access through the TLB must give probe's answer (address, or fault and
  // error code), the first time (a miss) and the second (a hit or a re-walk).
  const entry = (target: number): fc.Arbitrary<[number, number]> =>
    fc
      .record({
        to: fc.oneof(
          { weight: 8, arbitrary: fc.constant(target) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfffff }).map((x) => x * 4096) },
          // a large leaf's frame with stray bits where large leaves reserve them (20..13, 29..13)
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 0x3ff }).map((x) => x << 13) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 0x1ffff }).map((x) => x << 13) },
        ),
        p: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.boolean() }),
        flags: fc.integer({ min: 0, max: 0xffe }),
        a: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.boolean() }),
        hi: fc.oneof(
          { weight: 6, arbitrary: fc.constant(0) },
          { weight: 2, arbitrary: fc.constant(PTE_HI_XD) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xfffff }) },
        ),
      })
      .map(({ to, p, flags, a, hi }) => {
        let lo = (to | flags) & ~(PTE_P | PTE_A);
        if (p) lo |= PTE_P;
        if (a) lo |= PTE_A;
        return [lo >>> 0, hi >>> 0];
      });

  it(
    'every access through the TLB agrees with probe, on random entries and CPU states',
    () => {
      // 8 MiB: the 2 MiB and 1 GiB leaves that stray entries make hold VA's page inside the RAM (at
      // 0x604000 for a 1 GiB leaf at 0), so the fast walk serves them when it (wrongly) accepts them.
      const mem = new PhysicalMemory(8 << 20);
      fc.assert(
        fc.property(
          fc.tuple(entry(PDPT), entry(PD), entry(PT), entry(DATA)),
          fc.record({
            wp: fc.boolean(),
            smep: fc.boolean(),
            smap: fc.boolean(),
            ac: fc.boolean(),
            nxe: fc.boolean(),
          }),
          fc.array(fc.constantFrom(...ACCESSES), { minLength: 1, maxLength: 6 }),
          fc.integer({ min: 0, max: 0xfff }),
          (entries, c, accesses, off) => {
            const at = [E4, E3, E2, E1];
            for (let k = 0; k < 4; k++) {
              mem.write32(at[k]!, entries[k]![0]);
              mem.write32(at[k]! + 4, entries[k]![1]);
            }
            const mmu = mmuFor(mem, c);
            const va = VA + (off & ~3);
            for (const a of accesses) {
              for (let round = 0; round < 2; round++) {
                const pr = mmu.probe(va as VirtAddr, a);
                const pa = mmu.translate(va, a);
                if (pr.ok) {
                  expect(pa).toBe(pr.pa);
                } else {
                  expect(pa).toBe(FAULT);
                  expect(mmu.fault.errorCode).toBe(pr.errorCode);
                }
                // The same access as a data read (a user or supervisor read of the word).
                if ((a & (ACCESS_WRITE | ACCESS_EXEC)) === 0) {
                  const v = mmu.read32(va, a);
                  if (pr.ok) expect(v).toBe(pr.pa + 4 <= mem.size ? mem.read32(pr.pa) : 0xffffffff);
                  else expect(v).toBe(FAULT);
                }
              }
            }
          },
        ),
        { numRuns: runs(800, 5000) },
      );
    },
    SLOW_TIMEOUT,
  );

  it('every reserved bit of a large leaf, of the PML4E (PS) and of any high word faults on the access path as in probe', () => {
    const mem = new PhysicalMemory(8 << 20);
    const cases: Array<[number, number, number]> = []; // [entry address, lo, hi]
    // 2 MiB leaf (PDE with PS) with one of bits 20..13 set; 1 GiB leaf (PDPTE with PS) with one of 29..13.
    for (let bit = 13; bit <= 20; bit++) cases.push([E2, (1 << bit) | PTE_PS | 0x27, 0]);
    for (let bit = 13; bit <= 29; bit++) cases.push([E3, (1 << bit) | PTE_PS | 0x27, 0]);
    // PS in the PML4E; a high word with a bit at or above MAXPHYADDR (46) at each level.
    cases.push([E4, PDPT | PTE_PS | 0x27, 0]);
    for (const e of [E4, E3, E2, E1]) cases.push([e, -1, 1 << (46 - 32)]);
    for (const [at, lo, hi] of cases) {
      build(mem, { us: ALL(true), rw: ALL(true), xd: ALL(false) }, [PTE_A, PTE_A, PTE_A, PTE_A]);
      if (lo !== -1) mem.write32(at, lo >>> 0);
      mem.write32(at + 4, hi);
      const mmu = mmuFor(mem, { wp: true, smep: false, smap: false, ac: false, nxe: true });
      const pr = mmu.probe(VA as VirtAddr, ACCESS_USER);
      expect(pr.ok).toBe(false);
      if (pr.ok) continue;
      expect(pr.errorCode & (PF_P | PF_RSVD)).toBe(PF_P | PF_RSVD);
      expect(mmu.translate(VA, ACCESS_USER)).toBe(FAULT);
      expect(mmu.fault.errorCode).toBe(pr.errorCode);
      expect(mmu.read32(VA, ACCESS_USER)).toBe(FAULT);
    }
  });
});

describe('Mmu: worked examples', () => {
  const userRw: Levels = { us: ALL(true), rw: ALL(true), xd: ALL(false) };
  const cpu: Cpu = { wp: true, smep: false, smap: false, ac: false, nxe: true };

  function setup(l: Levels, c: Cpu = cpu, extra?: number[]): { mem: PhysicalMemory; mmu: Mmu } {
    const mem = new PhysicalMemory(0x20000);
    build(mem, l, extra);
    return { mem, mmu: mmuFor(mem, c) };
  }

  it('a user write to a read-only user page: #PF error code 7 (P|W|U)', () => {
    const { mmu } = setup({ ...userRw, rw: [true, true, true, false] });
    expect(mmu.write32(VA, 1, ACCESS_USER)).toBe(false);
    expect(mmu.fault.errorCode).toBe(0x7);
    expect(formatErrorCode(mmu.fault.errorCode)).toBe('P|W|U');
  });

  it('a user read of a supervisor page (U/S = 0 in the PDE only): 5 (P|U)', () => {
    const { mmu } = setup({ ...userRw, us: [true, true, false, true] });
    expect(mmu.read32(VA, ACCESS_USER)).toBe(FAULT);
    expect(mmu.fault.errorCode).toBe(0x5);
  });

  it('CR0.WP: a supervisor write to a read-only page faults with 3 (P|W) only when WP = 1', () => {
    const ro: Levels = { ...userRw, rw: [true, false, true, true] };
    expect(setup(ro).mmu.write32(VA, 1)).toBe(false);
    const { mmu, mem } = setup(ro, { ...cpu, wp: false });
    expect(mmu.write32(VA, 0xabcd)).toBe(true);
    expect(mem.read32(DATA)).toBe(0xabcd);
    const m2 = setup(ro).mmu;
    m2.write32(VA, 1);
    expect(m2.fault.errorCode).toBe(0x3);
  });

  it('not present: P = 0; a user write gives 6 (W|U), a user fetch with NXE 0x14 (U|I/D), without NXE/SMEP 4', () => {
    const mem = new PhysicalMemory(0x20000);
    build(mem, userRw);
    mem.write32(E1, 0); // PTE not present
    const mmu = mmuFor(mem, cpu);
    expect(mmu.write32(VA, 1, ACCESS_USER)).toBe(false);
    expect(mmu.fault.errorCode).toBe(0x6);
    expect(mmu.fault.level).toBe(1);
    expect(mmu.read32(VA, ACCESS_USER | ACCESS_EXEC)).toBe(FAULT);
    expect(mmu.fault.errorCode).toBe(0x14);
    const noNx = mmuFor(mem, { ...cpu, nxe: false });
    expect(noNx.read32(VA, ACCESS_USER | ACCESS_EXEC)).toBe(FAULT);
    expect(noNx.fault.errorCode).toBe(0x4);
  });

  it('XD in the PML4E alone blocks fetches (0x15 = P|U|I/D) and nothing else', () => {
    const { mmu } = setup({ ...userRw, xd: [true, false, false, false] });
    expect(mmu.read32(VA, ACCESS_USER)).toBe(0);
    expect(mmu.read32(VA, ACCESS_USER | ACCESS_EXEC)).toBe(FAULT);
    expect(mmu.fault.errorCode).toBe(0x15);
  });

  it('SMEP: a supervisor fetch from a user page faults with 0x11 (P|I/D)', () => {
    const { mmu } = setup(userRw, { ...cpu, smep: true });
    expect(mmu.read32(VA, ACCESS_EXEC)).toBe(FAULT);
    expect(mmu.fault.errorCode).toBe(0x11);
  });

  it('SMAP: supervisor data access to a user page faults unless RFLAGS.AC (explicit accesses only)', () => {
    const { mmu } = setup(userRw, { ...cpu, smap: true });
    expect(mmu.read32(VA)).toBe(FAULT);
    expect(mmu.fault.errorCode).toBe(0x1);
    mmu.setAc(true);
    expect(mmu.read32(VA)).toBe(0);
    expect(mmu.write32(VA, 5)).toBe(true);
    expect(mmu.read32(VA, ACCESS_IMPLICIT)).toBe(FAULT); // implicit: AC does not help
    expect(mmu.fault.errorCode).toBe(0x1);
    mmu.setAc(false); // CLAC: the cached entry must not let the access through
    expect(mmu.write32(VA, 6)).toBe(false);
    expect(mmu.fault.errorCode).toBe(0x3);
  });

  it('reserved bits set RSVD (with P): PS in a PML4E, address bits ≥ MAXPHYADDR, XD without NXE, large-page bits', () => {
    // PS in the PML4E
    let s = setup(userRw, cpu, [PTE_PS, 0, 0, 0]);
    expect(s.mmu.read32(VA, ACCESS_USER | ACCESS_WRITE)).toBe(FAULT);
    expect(s.mmu.fault.errorCode).toBe(PF_P | PF_RSVD | PF_U | PF_W);
    expect(s.mmu.fault.level).toBe(4);
    // bit 46 of the PTE's address with MAXPHYADDR = 46
    s = setup(userRw);
    s.mem.write32(E1 + 4, 1 << 14);
    expect(s.mmu.read32(VA)).toBe(FAULT);
    expect(s.mmu.fault.errorCode).toBe(PF_P | PF_RSVD);
    // ... but not with MAXPHYADDR = 52 (the address is then simply outside RAM: reads all ones)
    const wide = new Mmu(s.mem, { maxPhyAddr: 52, cr3: PML4 });
    expect(wide.read32(VA)).toBe(0xffff_ffff);
    // XD without NXE (in the PDPTE)
    s = setup({ ...userRw, xd: [false, true, false, false] }, { ...cpu, nxe: false });
    expect(s.mmu.read32(VA)).toBe(FAULT);
    expect(s.mmu.fault.errorCode).toBe(PF_P | PF_RSVD);
    expect(s.mmu.fault.level).toBe(3);
    // a 2 MiB PDE with bit 13 set; a 1 GiB PDPTE with bit 13 set
    s = setup(userRw);
    s.mem.write32(E2, (0x20_0000 | 0x2000 | PTE_P | PTE_PS | PTE_US | PTE_RW) >>> 0);
    expect(s.mmu.read32(VA)).toBe(FAULT);
    expect(s.mmu.fault.errorCode).toBe(PF_P | PF_RSVD);
    s.mem.write32(E2, (0x20_0000 | PTE_P | PTE_PS | PTE_US | PTE_RW) >>> 0);
    const pdBase = VA - (VA % 0x20_0000);
    expect(s.mmu.probe(VA as VirtAddr)).toMatchObject({
      ok: true,
      pa: 0x20_0000 + (VA - pdBase),
      size: 0x20_0000,
    });
    s.mem.write32(E3, (0x4000_0000 | 0x2000 | PTE_P | PTE_PS | PTE_US | PTE_RW) >>> 0);
    expect(s.mmu.probe(VA as VirtAddr)).toMatchObject({ ok: false, errorCode: PF_P | PF_RSVD, level: 3 });
    s.mem.write32(E3, (0x4000_0000 | PTE_P | PTE_PS | PTE_US | PTE_RW) >>> 0);
    expect(s.mmu.probe(VA as VirtAddr)).toMatchObject({
      ok: true,
      pa: 0x4000_0000 + (VA % 0x4000_0000),
      size: 0x4000_0000,
    });
  });

  it('protection keys (CR4.PKE, PKRU): data accesses to user pages, PK bit in the error code', () => {
    const mem = new PhysicalMemory(0x20000);
    build(mem, userRw);
    mem.write32(E1 + 4, 3 << 27); // key 3
    const mmu = new Mmu(mem, { cr3: PML4, cr4: CR4_PAE | CR4_PKE, tlbSize: 64 });
    expect(mmu.read32(VA, ACCESS_USER)).toBe(0);
    mmu.writePkru(1 << 6); // AD3
    expect(mmu.read32(VA, ACCESS_USER)).toBe(FAULT);
    expect(mmu.fault.errorCode).toBe(PF_P | PF_U | PF_PK);
    expect(mmu.read32(VA, ACCESS_USER | ACCESS_EXEC)).toBe(0); // fetches ignore keys
    expect(mmu.read32(VA)).toBe(FAULT); // supervisor data access to a user page: keys apply
    expect(mmu.fault.errorCode).toBe(PF_P | PF_PK);
    mmu.writePkru(1 << 7); // WD3
    expect(mmu.read32(VA, ACCESS_USER)).toBe(0);
    expect(mmu.write32(VA, 1, ACCESS_USER)).toBe(false);
    expect(mmu.fault.errorCode).toBe(PF_P | PF_W | PF_U | PF_PK);
    expect(mmu.write32(VA, 1)).toBe(false); // supervisor write, WP = 1
    expect(mmu.fault.errorCode).toBe(PF_P | PF_W | PF_PK);
    mmu.writeCr0(CR0_PE | CR0_PG); // WP = 0: supervisor writes ignore WD
    expect(mmu.write32(VA, 1)).toBe(true);
    // a read-only page denied by PKRU too: both reasons, the PK bit is set (SDM §4.7)
    mmu.writeCr0(CR0_PE | CR0_PG | CR0_WP);
    mem.write32(E1, (DATA | PTE_P | PTE_US | PTE_A | PTE_D) >>> 0);
    mmu.flushTlb();
    expect(mmu.write32(VA, 1, ACCESS_USER)).toBe(false);
    expect(mmu.fault.errorCode).toBe(PF_P | PF_W | PF_U | PF_PK);
  });
});

describe('Mmu: accessed and dirty bits (SDM §4.8)', () => {
  it('a read sets A at every level and not D; a write sets D on the leaf; a fault writes nothing', () => {
    const mem = new PhysicalMemory(0x20000);
    build(mem, { us: ALL(true), rw: [true, true, true, false], xd: ALL(false) });
    const mmu = new Mmu(mem, { cr3: PML4, tlbSize: 64 });
    expect(mmu.write32(VA, 1, ACCESS_USER)).toBe(false);
    for (const e of [E4, E3, E2, E1]) expect(mem.read32(e) & PTE_A).toBe(0);
    expect(mmu.read32(VA, ACCESS_USER)).toBe(0);
    for (const e of [E4, E3, E2, E1]) expect(mem.read32(e) & PTE_A).toBe(PTE_A);
    expect(mem.read32(E1) & PTE_D).toBe(0);
    for (const e of [E4, E3, E2]) expect(mem.read32(e) & PTE_D).toBe(0);
    mem.write32(E1, mem.read32(E1) | PTE_RW);
    mmu.invlpg(VA as VirtAddr);
    expect(mmu.write32(VA, 7, ACCESS_USER)).toBe(true);
    expect(mem.read32(E1) & PTE_D).toBe(PTE_D);
    for (const e of [E4, E3, E2]) expect(mem.read32(e) & PTE_D).toBe(0);
    expect(mmu.probe(VA as VirtAddr)).toMatchObject({ ok: true, accessed: true, dirty: true });
  });

  it('a read fills the TLB read-only: the first write re-walks and sets D, later writes hit', () => {
    const mem = new PhysicalMemory(0x20000);
    build(mem, { us: ALL(true), rw: ALL(true), xd: ALL(false) });
    const mmu = new Mmu(mem, { cr3: PML4, tlbSize: 64 });
    mmu.read32(VA, ACCESS_USER);
    mmu.read32(VA, ACCESS_USER);
    expect(mmu.stats()).toMatchObject({ walks: 1, hits: 1, misses: 1 });
    expect(mmu.write32(VA, 1, ACCESS_USER)).toBe(true);
    expect(mmu.stats()).toMatchObject({ walks: 2, rightsMisses: 1, dirtyRewalks: 1 });
    expect(mem.read32(E1) & PTE_D).toBe(PTE_D);
    mmu.write32(VA + 4, 2, ACCESS_USER);
    expect(mmu.stats()).toMatchObject({ walks: 2, hits: 2 });
    // software clears D without INVLPG: the cached dirty entry keeps writing without setting it
    // (architecturally allowed, SDM §4.8/§4.10.3.3); after INVLPG the next write sets it again.
    mem.write32(E1, mem.read32(E1) & ~PTE_D);
    mmu.write32(VA, 3, ACCESS_USER);
    expect(mem.read32(E1) & PTE_D).toBe(0);
    mmu.invlpg(VA as VirtAddr);
    mmu.write32(VA, 3, ACCESS_USER);
    expect(mem.read32(E1) & PTE_D).toBe(PTE_D);
  });

  it('probe has no side effects: no A/D bits, no TLB fill, no counters, no CR2', () => {
    const mem = new PhysicalMemory(0x20000);
    build(mem, { us: ALL(true), rw: ALL(true), xd: ALL(false) });
    const mmu = new Mmu(mem, { cr3: PML4, tlbSize: 64 });
    const before = mem.exportImage();
    const r = mmu.probe(VA as VirtAddr, ACCESS_USER | ACCESS_WRITE);
    expect(r).toMatchObject({ ok: true, pa: DATA, size: 4096, writable: true, user: true, accessed: false });
    if (r.ok) expect(r.steps.map((x) => x.addr)).toEqual([E4, E3, E2, E1]);
    expect(mmu.probe((VA + 0x1000) as VirtAddr)).toMatchObject({ ok: false, errorCode: 0, level: 1 });
    expect(mem.exportImage()).toEqual(before);
    expect(mmu.stats()).toMatchObject({ walks: 0, hits: 0, fills: 0, faults: 0, tlbValid: 0 });
    expect(mmu.cr2).toBe(0);
  });
});

describe('Mmu: data access', () => {
  it('reads and writes across a page boundary, translating both pages first', () => {
    const mem = new PhysicalMemory(0x20000);
    build(mem, { us: ALL(true), rw: ALL(true), xd: ALL(false) });
    mem.write32(PT + 5 * 8, (0x11000 | PTE_P | PTE_RW | PTE_US) >>> 0); // next page → 0x11000
    const mmu = new Mmu(mem, { cr3: PML4, tlbSize: 64 });
    expect(mmu.write32(VA + 0xffe, 0x11223344, ACCESS_USER)).toBe(true);
    expect(mem.read8(DATA + 0xffe)).toBe(0x44);
    expect(mem.read8(DATA + 0xfff)).toBe(0x33);
    expect(mem.read8(0x11000)).toBe(0x22);
    expect(mem.read8(0x11001)).toBe(0x11);
    expect(mmu.read32(VA + 0xffe, ACCESS_USER)).toBe(0x11223344);
    expect(mmu.read8(VA + 0x1000, ACCESS_USER)).toBe(0x22);
    expect(mmu.write8(VA + 3, 0x1ff, ACCESS_USER)).toBe(true);
    expect(mem.read8(DATA + 3)).toBe(0xff);
    // second page not present: nothing written, the fault names the second page
    mem.write32(PT + 5 * 8, 0);
    mmu.flushTlb();
    expect(mmu.write32(VA + 0xffd, 0, ACCESS_USER)).toBe(false);
    expect(mmu.fault.address).toBe(VA + 0x1000);
    expect(mem.read8(DATA + 0xffe)).toBe(0x44);
  });

  it('an access running from the lower half into the hole is a #GP; the top of the space wraps to 0', () => {
    const mem = new PhysicalMemory(0x20000);
    const mmu = new Mmu(mem, { cr3: PML4 });
    // map the last lower-half page: PML4[255] → PDPT[511] → PD[511] → PT[511]
    mem.write32(PML4 + 255 * 8, (PDPT | PTE_P | PTE_RW) >>> 0);
    mem.write32(PDPT + 511 * 8, (PD | PTE_P | PTE_RW) >>> 0);
    mem.write32(PD + 511 * 8, (PT | PTE_P | PTE_RW) >>> 0);
    mem.write32(PT + 511 * 8, (DATA | PTE_P | PTE_RW) >>> 0);
    const last = 2 ** 47 - 4096;
    expect(mmu.read32(last + 0xffc)).toBe(0);
    expect(mmu.read32(last + 0xffe)).toBe(FAULT);
    expect(mmu.fault.vector).toBe(VECTOR_GP);
  });

  it('with CR0.PG = 0 addresses are physical', () => {
    const mem = new PhysicalMemory(0x20000);
    mem.write32(0x5000, 42);
    const mmu = new Mmu(mem, { cr0: CR0_PE });
    expect(mmu.read32(0x5000)).toBe(42);
    expect(mmu.translate(0x1234, ACCESS_USER | ACCESS_WRITE)).toBe(0x1234);
  });
});

describe('Mmu: control registers', () => {
  const mem = new PhysicalMemory(0x20000);
  const gp = (f: () => void): void => {
    try {
      f();
    } catch (e) {
      expect(isVmkitError(e, 'E_GP')).toBe(true);
      return;
    }
    throw new Error('no #GP');
  };

  it('checks the #GP conditions and leaves state unchanged', () => {
    const mmu = new Mmu(mem, { cr3: 0x1000 });
    const cr4 = mmu.cr4;
    gp(() => mmu.writeCr3(2 ** 46)); // bit 46 with MAXPHYADDR 46
    gp(() => mmu.writeCr3(0x1000, true)); // no-flush bit without PCIDE
    gp(() => mmu.writeCr4(CR4_PGE)); // clearing PAE in IA-32e mode
    mmu.writeCr3(0x1005);
    gp(() => mmu.writeCr4(cr4 | (1 << 17))); // PCIDE with CR3[11:0] ≠ 0
    expect(mmu.cr4).toBe(cr4);
    mmu.writeCr3(0x1000);
    mmu.writeCr4(cr4 | (1 << 17));
    gp(() => mmu.invpcid(4, 0));
    gp(() => mmu.invpcid(0, 4096));
    gp(() => mmu.writeEfer(EFER_NXE)); // LME cannot change while paging
    const off = new Mmu(mem, { cr0: CR0_PE, cr4: CR4_PGE, efer: EFER_LME });
    gp(() => off.writeCr0(CR0_PE | CR0_PG)); // PG without PAE
    gp(() => off.writeCr0(CR0_PG)); // PG without PE
    gp(() => new Mmu(mem, { cr0: CR0_PE, cr4: CR4_PAE, efer: EFER_LME }).invpcid(1, 3)); // PCID ≠ 0 without PCIDE
    expect(() => new Mmu(mem, { cr4: CR4_PAE | (1 << 12) })).toThrow(/E_UNSUPPORTED/);
    expect(() => new Mmu(mem, { tlbSize: 1000 })).toThrow(/E_INVALID/);
    expect(() => new Mmu(mem, { maxPhyAddr: 53 })).toThrow(/E_INVALID/);
  });
});
