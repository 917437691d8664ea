#!/usr/bin/env node
// `pnpm bench`: runs every package's benchmarks (packages/*/bench/*.bench.ts, apps/*/bench/*.bench.ts)
// one process each, gathers the metrics they report (via @vmkit/testkit's reportMetrics) and writes
// bench/results.json: { machine: {...}, metrics: { name: number } }.
// Usage: pnpm bench [filter]   (filter: a substring of the bench file path, e.g. `addr`)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv[2] ?? '';
const files = [];
for (const group of ['packages', 'apps']) {
  const g = join(root, group);
  if (!existsSync(g)) continue;
  for (const pkg of readdirSync(g).sort()) {
    const b = join(g, pkg, 'bench');
    if (!existsSync(b)) continue;
    for (const f of readdirSync(b).sort()) if (f.endsWith('.bench.ts')) files.push(join(b, f));
  }
}
const selected = files.filter((f) => f.includes(filter));
const out = join(tmpdir(), `vmkit-bench-${process.pid}.json`);
rmSync(out, { force: true });
let failed = 0;
for (const f of selected) {
  console.log(`\n=== ${f.slice(root.length)}`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', f], {
    stdio: 'inherit',
    env: { ...process.env, VMKIT_BENCH_OUT: out },
    cwd: root,
  });
  if (r.status !== 0) failed++;
}
const metrics = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
const resultsPath = join(root, 'bench', 'results.json');
mkdirSync(join(root, 'bench'), { recursive: true });
const previous =
  existsSync(resultsPath) && filter ? (JSON.parse(readFileSync(resultsPath, 'utf8')).metrics ?? {}) : {};
const machine = {
  node: process.version,
  v8: process.versions.v8,
  platform: platform(),
  arch: arch(),
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  date: new Date().toISOString(),
};
const all = { ...previous, ...metrics };
writeFileSync(resultsPath, `${JSON.stringify({ machine, metrics: all }, null, 2)}\n`);
console.log('\nmetric'.padEnd(40), 'value');
for (const [k, v] of Object.entries(all).sort())
  console.log(k.padEnd(39), typeof v === 'number' ? +v.toPrecision(5) : v);
console.log(
  `\nwrote bench/results.json (${Object.keys(all).length} metrics from ${selected.length} bench files)`,
);
rmSync(out, { force: true });
if (failed) {
  console.error(`${failed} bench file(s) failed`);
  process.exit(1);
}
