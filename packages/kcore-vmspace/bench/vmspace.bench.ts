// kcore-vmspace benchmarks (issue 12).
// vmspace.forkNsPerPage: fork of a space with 100,000 resident private pages, CPU ns per page (best of
//   15; CPU time of the process, so that preemption on the shared machine is not counted; the wall-clock
//   figures are vmspace.forkWallNsPerPage / vmspace.forkWallNsPerPage10k).
// vmspace.forkScaling: forkNsPerPage at 100,000 pages / at 10,000 pages (same run, interleaved).
// vmspace.allocatorIncRefNs: the frame allocator's incRef alone, per frame (fork's floor; reference).
// vmspace.faultNs: one fault of an unfetched private page of a memory-backed file (mean CPU ns over
//   20,000, best of 3 rounds; the allocator zero-fills the frame, the file copies 4 KiB into it).
// vmspace.cowFaultNs: one write fault on a page shared copy-on-write with a fork (mean CPU ns over
//   20,000, best of 3 rounds: a frame allocated, 4 KiB copied).
// vmspace.bytesPerResidentPage: JS heap + ArrayBuffer bytes outside simulated RAM (and outside the
//   frame allocator's fixed arrays, which exist before) per resident private page, at 100,000 pages.
// Run: pnpm --filter @vmkit/kcore-vmspace bench

import type { PhysAddr } from '@vmkit/addr';
import { BitmapFrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import { reportMetrics } from '@vmkit/testkit';
import { MemoryFile, openChan, VmContext, VmSpace, ZeroDevice } from '../src/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
const mem = new PhysicalMemory(1 << 30); // 1 GiB of simulated RAM (262,144 frames)
// Touch all of it first (non-zero, as a running machine's RAM is): the host's first-touch page faults
// would otherwise be charged to whichever operation zero-fills a frame first.
mem.flat8!.fill(0x5a);
const frames = new BitmapFrameAllocator(mem);
const ctx = new VmContext({ mem, frames });
const BASE = 0x1000_0000;

/** A space with `pages` resident private pages whose data is non-zero. */
async function populated(pages: number): Promise<VmSpace> {
  const s = VmSpace.create(ctx);
  await s.mmap(BASE, pages * 4096, openChan(new ZeroDevice()), 0, true);
  const word = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
  for (let p = 0; p < pages; p++) await s.write(word, BASE + p * 4096 + ((p * 64) & 4095));
  return s;
}

/** CPU time of the process in ns (user + system): unlike wall time, it does not count the time the
 * process was descheduled, which on a loaded 2-core machine lengthens a 10 ms fork far more often than
 * a 1 ms one and would make the scaling ratio measure the load instead of the work. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/**
 * Best fork time per page of each space, the sizes measured interleaved (round-robin) in one run:
 * `[cpu, wall]` per size.
 */
async function forkNs(sizes: number[], rounds: number): Promise<[number, number][]> {
  const spaces: VmSpace[] = [];
  for (const n of sizes) spaces.push(await populated(n));
  const best = sizes.map((): [number, number] => [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sizes.length; k++) {
      gc?.();
      const c0 = cpuNs();
      const t0 = process.hrtime.bigint();
      const c = await spaces[k]!.fork();
      const dt = Number(process.hrtime.bigint() - t0);
      const dc = cpuNs() - c0;
      const b = best[k]!;
      b[0] = Math.min(b[0], dc / sizes[k]!);
      b[1] = Math.min(b[1], dt / sizes[k]!);
      await c.free();
    }
  }
  for (const s of spaces) await s.free();
  return best;
}

/** The allocator's own `incRef` + `decRef` per frame, over `n` allocated frames (for reference). */
function incRefNs(n: number, rounds: number): number {
  const got: number[] = [];
  for (let i = 0; i < n; i++) got.push(frames.allocFrame());
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) frames.incRef(got[i] as PhysAddr);
    const dt = Number(process.hrtime.bigint() - t0);
    for (let i = 0; i < n; i++) frames.decRef(got[i] as PhysAddr);
    best = Math.min(best, dt / n);
  }
  for (const f of got) frames.decRef(f as PhysAddr);
  return best;
}

async function faultNs(n: number): Promise<number> {
  const file = new MemoryFile(n * 4096);
  const s = VmSpace.create(ctx);
  await s.mmap(BASE, n * 4096, openChan(file), 0, true);
  gc?.();
  const c0 = cpuNs();
  for (let p = 0; p < n; p++) await s.fault(BASE + p * 4096, 'read');
  const dc = cpuNs() - c0;
  await s.free();
  return dc / n;
}

async function cowFaultNs(n: number): Promise<number> {
  const s = await populated(n);
  const c = await s.fork();
  gc?.();
  const c0 = cpuNs();
  for (let p = 0; p < n; p++) await c.fault(BASE + p * 4096, 'write');
  const dc = cpuNs() - c0;
  await c.free();
  await s.free();
  return dc / n;
}

function heapBytes(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function bytesPerPage(pages: number): Promise<number> {
  const before = heapBytes();
  const s = await populated(pages);
  const after = heapBytes();
  await s.free();
  return Math.max(0, after - before) / pages;
}

// Warm-up (JIT) on a small space.
await forkNs([2000], 3);
await faultNs(2000);
await cowFaultNs(2000);

const [[f10k, w10k], [f100k, w100k]] = (await forkNs([10_000, 100_000], 15)) as [
  [number, number],
  [number, number],
];
const incRef = incRefNs(100_000, 9);
let fault = Number.POSITIVE_INFINITY;
let cow = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) {
  fault = Math.min(fault, await faultNs(20_000));
  cow = Math.min(cow, await cowFaultNs(20_000));
}
const bytes = await bytesPerPage(100_000);
if (frames.freeFrames !== frames.totalFrames) throw new Error('frame leak in the benchmark');
reportMetrics({
  'vmspace.forkNsPerPage': f100k,
  'vmspace.forkNsPerPage10k': f10k,
  'vmspace.forkScaling': f100k / f10k,
  'vmspace.forkWallNsPerPage': w100k,
  'vmspace.forkWallNsPerPage10k': w10k,
  'vmspace.allocatorIncRefNs': incRef,
  'vmspace.faultNs': fault,
  'vmspace.cowFaultNs': cow,
  'vmspace.bytesPerResidentPage': bytes,
});
