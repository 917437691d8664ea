#!/usr/bin/env node
// Benchmarks.
//   node scripts/bench.mjs --package DIR   run DIR/bench/*.bench.ts (each in its own process, with
//                                          --expose-gc), gather the metrics they report through
//                                          @vmkit/testkit's reportMetrics into DIR/bench/results.json
//   node scripts/bench.mjs --collect       merge every package's bench/results.json into the root
//                                          bench/results.json: { machine: {...}, metrics: { name: number } }
// `pnpm bench` runs the per-package `bench` scripts through turbo one at a time, then --collect.
// `pnpm --filter @vmkit/addr bench` runs one package's benchmarks.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const [mode, arg] = process.argv.slice(2);

function machine() {
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: platform(),
    arch: arch(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    date: new Date().toISOString(),
  };
}

function printTable(metrics) {
  console.log(`\n${'metric'.padEnd(44)} value`);
  for (const [k, v] of Object.entries(metrics).sort()) {
    console.log(`${k.padEnd(44)} ${typeof v === 'number' ? +v.toPrecision(5) : v}`);
  }
}

if (mode === '--package') {
  const dir = resolve(arg ?? '.');
  const benchDir = join(dir, 'bench');
  const files = existsSync(benchDir)
    ? readdirSync(benchDir)
        .filter((f) => f.endsWith('.bench.ts'))
        .sort()
    : [];
  const out = join(tmpdir(), `vmkit-bench-${process.pid}.json`);
  rmSync(out, { force: true });
  let failed = 0;
  for (const f of files) {
    console.log(`\n=== ${join(benchDir, f).slice(root.length + 1)}`);
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(benchDir, f)], {
      stdio: 'inherit',
      env: { ...process.env, VMKIT_BENCH_OUT: out },
      cwd: dir,
    });
    if (r.status !== 0) failed++;
  }
  const metrics = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
  rmSync(out, { force: true });
  mkdirSync(benchDir, { recursive: true });
  writeFileSync(
    join(benchDir, 'results.json'),
    `${JSON.stringify({ machine: machine(), metrics }, null, 2)}\n`,
  );
  printTable(metrics);
  if (failed) {
    console.error(`${failed} bench file(s) failed`);
    process.exit(1);
  }
} else if (mode === '--collect') {
  const all = {};
  for (const group of ['packages', 'apps']) {
    const g = join(root, group);
    if (!existsSync(g)) continue;
    for (const pkg of readdirSync(g).sort()) {
      const f = join(g, pkg, 'bench', 'results.json');
      if (existsSync(f)) Object.assign(all, JSON.parse(readFileSync(f, 'utf8')).metrics);
    }
  }
  mkdirSync(join(root, 'bench'), { recursive: true });
  writeFileSync(
    join(root, 'bench', 'results.json'),
    `${JSON.stringify({ machine: machine(), metrics: all }, null, 2)}\n`,
  );
  printTable(all);
  console.log(`\nwrote bench/results.json (${Object.keys(all).length} metrics)`);
} else {
  console.error('usage: bench.mjs --package DIR | --collect');
  process.exit(2);
}
