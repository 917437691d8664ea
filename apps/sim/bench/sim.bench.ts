/**
 * Benchmarks of the simulated kernel (`pnpm --filter @vmkit/sim bench`):
 * - `sim.accessRatio`: a TLB-hit access inside the full kernel loop (CPU access run, slices,
 *   scheduling) / a bare `@vmkit/paging-x86_64` `read32` hit over the same addresses, same run.
 * - `sim.faultsPerSec`: demand-zero faults resolved per second through the whole event path (CPU
 *   access → MMU fault → CPU event → handler → frame → PTE → resume), `host.faultsPerSec` the same
 *   for the host kernel (bench/host-faults.c built with `cc`), and `sim.faultsVsHost` their ratio.
 * - `sim.eventOverheadNs`: wall-clock ns per event of the event loop.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VirtAddr } from '@vmkit/addr';
import { BitmapFrameAllocator, Mmu, PageMapper, PhysicalMemory } from '@vmkit/paging-x86_64';
import { reportMetrics } from '@vmkit/testkit';
import { EventEngine } from '../src/engine.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/errno.js';
import { Kernel } from '../src/kernel.js';
import { cpu, program, sys } from '../src/program.js';

const here = dirname(fileURLToPath(import.meta.url));
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const BASE = 0x7f12_3450_0000; // a typical mmap address (above 2^32, as real ones are)
const PAGES = 64;
const STRIDE = 16;
const SPAN = PAGES * 4096;
const ACCESSES = 1 << 24;

// ---------------------------------------------------------------- sim.accessRatio

/** Wall ns per access of a TLB-hit read run inside the kernel (scheduling included). */
async function kernelAccessNs(): Promise<number> {
  const k = new Kernel({ cpus: 1, ramBytes: 64 * 2 ** 20, sliceNs: 1_000_000 });
  let ns = 0;
  k.spawn(
    program('hits', function* () {
      yield sys.mmap(BASE, SPAN, RW, ANON);
      // Random non-zero data, so that values above 2^31 are read (boxing would show).
      for (let p = 0; p < PAGES; p++)
        yield cpu.write(BASE + p * 4096, 4096, 4, 1, (0x9e3779b9 * (p + 1)) >>> 0);
      yield cpu.read(BASE, SPAN, STRIDE, 4); // warm the TLB and the JIT
      yield sys.getpid();
      const t0 = process.hrtime.bigint();
      yield cpu.read(BASE, SPAN, STRIDE, ACCESSES / (SPAN / STRIDE));
      yield sys.getpid();
      ns = Number(process.hrtime.bigint() - t0) / ACCESSES;
    }),
  );
  await k.run();
  return ns;
}

/** The same addresses through a bare MMU `read32` loop. */
function bareAccessNs(): number {
  const mem = new PhysicalMemory(64 * 2 ** 20);
  const frames = new BitmapFrameAllocator(mem, { start: 0x10_0000 });
  const mapper = new PageMapper(mem, frames);
  for (let p = 0; p < PAGES; p++) {
    const pa = frames.allocFrame();
    for (let o = 0; o < 4096; o += 4) mem.write32(pa + o, (0x9e3779b9 * (p + 1)) >>> 0);
    mapper.map((BASE + p * 4096) as VirtAddr, pa, 4096, { writable: true, user: true, executable: false });
  }
  const mmu = new Mmu(mem, { tlbSize: 4096 });
  mmu.writeCr3(mapper.root);
  bareLoop(mmu, 1 << 20);
  const t0 = process.hrtime.bigint();
  sink += bareLoop(mmu, ACCESSES);
  return Number(process.hrtime.bigint() - t0) / ACCESSES;
}

/** The bare loop: the same address sequence as the kernel's read run, straight into `read32`. */
function bareLoop(mmu: Mmu, n: number): number {
  let s = 0;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const v = mmu.read32(BASE + off, 4);
    if (v === -1) break;
    s = (s + v) | 0;
    off += STRIDE;
    if (off >= SPAN) off = 0;
  }
  return s;
}

let sink = 0;

// ---------------------------------------------------------------- sim.faultsPerSec

const FAULT_PAGES = 1 << 15; // 128 MiB

async function simFaultsPerSec(): Promise<number> {
  const k = new Kernel({ cpus: 1, ramBytes: 256 * 2 ** 20 });
  let rate = 0;
  k.spawn(
    program('faults', function* () {
      // A first pass over as many pages warms the fault path and makes the host commit the simulated
      // RAM (the ArrayBuffer's pages are the host's demand-zero pages until first written: without
      // this pass we would time the host's page faults under ours). Its frames go back at munmap.
      yield sys.mmap(0x1000_0000, FAULT_PAGES * 4096, RW, ANON);
      yield cpu.write(0x1000_0000, FAULT_PAGES * 4096);
      yield sys.munmap(0x1000_0000, FAULT_PAGES * 4096);
      yield sys.mmap(BASE, FAULT_PAGES * 4096, RW, ANON);
      const t0 = process.hrtime.bigint();
      yield cpu.write(BASE, FAULT_PAGES * 4096); // one demand-zero fault per page
      yield sys.getpid();
      rate = FAULT_PAGES / (Number(process.hrtime.bigint() - t0) / 1e9);
    }),
  );
  await k.run();
  const st = k.processes.get(1)!.stats;
  if (st.minorFaults !== 2 * FAULT_PAGES)
    throw new Error(`expected ${2 * FAULT_PAGES} faults, saw ${st.minorFaults}`);
  return rate;
}

function hostFaultsPerSec(): number | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'vmkit-host-faults-'));
  try {
    const exe = join(dir, 'host-faults');
    try {
      execFileSync('cc', ['-O2', '-o', exe, join(here, 'host-faults.c')], { stdio: 'pipe' });
    } catch {
      console.log('  host.faultsPerSec skipped: no working C compiler (cc) on this machine');
      return undefined;
    }
    return Number(execFileSync(exe, [String(FAULT_PAGES), '5'], { encoding: 'utf8' }).trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- sim.eventOverheadNs

async function eventOverheadNs(): Promise<number> {
  const e = new EventEngine();
  const N = 2_000_000;
  let left = N;
  const tick = (step: number): void => {
    if (--left > 0) e.post(e.now + step, tick, step);
  };
  // A thousand timers pending all along, so the heap has depth, as in a busy run.
  for (let i = 0; i < 1000; i++) e.post(1e15 + i, () => {}, 0);
  e.post(0, tick, 3);
  const t0 = process.hrtime.bigint();
  while (left > 0 && e.step()) {}
  return Number(process.hrtime.bigint() - t0) / N;
}

// ---------------------------------------------------------------- run

let bestK = Number.POSITIVE_INFINITY;
let bestB = Number.POSITIVE_INFINITY;
for (let r = 0; r < 5; r++) {
  bestK = Math.min(bestK, await kernelAccessNs());
  bestB = Math.min(bestB, bareAccessNs());
}
console.log(
  `TLB-hit access in the kernel loop ${bestK.toFixed(2)} ns, bare read32 hit ${bestB.toFixed(2)} ns`,
);

let simRate = 0;
for (let r = 0; r < 3; r++) simRate = Math.max(simRate, await simFaultsPerSec());
const hostRate = hostFaultsPerSec();
console.log(`demand-zero faults/s: sim ${simRate.toFixed(0)}, host ${hostRate?.toFixed(0) ?? 'skipped'}`);

let ev = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) ev = Math.min(ev, await eventOverheadNs());
console.log(`event loop: ${ev.toFixed(1)} ns per event`);

reportMetrics({
  'sim.accessRatio': bestK / bestB,
  'sim.kernelAccessNs': bestK,
  'sim.bareAccessNs': bestB,
  'sim.faultsPerSec': Math.round(simRate),
  ...(hostRate === undefined
    ? {}
    : { 'host.faultsPerSec': Math.round(hostRate), 'sim.faultsVsHost': simRate / hostRate }),
  'sim.eventOverheadNs': ev,
});
if (sink === 42) console.log('');
