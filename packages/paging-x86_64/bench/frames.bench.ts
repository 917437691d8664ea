// Frame-allocator benchmarks (the fork and fault paths of an address space).
// paging.incRefNs: `incRef` per frame, 512 frames a pass (one page table's leaves, as a fork shares them).
// paging.incRefManyNs / paging.decRefManyNs: the same frames through one `incRefMany` / `decRefMany` call.
// paging.allocFrameNs: `allocFrame` (next-fit bitmap search, count 1, 4 KiB zero-fill) per frame.
// Run: pnpm bench paging-x86_64   (from the repository root)

import type { PhysAddr } from '@vmkit/addr';
import { bestNs, reportMetrics } from '@vmkit/testkit';
import { BitmapFrameAllocator, PhysicalMemory } from '../src/index.js';

const MEM = 64 << 20;
const mem = new PhysicalMemory(MEM);
const frames = new BitmapFrameAllocator(mem, { start: 1 << 20 });
const N = 512;
// Frames spread over the allocator (every 7th), as a process's pages are.
const list = new Float64Array(N);
const held: PhysAddr[] = [];
for (let i = 0; i < N * 7; i++) held.push(frames.allocFrame());
for (let i = 0; i < N; i++) list[i] = held[i * 7]!;
const PASSES = 200;

const incOne = (): void => {
  for (let p = 0; p < PASSES; p++) for (let i = 0; i < N; i++) frames.incRef(list[i]! as PhysAddr);
  for (let p = 0; p < PASSES; p++) for (let i = 0; i < N; i++) frames.decRef(list[i]! as PhysAddr);
};
const incOnly = (): void => {
  for (let p = 0; p < PASSES; p++) for (let i = 0; i < N; i++) frames.incRef(list[i]! as PhysAddr);
};
const decOnly = (): void => {
  for (let p = 0; p < PASSES; p++) for (let i = 0; i < N; i++) frames.decRef(list[i]! as PhysAddr);
};
const batch = frames as unknown as {
  incRefMany?: (f: Float64Array, n: number) => void;
  decRefMany?: (f: Float64Array, n: number) => number;
};
const incMany = (): void => {
  for (let p = 0; p < PASSES; p++) batch.incRefMany!(list, N);
};
const decMany = (): void => {
  for (let p = 0; p < PASSES; p++) batch.decRefMany!(list, N);
};

for (let r = 0; r < 5; r++) incOne();
let incNs = Number.POSITIVE_INFINITY;
let incManyNs = Number.NaN;
let decManyNs = Number.NaN;
for (let r = 0; r < 15; r++) {
  incNs = Math.min(incNs, bestNs(incOnly, 1) / (PASSES * N));
  decOnly();
}
if (batch.incRefMany && batch.decRefMany) {
  for (let r = 0; r < 5; r++) {
    incMany();
    decMany();
  }
  incManyNs = Number.POSITIVE_INFINITY;
  decManyNs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 15; r++) {
    incManyNs = Math.min(incManyNs, bestNs(incMany, 1) / (PASSES * N));
    decManyNs = Math.min(decManyNs, bestNs(decMany, 1) / (PASSES * N));
  }
}

// allocFrame: 4096 frames a round from a fresh free pool, then all released (outside the timing).
const A = 4096;
const got = new Float64Array(A);
let allocNs = Number.POSITIVE_INFINITY;
for (let r = 0; r < 20; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < A; i++) got[i] = frames.allocFrame();
  const ns = Number(process.hrtime.bigint() - t0) / A;
  if (r >= 5) allocNs = Math.min(allocNs, ns);
  for (let i = 0; i < A; i++) frames.decRef(got[i]! as PhysAddr);
}

console.log(
  `incRef ${incNs.toFixed(2)} ns/frame, incRefMany ${incManyNs.toFixed(2)} ns/frame, decRefMany ${decManyNs.toFixed(2)} ns/frame, allocFrame ${allocNs.toFixed(1)} ns/frame`,
);
const metrics: Record<string, number> = { 'paging.incRefNs': incNs, 'paging.allocFrameNs': allocNs };
if (!Number.isNaN(incManyNs)) {
  metrics['paging.incRefManyNs'] = incManyNs;
  metrics['paging.decRefManyNs'] = decManyNs;
}
reportMetrics(metrics);
