// One of the racing workers of worker.test.ts. workerData:
//   state  the mapper's SharedArrayBuffer (Mmapper.shared)
//   kernel a SharedArrayBuffer of Int32 words: [0] barrier counter, [1 + k] owner of chunk k (0 = unmapped)
//   id     this worker's id (1, 2, ...), workers: how many race, base: first chunk address, rounds
import { parentPort, workerData } from 'node:worker_threads';
import type { VirtAddr } from '@vmkit/addr';
import { isMmapperError, MmapAnnotation, type MmapOs, Mmapper, MmapStrategy } from '../src/index.js';

const { state, kernel, id, workers, base, rounds } = workerData as {
  state: SharedArrayBuffer;
  kernel: SharedArrayBuffer;
  id: number;
  workers: number;
  base: number;
  rounds: number;
};
const CHUNK = 0x40_0000;
const words = new Int32Array(kernel);
let calls = 0;
let eexist = 0;

function spin(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) {}
}

// A shared "kernel": MAP_FIXED_NOREPLACE semantics over one owner word per chunk, visible to all workers.
// The call is slow (busy 200 µs) so that the other worker arrives while it is in progress.
const os: MmapOs = {
  dzmmapNoreplace(start, bytes) {
    calls++;
    spin(200);
    for (let a: number = start; a < start + bytes; a += CHUNK) {
      if (Atomics.compareExchange(words, 1 + (a - base) / CHUNK, 0, id) !== 0) {
        eexist++;
        return { errno: 'EEXIST' };
      }
    }
    return undefined;
  },
  dzmmap: () => undefined,
  mmapNoreserve: () => undefined,
  mprotect: () => undefined,
  munprotect: () => undefined,
};

const mapper = Mmapper.fromShared(state, os);
let errors = 0;
for (let r = 0; r < rounds; r++) {
  // barrier: every worker arrives before any of them maps chunk r
  Atomics.add(words, 0, 1);
  while (Atomics.load(words, 0) < workers * (r + 1)) {}
  try {
    mapper.ensureMapped(
      (base + r * CHUNK) as VirtAddr,
      1,
      MmapStrategy.TEST,
      MmapAnnotation.misc(`worker-${id}`),
    );
  } catch (e) {
    if (!isMmapperError(e, 'E_OS')) throw e;
    errors++;
  }
}
parentPort?.postMessage({
  id,
  calls,
  eexist,
  errors,
  mapped: mapper.isMappedAddress((base + (rounds - 1) * CHUNK) as VirtAddr),
});
