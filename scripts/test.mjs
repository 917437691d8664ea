#!/usr/bin/env node
// `pnpm test`: runs every package's tests through turbo (built dependencies first), then prints one
// closing line with the totals over all packages: "tests: N passed, N failed" (and skipped, if any).
import { spawn } from 'node:child_process';

const args = [
  'turbo',
  'run',
  'test',
  '--output-logs=full',
  '--log-order=grouped',
  '--continue',
  // two packages' suites at a time: each vitest already uses every core, and a 2-core CI machine running
  // all eight at once stretched single tests 10x
  '--concurrency=2',
  ...process.argv.slice(2),
];
const child = spawn('pnpm', ['exec', ...args], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', FORCE_COLOR: process.env.FORCE_COLOR ?? '0' },
});
let out = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  out += d.toString();
});
child.on('close', (code) => {
  const plain = out.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let files = 0;
  for (const line of plain.split('\n')) {
    const m = /^\S*\s*Tests\s+(.*)\(\d+\)\s*$/.exec(line.replace(/^[^:]*:test:\s*/, ''));
    if (!m) continue;
    files++;
    const body = m[1] ?? '';
    passed += Number(/(\d+) passed/.exec(body)?.[1] ?? 0);
    failed += Number(/(\d+) failed/.exec(body)?.[1] ?? 0);
    skipped += Number(/(\d+) skipped/.exec(body)?.[1] ?? 0);
  }
  console.log(`\n${files} test runs`);
  console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code ?? 1);
});
