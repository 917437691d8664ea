import { PAGE_SIZE_4K as PAGE, type PhysAddr } from '@vmkit/addr';
import { ACCESS_READ } from '@vmkit/paging-x86_64';
import { propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { machine, va } from '../test/helpers.js';
import { VirtualMemoryManager } from './manager.js';
import { VirtualMemoryMap } from './map.js';
import { type AccessKind, AccessOp, type MemoryMappingOps } from './owner.js';

// A reference model: the maps as plain records (in pages) and the resident pages (which physical page
// and which rights each virtual page has in the page table). After every operation the manager's maps,
// its search answers for every page, and the real page table (read through the MMU's side-effect-free
// probe) must equal the model.

const NP = 48; // pages in the universe
const BASE = 0x40_0000; // first virtual address of the universe
const PM_BASE = 0x1000_0000; // physical areas live here (never read: only the tables are in RAM)
const OWN_BASE = [0x2000_0000, 0x3000_0000];

/**
 * Owners that resolve a page to a fixed page per virtual page. Owners 0 and 1 need no copy (a private
 * fault shares their page); owner 2 is read-only backing storage in RAM (the default: a private fault
 * copies its page into a frame of the manager's, which becomes a one-page map of its own).
 */
function makeOwner(o: number, base: number): MemoryMappingOps {
  return {
    mmapOwnerName: () => `owner${o}`,
    resolveFault: (_a: AccessKind, idx: number, vmStart: number) => ({
      paddrPageBase: (base + (vmStart - BASE) + idx * PAGE) as PhysAddr,
      isTail: false,
    }),
    ...(o < 2 ? { privateFaultRequiresCopy: () => false } : {}),
  };
}
let OWNERS: MemoryMappingOps[] = [];

interface MMap {
  start: number; // vpn
  end: number;
  delta: number | undefined; // pa page - va page
  owner: number | undefined;
  vmStart: number;
  perms: number;
  shared: boolean;
  /** A copy-on-write page: its frame belongs to the manager. */
  owns?: boolean;
}
interface Res {
  pa: number;
  perms: number;
}

type Op =
  | {
      k: 'add' | 'fixed';
      start: number;
      n: number;
      kind: number;
      delta: number;
      perms: number;
      shared: boolean;
    }
  | { k: 'remove'; page: number; off: number }
  | { k: 'range'; addr: number; len: number }
  | { k: 'coalesce' }
  | { k: 'lazy'; page: number; off: number; op: number }
  | { k: 'protect'; start: number; n: number; perms: number }
  | { k: 'mmu'; start: number; n: number }
  | { k: 'asid' };

const permsArb = fc.constantFrom(0, 1, 3, 5, 7, 9, 11, 13, 15, 8);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      k: fc.constantFrom('add' as const, 'fixed' as const),
      start: fc.integer({ min: 0, max: NP - 1 }),
      n: fc.integer({ min: 1, max: 8 }),
      kind: fc.integer({ min: 0, max: 4 }), // 0 backed, 1 owner0, 2 owner1, 3 neither, 4 owner2 (copies)
      delta: fc.integer({ min: 0, max: 2 }),
      perms: permsArb,
      shared: fc.boolean(),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('remove' as const),
      page: fc.integer({ min: 0, max: NP - 1 }),
      off: fc.integer({ min: 0, max: PAGE - 1 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('range' as const),
      addr: fc.integer({ min: 0, max: NP * PAGE - 1 }),
      len: fc.integer({ min: 0, max: 10 * PAGE }),
    }),
    weight: 2,
  },
  { arbitrary: fc.constant({ k: 'coalesce' as const }), weight: 1 },
  {
    arbitrary: fc.record({
      k: fc.constant('lazy' as const),
      page: fc.integer({ min: 0, max: NP - 1 }),
      off: fc.integer({ min: 0, max: PAGE - 1 }),
      op: fc.integer({ min: 0, max: 2 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('protect' as const),
      start: fc.integer({ min: 0, max: NP - 1 }),
      n: fc.integer({ min: 1, max: 8 }),
      perms: permsArb,
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('mmu' as const),
      start: fc.integer({ min: 0, max: NP - 1 }),
      n: fc.integer({ min: 1, max: 8 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ k: 'asid' as const }), weight: 1 },
);

const OPS = [AccessOp.Load, AccessOp.Store, AccessOp.Instruction] as const;

class Model {
  maps: MMap[] = [];
  res = new Map<number, Res>();

  overlapping(s: number, e: number): MMap[] {
    return this.maps.filter((m) => m.start < e && s < m.end);
  }
  find(p: number): MMap | undefined {
    return this.maps.find((m) => m.start <= p && p < m.end);
  }
  drop(s: number, e: number): void {
    for (const p of [...this.res.keys()]) if (p >= s && p < e) this.res.delete(p);
  }
  /** Cuts [s, e) out of every map; returns the removed pieces. */
  cut(s: number, e: number): MMap[] {
    const out: MMap[] = [];
    const keep: MMap[] = [];
    for (const m of this.maps) {
      if (!(m.start < e && s < m.end)) {
        keep.push(m);
        continue;
      }
      out.push({ ...m, start: Math.max(m.start, s), end: Math.min(m.end, e) });
      if (m.start < s) keep.push({ ...m, end: s });
      if (m.end > e) keep.push({ ...m, start: e });
    }
    this.maps = keep.sort((a, b) => a.start - b.start);
    this.drop(s, e);
    return out.sort((a, b) => a.start - b.start);
  }
  insert(m: MMap): void {
    this.maps.push(m);
    this.maps.sort((a, b) => a.start - b.start);
  }
}

function toMap(m: MMap): VirtualMemoryMap {
  return new VirtualMemoryMap({
    vmarea: { start: BASE + m.start * PAGE, end: BASE + m.end * PAGE },
    pmarea:
      m.delta === undefined
        ? undefined
        : { start: PM_BASE + (m.start + m.delta) * PAGE, end: PM_BASE + (m.end + m.delta) * PAGE },
    permissions: m.perms,
    isShared: m.shared,
    owner: m.owner === undefined ? undefined : OWNERS[m.owner],
    vmStart: BASE + m.vmStart * PAGE,
  });
}

function describeMap(m: VirtualMemoryMap): unknown[] {
  return [
    m.start,
    m.end,
    m.pmarea?.start,
    m.permissions,
    m.isShared,
    m.owner === undefined ? -1 : OWNERS.indexOf(m.owner),
    m.vmStart,
  ];
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

function mergeable(a: MMap, b: MMap): boolean {
  return (
    a.end === b.start &&
    a.perms === b.perms &&
    a.shared === b.shared &&
    a.owner === b.owner &&
    (a.owner === undefined || a.vmStart === b.vmStart) &&
    a.delta === b.delta &&
    (a.owns ?? false) === (b.owns ?? false)
  );
}

function run(ops: Op[]): void {
  const { spaces, frames, mem } = machine(8);
  const file = frames.allocContiguous(NP, PAGE); // owner 2's pages, each holding its page number
  for (let p = 0; p < NP; p++) mem.write32(file + p * PAGE, 0x5eed_0000 + p);
  OWNERS = [makeOwner(0, OWN_BASE[0]!), makeOwner(1, OWN_BASE[1]!), makeOwner(2, file)];
  const warm = spaces.allocVirtualAddressSpace(); // freeing the current space makes the registry's empty root once
  spaces.switchTo(warm);
  spaces.freeVirtualAddressSpace(warm);
  const initialFree = frames.freeFrames;
  const m = new VirtualMemoryManager({ addressSpaces: spaces });
  m.setAsid(spaces.allocVirtualAddressSpace());
  spaces.switchTo(m.getAsid());
  const model = new Model();
  for (const op of ops) {
    switch (op.k) {
      case 'add':
      case 'fixed': {
        const end = Math.min(NP, op.start + op.n);
        const rec: MMap = {
          start: op.start,
          end,
          delta: op.kind === 0 ? op.delta : undefined,
          owner: op.kind === 1 || op.kind === 2 ? op.kind - 1 : op.kind === 4 ? 2 : undefined,
          vmStart: op.start,
          perms: op.perms,
          shared: op.shared,
        };
        if (op.k === 'add') {
          const clash = model.overlapping(rec.start, rec.end).length > 0;
          expect(codeOf(() => m.addMemoryMap(toMap(rec)))).toBe(clash ? 'E_OVERLAP' : undefined);
          if (!clash) model.insert(rec);
        } else {
          const got = m.addMemoryMapFixed(toMap(rec)).map(describeMap);
          const want = model.cut(rec.start, rec.end).map((x) => describeMap(toMapPiece(x)));
          model.insert(rec);
          expect(got).toEqual(want);
        }
        break;
      }
      case 'remove': {
        const target = model.find(op.page);
        const got = m.removeMemoryMapByAddr(va(BASE + op.page * PAGE + op.off));
        if (target === undefined) expect(got).toBeUndefined();
        else {
          expect(got && describeMap(got)).toEqual(describeMap(toMap(target)));
          model.maps = model.maps.filter((x) => x !== target);
          model.drop(target.start, target.end);
        }
        break;
      }
      case 'range': {
        const got = m.removeMemoryMapRange(va(BASE + op.addr), op.len).map(describeMap);
        const s = Math.floor(op.addr / PAGE);
        const e = Math.ceil((op.addr + op.len) / PAGE);
        const want = op.len === 0 ? [] : model.cut(s, e).map((x) => describeMap(toMapPiece(x)));
        expect(got).toEqual(want);
        break;
      }
      case 'coalesce': {
        let removed = 0;
        const out: MMap[] = [];
        for (const x of model.maps) {
          const last = out[out.length - 1];
          if (last !== undefined && mergeable(last, x)) {
            out[out.length - 1] = { ...last, end: x.end };
            removed++;
          } else out.push(x);
        }
        model.maps = out;
        expect(m.coalesceMemoryMaps()).toBe(removed);
        break;
      }
      case 'lazy': {
        const access: AccessKind = { op: OPS[op.op]!, vaddr: va(BASE + op.page * PAGE + op.off) };
        const target = model.find(op.page);
        let want: string | undefined;
        let pa = 0;
        if (target === undefined) want = 'E_NO_MAPPING';
        else if ((target.perms & 7) === 0) want = 'E_ACCESS';
        else if (access.op === AccessOp.Store && (target.perms & 2) === 0) want = 'E_ACCESS';
        else if (access.op === AccessOp.Instruction && (target.perms & 4) === 0) want = 'E_ACCESS';
        else if (target.owner === 2 && !target.shared) want = 'copy';
        else if (target.owner === 2) pa = file + op.page * PAGE;
        else if (target.owner !== undefined) pa = OWN_BASE[target.owner]! + op.page * PAGE;
        else if (target.delta !== undefined) pa = PM_BASE + (op.page + target.delta) * PAGE;
        else want = 'E_UNBACKED';
        if (want === 'copy') {
          expect(codeOf(() => m.lazyMapPageWith(access))).toBeUndefined();
          const copy = m.searchMemoryMap(va(BASE + op.page * PAGE))!;
          expect([copy.start, copy.size, copy.owner, copy.isShared]).toEqual([
            BASE + op.page * PAGE,
            PAGE,
            undefined,
            false,
          ]);
          const cpa = copy.pmarea!.start;
          expect(mem.read32(cpa)).toBe(0x5eed_0000 + op.page); // the owner's data was copied
          model.cut(op.page, op.page + 1);
          model.insert({
            ...target!,
            start: op.page,
            end: op.page + 1,
            delta: (cpa - PM_BASE) / PAGE - op.page,
            owner: undefined,
            shared: false,
            owns: true,
          });
          model.res.set(op.page, { pa: cpa, perms: target!.perms });
          break;
        }
        expect(codeOf(() => m.lazyMapPageWith(access))).toBe(want);
        if (want === undefined) model.res.set(op.page, { pa, perms: target!.perms });
        break;
      }
      case 'protect': {
        const s = op.start;
        const e = Math.min(NP, op.start + op.n);
        let changed = 0;
        const next: MMap[] = [];
        for (const x of model.maps) {
          if (!(x.start < e && s < x.end) || x.perms === op.perms) {
            next.push(x);
            continue;
          }
          changed++;
          const cs = Math.max(x.start, s);
          const ce = Math.min(x.end, e);
          if (x.start < cs) next.push({ ...x, end: cs });
          next.push({ ...x, start: cs, end: ce, perms: op.perms });
          if (ce < x.end) next.push({ ...x, start: ce });
          model.drop(cs, ce);
        }
        model.maps = next;
        expect(m.protectMemoryMapRange(va(BASE + s * PAGE), (e - s) * PAGE, op.perms)).toBe(changed);
        break;
      }
      case 'mmu': {
        const e = Math.min(NP, op.start + op.n);
        m.unmapRangeFromMmu(va(BASE + op.start * PAGE), BASE + e * PAGE);
        model.drop(op.start, e);
        break;
      }
      case 'asid': {
        m.setAsid(spaces.allocVirtualAddressSpace());
        spaces.switchTo(m.getAsid());
        model.res.clear();
        break;
      }
    }
    check(m, model, spaces.mmu);
  }
  m.dispose();
  expect(spaces.usedCount).toBe(0);
  expect(frames.freeFrames).toBe(initialFree); // no page table and no copied frame leaked
}

/** A removed piece as the manager reports it: physical area cut at the same offset, vmStart kept. */
function toMapPiece(x: MMap): VirtualMemoryMap {
  return toMap(x);
}

function check(
  m: VirtualMemoryManager,
  model: Model,
  mmu: { probe: (v: never, a: number) => ReturnType<import('@vmkit/paging-x86_64').Mmu['probe']> },
): void {
  expect(m.withMemmaps((v) => [...v.values()].map(describeMap))).toEqual(
    model.maps.map((x) => describeMap(toMap(x))),
  );
  for (let p = 0; p < NP; p++) {
    const v = BASE + p * PAGE + ((p * 97) % PAGE);
    const want = model.find(p);
    expect(m.searchMemoryMap(va(v))?.start).toBe(want === undefined ? undefined : BASE + want.start * PAGE);
    const r = model.res.get(p);
    const probe = mmu.probe(v as never, ACCESS_READ); // supervisor read (SMAP off): sees user and kernel pages
    if (r === undefined) expect(probe.ok).toBe(false);
    else {
      expect(probe.ok).toBe(true);
      if (probe.ok) {
        expect([probe.pa - (v % PAGE), probe.writable, probe.user, probe.executable]).toEqual([
          r.pa,
          (r.perms & 2) !== 0,
          (r.perms & 8) !== 0,
          (r.perms & 4) !== 0,
        ]);
      }
    }
  }
}

describe('VirtualMemoryManager against a per-page reference model', () => {
  it(
    'random add / add-fixed / remove / remove-range / coalesce / lazy map / protect / mmu unmap / ASID change',
    () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => run(ops)),
        { numRuns: propertyRuns(80) },
      );
    },
    testTimeout(60_000), // ~3 s on an idle machine; VMKIT_LONG=1 runs 20x as many
  );
});
