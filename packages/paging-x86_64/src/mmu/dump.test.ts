import { type PageSize, type PhysAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_G, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW, PTE_US } from '../pte.js';
import { ACCESS_USER } from './access.js';
import { formatInfoMem, formatInfoPg, formatInfoTlb, parseInfoMem, parseInfoTlb } from './dump.js';
import { type PageFlags, PageMapper } from './mapper.js';
import { Mmu } from './mmu.js';

function layout() {
  const mem = new PhysicalMemory(64 << 20);
  const frames = new BitmapFrameAllocator(mem, { start: 16 << 20 });
  const m = new PageMapper(mem, frames);
  m.map(virtAddr(0x400000), 0x100000 as PhysAddr, 0x1000, { writable: false, user: true, executable: true });
  m.map(virtAddr(0x401000), 0x101000 as PhysAddr, 0x1000, { writable: true, user: true, executable: false });
  m.map(virtAddr(0x402000), 0x102000 as PhysAddr, 0x1000, { writable: true, user: true, executable: false });
  m.map(virtAddr('0xffffffff80000000'), 0x200000 as PhysAddr, 0x200000, {
    writable: true,
    user: false,
    executable: true,
    global: true,
    cacheDisable: true,
  });
  return { mem, m };
}

describe('dumps in QEMU formats', () => {
  it('info tlb: one line per present leaf with XGPDACTUW', () => {
    const { mem, m } = layout();
    const mmu = new Mmu(mem, { cr3: m.root });
    mmu.write32(0x401000, 1, ACCESS_USER); // sets A and D
    expect(formatInfoTlb(mem, m.root)).toBe(
      [
        '0000000000400000: 0000000000100000 -------U-',
        '0000000000401000: 0000000000101000 X--DA--UW',
        '0000000000402000: 0000000000102000 X------UW',
        'ffffffff80000000: 0000000000200000 -GP--C--W',
      ].join('\n'),
    );
  });

  it('info mem: runs of equal effective permissions, with an x column', () => {
    const { mem, m } = layout();
    expect(formatInfoMem(mem, m.root)).toBe(
      [
        '0000000000400000-0000000000401000 0000000000001000 ur-x',
        '0000000000401000-0000000000403000 0000000000002000 urw-',
        'ffffffff80000000-ffffffff80200000 0000000000200000 -rwx',
      ].join('\n'),
    );
    expect(formatInfoMem(mem, m.root, { nxe: false }).split('\n')[1]).toBe(
      '0000000000401000-0000000000403000 0000000000002000 urwx',
    );
  });

  it('info pg: the folded tree', () => {
    const { mem, m } = layout();
    expect(formatInfoPg(mem, m.root)).toBe(
      [
        'VPN range             Entry         Flags            Physical page',
        '[000000000-007ffffff] PML4[000]     -------UWP',
        '  [000000000-00003ffff]  PDP[000]     -------UWP',
        '    [000000400-0000005ff]  PDE[002]     -------UWP',
        '      [000000400-000000400]  PTE[000]     -------U-P 0000000100',
        '      [000000401-000000402]  PTE[001-002] X------UWP 0000000101-0000000102',
        '[ff8000000-fffffffff] PML4[1ff]     -------UWP',
        '  [ffff80000-ffffbffff]  PDP[1fe]     -------UWP',
        '    [ffff80000-ffff801ff]  PDE[000]     -GS--C--WP 0000000200-00000003ff',
      ].join('\n'),
    );
  });

  it('parsers reject malformed lines', () => {
    expect(() => parseInfoTlb('0000000000400000 0000000000100000 -------U-')).toThrow(/E_INVALID/);
    expect(() => parseInfoMem('0000000000400000-0000000000401000 1000 ur-x')).toThrow(/E_INVALID/);
  });

  it('re-parsed dumps give back every leaf and every mapped byte (fast-check)', () => {
    const mem = new PhysicalMemory(32 << 20);
    const frames = new BitmapFrameAllocator(mem, { start: 4 << 20 });
    const pageArb = fc.record({
      half: fc.boolean(),
      size: fc.constantFrom(0x1000, 0x1000, 0x20_0000, 0x4000_0000),
      slot: fc.integer({ min: 0, max: 1500 }),
      pa: fc.integer({ min: 0, max: 2 ** 20 }),
      w: fc.boolean(),
      u: fc.boolean(),
      x: fc.boolean(),
      g: fc.boolean(),
      t: fc.boolean(),
      c: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(pageArb, { maxLength: 20 }), (pages) => {
        const m = new PageMapper(mem, frames);
        for (const p of pages) {
          const base = p.half ? 2 ** 48 - 4 * 0x4000_0000 : 0x4000_0000;
          const va = base + ((p.slot * p.size) % (2 * 0x4000_0000));
          const flags: PageFlags = {
            writable: p.w,
            user: p.u,
            executable: p.x,
            global: p.g,
            writeThrough: p.t,
            cacheDisable: p.c,
          };
          try {
            m.map(va as VirtAddr, (p.pa * p.size) as PhysAddr, p.size as PageSize, flags);
          } catch {
            // overlapping: skipped
          }
        }
        const leaves = m.leaves();
        const parsed = parseInfoTlb(formatInfoTlb(mem, m.root));
        expect(parsed).toEqual(
          leaves.map((l) => ({
            va: l.va,
            pa: l.pa,
            flags: {
              xd: l.hi >>> 31 === 1,
              global: (l.lo & PTE_G) !== 0,
              large: l.size > 0x1000 && (l.lo & PTE_PS) !== 0,
              dirty: (l.lo & PTE_D) !== 0,
              accessed: (l.lo & PTE_A) !== 0,
              cacheDisable: (l.lo & PTE_PCD) !== 0,
              writeThrough: (l.lo & PTE_PWT) !== 0,
              user: (l.lo & PTE_US) !== 0,
              writable: (l.lo & PTE_RW) !== 0,
            },
          })),
        );
        // info mem: the runs tile exactly the mapped pages with their effective permissions
        const runs = parseInfoMem(formatInfoMem(mem, m.root));
        expect(runs.reduce((n, r) => n + r.size, 0)).toBe(leaves.reduce((n, l) => n + l.size, 0));
        for (const l of leaves) {
          const r = runs.find((x) => l.va >= x.start && l.va + l.size <= x.end);
          expect(r).toBeDefined();
          expect([r!.user, r!.writable, r!.executable]).toEqual([l.user, l.writable, !l.xd]);
        }
        for (let k = 1; k < runs.length; k++) {
          const a = runs[k - 1]!;
          const b = runs[k]!;
          expect(
            a.end < b.start ||
              a.user !== b.user ||
              a.writable !== b.writable ||
              a.executable !== b.executable,
          ).toBe(true);
        }
        m.destroy();
      }),
      { numRuns: 100 },
    );
  });
});
