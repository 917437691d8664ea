/**
 * The simulated kernel: processes, a round-robin scheduler in simulated time, page faults through the
 * event loop, TLB shootdowns, and the system calls, answering as Linux does.
 *
 * The page-fault path: the CPU's access loop ({@link Kernel.execute}) gets `FAULT` from the MMU and
 * stops → the CPU's next event runs {@link Kernel.pageFault} → the address space resolves it (maybe
 * through a disk transfer, while the CPU runs others) → PTEs written, TLBs invalidated → the process
 * is runnable and its current operation re-executes the faulting access.
 *
 * @module
 */
import { alignUp, formatVirtAddr, PAGE_SIZE_4K, type VirtAddr } from '@vmkit/addr';
import { formatInfoMem, formatInfoPg, formatInfoTlb } from '@vmkit/paging-x86_64';
import { EventEmitter } from 'eventemitter3';
import { Disk, type FileIo, FileStore, type SimFile } from './devices.js';
import { EventEngine } from './engine.js';
import {
  BRK_START,
  describeStatus,
  Errno,
  errnoName,
  exitStatus,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  MMAP_BASE,
  MMAP_MIN_ADDR,
  O_ACCMODE,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  PROT_MASK,
  PROT_WRITE,
  SIGBUS,
  SIGKILL,
  SIGSEGV,
  signalStatus,
  TASK_SIZE,
} from './errno.js';
import { simFail } from './errors.js';
import { type Cpu, Machine, type MachineConfig } from './machine.js';
import { formatMaps } from './maps.js';
import { memsetPersonality } from './personalities/memset.js';
import {
  type AddressSpace,
  andThen,
  FaultKind,
  type MaybePromise,
  type Personality,
  type SpaceContext,
} from './personality.js';
import { Prng } from './prng.js';
import { type OpenFile, Process, Stop } from './process.js';
import type { AccessBatch, AccessRun, ByteCopy, Program, Syscall, SyscallOp } from './program.js';

const PAGE = 4096;
const BLOCK = -0x7fff_ffff; // "the process blocks; the result comes later"
const FAULT_NAMES = ['segv', 'minor', 'major', 'cow', 'bus', 'oom'] as const;

/** Observer events (eventemitter3), each with the simulated time `t` in ns. */
export interface KernelEvents {
  fault: [{ t: number; pid: number; cpu: number; va: string; errorCode: number; kind: string }];
  tlb: [{ t: number; pid: number; cpu: number; pages: number; reason: string }];
  map: [{ t: number; pid: number; start: string; end: string; prot: number; flags: number; file?: string }];
  unmap: [{ t: number; pid: number; start: string; end: string }];
  protect: [{ t: number; pid: number; start: string; end: string; prot: number; result: number }];
  fork: [{ t: number; pid: number; child: number }];
  exit: [{ t: number; pid: number; status: number; how: string; residentPages: number }];
  schedule: [{ t: number; cpu: number; pid: number }];
  /** `page-in` / `read` when a process starts waiting for the disk, `… done` (with the wait) when it ends. */
  io: [{ t: number; pid: number; what: string; bytes: number; blockedNs?: number }];
  syscall: [{ t: number; pid: number; call: string; result: number }];
}

/** Kernel options: the machine's configuration plus the default personality. */
export interface KernelOptions extends Partial<MachineConfig> {
  /** The address-space design of processes (default: the built-in `memset`). */
  personality?: Personality;
  /** Where `maps` and `log` print (default: collected in {@link Kernel.output} only). */
  print?: (line: string) => void;
}

interface CpuState {
  cpu: Cpu;
  current: Process | null;
  idle: boolean;
  lastPid: number;
}

/** The simulated kernel (see the module comment). */
export class Kernel {
  readonly machine: Machine;
  readonly engine = new EventEngine();
  readonly events = new EventEmitter<KernelEvents>();
  readonly files = new FileStore();
  readonly disk: Disk;
  readonly prng: Prng;
  readonly personality: Personality;
  readonly io: FileIo;
  /** Every process ever created, by pid. */
  readonly processes = new Map<number, Process>();
  /** Lines printed by `maps` and `log`. */
  readonly output: string[] = [];
  /** TLB shootdown IPIs sent. */
  shootdowns = 0;
  private readonly print: ((line: string) => void) | undefined;
  private readonly cpus: CpuState[];
  private ready: Process[] = [];
  private readyHead = 0;
  private nextPid = 1;
  /** PCIDs of live address spaces (a design's ASID is used as the PCID when it is free). */
  private readonly usedPcids = new Set<number>();
  private nextPcid = 1;
  private readonly cfg: MachineConfig;
  private readonly personalityState = new Map<string, unknown>();

  constructor(options: KernelOptions = {}) {
    const { personality, print, ...config } = options;
    this.machine = new Machine(config);
    this.cfg = this.machine.config;
    this.personality = personality ?? memsetPersonality;
    this.print = print;
    this.prng = new Prng(this.cfg.seed);
    this.disk = new Disk(this.engine, this.cfg.diskLatencyNs, this.cfg.diskBytesPerSec);
    this.io = { mem: this.machine.mem, frames: this.machine.frames, disk: this.disk };
    this.cpus = this.machine.cpus.map((cpu) => ({ cpu, current: null, idle: true, lastPid: 0 }));
  }

  /** Simulated time in ns. */
  get now(): number {
    return this.engine.now;
  }

  /**
   * Starts a process running `program` (parent: none). Returns it.
   * A process whose address space cannot be built (no PCID or memory left) ends at once, killed.
   */
  spawn(program: Program, options: { personality?: Personality } = {}): Process {
    if (typeof program !== 'object' || program === null || typeof program.next !== 'function')
      simFail('E_PROGRAM', `${String(program)} is not a program (an object with next(result))`);
    const personality = options.personality ?? this.personality;
    if (typeof personality?.create !== 'function')
      simFail('E_UNKNOWN', `${String(personality)} is not a personality (an object with create(ctx))`);
    return this.newProcess(
      program,
      0,
      (ctx) => personality.create(ctx),
      (ok, p) => {
        if (ok) {
          this.enqueue(p);
          this.kick();
        }
      },
    );
  }

  /** Runs until every process has ended (or `until` simulated ns). */
  async run(options: { until?: number; onProgress?: () => void } = {}): Promise<void> {
    this.kick();
    await this.engine.run(options.until ?? Number.POSITIVE_INFINITY, options.onProgress, 64);
    this.files.trim(this.io);
  }

  /** Frames in use vs the kernel's baseline: after every process exited, `leaked` must be 0. */
  census(): { used: number; baseline: number; pageCache: number; live: number; leaked: number } {
    const used = this.machine.frames.usedFrames;
    const baseline = this.machine.baselineFrames;
    const pageCache = this.files.cachedFrames();
    let live = 0;
    for (const p of this.processes.values()) if (p.state !== 'zombie' && p.state !== 'reaped') live++;
    return { used, baseline, pageCache, live, leaked: live === 0 ? used - baseline - pageCache : 0 };
  }

  /** /proc/PID/maps of a live process. */
  maps(pid: number): string {
    const p = this.processes.get(pid);
    if (p === undefined || p.state === 'zombie' || p.state === 'reaped' || p.space === undefined) return '';
    return formatMaps(p.space.areas());
  }

  // ------------------------------------------------------------------ processes and scheduling

  /**
   * Creates a process whose space `make` builds; `done(true)` is called once it exists (at once or,
   * for an asynchronous design, later), `done(false)` if it could not be built (the error is logged
   * and the process ends killed).
   */
  private newProcess(
    program: Program,
    ppid: number,
    make: (ctx: SpaceContext) => MaybePromise<AddressSpace>,
    done: (ok: boolean, p: Process) => void,
  ): Process {
    const pid = this.nextPid++;
    const p = new Process(pid, ppid, program);
    const inv: number[] = [];
    (p as { inv: number[] }).inv = inv;
    const ctx: SpaceContext = {
      mem: this.machine.mem,
      frames: this.machine.frames,
      io: this.io,
      kernelRoot: this.machine.kernelRoot,
      invalidate: (va) => {
        inv.push(va);
      },
      invalidateAll: () => {
        inv.push(-1);
      },
      shared: this.personalityState,
    };
    p.brkStart = p.brk = BRK_START;
    p.startedAt = this.engine.now;
    this.processes.set(pid, p);
    const fail = (e: unknown): void => {
      this.say(`pid ${pid} (${program.name}): cannot create its address space: ${(e as Error).message}`);
      p.status = signalStatus(SIGKILL);
      p.state = 'reaped';
      done(false, p);
    };
    const attach = (space: AddressSpace): void => {
      const asid = space.asid;
      let pcid = -1;
      if (
        asid !== undefined &&
        Number.isInteger(asid) &&
        asid >= 1 &&
        asid <= 4095 &&
        !this.usedPcids.has(asid)
      )
        pcid = asid;
      else pcid = this.allocPcid();
      if (pcid < 0) {
        const d = space.destroy();
        if (d instanceof Promise)
          this.engine.track(
            d,
            () => {},
            () => {},
          );
        fail(new Error('no PCID left (4095 live processes)'));
        return;
      }
      this.usedPcids.add(pcid);
      p.pcid = pcid;
      p.space = space;
      done(true, p);
    };
    let made: MaybePromise<AddressSpace>;
    try {
      made = make(ctx);
    } catch (e) {
      fail(e);
      return p;
    }
    if (made instanceof Promise) {
      p.state = 'blocked';
      this.engine.track(made, attach, fail);
    } else attach(made);
    return p;
  }

  private enqueue(p: Process): void {
    p.state = 'ready';
    this.ready.push(p);
  }

  /** A PCID no live space uses (round robin over 1..4095), or −1. */
  private allocPcid(): number {
    for (let n = 0; n < 4095; n++) {
      const c = this.nextPcid;
      this.nextPcid = c === 4095 ? 1 : c + 1;
      if (!this.usedPcids.has(c)) return c;
    }
    return -1;
  }

  /** The first ready process allowed on CPU `cpu` (round-robin order), removed from the queue. */
  private dequeue(cpu: number): Process | null {
    const q = this.ready;
    const bit = 1 << cpu;
    for (let i = this.readyHead; i < q.length; i++) {
      const p = q[i]!;
      if ((p.affinity & bit) === 0) continue;
      if (i === this.readyHead) this.readyHead++;
      else q.splice(i, 1);
      if (this.readyHead > 1024 && this.readyHead * 2 > q.length) {
        this.ready = q.slice(this.readyHead);
        this.readyHead = 0;
      }
      return p;
    }
    return null;
  }

  /** Wakes idle CPUs when there is work. */
  private kick(): void {
    for (const c of this.cpus) {
      if (!c.idle || this.readyHead >= this.ready.length) continue;
      c.idle = false;
      this.engine.post(this.engine.now, this.cpuEvent, c);
    }
  }

  private readonly cpuEvent = (c: CpuState): void => {
    let extra = 0;
    const p = c.current;
    if (p !== null) extra = this.handleStop(c, p);
    this.runOn(c, extra);
  };

  private runOn(c: CpuState, extra: number): void {
    let p = c.current;
    if (p === null) {
      p = this.dequeue(c.cpu.id);
      if (p === null) {
        c.idle = true;
        return;
      }
      c.current = p;
      p.state = 'running';
      p.sliceLeft = this.cfg.sliceNs;
      // Whether or not CR3 changes, this CPU may cache the space from now on (a full flush may have
      // taken it out of the mask while the process was away).
      p.cpuMask |= 1 << c.cpu.id;
      p.lastCpu = c.cpu.id;
      if (c.lastPid !== p.pid) {
        extra += this.cfg.switchNs;
        c.cpu.mmu.writeCr3(p.space.root + p.pcid, true);
        c.lastPid = p.pid;
        if (this.events.listenerCount('schedule') > 0)
          this.events.emit('schedule', { t: this.engine.now, cpu: c.cpu.id, pid: p.pid });
      }
    }
    const used = this.execute(c.cpu, p);
    this.engine.post(this.engine.now + extra + used, this.cpuEvent, c);
  }

  /** Handles why the CPU stopped; returns simulated kernel ns spent. May leave the CPU free. */
  private handleStop(c: CpuState, p: Process): number {
    const stop = p.stop;
    p.stop = Stop.NONE;
    if (stop === Stop.SLICE) {
      c.current = null;
      this.enqueue(p);
      return 0;
    }
    if (stop === Stop.FAULT) return this.pageFault(c, p);
    if (stop === Stop.SYSCALL) return this.syscall(c, p);
    if (stop === Stop.WAIT) {
      const w = p.awaiting!;
      p.awaiting = undefined;
      p.state = 'blocked';
      p.blockedAt = this.engine.now;
      c.current = null;
      const done = (r: number): void => {
        this.flushTlbs(p, p.lastCpu);
        if (p.state !== 'blocked') return;
        if (r < 0) {
          this.say(`pid ${p.pid} (${p.name}): a runtime's system call failed late: ${errnoName(-r)}`);
          this.exit(p, signalStatus(SIGKILL));
          return;
        }
        this.enqueue(p);
        this.kick();
      };
      this.engine.track(w, done, (e) => done(this.kernelBug(p, 'runtime call', e)));
      return 0;
    }
    if (stop === Stop.CRASH) {
      c.current = null;
      this.exit(p, signalStatus(SIGKILL));
      return 0;
    }
    c.current = null;
    this.exit(p, exitStatus(p.exitCode));
    return 0;
  }

  // ------------------------------------------------------------------ the CPU

  /**
   * Runs `p` on `cpu` until its slice ends, it faults, makes a system call or ends. Returns the
   * simulated ns used. Accesses run in tight loops over the MMU (no per-access resume).
   */
  execute(cpu: Cpu, p: Process): number {
    const mmu = cpu.mmu;
    const accessNs = this.cfg.accessNs;
    let used = 0;
    // Walks of this run: the TLB's fills (public counter, cheap) plus the faulting walk below;
    // `mmu.stats()` builds an object and counts valid entries, too slow per run.
    const fills0 = mmu.tlb.fills;
    const accesses0 = p.stats.accesses;
    for (;;) {
      let op = p.op;
      if (op === undefined) {
        try {
          op = p.program.next(p.result);
        } catch (e) {
          this.say(`pid ${p.pid} (${p.name}): program error: ${(e as Error).message}`);
          p.stop = Stop.CRASH;
          break;
        }
        p.result = 0;
        if (p.awaiting !== undefined) {
          // A runtime inside the step made an asynchronous call: wait for it, then go on with `op`.
          p.op = op;
          p.stop = Stop.WAIT;
          break;
        }
        if (op === undefined) {
          p.exitCode = 0;
          p.stop = Stop.EXIT;
          break;
        }
        p.op = op;
      }
      if (op.kind === 'sys') {
        p.stop = Stop.SYSCALL;
        break;
      }
      const leftNs = p.sliceLeft - used;
      if (leftNs <= 0) {
        p.stop = Stop.SLICE;
        break;
      }
      const budget = accessNs > 0 ? Math.max(1, Math.floor(leftNs / accessNs)) : 1e9;
      let done: number;
      let finished: boolean;
      if (op.kind === 'run') {
        const start = op.pos;
        runAccesses(mmu, op, budget, p);
        done = op.pos - start;
        finished = op.pos >= op.count;
      } else if (op.kind === 'batch') {
        const start = op.pos;
        runBatch(mmu, op, budget, p);
        done = op.pos - start;
        finished = op.pos >= op.addrs.length;
      } else if (op.kind === 'bytes') {
        const start = op.pos;
        runBytes(mmu, op, budget);
        done = op.pos - start;
        const total = op.data !== undefined ? op.data.length : op.out!.length;
        finished = op.pos >= total;
        if (finished && op.kernel !== undefined) {
          p.op = undefined;
          p.result = op.kernel(true);
          used += done * accessNs;
          p.stats.accesses += done;
          continue;
        }
      } else {
        const n = Math.min(op.ns, leftNs);
        op.ns -= n;
        used += n;
        if (op.ns <= 0) p.op = undefined;
        continue;
      }
      used += done * accessNs;
      p.stats.accesses += done;
      if (finished) {
        p.op = undefined;
        continue;
      }
      if (done < budget) {
        const f = mmu.fault;
        p.faultVa = f.address;
        p.faultEc = f.errorCode;
        p.faultVector = f.vector;
        p.stop = Stop.FAULT;
        break;
      }
    }
    const walks = mmu.tlb.fills - fills0 + (p.stop === Stop.FAULT ? 1 : 0);
    p.stats.tlbWalks += walks;
    p.stats.tlbHits += Math.max(0, p.stats.accesses - accesses0 - walks);
    p.sliceLeft -= used;
    return used;
  }

  // ------------------------------------------------------------------ page faults

  private pageFault(c: CpuState, p: Process): number {
    const va = p.faultVa as VirtAddr;
    const ec = p.faultEc;
    let r: FaultKind | Promise<FaultKind>;
    if (p.faultVector !== 14) r = FaultKind.SEGV;
    else {
      try {
        r = p.space.fault(va, ec);
      } catch (e) {
        this.say(`pid ${p.pid}: fault handler error at ${formatVirtAddr(va)}: ${(e as Error).message}`);
        r = FaultKind.SEGV;
      }
    }
    this.flushTlbs(p, c.cpu.id);
    if (typeof r === 'number') {
      this.faultDone(p, r, va, ec, c.cpu.id);
      if (p.state !== 'running') c.current = null;
      return this.cfg.faultNs;
    }
    p.state = 'blocked';
    p.blockedAt = this.engine.now;
    c.current = null;
    if (this.events.listenerCount('io') > 0)
      this.events.emit('io', { t: this.engine.now, pid: p.pid, what: 'page-in', bytes: PAGE });
    this.engine.track(
      r,
      (kind) => {
        this.flushTlbs(p, p.lastCpu);
        const waited = this.engine.now - p.blockedAt;
        p.stats.ioWaitNs += waited;
        if (this.events.listenerCount('io') > 0)
          this.events.emit('io', {
            t: this.engine.now,
            pid: p.pid,
            what: 'page-in done',
            bytes: PAGE,
            blockedNs: waited,
          });
        p.state = 'ready';
        this.faultDone(p, kind, va, ec, -1);
        if (p.state === 'ready') {
          this.enqueue(p);
          this.kick();
        }
      },
      (e) => {
        this.say(`pid ${p.pid}: fault handler error at ${formatVirtAddr(va)}: ${(e as Error).message}`);
        this.flushTlbs(p, p.lastCpu);
        this.exit(p, signalStatus(SIGSEGV));
      },
    );
    return this.cfg.faultNs;
  }

  private faultDone(p: Process, kind: FaultKind, va: VirtAddr, ec: number, cpu: number): void {
    const s = p.stats;
    if (kind === FaultKind.MINOR) s.minorFaults++;
    else if (kind === FaultKind.MAJOR) s.majorFaults++;
    else if (kind === FaultKind.COW) s.cowFaults++;
    const res = p.space.residentPages();
    if (res > s.peakResident) s.peakResident = res;
    if (this.events.listenerCount('fault') > 0) {
      this.events.emit('fault', {
        t: this.engine.now,
        pid: p.pid,
        cpu,
        va: formatVirtAddr(va),
        errorCode: ec,
        kind: FAULT_NAMES[kind] ?? String(kind),
      });
    }
    if (kind === FaultKind.MINOR || kind === FaultKind.MAJOR || kind === FaultKind.COW) return;
    const op = p.op;
    if (op !== undefined && op.kind === 'bytes' && op.kernel !== undefined && kind === FaultKind.SEGV) {
      p.op = undefined;
      p.result = op.kernel(false);
      return;
    }
    const sig = kind === FaultKind.BUS ? SIGBUS : kind === FaultKind.OOM ? SIGKILL : SIGSEGV;
    if (kind === FaultKind.SEGV)
      this.say(`pid ${p.pid} (${p.name}): segmentation fault at ${formatVirtAddr(va)}`);
    this.exit(p, signalStatus(sig));
  }

  /** Invalidates the pages `p`'s space changed in every TLB that may hold them; counts shootdowns. */
  private flushTlbs(p: Process, localCpu: number): void {
    const inv = p.inv;
    if (inv.length === 0) return;
    const many = inv.length > 64 || inv.includes(-1);
    for (const c of this.cpus) {
      const id = c.cpu.id;
      const bit = 1 << id;
      if ((p.cpuMask & bit) === 0) continue;
      const mmu = c.cpu.mmu;
      if (many) {
        mmu.invpcid(1, p.pcid);
        if (c.current !== p) p.cpuMask &= ~bit;
      } else for (const va of inv) mmu.invpcid(0, p.pcid, va as VirtAddr);
      if (id !== localCpu) this.shootdown(p, c, inv.length, 'shootdown');
    }
    inv.length = 0;
  }

  private shootdown(p: Process, c: CpuState, pages: number, reason: string): void {
    this.shootdowns++;
    p.stats.shootdowns++;
    c.cpu.shootdownsReceived++;
    c.cpu.pagesShotDown += pages;
    if (this.events.listenerCount('tlb') > 0)
      this.events.emit('tlb', { t: this.engine.now, pid: p.pid, cpu: c.cpu.id, pages, reason });
  }

  // ------------------------------------------------------------------ exit and wait

  private exit(p: Process, status: number): void {
    if (p.state === 'zombie' || p.state === 'reaped' || p.state === 'exiting') return;
    let local = -1;
    for (const c of this.cpus) {
      if (c.current !== p) continue;
      local = c.cpu.id;
      c.current = null;
    }
    p.state = 'exiting';
    p.op = undefined;
    for (const of of p.fds.values()) if (of.file !== undefined) of.file.opens--;
    p.fds.clear();
    p.stats.residentAtExit = p.space.residentPages();
    let d: MaybePromise<void> | undefined;
    try {
      d = p.space.destroy();
    } catch (e) {
      this.say(`pid ${p.pid}: address-space teardown error: ${(e as Error).message}`);
    }
    const finish = (): void => this.exited(p, status, local);
    if (d instanceof Promise) {
      this.engine.track(d, finish, (e) => {
        this.say(`pid ${p.pid}: address-space teardown error: ${(e as Error).message}`);
        finish();
      });
    } else finish();
  }

  /** The second half of exit, once the space is gone: TLBs, PCID, zombie, parent. */
  private exited(p: Process, status: number, local: number): void {
    p.inv.length = 0;
    for (const c of this.cpus) {
      const bit = 1 << c.cpu.id;
      if ((p.cpuMask & bit) === 0) continue;
      c.cpu.mmu.invpcid(1, p.pcid);
      if (c.lastPid === p.pid) c.lastPid = 0;
      if (c.cpu.id !== local) this.shootdown(p, c, 0, 'exit');
    }
    p.cpuMask = 0;
    this.usedPcids.delete(p.pcid);
    this.files.trim(this.io);
    p.status = status;
    p.state = 'zombie';
    p.exitedAt = this.engine.now;
    if (this.events.listenerCount('exit') > 0) {
      this.events.emit('exit', {
        t: this.engine.now,
        pid: p.pid,
        status,
        how: describeStatus(status),
        residentPages: p.stats.residentAtExit,
      });
    }
    for (const ch of p.children) {
      ch.ppid = 0;
      if (ch.state === 'zombie') ch.state = 'reaped';
    }
    p.children.clear();
    const parent = p.ppid === 0 ? undefined : this.processes.get(p.ppid);
    if (
      parent === undefined ||
      parent.state === 'zombie' ||
      parent.state === 'reaped' ||
      parent.state === 'exiting'
    ) {
      p.state = 'reaped';
      return;
    }
    const w = parent.waiting;
    if (parent.state === 'blocked' && w !== undefined && (w.pid === -1 || w.pid === p.pid)) {
      parent.waiting = undefined;
      this.reap(parent, p, w.out);
      parent.result = p.pid;
      this.enqueue(parent);
      this.kick();
    }
  }

  private reap(parent: Process, child: Process, out: { status: number } | undefined): void {
    child.state = 'reaped';
    parent.children.delete(child);
    if (out !== undefined) out.status = child.status ?? 0;
  }

  // ------------------------------------------------------------------ system calls

  /**
   * A memory system call (`mmap`, `munmap`, `mprotect`) made synchronously by a runtime *inside* the
   * running program's step — e.g. `@vmkit/mmapper`'s OS interface, which expects an answer at once.
   * It is counted and charged like a system call. When the personality answers with a promise, the call
   * reports success now and the process waits for it after the step (a late failure kills it).
   *
   * @param label names an anonymous mapping in /proc/PID/maps (`[anon:NAME]`)
   * @returns the call's result (≥ 0) or −errno; −ESRCH when `pid` is not running
   */
  syscallNow(pid: number, s: Syscall, label?: string): number {
    const p = this.processes.get(pid);
    if (p === undefined || p.state !== 'running') return -Errno.ESRCH;
    const c = this.cpus.find((x) => x.current === p);
    p.stats.syscalls++;
    p.sliceLeft -= this.cfg.syscallNs;
    let r: MaybePromise<number>;
    try {
      if (s.call === 'mmap') r = this.mmap(p, s.addr, s.len, s.prot, s.flags, s.fd, s.offset, label);
      else if (s.call === 'munmap') r = this.munmap(p, s.addr, s.len);
      else if (s.call === 'mprotect') r = this.mprotect(p, s.addr, s.len, s.prot);
      else r = -Errno.ENOSYS;
    } catch (e) {
      r = this.kernelBug(p, s.call, e);
    }
    this.flushTlbs(p, c === undefined ? -1 : c.cpu.id);
    if (r instanceof Promise) {
      const prev = p.awaiting;
      p.awaiting = prev === undefined ? r : prev.then((a) => (a < 0 ? a : r));
      this.syscallEvent(p, s.call, 0);
      return s.call === 'mmap' ? s.addr : 0;
    }
    this.syscallEvent(p, s.call, r);
    return r;
  }

  private syscall(c: CpuState, p: Process): number {
    const op = p.op as SyscallOp;
    p.op = undefined;
    p.stats.syscalls++;
    let r: MaybePromise<number>;
    try {
      r = this.dispatchSyscall(c, p, op.sys);
    } catch (e) {
      r = this.kernelBug(p, op.sys.call, e);
    }
    this.flushTlbs(p, c.cpu.id);
    if (r instanceof Promise) {
      // An asynchronous address-space operation: the process waits, the CPU runs others.
      p.state = 'blocked';
      p.blockedAt = this.engine.now;
      c.current = null;
      const finish = (v: number): void => {
        this.flushTlbs(p, p.lastCpu);
        this.syscallEvent(p, op.sys.call, v);
        if (p.state !== 'blocked') return;
        if (v === BLOCK) {
          p.blockedAt = this.engine.now;
          return; // still waiting (e.g. wait() after an async step)
        }
        p.result = v;
        this.enqueue(p);
        this.kick();
      };
      this.engine.track(r, finish, (e) => finish(this.kernelBug(p, op.sys.call, e)));
      return this.cfg.syscallNs;
    }
    this.syscallEvent(p, op.sys.call, r);
    if (p.state === 'zombie' || p.state === 'reaped' || p.state === 'exiting') {
      c.current = null;
      return this.cfg.syscallNs;
    }
    if (r === BLOCK) {
      p.state = 'blocked';
      p.blockedAt = this.engine.now;
      c.current = null;
    } else {
      p.result = r;
      if ((p.affinity & (1 << c.cpu.id)) === 0) {
        c.current = null;
        this.enqueue(p);
        this.kick();
      }
    }
    return this.cfg.syscallNs;
  }

  private syscallEvent(p: Process, call: string, result: number): void {
    if (this.events.listenerCount('syscall') > 0)
      this.events.emit('syscall', { t: this.engine.now, pid: p.pid, call, result });
  }

  /** A kernel bug must never take the simulator down: the call fails with EFAULT. */
  private kernelBug(p: Process, call: string, e: unknown): number {
    this.say(`pid ${p.pid}: ${call} failed inside the kernel: ${(e as Error).message}`);
    return -Errno.EFAULT;
  }

  private dispatchSyscall(c: CpuState, p: Process, s: Syscall): MaybePromise<number> {
    switch (s.call) {
      case 'mmap':
        return this.mmap(p, s.addr, s.len, s.prot, s.flags, s.fd, s.offset);
      case 'munmap':
        return this.munmap(p, s.addr, s.len);
      case 'mprotect':
        return this.mprotect(p, s.addr, s.len, s.prot);
      case 'brk':
        return this.brk(p, s.addr);
      case 'open':
        return this.open(p, s.path, s.flags);
      case 'read':
        return this.read(p, s.fd, s.buf, s.len);
      case 'write':
        return this.write(p, s.fd, s.buf, s.len);
      case 'close':
        return this.close(p, s.fd);
      case 'fork':
        return this.fork(c, p, s.child);
      case 'exit':
        p.exitCode = Number.isInteger(s.code) ? s.code : 0;
        this.exit(p, exitStatus(p.exitCode));
        return 0;
      case 'wait':
        return this.wait(p, s.pid, s.out);
      case 'sleep': {
        if (!Number.isFinite(s.ns) || s.ns < 0) return -Errno.EINVAL;
        this.engine.post(this.engine.now + s.ns, this.wake, p);
        return BLOCK;
      }
      case 'getpid':
        return p.pid;
      case 'setaffinity': {
        const all = 2 ** this.cpus.length - 1;
        if (!Number.isInteger(s.mask) || (s.mask & all) === 0) return -Errno.EINVAL;
        p.affinity = s.mask & all;
        return 0;
      }
      case 'maps':
        for (const line of formatMaps(p.space.areas()).split('\n')) if (line) this.say(line);
        return 0;
      case 'log':
        this.say(`[${p.pid}] ${s.text}`);
        return 0;
      case 'tables': {
        const mem = this.machine.mem;
        const root = p.space.root;
        const text =
          s.format === 'tlb'
            ? formatInfoTlb(mem, root)
            : s.format === 'pg'
              ? formatInfoPg(mem, root)
              : formatInfoMem(mem, root);
        for (const line of text.split('\n')) if (line) this.say(line);
        return 0;
      }
      default:
        return -Errno.ENOSYS;
    }
  }

  private readonly wake = (p: Process): void => {
    if (p.state !== 'blocked') return;
    p.result = 0;
    this.enqueue(p);
    this.kick();
  };

  private say(line: string): void {
    this.output.push(line);
    this.print?.(line);
  }

  /** mmap(2) with Linux's checks and placement. */
  mmap(
    p: Process,
    addr: number,
    len: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
    label?: string,
  ): MaybePromise<number> {
    if (!isU(addr) || !isU(len) || !isU(offset) || !Number.isInteger(prot) || !Number.isInteger(flags))
      return -Errno.EINVAL;
    if (offset % PAGE !== 0) return -Errno.EINVAL;
    if ((prot & ~PROT_MASK) !== 0) return -Errno.EINVAL;
    const type = flags & MAP_TYPE;
    if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE) return -Errno.EINVAL;
    const shared = type !== MAP_PRIVATE;
    let of: OpenFile | undefined;
    if ((flags & MAP_ANONYMOUS) === 0) {
      of = p.fds.get(fd);
      if (of === undefined) return -Errno.EBADF;
    }
    if (len === 0) return -Errno.EINVAL;
    const rlen = alignUp(len, PAGE_SIZE_4K);
    if (rlen > TASK_SIZE) return -Errno.ENOMEM;
    const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
    let start: number;
    if (fixed) {
      if (addr % PAGE !== 0) return -Errno.EINVAL;
      if (addr > TASK_SIZE - rlen) return -Errno.ENOMEM;
      start = addr;
    } else {
      start = this.findUnmapped(p.space, addr, rlen);
      if (start < 0) return -Errno.ENOMEM;
    }
    if ((flags & MAP_FIXED_NOREPLACE) !== 0 && p.space.areasIn(start as VirtAddr, start + rlen).length > 0)
      return -Errno.EEXIST;
    let file: SimFile | undefined;
    let mayWrite = true;
    if (of !== undefined) {
      if (!of.readable) return -Errno.EACCES;
      if (shared && (prot & PROT_WRITE) !== 0 && !of.writable) return -Errno.EACCES;
      file = of.file;
      mayWrite = of.writable;
    }
    const anonShared = shared && file === undefined;
    if (anonShared) {
      file = this.files.anonymous();
      file.size = rlen;
      offset = 0;
    }
    const f = file;
    const doMap = (): MaybePromise<void> =>
      p.space.map({
        start: start as VirtAddr,
        len: rlen,
        prot,
        shared,
        file: f,
        offset: f === undefined ? 0 : offset,
        mayWrite: f === undefined || f.anonymous ? true : mayWrite,
        ...(label !== undefined && f === undefined ? { label: `[anon:${label}]` } : {}),
      });
    return andThen(fixed ? andThen(this.unmapRange(p, start, rlen), doMap) : doMap(), () => {
      if (this.events.listenerCount('map') > 0) {
        const e = {
          t: this.engine.now,
          pid: p.pid,
          start: formatVirtAddr(start as VirtAddr),
          end: formatVirtAddr((start + rlen) as VirtAddr),
          prot,
          flags,
        };
        this.events.emit('map', f !== undefined ? { ...e, file: f.path } : e);
      }
      return start;
    });
  }

  /** Linux's placement: the hint if it is free, else the highest free gap below the mmap base. */
  private findUnmapped(space: AddressSpace, hint: number, len: number): number {
    if (hint !== 0) {
      const h = alignUp(hint, PAGE_SIZE_4K);
      if (h >= MMAP_MIN_ADDR && h <= TASK_SIZE - len && space.areasIn(h as VirtAddr, h + len).length === 0)
        return h;
    }
    const areas = space.areas();
    let top = MMAP_BASE;
    for (let i = areas.length - 1; i >= 0; i--) {
      const a = areas[i]!;
      if (a.start >= top) continue;
      if (a.end < top && top - a.end >= len) return top - len;
      top = a.start;
    }
    return top - MMAP_MIN_ADDR >= len ? top - len : -1;
  }

  private unmapRange(p: Process, start: number, len: number): MaybePromise<void> {
    if (p.space.areasIn(start as VirtAddr, start + len).length === 0) return;
    return andThen(p.space.unmap(start as VirtAddr, len), () => {
      if (this.events.listenerCount('unmap') > 0) {
        this.events.emit('unmap', {
          t: this.engine.now,
          pid: p.pid,
          start: formatVirtAddr(start as VirtAddr),
          end: formatVirtAddr((start + len) as VirtAddr),
        });
      }
    });
  }

  /** munmap(2). */
  munmap(p: Process, addr: number, len: number): MaybePromise<number> {
    if (!isU(addr) || !isU(len)) return -Errno.EINVAL;
    if (addr % PAGE !== 0 || addr > TASK_SIZE || len > TASK_SIZE - addr) return -Errno.EINVAL;
    const rlen = alignUp(len, PAGE_SIZE_4K);
    if (rlen === 0) return -Errno.EINVAL;
    return andThen(this.unmapRange(p, addr, rlen), () => {
      this.files.trim(this.io);
      return 0;
    });
  }

  /** mprotect(2): changes the mapped part before a hole, then reports ENOMEM, as Linux does. */
  mprotect(p: Process, addr: number, len: number, prot: number): MaybePromise<number> {
    if (!isU(addr) || !isU(len) || !Number.isInteger(prot)) return -Errno.EINVAL;
    if (addr % PAGE !== 0) return -Errno.EINVAL;
    if ((prot & ~PROT_MASK) !== 0) return -Errno.EINVAL;
    if (len === 0) return 0;
    const rlen = alignUp(len, PAGE_SIZE_4K);
    const end = addr + rlen;
    if (addr >= TASK_SIZE) return -Errno.ENOMEM;
    const areas = p.space.areasIn(addr as VirtAddr, end);
    const report = (result: number): number => {
      if (this.events.listenerCount('protect') > 0) {
        this.events.emit('protect', {
          t: this.engine.now,
          pid: p.pid,
          start: formatVirtAddr(addr as VirtAddr),
          end: formatVirtAddr(Math.min(end, TASK_SIZE) as VirtAddr),
          prot,
          result,
        });
      }
      return result;
    };
    if (areas.length === 0 || areas[0]!.start > addr) return report(-Errno.ENOMEM);
    // Area by area, as Linux: each part is changed before a hole or a refusal further on is found.
    const step = (i: number, cur: number): MaybePromise<number> => {
      if (cur >= end) return report(0);
      const a = areas[i];
      if (a === undefined || a.start > cur) return report(-Errno.ENOMEM);
      if (a.shared && a.file !== undefined && !a.mayWrite && (prot & PROT_WRITE) !== 0)
        return report(-Errno.EACCES);
      const segEnd = Math.min(a.end, end);
      const r = a.prot !== prot ? p.space.protect(cur as VirtAddr, segEnd - cur, prot) : undefined;
      return andThen(r, () => step(i + 1, segEnd));
    };
    return step(0, addr);
  }

  /** brk(2): returns the new break, or the old one when it cannot move. */
  brk(p: Process, addr: number): MaybePromise<number> {
    if (!isU(addr) || addr < p.brkStart || addr > TASK_SIZE) return p.brk;
    const oldEnd = alignUp(p.brk, PAGE_SIZE_4K);
    const newEnd = alignUp(addr, PAGE_SIZE_4K);
    let r: MaybePromise<void> | undefined;
    if (newEnd > oldEnd) {
      if (p.space.areasIn(oldEnd as VirtAddr, newEnd).length > 0) return p.brk;
      r = p.space.map({
        start: oldEnd as VirtAddr,
        len: newEnd - oldEnd,
        prot: 3,
        shared: false,
        file: undefined,
        offset: 0,
        mayWrite: true,
        label: '[heap]',
      });
    } else if (newEnd < oldEnd) r = this.unmapRange(p, newEnd, oldEnd - newEnd);
    return andThen(r, () => {
      p.brk = addr;
      return addr;
    });
  }

  /** open(2) on the file store (`/dev/zero` is the zero device). */
  open(p: Process, path: string, flags: number): number {
    if (typeof path !== 'string' || !Number.isInteger(flags)) return -Errno.EINVAL;
    const acc = flags & O_ACCMODE;
    if (acc === O_ACCMODE) return -Errno.EINVAL;
    let file: SimFile | undefined;
    if (path !== '/dev/zero') {
      file = this.files.get(path);
      if (file === undefined) {
        if ((flags & O_CREAT) === 0) return -Errno.ENOENT;
        file = this.files.create(path);
      } else if ((flags & O_TRUNC) !== 0 && acc !== O_RDONLY) {
        file.size = 0;
        for (const pa of file.cache.values()) this.machine.mem.fill(pa, PAGE, 0);
      }
      file.opens++;
    }
    let fd = 3;
    while (p.fds.has(fd)) fd++;
    p.fds.set(fd, {
      file,
      readable: acc === O_RDONLY || acc === O_RDWR,
      writable: acc === O_WRONLY || acc === O_RDWR,
      pos: 0,
    });
    return fd;
  }

  /** close(2). */
  close(p: Process, fd: number): number {
    const of = p.fds.get(fd);
    if (of === undefined) return -Errno.EBADF;
    p.fds.delete(fd);
    if (of.file !== undefined) of.file.opens--;
    this.files.trim(this.io);
    return 0;
  }

  /** read(2): file data through the page cache (a disk file waits for the disk), copied to user memory. */
  read(p: Process, fd: number, buf: number, len: number): number {
    const of = p.fds.get(fd);
    if (of === undefined || !of.readable) return -Errno.EBADF;
    if (!isU(len) || !isU(buf)) return -Errno.EINVAL;
    const file = of.file;
    if (file === undefined) return this.copyOut(p, buf, new Uint8Array(len), of, len);
    const n = Math.max(0, Math.min(len, file.size - of.pos));
    if (n === 0) return 0;
    const first = Math.floor(of.pos / PAGE);
    const last = Math.floor((of.pos + n - 1) / PAGE);
    const loads: Promise<unknown>[] = [];
    try {
      for (let i = first; i <= last; i++) {
        const r = file.page(i, this.io);
        if (typeof r !== 'number') loads.push(r);
      }
    } catch {
      return -Errno.ENOMEM;
    }
    const finish = (): number => this.copyOut(p, buf, this.fileBytes(file, of.pos, n), of, n);
    if (loads.length === 0) return finish();
    if (this.events.listenerCount('io') > 0)
      this.events.emit('io', { t: this.engine.now, pid: p.pid, what: 'read', bytes: loads.length * PAGE });
    this.engine.track(
      Promise.all(loads),
      () => {
        if (p.state !== 'blocked') return;
        const waited = this.engine.now - p.blockedAt;
        p.stats.ioWaitNs += waited;
        if (this.events.listenerCount('io') > 0) {
          const bytes = loads.length * PAGE;
          this.events.emit('io', {
            t: this.engine.now,
            pid: p.pid,
            what: 'read done',
            bytes,
            blockedNs: waited,
          });
        }
        const r = finish();
        if (r !== BLOCK) p.result = r;
        this.enqueue(p);
        this.kick();
      },
      () => {
        if (p.state !== 'blocked') return;
        p.result = -Errno.EIO;
        this.enqueue(p);
        this.kick();
      },
    );
    return BLOCK;
  }

  private fileBytes(file: SimFile, pos: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    file.readAt(this.machine.mem, pos, out, 0, n);
    return out;
  }

  /** Sets up the user-memory copy of read(): the process's next operation. */
  private copyOut(p: Process, buf: number, data: Uint8Array, of: OpenFile, n: number): number {
    const op: ByteCopy = {
      kind: 'bytes',
      va: buf,
      data,
      out: undefined,
      pos: 0,
      kernel: (ok) => {
        if (!ok) return -Errno.EFAULT;
        of.pos += n;
        return n;
      },
    };
    p.op = op;
    return COPY_PENDING;
  }

  /** write(2): user memory copied in, then stored through the page cache. */
  write(p: Process, fd: number, buf: number, len: number): number {
    const of = p.fds.get(fd);
    if (of === undefined || !of.writable) return -Errno.EBADF;
    if (!isU(len) || !isU(buf)) return -Errno.EINVAL;
    const out = new Uint8Array(len);
    const op: ByteCopy = {
      kind: 'bytes',
      va: buf,
      data: undefined,
      out,
      pos: 0,
      kernel: (ok) => {
        if (!ok) return -Errno.EFAULT;
        const f = of.file;
        if (f === undefined) return len;
        this.storeFile(f, of.pos, out);
        of.pos += len;
        return len;
      },
    };
    p.op = op;
    return COPY_PENDING;
  }

  private storeFile(f: SimFile, pos: number, bytes: Uint8Array): void {
    const end = pos + bytes.length;
    f.store(this.machine.mem, pos, bytes);
    if (end > f.size) f.size = end;
  }

  /** fork(2): a copy of the address space (the personality's way), the fds, and the program. */
  private fork(c: CpuState, p: Process, childBody: (() => Program) | undefined): MaybePromise<number> {
    let program: Program | undefined;
    try {
      program = childBody !== undefined ? childBody() : p.program.forkChild?.();
    } catch (e) {
      this.say(`pid ${p.pid}: fork child program failed: ${(e as Error).message}`);
      return -Errno.EINVAL;
    }
    if (program === undefined) return -Errno.ENOSYS;
    let settle: ((r: number) => void) | undefined;
    let result: number | undefined;
    this.newProcess(
      program,
      p.pid,
      (ctx) => p.space.fork(ctx),
      (ok, child) => {
        const r = ok ? this.forked(c, p, child) : -Errno.ENOMEM;
        if (settle !== undefined) settle(r);
        else result = r;
      },
    );
    if (result !== undefined) return result;
    return new Promise<number>((resolve) => {
      settle = resolve;
    });
  }

  /** The second half of fork, once the child's space exists. */
  private forked(c: CpuState, p: Process, child: Process): number {
    this.flushTlbs(p, c.current === p ? c.cpu.id : -1);
    for (const [fd, of] of p.fds) {
      child.fds.set(fd, of);
      if (of.file !== undefined) of.file.opens++;
    }
    child.brkStart = p.brkStart;
    child.brk = p.brk;
    child.stats.peakResident = child.space.residentPages();
    child.affinity = p.affinity;
    p.children.add(child);
    if (this.events.listenerCount('fork') > 0)
      this.events.emit('fork', { t: this.engine.now, pid: p.pid, child: child.pid });
    this.enqueue(child);
    this.kick();
    return child.pid;
  }

  /** wait4(pid or −1): reaps a zombie child or blocks until one exits; ECHILD without children. */
  private wait(p: Process, pid: number, out: { status: number } | undefined): number {
    let any = false;
    for (const ch of p.children) {
      if (pid !== -1 && ch.pid !== pid) continue;
      any = true;
      if (ch.state === 'zombie') {
        this.reap(p, ch, out);
        return ch.pid;
      }
    }
    if (!any) return -Errno.ECHILD;
    p.waiting = { pid, out };
    return BLOCK;
  }
}

/** The result of read()/write() until their user-memory copy (the next operation) completes. */
const COPY_PENDING = 0;

function isU(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// ------------------------------------------------------------------ the access loops (hot path)

/** Runs accesses of `op` until done, a fault, or `budget` accesses. */
function runAccesses(mmu: Cpu['mmu'], op: AccessRun, budget: number, p: Process): void {
  if (op.access === 0) p.checksum = readRun(mmu, op, budget, p.checksum);
  else if (op.access === 1) writeRun(mmu, op, budget);
  else execRun(mmu, op, budget);
}

// One small function per access kind, so that V8 inlines the MMU method into the loop (its budget is
// about three inlined access methods per function; a call that is not inlined boxes a va >= 2^30).
function readRun(mmu: Cpu['mmu'], op: AccessRun, budget: number, sum: number): number {
  const base = op.va;
  const stride = op.stride;
  const len = op.len;
  let off = op.off;
  let i = op.pos;
  const end = Math.min(op.count, i + budget);
  for (; i < end; i++) {
    const v = mmu.read32(base + off, 4);
    if (v === -1) break;
    sum = (sum + v) | 0;
    off += stride;
    if (off >= len) off = 0;
  }
  op.pos = i;
  op.off = off;
  return sum;
}

function writeRun(mmu: Cpu['mmu'], op: AccessRun, budget: number): void {
  const base = op.va;
  const stride = op.stride;
  const len = op.len;
  const value = op.value;
  let off = op.off;
  let i = op.pos;
  const end = Math.min(op.count, i + budget);
  for (; i < end; i++) {
    if (!mmu.write32(base + off, value, 5)) break;
    off += stride;
    if (off >= len) off = 0;
  }
  op.pos = i;
  op.off = off;
}

function execRun(mmu: Cpu['mmu'], op: AccessRun, budget: number): void {
  const base = op.va;
  const stride = op.stride;
  const len = op.len;
  let off = op.off;
  let i = op.pos;
  const end = Math.min(op.count, i + budget);
  for (; i < end; i++) {
    if (mmu.translate(base + off, 6) === -1) break;
    off += stride;
    if (off >= len) off = 0;
  }
  op.pos = i;
  op.off = off;
}

function runBatch(mmu: Cpu['mmu'], op: AccessBatch, budget: number, p: Process): void {
  const a = op.addrs;
  let i = op.pos;
  const end = Math.min(a.length, i + budget);
  if (op.access === 0) {
    let sum = p.checksum;
    for (; i < end; i++) {
      const v = mmu.read32(a[i]!, 4);
      if (v === -1) break;
      sum = (sum + v) | 0;
    }
    p.checksum = sum;
  } else if (op.access === 1) {
    const value = op.value;
    for (; i < end; i++) if (!mmu.write32(a[i]!, value, 5)) break;
  } else {
    for (; i < end; i++) if (mmu.translate(a[i]!, 6) === -1) break;
  }
  op.pos = i;
}

function runBytes(mmu: Cpu['mmu'], op: ByteCopy, budget: number): void {
  let i = op.pos;
  const data = op.data;
  if (data !== undefined) {
    const end = Math.min(data.length, i + budget);
    for (; i < end; i++) if (!mmu.write8(op.va + i, data[i]!, 5)) break;
  } else {
    const out = op.out!;
    const end = Math.min(out.length, i + budget);
    for (; i < end; i++) {
      const v = mmu.read8(op.va + i, 4);
      if (v === -1) break;
      out[i] = v;
    }
  }
  op.pos = i;
}
