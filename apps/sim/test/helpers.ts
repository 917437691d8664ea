import { expect } from 'vitest';
import { Kernel, type KernelOptions } from '../src/kernel.js';
import { personalities } from '../src/personalities/index.js';
import type { Personality } from '../src/personality.js';
import type { Program } from '../src/program.js';
import { traceTo } from '../src/run.js';

/** Every personality available in this build (each end-to-end test runs on all of them). */
export const PERSONALITIES: readonly Personality[] = personalities();

/** A kernel with sizes small enough for tests (16 MiB, 2 CPUs, 256-entry TLBs, fast disk). */
export function testKernel(personality: Personality, options: KernelOptions = {}): Kernel {
  return new Kernel({
    ramBytes: 16 * 2 ** 20,
    cpus: 2,
    tlbEntries: 256,
    diskLatencyNs: 100_000,
    ...options,
    personality,
  });
}

/** The frame census: after every process exited, no frame is in use beyond the kernel's own. */
export function expectNoLeak(k: Kernel): void {
  const c = k.census();
  expect(c.live).toBe(0);
  expect(c.pageCache).toBe(0);
  expect(c.used).toBe(c.baseline);
}

/** Runs programs to the end, checks the census, returns the kernel and the event trace. */
export async function runAll(
  personality: Personality,
  programs: Program[],
  options: KernelOptions = {},
  setup?: (k: Kernel) => void,
): Promise<{ k: Kernel; trace: string[] }> {
  const k = testKernel(personality, options);
  const trace: string[] = [];
  traceTo(k, (l) => trace.push(l));
  setup?.(k);
  for (const p of programs) k.spawn(p);
  await k.run();
  expectNoLeak(k);
  return { k, trace };
}

/** Parsed trace events of one kind. */
export function events<T = Record<string, unknown>>(trace: string[], ev: string): (T & { t: number })[] {
  return trace.map((l) => JSON.parse(l) as T & { ev: string; t: number }).filter((e) => e.ev === ev);
}
