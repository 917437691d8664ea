import { existsSync, readFileSync, writeFileSync } from 'node:fs';

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
