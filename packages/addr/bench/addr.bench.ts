// addr benchmarks: alignment and index extraction through @vmkit/addr vs the same loop on raw numbers.
// Metric addr.alignRatio = (ns/addr via the library) / (ns/addr raw), both measured in this run.
import { bestNs, reportMetrics } from '@vmkit/testkit';
import {
  alignDown,
  isAligned,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  pdIndex,
  pdptIndex,
  pml4Index,
  ptIndex,
  type VirtAddr,
  virtAddrFromBits,
} from '../src/index.js';

const N = 1 << 20;
// Hot loops should hoist imported constants into module-local ones: V8 (Node 20) constant-folds a
// module's own `const` but not an imported binding (measured below as addr.alignRatioImportedConsts).
const K4 = PAGE_SIZE_4K;
const M2 = PAGE_SIZE_2M;
const addrs = new Float64Array(N);
let seed = 0x2545f491;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}
for (let i = 0; i < N; i++)
  addrs[i] = virtAddrFromBits(((rnd() % 0x10000) * 0x1_0000_0000 + rnd()) % 2 ** 48);

function viaLibrary(): number {
  let acc = 0;
  for (let i = 0; i < N; i++) {
    const va = addrs[i] as VirtAddr;
    const page = alignDown(va, K4);
    acc += page - alignDown(va, M2) + pml4Index(va) + pdptIndex(va) + pdIndex(va) + ptIndex(va);
    if (isAligned(va, K4)) acc++;
  }
  return acc;
}

function viaLibraryImportedConsts(): number {
  let acc = 0;
  for (let i = 0; i < N; i++) {
    const va = addrs[i] as VirtAddr;
    const page = alignDown(va, PAGE_SIZE_4K);
    acc += page - alignDown(va, PAGE_SIZE_2M) + pml4Index(va) + pdptIndex(va) + pdIndex(va) + ptIndex(va);
    if (isAligned(va, PAGE_SIZE_4K)) acc++;
  }
  return acc;
}

function raw(): number {
  let acc = 0;
  for (let i = 0; i < N; i++) {
    const va = addrs[i]!;
    const page = va - (va & 4095);
    acc +=
      page -
      (va - (va & 2097151)) +
      ((va / 549755813888) & 511) +
      ((va / 1073741824) & 511) +
      ((va / 2097152) & 511) +
      ((va / 4096) & 511);
    if ((va & 4095) === 0) acc++;
  }
  return acc;
}

if (viaLibrary() !== raw() || viaLibraryImportedConsts() !== raw())
  throw new Error('library and raw loops disagree');
let sink = 0;
// warm up both, then interleave rounds so that both see the same machine state
for (let i = 0; i < 20; i++) sink += viaLibrary() + raw() + viaLibraryImportedConsts();
let lib = Number.POSITIVE_INFINITY;
let libImported = Number.POSITIVE_INFINITY;
let rawNs = Number.POSITIVE_INFINITY;
for (let r = 0; r < 15; r++) {
  lib = Math.min(lib, bestNs(() => (sink += viaLibrary()), 1) / N);
  libImported = Math.min(libImported, bestNs(() => (sink += viaLibraryImportedConsts()), 1) / N);
  rawNs = Math.min(rawNs, bestNs(() => (sink += raw()), 1) / N);
}

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < 10; i++) sink += viaLibrary();
const after = process.memoryUsage().heapUsed;

console.log(
  `library ${lib.toFixed(3)} ns/addr (imported constants ${libImported.toFixed(3)}), raw ${rawNs.toFixed(3)} ns/addr (sink ${sink % 7})`,
);
reportMetrics({
  'addr.alignNsPerAddr': lib,
  'addr.rawNsPerAddr': rawNs,
  'addr.alignRatio': lib / rawNs,
  'addr.alignRatioImportedConsts': libImported / rawNs,
  'addr.heapBytesPerOp': Math.max(0, after - before) / (10 * N),
});
