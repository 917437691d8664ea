import { type PageSize, type PhysAddr, physAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs, SLOW_TIMEOUT } from '../../test/budget.js';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_G, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW, PTE_US } from '../pte.js';
import { ACCESS_USER } from './access.js';
import {
  formatInfoMem,
  formatInfoPg,
  formatInfoTlb,
  parseInfoMem,
  parseInfoPg,
  parseInfoTlb,
} from './dump.js';
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

  it('info mem: a run reaching the top of the space ends at 0001000000000000, as QEMU prints it', () => {
    const mem = new PhysicalMemory(8 << 20);
    const m = new PageMapper(mem, new BitmapFrameAllocator(mem, { start: 4 << 20 }));
    const rw = { writable: true, user: false, executable: false };
    m.map(virtAddr('0xfffffffffffff000'), physAddr(0x1000), 0x1000, rw);
    m.map(virtAddr('0x7ffffffff000'), physAddr(0x2000), 0x1000, rw);
    const text = formatInfoMem(mem, m.root);
    expect(text).toBe(
      [
        '00007ffffffff000-ffff800000000000 0000000000001000 -rw-',
        'fffffffffffff000-0001000000000000 0000000000001000 -rw-',
      ].join('\n'),
    );
    expect(parseInfoMem(text).map((r) => [r.start, r.end])).toEqual([
      [0x7fff_ffff_f000, 2 ** 47],
      [2 ** 48 - 0x1000, 2 ** 48],
    ]);
  });

  it("parseInfoMem reads QEMU's own info mem (no x column) and ours", () => {
    // As QEMU 7.2 prints it for a guest (target/i386/monitor.c mem_print: %016x-%016x %016x urw).
    const qemu = [
      '0000000000400000-0000000000401000 0000000000001000 ur-',
      '0000000000600000-0000000000602000 0000000000002000 urw',
      'ffff888000000000-ffff888000200000 0000000000200000 -rw',
    ].join('\n');
    const r = parseInfoMem(qemu);
    expect(r.map((x) => [x.start, x.end, x.size, x.user, x.writable, 'executable' in x])).toEqual([
      [0x400000, 0x401000, 0x1000, true, false, false],
      [0x600000, 0x602000, 0x2000, true, true, false],
      [0x8880_0000_0000, 0x8880_0020_0000, 0x200000, false, true, false],
    ]);
    expect(parseInfoMem('0000000000400000-0000000000401000 0000000000001000 ur-x')[0]!.executable).toBe(true);
    // the end column must agree with the size
    expect(() => parseInfoMem('0000000000400000-0000000000402000 0000000000001000 ur-')).toThrow(/E_INVALID/);
    expect(() => parseInfoMem(42 as unknown as string)).toThrow(/E_INVALID/);
  });

  it("parseInfoPg reads formatInfoPg and QEMU's [start-start] PML4 lines", () => {
    const { mem, m } = layout();
    const lines = parseInfoPg(formatInfoPg(mem, m.root));
    expect(lines.length).toBe(8);
    expect(lines[4]).toEqual({
      depth: 3,
      level: 1,
      vpnFirst: 0x401,
      vpnLast: 0x402,
      indexFirst: 1,
      indexLast: 2,
      flags: {
        xd: true,
        global: false,
        large: false,
        dirty: false,
        accessed: false,
        cacheDisable: false,
        writeThrough: false,
        user: true,
        writable: true,
        present: true,
      },
      pfnFirst: 0x101,
      pfnLast: 0x102,
    });
    const q = parseInfoPg('[000000000-000000000] PML4[000]     -------UWP');
    expect([q[0]!.level, q[0]!.vpnFirst, q[0]!.vpnLast, q[0]!.pfnFirst]).toEqual([4, 0, 0, undefined]);
    expect(() => parseInfoPg('[0-1] PML5[000] -------UWP')).toThrow(/E_INVALID/);
  });

  it("leaves carry decoded fields in probe's vocabulary", () => {
    const { mem, m } = layout();
    const mmu = new Mmu(mem, { cr3: m.root });
    mmu.write32(0x401000, 1, ACCESS_USER); // sets A and D
    const l = m.leaves();
    expect(
      l.map((x) => [x.executable, x.xd, x.accessed, x.dirty, x.global, x.cacheDisable, x.writeThrough]),
    ).toEqual([
      [true, false, false, false, false, false, false],
      [false, true, true, true, false, false, false],
      [false, true, false, false, false, false, false],
      [true, false, false, false, true, true, false],
    ]);
    const p = mmu.probe(virtAddr(0x401000));
    expect(p.ok && [p.executable, p.accessed, p.dirty]).toEqual([l[1]!.executable, true, true]);
  });

  it('parsers reject malformed lines', () => {
    expect(() => parseInfoTlb('0000000000400000 0000000000100000 -------U-')).toThrow(/E_INVALID/);
    expect(() => parseInfoMem('0000000000400000-0000000000401000 1000 ur-x')).toThrow(/E_INVALID/);
  });

  it(
    're-parsed dumps give back every leaf and every mapped byte (fast-check)',
    () => {
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
            expect([r!.user, r!.writable, r!.executable]).toEqual([l.user, l.writable, l.executable]);
          }
          // info pg: the leaf runs tile exactly the leaves (page numbers, frames, own flags)
          const pgLeaves = parseInfoPg(formatInfoPg(mem, m.root)).filter((x) => x.pfnFirst !== undefined);
          const expanded: Array<[number, number, boolean, boolean]> = [];
          for (const x of pgLeaves) {
            const per = x.level === 1 ? 1 : x.level === 2 ? 512 : 262144;
            for (let i = x.indexFirst; i <= x.indexLast; i++) {
              const k = i - x.indexFirst;
              expanded.push([
                (x.vpnFirst + k * per) * 4096,
                (x.pfnFirst! + k * per) * 4096,
                x.flags.user,
                x.flags.xd,
              ]);
            }
          }
          expect(expanded).toEqual(leaves.map((l) => [l.va, l.pa, (l.lo & PTE_US) !== 0, l.hi >>> 31 === 1]));
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
        { numRuns: runs(60, 600) },
      );
    },
    SLOW_TIMEOUT,
  );
});
