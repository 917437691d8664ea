import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { VirtAddr } from '@vmkit/addr';
import { describe, expect, it } from 'vitest';
import { ByteMapMmapper } from './byte-map.js';
import type { ChunkStateMmapper } from './chunk-state.js';
import { RecordingOs } from './testing.js';
import { TwoLevelMmapper } from './two-level.js';

const CHUNK = 0x40_0000;
const ROUNDS = 60;
const WORKERS = 2;
const entry = fileURLToPath(new URL('../test/race-worker.mjs', import.meta.url));

interface Report {
  id: number;
  calls: number;
  eexist: number;
  errors: number;
  mapped: boolean;
}

function race(mapper: ChunkStateMmapper, base: number): Promise<Report[]> {
  const kernel = new SharedArrayBuffer(4 * (1 + ROUNDS));
  return Promise.all(
    Array.from(
      { length: WORKERS },
      (_, i) =>
        new Promise<Report>((resolve, reject) => {
          const w = new Worker(entry, {
            workerData: { state: mapper.shared, kernel, id: i + 1, workers: WORKERS, base, rounds: ROUNDS },
          });
          w.once('message', (m: Report) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
          w.once('exit', (code) => {
            if (code !== 0) reject(new Error(`worker ${i + 1} exited with ${code}`));
          });
        }),
    ),
  ).then((reports) => {
    const owners = new Int32Array(kernel, 4);
    expect([...owners].every((o) => o === 1 || o === 2)).toBe(true); // every chunk mapped by someone
    return reports;
  });
}

describe('two workers racing ensureMapped on the same chunks (real worker_threads)', () => {
  for (const [name, make, base] of [
    ['TwoLevelMmapper', (os: RecordingOs) => new TwoLevelMmapper(os), 2 ** 35 - 8 * CHUNK],
    ['ByteMapMmapper', (os: RecordingOs) => new ByteMapMmapper(os), 0x4000_0000],
  ] as const) {
    it(`${name}: exactly one OS map per chunk, no EEXIST, the other thread sees it mapped`, async () => {
      const mapper = make(new RecordingOs());
      const reports = await race(mapper, base);
      const calls = reports.reduce((n, r) => n + r.calls, 0);
      expect(reports.map((r) => [r.eexist, r.errors, r.mapped])).toEqual(reports.map(() => [0, 0, true]));
      expect(calls).toBe(ROUNDS);
      for (let r = 0; r < ROUNDS; r++)
        expect(mapper.isMappedAddress((base + r * CHUNK) as VirtAddr)).toBe(true);
      if (mapper instanceof TwoLevelMmapper) expect(mapper.slabCount).toBe(2); // created by workers, seen here
    }, 60_000);
  }
});
