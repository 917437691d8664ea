// Every public entry against a matrix of hostile values: a typed error (VmkitError), a message that names
// the value as it was passed, and nothing changed (maps, ASID, mmap base, page-table leaves, free frames).
import { isVmkitError, PAGE_SIZE_4K as PAGE } from '@vmkit/addr';
import { PhysicalMemory } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { halfOpen, machine, RWU, va } from '../test/helpers.js';
import { AddressSpaceAllocator } from './address-spaces.js';
import { VirtualMemoryManager } from './manager.js';
import { VirtualMemoryMap } from './map.js';

const HOSTILE: readonly unknown[] = [
  null,
  undefined,
  '0x1000',
  {},
  [],
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  -PAGE,
  1.5,
  PAGE + 0.5,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 64,
  true,
  Symbol('hostile'),
];

/** The ways a message may name `v`: as JSON, as String(), in hex (canonical for the upper half). */
function spellings(v: unknown): string[] {
  if (typeof v === 'symbol') return [String(v)];
  if (typeof v === 'number') {
    const out = [String(v)];
    if (Number.isInteger(v) && v >= 0) out.push(`0x${v.toString(16)}`);
    return out;
  }
  if (typeof v === 'string') return [JSON.stringify(v), v];
  return [String(v), JSON.stringify(v) ?? ''];
}

function build() {
  const { spaces, frames } = machine(8);
  const m = new VirtualMemoryManager({ addressSpaces: spaces });
  m.setAsid(spaces.allocVirtualAddressSpace());
  m.addMemoryMap(halfOpen(0x1000, 4 * PAGE, 0x20_0000));
  m.addMemoryMap(halfOpen(0x4000_0000, 4 * PAGE, undefined));
  m.lazyMapPage(va(0x2000));
  const snapshot = (): string =>
    JSON.stringify({
      asid: m.getAsid(),
      base: m.getMmapBase(),
      maps: m.withMemmaps((v) =>
        [...v.values()].map((x) => [x.start, x.end, x.pmarea?.start, x.permissions, x.isShared]),
      ),
      leaves: m
        .getRootPageTable()
        ?.leaves()
        .map((l) => [l.va, l.pa, l.size]),
      free: frames.freeFrames,
      used: spaces.usedCount,
    });
  return { m, spaces, snapshot };
}

type Entry = [name: string, call: (v: never) => unknown, skip?: (v: unknown) => boolean];

describe('every public entry refuses hostile values: typed error naming the value, nothing changed', () => {
  const { m, spaces, snapshot } = build();
  const entries: Entry[] = [
    ['setAsid(v)', (v) => m.setAsid(v)],
    ['searchMemoryMap(v)', (v) => m.searchMemoryMap(v)],
    ['getMemoryMapByAddr(v)', (v) => m.getMemoryMapByAddr(v)],
    ['removeMemoryMapByAddr(v)', (v) => m.removeMemoryMapByAddr(v)],
    ['removeMemoryMapRange(v, 4096)', (v) => m.removeMemoryMapRange(v, PAGE)],
    ['removeMemoryMapRange(0x1000, v)', (v) => m.removeMemoryMapRange(va(0x1000), v)],
    ['protectMemoryMapRange(v, 4096, R)', (v) => m.protectMemoryMapRange(v, PAGE, 1)],
    ['protectMemoryMapRange(0x1000, v, R)', (v) => m.protectMemoryMapRange(va(0x1000), v, 1)],
    ['protectMemoryMapRange(0x1000, 4096, v)', (v) => m.protectMemoryMapRange(va(0x1000), PAGE, v)],
    ['getMemoryMapsInRange(v, 4096)', (v) => m.getMemoryMapsInRange(v, PAGE)],
    ['getMemoryMapsInRange(0, v)', (v) => m.getMemoryMapsInRange(va(0), v)],
    ['findUnmappedArea(v, 4096)', (v) => m.findUnmappedArea(v, PAGE)],
    ['findUnmappedArea(4096, v)', (v) => m.findUnmappedArea(PAGE, v)],
    ['setMmapBase(v)', (v) => m.setMmapBase(v)],
    ['lazyMapPage(v)', (v) => m.lazyMapPage(v)],
    ['lazyMapPageWith({ op: load, vaddr: v })', (v) => m.lazyMapPageWith({ op: 'load', vaddr: v })],
    ['lazyMapPageWith({ op: v, vaddr: 0x1000 })', (v) => m.lazyMapPageWith({ op: v, vaddr: va(0x1000) })],
    [
      'lazyMapPageWith({ op: load, vaddr: 0x1000, size: v })',
      (v) => m.lazyMapPageWith({ op: 'load', vaddr: va(0x1000), size: v }),
      (v) => v === undefined,
    ],
    ['lazyMapPageWith(v)', (v) => m.lazyMapPageWith(v), (v) => typeof v === 'object' && v !== null],
    ['translateVaddr(v)', (v) => m.translateVaddr(v)],
    ['unmapRangeFromMmu(v, 0x3000)', (v) => m.unmapRangeFromMmu(v, 0x3000)],
    ['unmapRangeFromMmu(0x1000, v)', (v) => m.unmapRangeFromMmu(va(0x1000), v)],
    ['addMemoryMap(v)', (v) => m.addMemoryMap(v), (v) => typeof v === 'object' && v !== null],
    ['addMemoryMapFixed(v)', (v) => m.addMemoryMapFixed(v), (v) => typeof v === 'object' && v !== null],
    ['restoreMemoryMaps(v)', (v) => m.restoreMemoryMaps(v), (v) => Array.isArray(v)],
    ['restoreMemoryMaps([v])', (v) => m.restoreMemoryMaps([v]), (v) => typeof v === 'object' && v !== null],
    ['addPageTable(v)', (v) => m.addPageTable(v), (v) => typeof v === 'object' && v !== null],
    ['withMemmaps(v)', (v) => m.withMemmaps(v)],
    ['withMemmapsMut(v)', (v) => m.withMemmapsMut(v)],
    ['memmapsIterWith(v)', (v) => m.memmapsIterWith(v)],
    [
      'new VirtualMemoryManager(v)',
      (v) => new VirtualMemoryManager(v),
      (v) => v === undefined || (typeof v === 'object' && v !== null),
    ],
    [
      'new VirtualMemoryManager({ addressSpaces: v })',
      (v) => new VirtualMemoryManager({ addressSpaces: v }),
      (v) => v === undefined,
    ],
    [
      'new VirtualMemoryManager({ layout: v })',
      (v) => new VirtualMemoryManager({ layout: v }),
      (v) => v === undefined || (typeof v === 'object' && v !== null),
    ],
    [
      'new VirtualMemoryManager({ layout: { mmapBase: v } })',
      (v) => new VirtualMemoryManager({ layout: { mmapBase: v } }),
      (v) => v === undefined,
    ],
    [
      'new VirtualMemoryManager({ layout: { mmapLimit: v } })',
      (v) => new VirtualMemoryManager({ layout: { mmapLimit: v } }),
      (v) => v === undefined,
    ],
    ['spaces.freeVirtualAddressSpace(v)', (v) => spaces.freeVirtualAddressSpace(v)],
    ['spaces.switchTo(v)', (v) => spaces.switchTo(v)],
    [
      'new AddressSpaceAllocator(v)',
      (v) => new AddressSpaceAllocator(v),
      (v) => typeof v === 'object' && v !== null, // {} and []: the field entries below name the field
    ],
    [
      'new AddressSpaceAllocator({ mem: v, frames })',
      (v) => new AddressSpaceAllocator({ mem: v, frames: spaces.frames }),
    ],
    [
      'new AddressSpaceAllocator({ mem, frames: v })',
      (v) => new AddressSpaceAllocator({ mem: spaces.mem, frames: v }),
    ],
    [
      'new AddressSpaceAllocator({ mem, frames, mmu: v })',
      (v) => new AddressSpaceAllocator({ mem: spaces.mem, frames: spaces.frames, mmu: v }),
      (v) => v === undefined,
    ],
    [
      'new AddressSpaceAllocator({ mem, frames, kernelRoot: v })',
      (v) => new AddressSpaceAllocator({ mem: spaces.mem, frames: spaces.frames, kernelRoot: v }),
      (v) => v === undefined,
    ],
    [
      'new VirtualMemoryMap({ vmarea: { start: v, end: 0x2000 } })',
      (v) => new VirtualMemoryMap({ vmarea: { start: v, end: 0x2000 }, permissions: RWU }),
    ],
    [
      'new VirtualMemoryMap({ vmarea: { start: 0x1000, end: v } })',
      (v) => new VirtualMemoryMap({ vmarea: { start: 0x1000, end: v }, permissions: RWU }),
    ],
    [
      'new VirtualMemoryMap({ permissions: v })',
      (v) => new VirtualMemoryMap({ vmarea: { start: 0x1000, end: 0x2000 }, permissions: v }),
    ],
    [
      'new VirtualMemoryMap({ isShared: v })',
      (v) => new VirtualMemoryMap({ vmarea: { start: 0x1000, end: 0x2000 }, permissions: RWU, isShared: v }),
      (v) => v === undefined || v === true,
    ],
    [
      'new VirtualMemoryMap({ vmStart: v })',
      (v) => new VirtualMemoryMap({ vmarea: { start: 0x1000, end: 0x2000 }, permissions: RWU, vmStart: v }),
      (v) => v === undefined,
    ],
  ];
  const before = snapshot();
  for (const [name, call, skip] of entries) {
    it(name, () => {
      for (const v of HOSTILE) {
        if (skip?.(v)) continue;
        let err: unknown;
        try {
          call(v as never);
        } catch (e) {
          err = e;
        }
        const what = `${name} with ${String(v)}`;
        expect(isVmkitError(err), `${what}: ${String(err)}`).toBe(true);
        const msg = (err as Error).message;
        expect(
          spellings(v).some((s) => s !== '' && msg.includes(s)),
          `${what}: the message does not name the value: ${msg}`,
        ).toBe(true);
        expect(snapshot(), what).toBe(before);
      }
    });
  }

  it('an instance of a class (a memory) is named by its class in a message, not dumped', () => {
    const mem = new PhysicalMemory(1 << 20);
    let msg = '';
    try {
      new VirtualMemoryManager({ addressSpaces: mem as never });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(
      /^E_INVALID: options\.addressSpaces must be an AddressSpaceAllocator: got a PhysicalMemory$/,
    );
  });
});
