// @vmkit/mmapper (issue 13): the same fast paths on the flat byte-map mapper (its own process, so that
// the shared base class sees one receiver kind).
// Run: pnpm --filter @vmkit/mmapper bench   (or `pnpm bench mmapper` from the repository root)

import type { VirtAddr } from '@vmkit/addr';
import { bestNs, reportMetrics } from '@vmkit/testkit';
import {
  ByteMapMmapper,
  type ChunkStateMmapper,
  MmapAnnotation,
  type MmapOs,
  MmapStrategy,
} from '../src/index.js';

const CHUNK = 0x40_0000;
const PAGE = 0x1000;
const LOOP = 1 << 20;
const N = 4096; // addresses in the working set (power of two)
const TEST = MmapStrategy.TEST;
const ANNO = MmapAnnotation.space('bench');

/** mulberry32 with a fixed seed: the same addresses every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An OS that only counts calls (the mapper's own cost is what is measured). */
class CountingOs implements MmapOs {
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

// ---- fast paths --------------------------------------------------------------------------------------

function fastPaths(make: (os: MmapOs) => ChunkStateMmapper, heap: number, chunks: number) {
  const m = make(new CountingOs());
  m.ensureMapped(heap as VirtAddr, chunks * 1024, TEST, ANNO);
  const r = rng(42);
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
  return { plainNs, indexedNs, isMappedNs, ensureNs };
}

const byteMap = fastPaths((os) => new ByteMapMmapper(os), 0x1_0000_0000, 64);
console.log(
  `byte map: plain read ${byteMap.plainNs.toFixed(2)} ns (indexed ${byteMap.indexedNs.toFixed(2)}), isMappedAddress ${byteMap.isMappedNs.toFixed(2)} ns, ensureMapped (mapped) ${byteMap.ensureNs.toFixed(2)} ns`,
);
reportMetrics({
  'mmapper.byteMap.fastPathRatio': byteMap.ensureNs / byteMap.isMappedNs,
  'mmapper.byteMap.isMappedRatio': byteMap.isMappedNs / byteMap.plainNs,
  'mmapper.byteMap.isMappedRatioVsIndexedRead': byteMap.isMappedNs / byteMap.indexedNs,
});
