// @vmkit/mmapper (issue 13): the start-up quarantine of a 1 TiB heap range on the two-level mapper: OS
// calls (one per run of equal state) and time against runs and against chunks.
// Run: pnpm --filter @vmkit/mmapper bench   (or `pnpm bench mmapper` from the repository root)

import type { VirtAddr } from '@vmkit/addr';
import { reportMetrics } from '@vmkit/testkit';
import { MmapAnnotation, MmapStrategy, TwoLevelMmapper } from '../src/index.js';
import { CountingOs } from './fast-paths.js';

const CHUNK = 0x40_0000;
const PAGE = 0x1000;
const TEST = MmapStrategy.TEST;
const ANNO = MmapAnnotation.space('bench');

// ---- start-up quarantine ---------------------------------------------------------------------------------

const TIB = 2 ** 40;
const HEAP = 0x200_0000_0000; // 2 TiB, slab-aligned

/**
 * Quarantines `[HEAP, HEAP + bytes)` on a fresh two-level mapper after marking `holes` chunks spread over
 * the range as Mapped (each splits the Unmapped run): returns the OS calls and the best time of `reps`.
 */
function quarantine(bytes: number, holes: number, reps = 7): { calls: number; ns: number } {
  let best = Number.POSITIVE_INFINITY;
  let calls = 0;
  for (let k = 0; k < reps; k++) {
    const os = new CountingOs();
    const m = new TwoLevelMmapper(os);
    const chunks = bytes / CHUNK;
    for (let h = 0; h < holes; h++)
      m.markAsMapped((HEAP + Math.floor(((h + 0.5) * chunks) / holes) * CHUNK) as VirtAddr, 1);
    const t0 = process.hrtime.bigint();
    m.quarantineAddressRange(HEAP as VirtAddr, bytes / PAGE, TEST, ANNO);
    const dt = Number(process.hrtime.bigint() - t0);
    best = Math.min(best, dt);
    calls = os.calls;
  }
  return { calls, ns: best };
}

quarantine(TIB, 0, 3); // warm-up
const q1 = quarantine(TIB, 0);
const q64 = quarantine(64 * TIB, 0);
const qRuns = quarantine(TIB, 1024);
const qRuns4 = quarantine(TIB, 4096);
console.log(
  `quarantine 1 TiB (262,144 chunks, 1 run):     ${q1.calls} call(s), ${(q1.ns / 1000).toFixed(1)} µs`,
);
console.log(
  `quarantine 64 TiB (16.8 M chunks, 1 run):     ${q64.calls} call(s), ${(q64.ns / 1000).toFixed(1)} µs`,
);
console.log(
  `quarantine 1 TiB, 1,024 mapped chunks inside: ${qRuns.calls} call(s), ${(qRuns.ns / 1000).toFixed(1)} µs`,
);
console.log(
  `quarantine 1 TiB, 4,096 mapped chunks inside: ${qRuns4.calls} call(s), ${(qRuns4.ns / 1000).toFixed(1)} µs`,
);

reportMetrics({
  'mmapper.quarantineCalls': q1.calls,
  'mmapper.quarantine1TiBUs': q1.ns / 1000,
  'mmapper.quarantine64TiBUs': q64.ns / 1000,
  'mmapper.quarantineCallsWith1024Holes': qRuns.calls,
  'mmapper.quarantineNsPerRun': (qRuns4.ns - q1.ns) / (qRuns4.calls - q1.calls),
});
