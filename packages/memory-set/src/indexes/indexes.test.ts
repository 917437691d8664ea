import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AreaIndex, Span } from '../area-index.js';
import { BlockIndex } from './block-index.js';
import { BTreeIndex } from './btree-index.js';
import { SortedArrayIndex } from './sorted-array-index.js';

// Each index against a plain sorted array, with enough spans (thousands) to make BlockIndex split its
// blocks (256 spans) and merge them again as spans are deleted.

const SLOT = 16; // span k covers [k * SLOT, k * SLOT + len) with len ≤ SLOT, so spans never overlap

type Cmd =
  | { kind: 'ins'; slot: number; len: number }
  | { kind: 'del'; slot: number }
  | { kind: 'q'; addr: number };
const SLOTS = 4000;
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('ins' as const),
      slot: fc.nat(SLOTS - 1),
      len: fc.integer({ min: 1, max: SLOT }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('del' as const), slot: fc.nat(SLOTS - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('q' as const), addr: fc.nat(SLOTS * SLOT + 32) }) },
);

function check(idx: AreaIndex<Span>, ref: Span[], addr: number): void {
  const holder = ref.find((s) => s.start <= addr && addr < s.end);
  expect(idx.find(addr)).toBe(holder);
  const lower = ref.filter((s) => s.start < addr).at(-1);
  expect(idx.lower(addr)).toBe(lower);
  const from: Span[] = [];
  idx.forEachFrom(addr, (s) => from.push(s) < 3);
  expect(from).toEqual(ref.filter((s) => s.start >= addr).slice(0, 3));
  if (idx.skipToGap !== undefined) {
    // the gap search against the reference: first span from addr whose gap before it is long enough
    for (const minGap of [0, 17, 40]) {
      let prevEnd = lower?.end ?? 0;
      let want: Span | undefined;
      for (const s of ref) {
        if (s.start < addr) continue;
        if (s.start - Math.max(prevEnd, addr) >= minGap) {
          want = s;
          break;
        }
        prevEnd = s.end;
      }
      expect(idx.skipToGap(addr, minGap), `skipToGap(${addr}, ${minGap})`).toBe(want);
    }
  }
}

describe.each([
  ['BlockIndex', () => new BlockIndex<Span>()],
  ['BTreeIndex', () => new BTreeIndex<Span>()],
  ['SortedArrayIndex', () => new SortedArrayIndex<Span>()],
])('%s agrees with a sorted array', (_name, make) => {
  it('over thousands of inserts, deletes and queries', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(
        fc.array(cmdArb, { minLength: 500, maxLength: 3000 }),
        fc.nat(SLOTS * SLOT),
        (cmds, probe) => {
          const idx = make();
          const ref: Span[] = [];
          for (const c of cmds) {
            if (c.kind === 'ins') {
              const start = c.slot * SLOT;
              if (ref.some((s) => s.start === start)) continue;
              const span = { start, end: start + c.len };
              idx.insert(span);
              ref.push(span);
              ref.sort((a, b) => a.start - b.start);
            } else if (c.kind === 'del') {
              const start = c.slot * SLOT;
              const i = ref.findIndex((s) => s.start === start);
              expect(idx.delete(start)).toBe(i >= 0);
              if (i >= 0) ref.splice(i, 1);
            } else {
              check(idx, ref, c.addr);
            }
            expect(idx.size).toBe(ref.length);
          }
          expect([...idx.values()]).toEqual(ref);
          check(idx, ref, probe);
          check(idx, ref, 0);
          for (const s of ref.slice(0, 50)) check(idx, ref, s.start);
          idx.clear();
          expect(idx.size).toBe(0);
          expect(idx.find(probe)).toBeUndefined();
        },
      ),
      { numRuns: 25 },
    );
  });

  it('grows to 20,000 spans in random order and shrinks back to none', { timeout: 30_000 }, () => {
    const idx = make();
    const n = 20_000;
    const order = Array.from({ length: n }, (_, i) => (i * 7919) % n);
    for (const k of order) idx.insert({ start: k * SLOT, end: k * SLOT + 8 });
    expect(idx.size).toBe(n);
    let prev = -1;
    for (const s of idx.values()) {
      expect(s.start).toBeGreaterThan(prev);
      prev = s.start;
    }
    for (let k = 0; k < n; k += 997) expect(idx.find(k * SLOT + 3)?.start).toBe(k * SLOT);
    for (const k of order.slice(0, n / 2)) expect(idx.delete(k * SLOT)).toBe(true);
    expect(idx.size).toBe(n / 2);
    for (const k of order.slice(n / 2)) expect(idx.find(k * SLOT)?.start).toBe(k * SLOT);
    for (const k of order.slice(0, n / 2)) expect(idx.find(k * SLOT)).toBeUndefined();
    for (const k of order.slice(n / 2)) idx.delete(k * SLOT);
    expect(idx.size).toBe(0);
    expect([...idx.values()]).toEqual([]);
  });
});

describe('BlockIndex gap search stays exact as spans come and go (the lazily refreshed gap summary)', () => {
  it('a hole punched anywhere in a dense run is found at once, and no longer once filled', () => {
    const idx = new BlockIndex<Span>();
    const n = 3000; // about 12..24 blocks
    for (let k = 0; k < n; k++) idx.insert({ start: k * SLOT, end: (k + 1) * SLOT }); // no gaps at all
    let s = 7;
    for (let round = 0; round < 400; round++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const k = 1 + (s % (n - 2));
      const run = 1 + (s % 3); // delete 1..3 neighbours: a hole of run * SLOT bytes
      const gone: Span[] = [];
      for (let j = k; j < Math.min(n - 1, k + run); j++) {
        const v = idx.find(j * SLOT) as Span;
        gone.push(v);
        idx.delete(v.start);
      }
      const after = idx.find((k + gone.length) * SLOT);
      expect(idx.skipToGap(0, gone.length * SLOT)).toBe(after);
      expect(idx.skipToGap(0, gone.length * SLOT + 1)).toBeUndefined();
      for (const v of gone) idx.insert(v);
      expect(idx.skipToGap(0, 1)).toBeUndefined();
    }
    expect(idx.size).toBe(n);
  }, 30_000);
});

describe('BlockIndex positions and tags (locate / startAt / endAt / valueAt / tagAt / setTagAt)', () => {
  it('locate agrees with find, and a tag stays with the span it was set for', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 2000, maxLength: 4000 }), (cmds) => {
        const idx = new BlockIndex<Span>();
        const ref: (Span | undefined)[] = new Array(SLOTS).fill(undefined);
        const tagged = new Set<Span>();
        for (const c of cmds) {
          if (c.kind === 'ins') {
            if (ref[c.slot] !== undefined) continue;
            const s = { start: c.slot * SLOT, end: c.slot * SLOT + c.len };
            ref[c.slot] = s;
            idx.insert(s);
            const pos = idx.locate(s.start);
            expect(idx.valueAt(pos)).toBe(s);
            expect(idx.tagAt(pos)).toBeUndefined(); // a new entry starts untagged
            if (c.len % 2 === 0) {
              idx.setTagAt(pos, { of: s });
              tagged.add(s);
            }
          } else if (c.kind === 'del') {
            const s = ref[c.slot];
            if (s === undefined) continue;
            ref[c.slot] = undefined;
            tagged.delete(s);
            expect(idx.delete(s.start)).toBe(true);
          } else {
            const holder = idx.find(c.addr);
            const pos = idx.locate(c.addr);
            if (holder === undefined) {
              expect(pos).toBe(-1);
              continue;
            }
            expect(idx.valueAt(pos)).toBe(holder);
            expect(idx.startAt(pos)).toBe(holder.start);
            expect(idx.endAt(pos)).toBe(holder.end);
            const tag = idx.tagAt(pos) as { of: Span } | undefined;
            if (tagged.has(holder)) expect(tag?.of).toBe(holder);
            else expect(tag).toBeUndefined();
            idx.setTagAt(pos, { of: holder });
            tagged.add(holder);
          }
        }
        // every live tag is still beside its span after all the splits and merges
        for (const s of ref) {
          if (s === undefined) continue;
          const tag = idx.tagAt(idx.locate(s.start)) as { of: Span } | undefined;
          if (tagged.has(s)) expect(tag?.of).toBe(s);
          else expect(tag).toBeUndefined();
        }
      }),
      { numRuns: 25, seed: 1211 },
    );
  });

  it('tags survive block splits and merges, also with untagged blocks', () => {
    const idx = new BlockIndex<Span>();
    const spans: Span[] = [];
    for (let k = 0; k < 3000; k++) {
      const s = { start: k * SLOT, end: k * SLOT + 1 + (k % SLOT) };
      spans.push(s);
      idx.insert(s);
    }
    // tags on every third span of the first half only: the later blocks never build their tag arrays
    const tagged = new Set<Span>();
    for (let k = 0; k < 1500; k += 3) {
      idx.setTagAt(idx.locate(spans[k]!.start), { of: spans[k] });
      tagged.add(spans[k]!);
    }
    const live = new Set(spans);
    const verify = () => {
      for (const s of live) {
        const pos = idx.locate(s.start);
        expect(idx.valueAt(pos)).toBe(s);
        const tag = idx.tagAt(pos) as { of: Span } | undefined;
        if (tagged.has(s)) expect(tag?.of).toBe(s);
        else expect(tag).toBeUndefined();
      }
    };
    // delete 7 of every 8 spans, interleaved over the whole range: blocks shrink below a quarter and merge
    for (let r = 1; r < 8; r++) {
      for (let k = r; k < 3000; k += 8) {
        expect(idx.delete(spans[k]!.start)).toBe(true);
        live.delete(spans[k]!);
        tagged.delete(spans[k]!);
      }
      verify();
    }
    // refill: new entries in the merged blocks start untagged
    for (let k = 1; k < 3000; k += 8) {
      idx.insert(spans[k]!);
      live.add(spans[k]!);
    }
    verify();
  });
});
