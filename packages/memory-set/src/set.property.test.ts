import { isVmkitError } from '@vmkit/addr';
import { FaultInjector } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FailMode, MockBackend, type MockControl, MockPageTable } from '../test/mock.js';
import {
  type AreaIndexFactory,
  BlockIndex,
  BTreeIndex,
  isMappingError,
  MemoryArea,
  MemorySet,
  SortedArrayIndex,
} from './index.js';

// Random map/unmap/protect sequences over 64 pages of 4 KiB, checked after every step against a naive
// reference model (a list of areas, re-sorted on every change) and the mock page table page by page.
// Areas use 4 KiB or 8 KiB ("huge") backend pages, so cuts inside a big page must be refused.

const P = 0x1000;
const PAGES = 64;

interface MArea {
  start: number;
  end: number;
  flags: number;
  ps: number;
}
type Model = MArea[];
type Outcome = Model | 'InvalidParam' | 'AlreadyExists';

const overlapping = (m: Model, s: number, e: number) => m.filter((a) => a.start < e && s < a.end);
const badCut = (a: MArea, at: number) => at > a.start && at < a.end && at % a.ps !== 0;
const sorted = (m: Model) => m.sort((x, y) => x.start - y.start);
const LONG = process.env.VMKIT_LONG === '1';

/** Linux-style merging: touching areas with equal flags and page size become one. */
function merged(m: Model): Model {
  const out: Model = [];
  for (const a of m) {
    const last = out[out.length - 1];
    if (last !== undefined && last.end === a.start && last.flags === a.flags && last.ps === a.ps)
      out[out.length - 1] = { ...last, end: a.end };
    else out.push(a);
  }
  return out;
}

function mUnmap(m: Model, s: number, e: number): Outcome {
  if (s === e) return m;
  const out: Model = [];
  for (const a of m) {
    if (!(a.start < e && s < a.end)) {
      out.push(a);
      continue;
    }
    const cs = Math.max(a.start, s);
    const ce = Math.min(a.end, e);
    if (badCut(a, cs) || badCut(a, ce)) return 'InvalidParam';
    if (a.start < cs) out.push({ ...a, end: cs });
    if (ce < a.end) out.push({ ...a, start: ce });
  }
  return sorted(out);
}

function mMap(m: Model, s: number, e: number, flags: number, ps: number, overwrite: boolean): Outcome {
  if (s % ps !== 0 || (e - s) % ps !== 0 || s === e) return 'InvalidParam';
  let base = m;
  if (overlapping(m, s, e).length > 0) {
    if (!overwrite) return 'AlreadyExists';
    const r = mUnmap(m, s, e);
    if (typeof r === 'string') return r;
    base = r;
  }
  return sorted([...base, { start: s, end: e, flags, ps }]);
}

function mProtect(m: Model, s: number, e: number, target: number): Outcome {
  if (s === e) return m;
  const out: Model = [];
  for (const a of m) {
    if (!(a.start < e && s < a.end) || a.flags === target) {
      out.push(a);
      continue;
    }
    const cs = Math.max(a.start, s);
    const ce = Math.min(a.end, e);
    if (badCut(a, cs) || badCut(a, ce)) return 'InvalidParam';
    if (a.start < cs) out.push({ ...a, end: cs });
    out.push({ ...a, start: cs, end: ce, flags: target });
    if (ce < a.end) out.push({ ...a, start: ce });
  }
  return sorted(out);
}

type Op =
  | { kind: 'map'; page: number; len: number; flags: number; huge: boolean; overwrite: boolean }
  | { kind: 'unmap'; page: number; len: number }
  | { kind: 'protect'; page: number; len: number; flags: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('map' as const),
    page: fc.integer({ min: 0, max: PAGES - 1 }),
    len: fc.integer({ min: 1, max: 12 }),
    flags: fc.integer({ min: 1, max: 7 }),
    huge: fc.boolean(),
    overwrite: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('unmap' as const),
    page: fc.integer({ min: 0, max: PAGES - 1 }),
    len: fc.integer({ min: 0, max: 16 }),
  }),
  fc.record({
    kind: fc.constant('protect' as const),
    page: fc.integer({ min: 0, max: PAGES - 1 }),
    len: fc.integer({ min: 0, max: 16 }),
    flags: fc.integer({ min: 1, max: 7 }),
  }),
);

type TSet = MemorySet<number, MockPageTable, number, MockBackend>;

function runOp(set: TSet, pt: MockPageTable, op: Op, control: MockControl): void {
  const s = op.page * P;
  if (op.kind === 'map') {
    const ps = op.huge ? 2 * P : P;
    const start = op.huge ? s - (s % ps) : s;
    const len = Math.min(op.huge ? 2 * Math.ceil(op.len / 2) : op.len, PAGES - start / P);
    const area = new MemoryArea<number, MockPageTable, number, MockBackend>(
      start,
      len * P,
      op.flags,
      new MockBackend(ps, control),
    );
    set.map(area, pt, op.overwrite);
  } else if (op.kind === 'unmap') {
    set.unmap(s, op.len * P, pt);
  } else {
    const target = op.flags;
    set.protect(s, op.len * P, (old) => (old === target ? undefined : target), pt);
  }
}

function modelOp(m: Model, op: Op): Outcome {
  const s = op.page * P;
  if (op.kind === 'map') {
    const ps = op.huge ? 2 * P : P;
    const start = op.huge ? s - (s % ps) : s;
    const len = Math.min(op.huge ? 2 * Math.ceil(op.len / 2) : op.len, PAGES - start / P);
    return mMap(m, start, start + len * P, op.flags, ps, op.overwrite);
  }
  if (op.kind === 'unmap') return mUnmap(m, s, s + op.len * P);
  return mProtect(m, s, s + op.len * P, op.flags);
}

const snapshot = (set: TSet) => [...set].map((a) => [a.start, a.end, a.flags, a.backend.pageSize]);

function checkAgainstModel(set: TSet, pt: MockPageTable, m: Model): void {
  expect(snapshot(set)).toEqual(m.map((a) => [a.start, a.end, a.flags, a.ps]));
  expect(set.len()).toBe(m.length);
  let prevEnd = -1;
  for (const a of set) {
    expect(a.start).toBeGreaterThanOrEqual(prevEnd); // sorted, no overlap
    expect(a.end).toBeGreaterThan(a.start); // non-empty
    prevEnd = a.end;
  }
  for (let page = 0; page < PAGES; page++) {
    const want = m.find((a) => a.start <= page * P && page * P < a.end)?.flags ?? 0;
    if (pt.entries[page] !== want || (set.find(page * P + 0x123)?.flags ?? 0) !== want) {
      throw new Error(
        `page ${page}: table ${pt.entries[page]}, set ${set.find(page * P)?.flags}, model ${want}`,
      );
    }
  }
}

const indexes: [string, AreaIndexFactory, number, boolean][] = [
  ['BlockIndex (default)', () => new BlockIndex(), 1000, false],
  ['BTreeIndex', () => new BTreeIndex(), 300, false],
  ['SortedArrayIndex', () => new SortedArrayIndex(), 300, false],
  ['BlockIndex, merging on', () => new BlockIndex(), 600, true],
];

describe.each(indexes)('random sequences against the reference model, %s', (_name, index, runs, merge) => {
  it(
    'agrees with the model after every step',
    () => {
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
          const set: TSet = new MemorySet({ index, merge, virtual: false });
          const pt = new MockPageTable(PAGES * P, P);
          const control: MockControl = {}; // one family: mocks merge only within it
          let m: Model = [];
          for (const op of ops) {
            const want = modelOp(m, op);
            let got: string | undefined;
            try {
              runOp(set, pt, op, control);
            } catch (e) {
              if (!isMappingError(e)) throw e;
              got = e.kind;
            }
            if (typeof want === 'string') expect(got).toBe(want);
            else {
              expect(got).toBeUndefined();
              m = merge ? merged(want) : want;
            }
            checkAgainstModel(set, pt, m);
          }
        }),
        { numRuns: LONG ? runs * 10 : runs },
      );
    },
    LONG ? 600_000 : 60_000,
  );
});

describe('failure injection: a failing backend call at a random step leaves set and page table unchanged', () => {
  const stepArb = fc.record({
    op: opArb,
    failAt: fc.option(fc.integer({ min: 1, max: 5 }), { freq: 2 }),
    mode: fc.constantFrom<FailMode>('false', 'throw'),
  });

  it('rolls back every partial operation', { timeout: LONG ? 600_000 : 60_000 }, () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const control: MockControl = {};
        const set: TSet = new MemorySet();
        const pt = new MockPageTable(PAGES * P, P);
        let m: Model = [];
        for (const { op, failAt, mode } of steps) {
          const injector = failAt === null ? undefined : new FaultInjector([failAt]);
          if (injector) control.injector = injector;
          else delete control.injector;
          control.mode = mode;
          const before = snapshot(set);
          const ptBefore = pt.entries.slice();
          const want = modelOp(m, op);
          let err: unknown;
          try {
            runOp(set, pt, op, control);
          } catch (e) {
            err = e;
          }
          const fired = injector !== undefined && failAt !== null && injector.count >= failAt;
          if (fired) {
            // The injected failure surfaced: BadState for `false`, the backend's own error for a throw.
            if (mode === 'false') expect(isMappingError(err, 'BadState')).toBe(true);
            else expect(isVmkitError(err, 'E_NOMEM')).toBe(true);
            expect(snapshot(set)).toEqual(before);
            expect(pt.entries).toEqual(ptBefore);
          } else if (typeof want === 'string') {
            expect(isMappingError(err, want)).toBe(true);
            expect(snapshot(set)).toEqual(before);
            expect(pt.entries).toEqual(ptBefore);
          } else {
            expect(err).toBeUndefined();
            m = want;
          }
          checkAgainstModel(set, pt, m);
        }
      }),
      { numRuns: LONG ? 30_000 : 1000 },
    );
  });

  it('clear and extendArea roll back too', () => {
    const control: MockControl = { mode: 'false' };
    const set: TSet = new MemorySet();
    const pt = new MockPageTable(PAGES * P, P);
    for (let i = 0; i < 8; i++)
      set.map(new MemoryArea(i * 4 * P, 2 * P, i + 1, new MockBackend(P, control)), pt, false);
    const before = snapshot(set);
    const ptBefore = pt.entries.slice();
    for (let k = 1; k <= 8; k++) {
      control.injector = new FaultInjector([k]);
      expect(() => set.clear(pt)).toThrow(/E_BAD_STATE/);
      expect(snapshot(set)).toEqual(before);
      expect(pt.entries).toEqual(ptBefore);
    }
    control.injector = new FaultInjector([1]);
    expect(() => set.extendArea(0, P, pt)).toThrow(/E_BAD_STATE/);
    expect(snapshot(set)).toEqual(before);
    expect(pt.entries).toEqual(ptBefore);
  });

  it('a backend whose compensating call fails gives BadState naming the broken contract', () => {
    const control: MockControl = { mode: 'false' };
    const set: TSet = new MemorySet();
    const pt = new MockPageTable(PAGES * P, P);
    set.map(new MemoryArea(0, 2 * P, 1, new MockBackend(P, control)), pt, false);
    set.map(new MemoryArea(4 * P, 2 * P, 2, new MockBackend(P, control)), pt, false);
    // Call 1 unmaps the first area, call 2 fails, call 3 (the undo of call 1) fails as well.
    control.injector = new FaultInjector([2, 3]);
    expect(() => set.unmap(0, 8 * P, pt)).toThrow(/rollback contract/);
    expect(snapshot(set)).toEqual([
      [0, 2 * P, 1, P],
      [4 * P, 6 * P, 2, P],
    ]);
  });
});
