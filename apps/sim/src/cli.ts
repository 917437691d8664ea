#!/usr/bin/env node
/**
 * `vmkit-sim`: runs the simulated kernel. With no command, the default workload.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { personalities } from './personalities/index.js';
import { formatReport } from './report.js';
import { type SimulateOptions, simulate, type Workload } from './run.js';
import { ScriptProgram } from './script.js';
import { builtinPrograms } from './workloads.js';

function int(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} '${v}' is not an integer in [${min}, ${max}]`);
    return n;
  };
}

function size(v: string): number {
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(v);
  if (m === null) throw new InvalidArgumentError(`size '${v}' is not like 64M, 1G or a byte count`);
  const unit = (m[2] ?? '').toUpperCase()[0];
  const k = unit === 'K' ? 2 ** 10 : unit === 'M' ? 2 ** 20 : unit === 'G' ? 2 ** 30 : 1;
  return Number(m[1]) * k;
}

interface CliOptions {
  seed: number;
  ram?: number;
  cpus: number;
  personality: string;
  json?: boolean;
  trace?: string;
  tlb?: number;
  slice?: number;
  diskLatency?: number;
  progress: boolean;
}

async function main(argv: string[]): Promise<void> {
  const cli = new Command('vmkit-sim')
    .description(
      'The vmkit simulated kernel: processes, page faults, copy-on-write, TLB shootdowns, a slow disk.',
    )
    .option('--seed <n>', 'seed of the run', int('seed', 0, Number.MAX_SAFE_INTEGER), 1)
    .option('--ram <size>', 'simulated RAM (e.g. 64M, 1G)', size)
    .option('--cpus <n>', 'CPUs', int('cpus', 1, 32), 2)
    .option(
      '--personality <name>',
      `address-space design: ${personalities()
        .map((p) => p.name)
        .join(', ')}`,
      'memset',
    )
    .option('--json', 'print the report as JSON')
    .option('--trace <file>', 'write every event as JSON lines to FILE')
    .option('--tlb <entries>', 'TLB entries per CPU (power of two)', int('tlb', 1, 2 ** 20))
    .option('--slice <ns>', 'time slice in simulated ns', int('slice', 1, 1e12))
    .option('--disk-latency <ns>', 'disk latency per request in simulated ns', int('disk latency', 0, 1e12))
    .option('--no-progress', 'no progress bar (it is off anyway when stderr is not a terminal)')
    .showHelpAfterError();

  const go = async (workload: Workload): Promise<void> => {
    const o = cli.opts<CliOptions>();
    const tty = o.progress && process.stderr.isTTY === true && o.json !== true;
    const opts: SimulateOptions = {
      seed: o.seed,
      cpus: o.cpus,
      personality: o.personality,
      print: (line) => {
        if (o.json !== true) {
          if (tty) process.stderr.write('\r\x1b[K');
          console.log(line);
        }
      },
    };
    if (o.ram !== undefined) opts.ramBytes = o.ram;
    if (o.tlb !== undefined) opts.tlbEntries = o.tlb;
    if (o.slice !== undefined) opts.sliceNs = o.slice;
    if (o.diskLatency !== undefined) opts.diskLatencyNs = o.diskLatency;
    if (o.trace !== undefined) opts.traceFile = o.trace;
    if (tty) {
      let last = 0;
      opts.onProgress = (ended, total, now) => {
        const t = performance.now();
        if (t - last < 100 && ended < total) return; // redraw at most 10 times a second
        last = t;
        const w = 30;
        const fill = total === 0 ? 0 : Math.round((ended / total) * w);
        process.stderr.write(
          `\r[${'#'.repeat(fill)}${' '.repeat(w - fill)}] ${ended}/${total} processes, t=${(now / 1e6).toFixed(1)} ms`,
        );
      };
    }
    const { report } = await simulate(workload, opts);
    if (tty) process.stderr.write('\r\x1b[K');
    if (o.json === true) console.log(JSON.stringify(report, null, 2));
    else console.log(`\n${formatReport(report)}`);
    if (report.system.leakedFrames !== 0) process.exitCode = 1;
  };

  cli.action(() => go({ kind: 'default' }));
  cli
    .command('run')
    .description(
      `run built-in programs: ${builtinPrograms()
        .map((p) => p.name)
        .join(', ')}`,
    )
    .argument(
      '<programs...>',
      'program names (see `vmkit-sim programs`); NAME@PERSONALITY picks its personality',
    )
    .action((names: string[]) => go({ kind: 'builtin', names }));
  cli
    .command('script')
    .description('run a script file (see the README for the language)')
    .argument('<file>', 'the script')
    .action((file: string) =>
      go({ kind: 'programs', programs: [ScriptProgram.parse(file, readFileSync(file, 'utf8'))] }),
    );
  cli
    .command('programs')
    .description('list the built-in programs')
    .action(() => {
      for (const p of builtinPrograms()) console.log(`${p.name.padEnd(16)} ${p.description}`);
    });
  await cli.parseAsync(argv);
}

main(process.argv).catch((e: unknown) => {
  console.error(`vmkit-sim: ${(e as Error).message}`);
  process.exitCode = 2;
});
