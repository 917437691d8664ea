/**
 * What processes run. A program hands the kernel one operation at a time; an operation that touches
 * memory is a *run* or *batch* of accesses the CPU executes in a tight loop over the MMU until it
 * ends, faults, or the time slice ends (the program is not resumed per access). A system call is an
 * operation whose number result is handed back to the program when it is resumed.
 *
 * @module
 */
import { simFail } from './errors.js';

/** Access kinds of a run. */
export const READ = 0;
export const WRITE = 1;
export const EXEC = 2;

/**
 * A run of `count` 4-byte accesses at `va`, `va + stride`, … wrapping at `len` bytes from `va` (so a
 * working set can be swept many times). The CPU keeps its position across faults and slices.
 */
export class AccessRun {
  readonly kind = 'run';
  /** Accesses done. */
  pos = 0;
  /** Byte offset of the next access from `va`. */
  off = 0;
  /**
   * @param va first address (4-byte aligned for the fast path)
   * @param len bytes of the swept range (> 0)
   * @param stride bytes between accesses (> 0)
   * @param count accesses in total
   * @param access READ, WRITE or EXEC
   * @param value the u32 written by a WRITE run
   */
  constructor(
    readonly va: number,
    readonly len: number,
    readonly stride: number,
    readonly count: number,
    readonly access: number,
    readonly value = 0,
  ) {
    for (const [k, v] of [
      ['va', va],
      ['len', len],
      ['stride', stride],
      ['count', count],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0 || (k !== 'va' && k !== 'count' && v === 0))
        simFail('E_PROGRAM', `access run ${k} ${String(v)} is not a positive integer`, { [k]: v });
    }
    if (access !== READ && access !== WRITE && access !== EXEC)
      simFail('E_PROGRAM', `access kind ${String(access)} is not READ, WRITE or EXEC`, { access });
  }
}

/** A batch of 4-byte accesses at the given addresses (all of one kind). */
export interface AccessBatch {
  readonly kind: 'batch';
  readonly addrs: Float64Array;
  readonly access: number;
  readonly value: number;
  pos: number;
}

/** A byte copy through the MMU: a user store of `data` at `va`, or a user load of `out.length` bytes. */
export interface ByteCopy {
  readonly kind: 'bytes';
  readonly va: number;
  readonly data: Uint8Array | undefined;
  readonly out: Uint8Array | undefined;
  pos: number;
  /** Set for copies the kernel makes for read()/write(): a bad address gives EFAULT, not SIGSEGV. */
  readonly kernel?: (ok: boolean) => number;
}

/** CPU time without memory accesses. */
export interface Compute {
  readonly kind: 'compute';
  ns: number;
}

/** System call requests. */
export type Syscall =
  | { call: 'mmap'; addr: number; len: number; prot: number; flags: number; fd: number; offset: number }
  | { call: 'munmap'; addr: number; len: number }
  | { call: 'mprotect'; addr: number; len: number; prot: number }
  | { call: 'brk'; addr: number }
  | { call: 'open'; path: string; flags: number }
  | { call: 'read'; fd: number; buf: number; len: number }
  | { call: 'write'; fd: number; buf: number; len: number }
  | { call: 'close'; fd: number }
  | { call: 'fork'; child?: () => Program }
  | { call: 'exit'; code: number }
  | { call: 'wait'; pid: number; out?: { status: number } }
  | { call: 'sleep'; ns: number }
  | { call: 'getpid' }
  | { call: 'setaffinity'; mask: number }
  | { call: 'maps' }
  | { call: 'tables'; format: 'tlb' | 'mem' | 'pg' }
  | { call: 'log'; text: string };

/** A system call operation. */
export interface SyscallOp {
  readonly kind: 'sys';
  readonly sys: Syscall;
}

/** Everything a program can hand the kernel. */
export type Op = AccessRun | AccessBatch | ByteCopy | Compute | SyscallOp;

/**
 * A program: `next(result)` returns the next operation given the result of the previous one (the
 * system call's return value, or 0), or `undefined` when the program ends (exit 0).
 */
export interface Program {
  /** Name shown in reports. */
  readonly name: string;
  next(result: number): Op | undefined;
  /** The program the child of a fork runs, continuing after the fork (fork returns 0 to it). */
  forkChild?(): Program;
}

/** A generator-based program body: `yield` operations, receive results. */
export type ProgramBody = Generator<Op, void, number>;

/** Wraps a generator into a {@link Program}. Fork needs `sys.fork(child)` with an explicit child body. */
export function program(name: string, body: () => ProgramBody): Program {
  let gen: ProgramBody | undefined;
  return {
    name,
    next(result: number): Op | undefined {
      if (gen === undefined) {
        gen = body();
        const r = gen.next(0);
        return r.done ? undefined : r.value;
      }
      const r = gen.next(result);
      return r.done ? undefined : r.value;
    },
  };
}

const sysOp = (sys: Syscall): SyscallOp => ({ kind: 'sys', sys });

/** Operation builders for programs (`yield sys.mmap(...)`). */
export const sys = {
  mmap: (addr: number, len: number, prot: number, flags: number, fd = -1, offset = 0): SyscallOp =>
    sysOp({ call: 'mmap', addr, len, prot, flags, fd, offset }),
  munmap: (addr: number, len: number): SyscallOp => sysOp({ call: 'munmap', addr, len }),
  mprotect: (addr: number, len: number, prot: number): SyscallOp =>
    sysOp({ call: 'mprotect', addr, len, prot }),
  brk: (addr: number): SyscallOp => sysOp({ call: 'brk', addr }),
  open: (path: string, flags: number): SyscallOp => sysOp({ call: 'open', path, flags }),
  read: (fd: number, buf: number, len: number): SyscallOp => sysOp({ call: 'read', fd, buf, len }),
  write: (fd: number, buf: number, len: number): SyscallOp => sysOp({ call: 'write', fd, buf, len }),
  close: (fd: number): SyscallOp => sysOp({ call: 'close', fd }),
  /** Fork; the child runs `child` (for generator programs) or the program's own `forkChild()`. */
  fork: (child?: () => Program): SyscallOp => sysOp(child ? { call: 'fork', child } : { call: 'fork' }),
  exit: (code: number): SyscallOp => sysOp({ call: 'exit', code }),
  /** Waits for child `pid` (−1: any); the status goes to `out.status`. Returns the pid or −errno. */
  wait: (pid = -1, out?: { status: number }): SyscallOp =>
    sysOp(out ? { call: 'wait', pid, out } : { call: 'wait', pid }),
  sleep: (ns: number): SyscallOp => sysOp({ call: 'sleep', ns }),
  getpid: (): SyscallOp => sysOp({ call: 'getpid' }),
  /** sched_setaffinity(0, mask): the CPUs (bit i = CPU i) this process may run on; it moves at once. */
  setaffinity: (mask: number): SyscallOp => sysOp({ call: 'setaffinity', mask }),
  /** Prints the process's /proc/PID/maps to the kernel's output. */
  maps: (): SyscallOp => sysOp({ call: 'maps' }),
  log: (text: string): SyscallOp => sysOp({ call: 'log', text }),
  /** Prints the process's page table in a QEMU monitor format of `@vmkit/paging-x86_64`. */
  tables: (format: 'tlb' | 'mem' | 'pg' = 'mem'): SyscallOp => sysOp({ call: 'tables', format }),
};

/** Access-operation builders. */
export const cpu = {
  /** Sweeps `[va, va + len)` with `stride`, `passes` times, reading. */
  read: (va: number, len: number, stride = 4096, passes = 1): AccessRun =>
    new AccessRun(va, len, stride, Math.ceil(len / stride) * passes, READ),
  write: (va: number, len: number, stride = 4096, passes = 1, value = 0x5a5a5a5a): AccessRun =>
    new AccessRun(va, len, stride, Math.ceil(len / stride) * passes, WRITE, value),
  exec: (va: number, len: number, stride = 4096): AccessRun =>
    new AccessRun(va, len, stride, Math.ceil(len / stride), EXEC),
  batch: (addrs: Float64Array, access = READ, value = 0): AccessBatch => ({
    kind: 'batch',
    addrs,
    access,
    value,
    pos: 0,
  }),
  store: (va: number, data: Uint8Array): ByteCopy => ({ kind: 'bytes', va, data, out: undefined, pos: 0 }),
  load: (va: number, out: Uint8Array): ByteCopy => ({ kind: 'bytes', va, data: undefined, out, pos: 0 }),
  compute: (ns: number): Compute => ({ kind: 'compute', ns }),
};
