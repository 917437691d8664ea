// PageMapper range operations cost what the tables hold (issue 10 §2).
// paging.mapperTiB10Us: protectRange + unmapRange of a 1 TiB range holding 10 scattered 4 KiB pages
//   (each in its own PT and PD), µs for both, best of 200 after 100 warm-up rounds (the 10 pages are mapped again between rounds,
//   not timed).
// paging.mapRangeNoMemUs: mapRange of 2^46 bytes with 4 MiB of RAM, refused with E_NOMEM before
//   anything is written, µs (best of 200 after 100 warm-up rounds).
import { isVmkitError, physAddr, virtAddr } from '@vmkit/addr';
import { reportMetrics } from '@vmkit/testkit';
import { BitmapFrameAllocator, PageMapper, PhysicalMemory } from '../src/index.js';

const URW = { writable: true, user: true, executable: false };
const RO = { writable: false, user: true, executable: false };
const TIB = 2 ** 40;
const BASE = 2 ** 41;

const mem = new PhysicalMemory(8 << 20);
const frames = new BitmapFrameAllocator(mem, { start: 1 << 20 });
const mapper = new PageMapper(mem, frames);
const mapTen = (): void => {
  for (let k = 0; k < 10; k++) {
    const va = BASE + k * 101 * 2 ** 30 + k * 3 * 2 ** 21 + k * 4096;
    mapper.map(virtAddr(va), physAddr(0x10000 + k * 4096), 4096, URW);
  }
};
let best = Number.POSITIVE_INFINITY;
for (let r = 0; r < 300; r++) {
  mapTen();
  const t0 = process.hrtime.bigint();
  const changed = mapper.protectRange(virtAddr(BASE), TIB, RO);
  const removed = mapper.unmapRange(virtAddr(BASE), TIB).length;
  const dt = Number(process.hrtime.bigint() - t0) / 1000;
  if (changed !== 10 || removed !== 10) throw new Error(`expected 10 pages, got ${changed}/${removed}`);
  if (r >= 100) best = Math.min(best, dt);
}

const small = new PhysicalMemory(4 << 20);
const smallMapper = new PageMapper(small, new BitmapFrameAllocator(small, { start: 1 << 20 }));
let bestNoMem = Number.POSITIVE_INFINITY;
for (let r = 0; r < 300; r++) {
  const t0 = process.hrtime.bigint();
  try {
    smallMapper.mapRange(virtAddr(0), physAddr(0), 2 ** 46, URW);
  } catch (e) {
    if (!isVmkitError(e, 'E_NOMEM')) throw e;
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1000;
  if (r >= 100) bestNoMem = Math.min(bestNoMem, dt);
}
console.log(
  `protect + unmap of a 1 TiB range holding 10 pages: ${best.toFixed(1)} µs; mapRange(2^46) with 4 MiB: E_NOMEM in ${bestNoMem.toFixed(1)} µs`,
);
reportMetrics({ 'paging.mapperTiB10Us': best, 'paging.mapRangeNoMemUs': bestNoMem });
