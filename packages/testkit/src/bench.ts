import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Bench } from 'tinybench';

/** A benchmark metric: a name from the issues (e.g. `addr.alignRatio`) and its value. */
export type Metrics = Record<string, number>;

/**
 * Records metrics for `pnpm bench`: merged into the JSON file named by `VMKIT_BENCH_OUT` (the root
 * bench script sets it and gathers the file into `bench/results.json`), and printed.
 */
export function reportMetrics(metrics: Metrics): void {
  const out = process.env.VMKIT_BENCH_OUT;
  for (const [k, v] of Object.entries(metrics)) console.log(`  metric ${k} = ${formatNumber(v)}`);
  if (!out) return;
  const prev: Metrics = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Metrics) : {};
  writeFileSync(out, `${JSON.stringify({ ...prev, ...metrics }, null, 2)}\n`);
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

/** A task for {@link measure}: a name and a function run many times. */
export interface BenchTask {
  name: string;
  fn: () => void;
}

/**
 * Runs tasks with tinybench (interleaved warm-up, then `time` ms each), prints a table and returns the
 * mean nanoseconds per call of each task, by name. Tasks that loop over N items should divide by N
 * themselves.
 */
export async function measure(
  title: string,
  tasks: BenchTask[],
  time = 400,
): Promise<Record<string, number>> {
  const bench = new Bench({ name: title, time, warmupTime: 100 });
  for (const t of tasks) bench.add(t.name, t.fn);
  await bench.run();
  console.log(`\n${title}`);
  console.table(bench.table());
  const res: Record<string, number> = {};
  for (const task of bench.tasks) {
    const r = task.result;
    if (r && 'latency' in r) res[task.name] = r.latency.mean * 1e6;
  }
  return res;
}

/** Mean ns per call of `fn` over `iterations` calls, best of `rounds` (a plain loop, for tight ratios). */
export function nsPerCall(fn: () => void, iterations: number, rounds = 5): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    const dt = Number(process.hrtime.bigint() - t0) / iterations;
    if (dt < best) best = dt;
  }
  return best;
}

/** Best of `rounds` wall-clock nanoseconds of one call of `fn` (which does its own loop). */
export function bestNs(fn: () => void, rounds = 5): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    const dt = Number(process.hrtime.bigint() - t0);
    if (dt < best) best = dt;
  }
  return best;
}
