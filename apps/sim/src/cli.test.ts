import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Report } from './report.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), 'cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'vmkit-sim-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('vmkit-sim', () => {
  it('runs a script with --json and --trace', () => {
    const script = join(dir, 'demo.vms');
    const trace = join(dir, 'trace.jsonl');
    writeFileSync(
      script,
      'a = mmap - 0x3000 rw- private,anon\ntouch a w 0x3000\npid = fork\nchild: touch a w\nparent: wait\n',
    );
    const r = run([
      'script',
      script,
      '--json',
      '--trace',
      trace,
      '--cpus',
      '1',
      '--ram',
      '16M',
      '--seed',
      '5',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as Report;
    expect(rep.cpus).toBe(1);
    expect(rep.seed).toBe(5);
    expect(rep.processes.map((p) => [p.pid, p.status, p.minorFaults, p.cowFaults])).toEqual([
      [1, 'exit 0', 3, 0],
      [2, 'exit 0', 0, 1],
    ]);
    expect(rep.system.leakedFrames).toBe(0);
    const lines = readFileSync(trace, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ev: string });
    expect(lines.filter((e) => e.ev === 'fault').length).toBe(4);
    expect(lines.filter((e) => e.ev === 'fork').length).toBe(1);
  }, 30_000);

  it('names the bad line of a script and exits 2; rejects bad options', () => {
    const script = join(dir, 'bad.vms');
    writeFileSync(script, 'mmap - 0x1000 rw- private,anon\nfly 0x1000\n');
    const r = run(['script', script]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/line 2: unknown command 'fly'/);
    const o = run(['--cpus', 'many']);
    expect(o.code).not.toBe(0);
    expect(o.err).toMatch(/cpus 'many' is not an integer/);
  }, 30_000);
});
