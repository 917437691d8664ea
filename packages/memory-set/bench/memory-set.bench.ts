/**
 * memory-set benchmarks: `find` and a mixed map/unmap/protect workload at 1,000 and 100,000 areas, for
 * the default index (BlockIndex) and the measured alternatives (sorted-btree, a sorted array).
 *
 * The backend does nothing (a null page table) so the figures are the set's own cost. Both sides of
 * each ratio are measured in the same run, interleaved, best of several rounds.
 */
import { bestNs, reportMetrics } from '@vmkit/testkit';
import {
  type AreaIndexFactory,
  BlockIndex,
  BTreeIndex,
  MemoryArea,
  MemorySet,
  SortedArrayIndex,
} from '../src/index.js';
import { NullBackend } from './null-backend.js';

const PAGE = 0x1000;
const STRIDE = 4 * PAGE; // area k covers [k * STRIDE, k * STRIDE + 2 pages)

type BSet = MemorySet<number, null, number, NullBackend<number>>;
const backend = new NullBackend<number>(PAGE);

function build(n: number, index: AreaIndexFactory): BSet {
  const set: BSet = new MemorySet({ index });
  for (let k = 0; k < n; k++) set.map(new MemoryArea(k * STRIDE, 2 * PAGE, 1, backend), null, false);
  return set;
}

/** 65,536 pseudo-random addresses over the n areas' span (about half inside an area). */
function queries(n: number): Float64Array {
  const q = new Float64Array(1 << 16);
  let s = 0x9e3779b9;
  for (let i = 0; i < q.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    q[i] = Math.floor((s / 2 ** 32) * n * STRIDE);
  }
  return q;
}

let sink = 0;
function findNs(set: BSet, q: Float64Array, iters: number): number {
  return (
    bestNs(() => {
      let hits = 0;
      for (let i = 0; i < iters; i++) if (set.find(q[i & 0xffff] as number) !== undefined) hits++;
      sink += hits;
    }, 7) / iters
  );
}

/**
 * Per-operation cost of a mixed workload that keeps the area count stable: on random area k, protect its
 * second page (3 areas), map over it with overwrite (back to 1), unmap it (0), map it again (1).
 */
function opsNs(set: BSet, n: number, rounds: number): number {
  let s = 12345;
  return (
    bestNs(() => {
      for (let r = 0; r < rounds; r++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const base = (s % n) * STRIDE;
        set.protect(base + PAGE, PAGE, (f) => (f === 2 ? undefined : 2), null);
        set.map(new MemoryArea(base, 2 * PAGE, 1, backend), null, true);
        set.unmap(base, 2 * PAGE, null);
        set.map(new MemoryArea(base, 2 * PAGE, 1, backend), null, false);
      }
    }, 7) /
    (rounds * 4)
  );
}

const structures: [string, AreaIndexFactory][] = [
  ['block', () => new BlockIndex()],
  ['btree', () => new BTreeIndex()],
  ['sortedArray', () => new SortedArrayIndex()],
];

const metrics: Record<string, number> = {};
const table: Record<string, Record<string, string>> = {};
for (const [name, index] of structures) {
  const small = build(1_000, index);
  const large = build(100_000, index);
  const qs = queries(1_000);
  const ql = queries(100_000);
  // Interleave the two sizes so both see the same machine state; keep the best of each.
  let f1 = Number.POSITIVE_INFINITY;
  let f100 = Number.POSITIVE_INFINITY;
  let o1 = Number.POSITIVE_INFINITY;
  let o100 = Number.POSITIVE_INFINITY;
  const opRounds = name === 'sortedArray' ? 500 : 5_000;
  for (let rep = 0; rep < 3; rep++) {
    f1 = Math.min(f1, findNs(small, qs, 1_000_000));
    f100 = Math.min(f100, findNs(large, ql, 1_000_000));
    o1 = Math.min(o1, opsNs(small, 1_000, opRounds));
    o100 = Math.min(o100, opsNs(large, 100_000, opRounds));
  }
  if (small.len() !== 1_000 || large.len() !== 100_000) throw new Error('workload changed the area count');
  metrics[`memset.structure.${name}.find1kNs`] = f1;
  metrics[`memset.structure.${name}.find100kNs`] = f100;
  metrics[`memset.structure.${name}.ops1kNs`] = o1;
  metrics[`memset.structure.${name}.ops100kNs`] = o100;
  table[name] = {
    'find 1k (ns)': f1.toFixed(1),
    'find 100k (ns)': f100.toFixed(1),
    'find ratio': (f100 / f1).toFixed(2),
    'op 1k (ns)': o1.toFixed(0),
    'op 100k (ns)': o100.toFixed(0),
    'op ratio': (o100 / o1).toFixed(2),
  };
}
console.log('\nmemory-set: ordered structure comparison (null backend)');
console.table(table);

const b = (k: string) => metrics[`memset.structure.block.${k}`] as number;
reportMetrics({
  'memset.findScaling': b('find100kNs') / b('find1kNs'),
  'memset.opsScaling': b('ops100kNs') / b('ops1kNs'),
  'memset.find1kNs': b('find1kNs'),
  'memset.find100kNs': b('find100kNs'),
  'memset.ops1kNs': b('ops1kNs'),
  'memset.ops100kNs': b('ops100kNs'),
  ...metrics,
});
if (sink < 0) console.log(sink);
