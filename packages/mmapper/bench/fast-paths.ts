// @vmkit/mmapper (issue 13): what the benchmarks share: an OS that only counts calls, and the lock-free
// fast paths of a mapper (isMappedAddress, ensureMapped on mapped chunks) against a plain typed-array read,
// measured in the same run, interleaved. Not a `.bench.ts` file: the bench runner does not run it alone;
// fast-path.bench.ts (two-level) and byte-map.bench.ts (flat byte map) each run it in their own process.

import type { VirtAddr } from '@vmkit/addr';
import { bestNs, seededRandom } from '@vmkit/testkit';
import { type ChunkStateMmapper, MmapAnnotation, type MmapOs, MmapStrategy } from '../src/index.js';

// Module-private on purpose: an exported binding lives in a module cell, which the optimizing compiler
// reads on every iteration instead of folding the constant (a slower plain-read baseline).
const CHUNK = 0x40_0000;
const PAGE = 0x1000;
const TEST = MmapStrategy.TEST;
const ANNO = MmapAnnotation.space('bench');
const LOOP = 1 << 20;
const N = 4096; // addresses in the working set (power of two)

/** An OS that only counts calls (the mapper's own cost is what is measured). */
export class CountingOs implements MmapOs {
  calls = 0;
  dzmmap(): undefined {
    this.calls++;
    return undefined;
  }
  dzmmapNoreplace(): undefined {
    this.calls++;
    return undefined;
  }
  mmapNoreserve(): undefined {
    this.calls++;
    return undefined;
  }
  mprotect(): undefined {
    this.calls++;
    return undefined;
  }
  munprotect(): undefined {
    this.calls++;
    return undefined;
  }
}

/** Best nanoseconds per operation of each fast path and of the two typed-array baselines. */
export interface FastPathTimes {
  plainNs: number;
  indexedNs: number;
  isMappedNs: number;
  ensureNs: number;
}

/**
 * Maps `chunks` chunks from `heap` on the mapper `make` builds, then times `isMappedAddress` and
 * `ensureMapped` (already mapped) over a fixed pseudo-random set of page addresses in them, and prints
 * the times under `label`.
 */
export function fastPaths(
  label: string,
  make: (os: MmapOs) => ChunkStateMmapper,
  heap: number,
  chunks: number,
): FastPathTimes {
  const m = make(new CountingOs());
  m.ensureMapped(heap as VirtAddr, chunks * 1024, TEST, ANNO);
  const r = seededRandom(42);
  // page-aligned addresses spread over the mapped chunks (values ≥ 2^30: no Smi shortcut)
  const addrs = new Float64Array(N);
  for (let i = 0; i < N; i++) addrs[i] = heap + Math.floor(r() * chunks * 1024) * PAGE;
  // The baselines: a plain typed-array read of the byte of each address's chunk, the index computed from
  // the same address stream (`plain`, the ratio's denominator), and from precomputed indexes (`indexed`).
  const bytes = new Uint8Array(chunks);
  for (let i = 0; i < chunks; i++) bytes[i] = 2;
  const idx = new Int32Array(N);
  for (let i = 0; i < N; i++) idx[i] = Math.floor(((addrs[i] as number) - heap) / CHUNK);

  let sink = 0;
  const plain = (): void => {
    let hits = 0;
    for (let i = 0; i < LOOP; i++)
      if (bytes[(((addrs[i & (N - 1)] as number) - heap) / CHUNK) | 0] === 2) hits++;
    sink += hits;
  };
  const indexed = (): void => {
    let hits = 0;
    for (let i = 0; i < LOOP; i++) if (bytes[idx[i & (N - 1)] as number] === 2) hits++;
    sink += hits;
  };
  const isMapped = (): void => {
    let hits = 0;
    for (let i = 0; i < LOOP; i++) if (m.isMappedAddress(addrs[i & (N - 1)] as VirtAddr)) hits++;
    sink += hits;
  };
  const ensure = (): void => {
    for (let i = 0; i < LOOP; i++) m.ensureMapped(addrs[i & (N - 1)] as VirtAddr, 1, TEST, ANNO);
  };
  // Interleaved rounds, best of each: on a loaded machine the three see the same conditions.
  let plainNs = Number.POSITIVE_INFINITY;
  let indexedNs = Number.POSITIVE_INFINITY;
  let isMappedNs = Number.POSITIVE_INFINITY;
  let ensureNs = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 40; round++) {
    plainNs = Math.min(plainNs, bestNs(plain, 1) / LOOP);
    indexedNs = Math.min(indexedNs, bestNs(indexed, 1) / LOOP);
    isMappedNs = Math.min(isMappedNs, bestNs(isMapped, 1) / LOOP);
    ensureNs = Math.min(ensureNs, bestNs(ensure, 1) / LOOP);
  }
  if (sink % 1 !== 0) console.log(sink); // keep the loops' results alive
  console.log(
    `${label}: plain read ${plainNs.toFixed(2)} ns (indexed ${indexedNs.toFixed(2)}), isMappedAddress ${isMappedNs.toFixed(2)} ns, ensureMapped (mapped) ${ensureNs.toFixed(2)} ns`,
  );
  return { plainNs, indexedNs, isMappedNs, ensureNs };
}
