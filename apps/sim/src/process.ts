import type { SimFile } from './devices.js';
import type { AddressSpace } from './personality.js';
import type { Op, Program } from './program.js';

/** Scheduling state of a process. */
export type ProcessState = 'ready' | 'running' | 'blocked' | 'exiting' | 'zombie' | 'reaped';

/** Why a CPU stopped running a process. */
export const Stop = { NONE: 0, SLICE: 1, FAULT: 2, SYSCALL: 3, EXIT: 4, CRASH: 5, WAIT: 6 } as const;

/** An open file description. */
export interface OpenFile {
  /** `undefined` for /dev/zero. */
  file: SimFile | undefined;
  readable: boolean;
  writable: boolean;
  pos: number;
}

/** Counters of one process. */
export interface ProcessStats {
  minorFaults: number;
  majorFaults: number;
  cowFaults: number;
  accesses: number;
  syscalls: number;
  /** Accesses served by the TLB (accesses − walks). */
  tlbHits: number;
  /** Page walks: TLB fills plus faulting walks. */
  tlbWalks: number;
  /** TLB shootdown IPIs sent on behalf of this address space. */
  shootdowns: number;
  peakResident: number;
  /** Resident pages when the process exited. */
  residentAtExit: number;
  /** Simulated ns spent blocked on I/O. */
  ioWaitNs: number;
}

/** A simulated process. Fields are read by the kernel, the report and tests. */
export class Process {
  state: ProcessState = 'ready';
  /** Current operation (kept across faults and slices). */
  op: Op | undefined = undefined;
  /** Result handed to the program at its next resume. */
  result = 0;
  /** CPUs this process may run on (bit i = CPU i; sched_setaffinity). */
  affinity = 0xffff_ffff;
  /** CPUs whose TLB may hold entries of this address space (bit i = CPU i). */
  cpuMask = 0;
  /**
   * The CPU the process last ran on: an asynchronous fault or call completes "on" it (as the woken
   * process finishes its fault handler there), so its own TLB is flushed locally, not by an IPI.
   */
  lastCpu = -1;
  /** Pages whose PTE changed, to invalidate in the TLBs before the process runs again. */
  readonly inv: number[] = [];
  readonly children = new Set<Process>();
  readonly fds = new Map<number, OpenFile>();
  readonly stats: ProcessStats = {
    minorFaults: 0,
    majorFaults: 0,
    cowFaults: 0,
    accesses: 0,
    syscalls: 0,
    tlbHits: 0,
    tlbWalks: 0,
    shootdowns: 0,
    peakResident: 0,
    residentAtExit: 0,
    ioWaitNs: 0,
  };
  /** Linux wait status once exited. */
  status: number | undefined = undefined;
  /** A running sum of the values read (keeps reads observable). */
  checksum = 0;
  stop: number = Stop.NONE;
  /** An asynchronous system call a runtime made inside the program's step ({@link Kernel.syscallNow}). */
  awaiting: Promise<number> | undefined = undefined;
  faultVa = 0;
  faultEc = 0;
  faultVector = 0;
  exitCode = 0;
  sliceLeft = 0;
  blockedAt = 0;
  waiting: { pid: number; out: { status: number } | undefined } | undefined = undefined;
  brkStart = 0;
  brk = 0;
  startedAt = 0;
  exitedAt = 0;

  /** The address space (set once the personality has built it). */
  space!: AddressSpace;
  /** The PCID its TLB entries carry (the design's ASID when it has one). */
  pcid = 0;

  constructor(
    readonly pid: number,
    public ppid: number,
    readonly program: Program,
  ) {}

  /** The program's name. */
  get name(): string {
    return this.program.name;
  }
}
