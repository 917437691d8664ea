import { describeStatus } from './errno.js';
import type { Kernel } from './kernel.js';
import type { AddressSpace } from './personality.js';

/** One process's line of the report. */
export interface ProcessReport {
  pid: number;
  ppid: number;
  name: string;
  status: string;
  minorFaults: number;
  majorFaults: number;
  cowFaults: number;
  /** Resident pages at exit (or now, for a live process). */
  residentPages: number;
  peakResidentPages: number;
  accesses: number;
  tlbHitRate: number;
  tlbWalks: number;
  shootdowns: number;
  ioWaitNs: number;
}

/** The end-of-run report (what `--json` prints). */
export interface Report {
  personality: string;
  seed: number;
  cpus: number;
  ramBytes: number;
  processes: ProcessReport[];
  system: {
    framesTotal: number;
    framesInUse: number;
    kernelFrames: number;
    pageCacheFrames: number;
    leakedFrames: number;
    simulatedNs: number;
    events: number;
    wallMs: number;
    shootdowns: number;
    diskRequests: number;
    diskBytes: number;
    perCpu: {
      cpu: number;
      tlbHits: number;
      tlbWalks: number;
      tlbHitRate: number;
      shootdownsReceived: number;
    }[];
  };
}

function rate(hits: number, walks: number): number {
  return hits + walks === 0 ? 0 : hits / (hits + walks);
}

/** Gathers the report of a kernel after (or during) a run. */
export function buildReport(k: Kernel, wallMs: number): Report {
  const processes: ProcessReport[] = [];
  for (const p of k.processes.values()) {
    const s = p.stats;
    const live = p.state !== 'zombie' && p.state !== 'reaped';
    processes.push({
      pid: p.pid,
      ppid: p.ppid,
      name: p.name,
      status: p.status === undefined ? p.state : describeStatus(p.status),
      minorFaults: s.minorFaults,
      majorFaults: s.majorFaults,
      cowFaults: s.cowFaults,
      residentPages: live ? ((p.space as AddressSpace | undefined)?.residentPages() ?? 0) : s.residentAtExit,
      peakResidentPages: s.peakResident,
      accesses: s.accesses,
      tlbHitRate: rate(s.tlbHits, s.tlbWalks),
      tlbWalks: s.tlbWalks,
      shootdowns: s.shootdowns,
      ioWaitNs: s.ioWaitNs,
    });
  }
  const c = k.census();
  const m = k.machine;
  return {
    personality: k.personality.name,
    seed: m.config.seed,
    cpus: m.config.cpus,
    ramBytes: m.config.ramBytes,
    processes,
    system: {
      framesTotal: m.frames.totalFrames,
      framesInUse: c.used,
      kernelFrames: c.baseline,
      pageCacheFrames: c.pageCache,
      leakedFrames: c.leaked,
      simulatedNs: k.now,
      events: k.engine.processed,
      wallMs: Math.round(wallMs),
      shootdowns: k.shootdowns,
      diskRequests: k.disk.stats.requests,
      diskBytes: k.disk.stats.bytes,
      perCpu: m.cpus.map((cpu) => {
        const st = cpu.mmu.stats();
        return {
          cpu: cpu.id,
          tlbHits: st.hits,
          tlbWalks: st.walks,
          tlbHitRate: rate(st.hits, st.walks),
          shootdownsReceived: cpu.shootdownsReceived,
        };
      }),
    },
  };
}

function ns(t: number): string {
  if (t >= 1e9) return `${(t / 1e9).toFixed(3)} s`;
  if (t >= 1e6) return `${(t / 1e6).toFixed(3)} ms`;
  if (t >= 1e3) return `${(t / 1e3).toFixed(1)} µs`;
  return `${t} ns`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** The report as a table people read. */
export function formatReport(r: Report): string {
  const head = [
    'pid',
    'name',
    'status',
    'minor',
    'major',
    'cow',
    'resident',
    'peak',
    'accesses',
    'tlb hit',
    'walks',
    'shootdn',
    'io wait',
  ];
  const rows = r.processes.map((p) => [
    String(p.pid),
    p.name,
    p.status,
    String(p.minorFaults),
    String(p.majorFaults),
    String(p.cowFaults),
    String(p.residentPages),
    String(p.peakResidentPages),
    String(p.accesses),
    pct(p.tlbHitRate),
    String(p.tlbWalks),
    String(p.shootdowns),
    p.ioWaitNs === 0 ? '-' : ns(p.ioWaitNs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const left = new Set([1, 2]);
  const fmt = (row: string[]): string =>
    row
      .map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const s = r.system;
  const lines = [
    `vmkit-sim: personality ${r.personality}, seed ${r.seed}, ${r.cpus} CPU(s), ${r.ramBytes / 2 ** 20} MiB RAM`,
    '',
    fmt(head),
    ...rows.map(fmt),
    '',
    `frames in use: ${s.framesInUse} of ${s.framesTotal} (kernel ${s.kernelFrames}, page cache ${s.pageCacheFrames}) — ${
      s.leakedFrames === 0 ? 'no frame leaked' : `${s.leakedFrames} FRAME(S) LEAKED`
    }`,
    `TLB shootdowns: ${s.shootdowns}; per CPU: ${s.perCpu
      .map(
        (c) =>
          `cpu${c.cpu} hit ${pct(c.tlbHitRate)} walks ${c.tlbWalks} shootdowns received ${c.shootdownsReceived}`,
      )
      .join('; ')}`,
    `disk: ${s.diskRequests} request(s), ${s.diskBytes} bytes`,
    `simulated time ${ns(s.simulatedNs)}, ${s.events} events, wall time ${s.wallMs} ms`,
  ];
  return lines.join('\n');
}
