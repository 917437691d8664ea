import { closeSync, openSync, writeSync } from 'node:fs';
import { Kernel, type KernelEvents, type KernelOptions } from './kernel.js';
import { personality } from './personalities/index.js';
import type { Program } from './program.js';
import { buildReport, type Report } from './report.js';
import { builtinProgram, setupFiles, spawnDefaultWorkload } from './workloads.js';

/** What to run: the default workload, built-in programs by name, or programs. */
export type Workload =
  | { kind: 'default' }
  | { kind: 'builtin'; names: string[] }
  | { kind: 'programs'; programs: Program[] };

/** Options of {@link simulate}. */
export interface SimulateOptions extends Omit<KernelOptions, 'personality'> {
  /** Personality name (default `memset`). */
  personality?: string;
  /** Writes every event as a JSON line to this file. */
  traceFile?: string;
  /** Called with each event (as written to the trace). */
  onEvent?: (line: string) => void;
  /** Called now and then with (processes ended, processes in all, simulated ns). */
  onProgress?: (ended: number, total: number, now: number) => void;
}

/** Every observer event name. */
export const EVENT_NAMES: readonly (keyof KernelEvents)[] = [
  'fault',
  'tlb',
  'map',
  'unmap',
  'protect',
  'fork',
  'exit',
  'schedule',
  'io',
  'syscall',
];

/** Subscribes `sink` to every kernel event, as JSON lines `{"ev":NAME,...}`. */
export function traceTo(k: Kernel, sink: (line: string) => void): void {
  for (const name of EVENT_NAMES) {
    k.events.on(name, (e: object) => sink(JSON.stringify({ ev: name, ...e })));
  }
}

/** Builds a kernel, runs the workload to the end, returns the kernel and its report. */
export async function simulate(
  workload: Workload,
  options: SimulateOptions = {},
): Promise<{ kernel: Kernel; report: Report }> {
  const { personality: pname, traceFile, onEvent, onProgress, ...rest } = options;
  const k = new Kernel({ ...rest, personality: personality(pname ?? 'memset') });
  let fd: number | undefined;
  let buf: string[] = [];
  let size = 0;
  const flush = (): void => {
    if (fd !== undefined && buf.length > 0) writeSync(fd, buf.join(''));
    buf = [];
    size = 0;
  };
  if (traceFile !== undefined) fd = openSync(traceFile, 'w');
  if (fd !== undefined || onEvent !== undefined) {
    traceTo(k, (line) => {
      onEvent?.(line);
      if (fd !== undefined) {
        buf.push(line, '\n');
        size += line.length + 1;
        if (size > 1 << 16) flush();
      }
    });
  }
  const t0 = performance.now();
  try {
    if (workload.kind === 'default') spawnDefaultWorkload(k);
    else if (workload.kind === 'builtin') {
      setupFiles(k);
      // `NAME@PERSONALITY` runs one program under another personality than the run's.
      for (const n of workload.names) {
        const [name, pers] = n.split('@') as [string, string | undefined];
        const prog = builtinProgram(name).create(k);
        if (pers === undefined) k.spawn(prog);
        else k.spawn(prog, { personality: personality(pers) });
      }
    } else {
      setupFiles(k);
      for (const p of workload.programs) k.spawn(p);
    }
    const progress =
      onProgress === undefined
        ? undefined
        : () => {
            let ended = 0;
            for (const p of k.processes.values()) if (p.state === 'zombie' || p.state === 'reaped') ended++;
            onProgress(ended, k.processes.size, k.now);
          };
    await k.run(progress === undefined ? {} : { onProgress: progress });
    progress?.();
  } finally {
    flush();
    if (fd !== undefined) closeSync(fd);
  }
  return { kernel: k, report: buildReport(k, performance.now() - t0) };
}
