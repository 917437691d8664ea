// Issue 9 §2: the MMU never trusts an argument. Every reproduction of the issue is a case here: an
// access value outside the 16 access values is a typed error and never reaches a tag; an address that
// is not an integer in [0, 2^48) is a #GP fault record on a hit and on a miss alike, never an alias;
// reserved control-register bits are #GP.
import { physAddr, virtAddr, virtAddrFromBits } from '@vmkit/addr';
import { errorCode, expectVmkitError } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../test/budget.js';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { ACCESS_USER, ACCESS_WRITE, type Access } from './access.js';
import { CR0_CD, CR0_NW, CR0_PE, CR0_PG, CR0_WP, CR4_PAE, CR4_PCIDE, CR4_PGE } from './control-registers.js';
import { VECTOR_GP, VECTOR_PF } from './fault.js';
import { PageMapper } from './mapper.js';
import { FAULT, Mmu } from './mmu.js';

const KERNEL = 0x8000_0040_0000; // VirtAddr of 0xffff800000400000: a supervisor page
const USER = 0x40_0000;
const K_DATA = 0x1234_5678;
const U_DATA = 0x0bad_cafe;

function setup(cr4 = CR4_PAE | CR4_PGE) {
  const mem = new PhysicalMemory(4 << 20);
  const frames = new BitmapFrameAllocator(mem, { start: 1 << 20 });
  const mapper = new PageMapper(mem, frames);
  const rw = { writable: true, user: false, executable: false };
  mapper.map(virtAddrFromBits(KERNEL), physAddr(0x10000), 4096, rw);
  mapper.map(virtAddr(USER), physAddr(0x11000), 4096, { ...rw, user: true });
  mem.write32(0x10000, K_DATA);
  mem.write32(0x11000, U_DATA);
  const mmu = new Mmu(mem, { tlbSize: 64, cr4 });
  mmu.writeCr3(mapper.root);
  return { mem, mapper, mmu };
}

// Values a caller may pass for `access` (JavaScript callers, or TypeScript callers with a `number`).
const BAD_ACCESS: unknown[] = [-1, 99, 16, 1.5, 4.25, '4', 'user', Number.NaN, null, true, 4n, {}];
// Values a caller may pass for a virtual address that are not a VirtAddr.
const badVas = (va: number): unknown[] => [
  2 ** 48 + va,
  2 ** 49 + va,
  va + 0.5,
  va + 0.25,
  va - 0.5,
  -va,
  -1,
  -0.5,
  String(va),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53 + va,
  2 ** 64,
  null,
  true,
  BigInt(va),
  { valueOf: () => va },
];

type AnyMmu = {
  translate(va: unknown, a?: unknown): number;
  read32(va: unknown, a?: unknown): number;
  read8(va: unknown, a?: unknown): number;
  write32(va: unknown, v: number, a?: unknown): boolean;
  write8(va: unknown, v: number, a?: unknown): boolean;
};

describe('Mmu: access values outside the 16 are a typed error (never a bypass)', () => {
  it('on a hit and on a miss, for every method; memory and counters unchanged', () => {
    for (const warm of [false, true]) {
      for (const bad of BAD_ACCESS) {
        const { mem, mmu } = setup();
        if (warm) {
          expect(mmu.read32(KERNEL)).toBe(K_DATA); // the supervisor entry is in the TLB
          expect(mmu.write32(KERNEL, K_DATA)).toBe(true); // its write tags too
        }
        const m = mmu as unknown as AnyMmu;
        const before = mmu.stats();
        expectVmkitError(() => m.read32(KERNEL, bad), 'E_INVALID');
        expectVmkitError(() => m.read8(KERNEL, bad), 'E_INVALID');
        expectVmkitError(() => m.translate(KERNEL, bad), 'E_INVALID');
        expectVmkitError(() => m.write32(KERNEL, 7, bad), 'E_INVALID');
        expectVmkitError(() => m.write8(KERNEL, 7, bad), 'E_INVALID');
        expectVmkitError(() => mmu.probe(virtAddrFromBits(KERNEL), bad as Access), 'E_INVALID');
        expect(mem.read32(0x10000)).toBe(K_DATA);
        expect(mmu.stats()).toEqual(before);
      }
    }
  });

  it('names the value as passed', () => {
    const { mmu } = setup();
    const m = mmu as unknown as AnyMmu;
    expect(expectVmkitError(() => m.read32(KERNEL, 'user'), 'E_INVALID').message).toContain('"user"');
    expect(expectVmkitError(() => m.read32(KERNEL, 1.5), 'E_INVALID').message).toContain('1.5');
    expect(expectVmkitError(() => m.read32(KERNEL, -1), 'E_INVALID').message).toContain('-1');
  });

  it('every valid access value still works (the 16 values, including implicit ones)', () => {
    const { mmu } = setup();
    for (let a = 0; a < 16; a++) {
      const user = (a & 8) === 0 && (a & 4) !== 0;
      const fetch = (a & 2) !== 0 && (a & 1) === 0;
      const r = mmu.read32(KERNEL, a as Access);
      // supervisor page, XD: user accesses and fetches fault, supervisor data accesses succeed
      expect(r, `access ${a}`).toBe(user || fetch ? FAULT : K_DATA);
    }
  });
});

describe('Mmu: an address that is not a VirtAddr is a #GP, on a hit and on a miss', () => {
  for (const warm of [false, true]) {
    it(`never an alias, never a throw (${warm ? 'the page is in the TLB' : 'cold TLB'})`, () => {
      for (const [va, data, access] of [
        [KERNEL, K_DATA, 0],
        [USER, U_DATA, ACCESS_USER],
      ] as const) {
        for (const bad of badVas(va)) {
          const { mem, mmu } = setup();
          if (warm) {
            expect(mmu.read32(va, access)).toBe(data);
            expect(mmu.write32(va, data, access)).toBe(true);
            expect(mmu.read8(va, access)).toBe(data & 0xff);
          }
          const m = mmu as unknown as AnyMmu;
          const check = (got: unknown, fail: unknown): void => {
            expect(got, `${String(bad)}`).toBe(fail);
            expect(mmu.fault.vector).toBe(VECTOR_GP);
            expect(mmu.fault.errorCode).toBe(0);
            expect(mmu.fault.value).toBe(bad);
            expect(mmu.fault.toString()).toContain('#GP(0)');
          };
          check(m.read32(bad, access), FAULT);
          check(m.read8(bad, access), FAULT);
          check(m.translate(bad, access), FAULT);
          check(m.write32(bad, 0x5555_5555, access), false);
          check(m.write8(bad, 0x55, access), false);
          expect(mem.read32(0x10000)).toBe(K_DATA);
          expect(mem.read32(0x11000)).toBe(U_DATA);
          // nothing was cached for it: the valid address still hits as before and no other key exists
          expect(mmu.tlb.entries().every((e) => e.vpn === Math.floor(va / 4096))).toBe(true);
        }
      }
    });
  }

  it('prints the value as passed (no #PF at 0xNaN)', () => {
    const { mmu } = setup();
    const m = mmu as unknown as AnyMmu;
    m.read32(Number.NaN);
    expect(mmu.fault.toString()).toBe(
      '#GP(0): address NaN is not a canonical virtual address (an integer in [0, 2^48))',
    );
    m.read32('4194304');
    expect(mmu.fault.toString()).toContain('"4194304"');
    m.read32(2 ** 48 + USER);
    expect(mmu.fault.toString()).toContain('0x1000000400000');
    expect(mmu.fault.toJSON().vector).toBe(VECTOR_GP);
    // a #PF in the higher half prints canonically
    expect(mmu.read32(KERNEL + 0x1000)).toBe(FAULT);
    expect(mmu.fault.vector).toBe(VECTOR_PF);
    expect(mmu.fault.toString()).toBe('#PF at 0xffff800000401000 (-: not present, read, supervisor)');
    expect(mmu.fault.value).toBeUndefined();
  });

  it('a fraction of .5 never matches a neighbouring PCID or a global entry', () => {
    // With PCIDs, 2 × (va + .5 − offset) is one above va's key: the key of PCID + 1, or of a global
    // entry for PCID 4095 (4095 + 1 = the global tag).
    const { mmu, mapper } = setup(CR4_PAE | CR4_PGE | CR4_PCIDE);
    mmu.writeCr3(mapper.root + 1); // PCID 1
    expect(mmu.read32(USER, ACCESS_USER)).toBe(U_DATA);
    mmu.writeCr3(mapper.root + 0); // PCID 0: the PCID 1 entry stays
    const m = mmu as unknown as AnyMmu;
    expect(m.read32(USER + 0.5, ACCESS_USER)).toBe(FAULT);
    expect(mmu.fault.vector).toBe(VECTOR_GP);
    // PCID 4095 against a global entry
    const g = setup(CR4_PAE | CR4_PGE | CR4_PCIDE);
    g.mapper.protectRange(virtAddr(USER), 4096, {
      writable: true,
      user: true,
      executable: false,
      global: true,
    });
    expect(g.mmu.read32(USER, ACCESS_USER)).toBe(U_DATA); // a global entry
    g.mmu.writeCr3(g.mapper.root + 4095);
    expect(g.mmu.read32(USER, ACCESS_USER)).toBe(U_DATA); // global: hits under every PCID
    expect((g.mmu as unknown as AnyMmu).read32(USER - 4096 + 0.5, ACCESS_USER)).toBe(FAULT);
    expect(g.mmu.fault.vector).toBe(VECTOR_GP);
  });

  it('any Number that is not a VirtAddr faults on every method (fast-check), after a warm-up of the page', () => {
    const { mmu } = setup();
    const m = mmu as unknown as AnyMmu;
    const notVirt = fc.oneof(
      fc.double({ noDefaultInfinity: false }).filter((v) => !(Number.isInteger(v) && v >= 0 && v < 2 ** 48)),
      fc.integer({ min: 1, max: 2 ** 52 }).map((k) => 2 ** 48 * (1 + (k % 16)) + USER + (k % 4096)),
      fc.integer({ min: 0, max: 4095 }).map((o) => USER + o + 0.5),
    );
    fc.assert(
      fc.property(notVirt, (bad) => {
        expect(mmu.read32(USER, ACCESS_USER)).toBe(U_DATA);
        expect(m.read32(bad, ACCESS_USER)).toBe(FAULT);
        expect(mmu.fault.vector).toBe(VECTOR_GP);
        expect(m.translate(bad, ACCESS_USER | ACCESS_WRITE)).toBe(FAULT);
        expect(m.write32(bad, 1, ACCESS_USER)).toBe(false);
      }),
      { numRuns: runs(500, 5000) },
    );
    expect(mmu.read32(USER, ACCESS_USER)).toBe(U_DATA);
  });
});

describe('Mmu: reserved control-register bits are #GP', () => {
  it('writeCr0(-1), writeEfer(-1), CR4 reserved bits, CR0.NW without CD: E_GP and nothing changes', () => {
    const { mmu } = setup();
    const regs = () => [mmu.cr0, mmu.cr3, mmu.cr4, mmu.efer];
    const before = regs();
    expectVmkitError(() => mmu.writeCr0(-1), 'E_GP');
    expectVmkitError(() => mmu.writeCr0(0xffff_ffff), 'E_GP');
    expectVmkitError(() => mmu.writeCr0(CR0_PE | CR0_WP | CR0_PG | (1 << 7)), 'E_GP');
    expectVmkitError(() => mmu.writeCr0(CR0_PE | CR0_WP | CR0_PG | CR0_NW), 'E_GP');
    expectVmkitError(() => mmu.writeEfer(-1), 'E_GP');
    expectVmkitError(() => mmu.writeEfer(mmu.efer | (1 << 12)), 'E_GP');
    expectVmkitError(() => mmu.writeCr4(mmu.cr4 | (1 << 15)), 'E_GP');
    expectVmkitError(() => mmu.writeCr4(mmu.cr4 | (1 << 31)), 'E_GP');
    expect(regs()).toEqual(before);
    // the defined bits are accepted: CD and NW together, SCE, and LMA written back as read
    expect(errorCode(() => mmu.writeCr0(CR0_PE | CR0_WP | CR0_PG | CR0_CD | CR0_NW))).toBeUndefined();
    expect(errorCode(() => mmu.writeEfer(mmu.efer | 1))).toBeUndefined();
    expect(errorCode(() => mmu.writeEfer(mmu.efer))).toBeUndefined();
    // non-numbers: E_INVALID, named as passed
    expect(expectVmkitError(() => mmu.writeCr0('1' as unknown as number), 'E_INVALID').message).toContain(
      '"1"',
    );
  });
});
