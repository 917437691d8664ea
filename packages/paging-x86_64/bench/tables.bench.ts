// paging-x86_64 table benchmarks (issue 3).
// paging.mapNsPerPage: one `map` of 1 Mi 4 KiB pages (4 GiB) into fresh tables over PhysicalMemory,
//   ns per page (best of 3 rounds).
// paging.bytesPerMappedPage: JS heap + ArrayBuffer bytes allocated outside the simulated physical
//   memory (and outside the frame allocator's fixed arrays, which exist before), per mapped page, at
//   1 Mi pages — measured with global.gc() before and after (node --expose-gc).

import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import { reportMetrics } from '@vmkit/testkit';
import { BitmapFrameAllocator, MappingKind, map, PhysicalMemory, PhysTableOps } from '../src/index.js';

const PAGES = 1 << 20;
const MEM = 16 << 20; // 1 Mi pages need 2048 PTs + 2 PDs + 1 PDPT + root ≈ 8.2 MiB of tables
const kind = MappingKind.basic({ readable: true, writable: true, executable: false });
const gc = (globalThis as { gc?: () => void }).gc;

function fresh() {
  const mem = new PhysicalMemory(MEM);
  const frames = new BitmapFrameAllocator(mem);
  const op = new PhysTableOps(mem, { frames });
  return { mem, frames, op };
}

function mapAll(op: PhysTableOps): void {
  map(op, {
    physBase: 0x1_0000_0000 as PhysAddr,
    virtBase: 0x4000_0000 as VirtAddr,
    len: PAGES * 4096,
    kind,
    userAccessible: false,
  });
}

// warm-up
mapAll(fresh().op);

let best = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) {
  const { op } = fresh();
  const t0 = process.hrtime.bigint();
  mapAll(op);
  const dt = Number(process.hrtime.bigint() - t0);
  best = Math.min(best, dt);
}
const mapNsPerPage = best / PAGES;

const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const { op, frames } = fresh();
gc?.();
gc?.();
const before = used();
mapAll(op);
gc?.();
gc?.();
const after = used();
const bytesPerMappedPage = Math.max(0, after - before) / PAGES;
console.log(
  `map of ${PAGES} pages: ${(best / 1e6).toFixed(1)} ms, ${frames.usedFrames} table frames; heap delta ${after - before} bytes${gc ? '' : ' (no --expose-gc: figure is noisy)'}`,
);

reportMetrics({ 'paging.mapNsPerPage': mapNsPerPage, 'paging.bytesPerMappedPage': bytesPerMappedPage });
