/**
 * Built-in programs (for `vmkit-sim run NAME...`) and the default workload that shows the whole
 * mission in one run.
 *
 * @module
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE } from './errno.js';
import { simFail } from './errors.js';
import type { Kernel } from './kernel.js';
import { managedHeap } from './managed.js';
import { cpu, type Program, program, sys } from './program.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const KiB = 1024;
const MiB = 1024 * 1024;

/** Paths of the files the workloads use (created by {@link setupFiles}). */
export const SHARED_FILE = '/data/shared.bin';
export const DISK_FILE = '/disk/big.bin';

/** Creates the workload files: a 64 KiB file in memory and a 256 KiB file on the slow disk. */
export function setupFiles(k: Kernel): void {
  if (k.files.get(SHARED_FILE) === undefined) {
    const d = new Uint8Array(64 * KiB);
    for (let i = 0; i < d.length; i++) d[i] = i & 0xff;
    k.files.create(SHARED_FILE, d);
  }
  if (k.files.get(DISK_FILE) === undefined) {
    const d = new Uint8Array(256 * KiB);
    for (let i = 0; i < d.length; i += 4) {
      const v = k.prng.u32();
      d[i] = v & 0xff;
      d[i + 1] = (v >>> 8) & 0xff;
      d[i + 2] = (v >>> 16) & 0xff;
      d[i + 3] = v >>> 24;
    }
    k.files.create(DISK_FILE, d);
  }
}

/** A built-in program: a name, what it shows, and a factory. */
export interface BuiltinProgram {
  readonly name: string;
  readonly description: string;
  create(k: Kernel): Program;
}

function fail(what: string, r: number): Generator<never, void, number> {
  // biome-ignore lint/correctness/useYield: a helper that only throws inside a program body
  return (function* () {
    simFail('E_PROGRAM', `${what} returned ${r}`);
  })();
}

const builtins: BuiltinProgram[] = [
  {
    name: 'demand-zero',
    description: 'maps 8 MiB of anonymous memory, writes every page (demand-zero faults), reads it 4 times',
    create: () =>
      program('demand-zero', function* () {
        const a = yield sys.mmap(0, 8 * MiB, RW, ANON);
        if (a < 0) return yield* fail('mmap', a);
        yield cpu.write(a, 8 * MiB);
        yield cpu.read(a, 8 * MiB, 64, 4);
        yield sys.munmap(a, 8 * MiB);
      }),
  },
  {
    name: 'sweep',
    description: 'a CPU-bound loop: 16 M reads over a 256 KiB working set (TLB hits)',
    create: () =>
      program('sweep', function* () {
        const a = yield sys.mmap(0, 256 * KiB, RW, ANON);
        yield cpu.write(a, 256 * KiB);
        yield cpu.read(a, 256 * KiB, 16, 1024);
      }),
  },
  {
    name: 'random',
    description: 'random reads and writes (seeded) over 4 MiB, in batches',
    create: (k) =>
      program('random', function* () {
        const len = 4 * MiB;
        const a = yield sys.mmap(0, len, RW, ANON);
        const addrs = new Float64Array(1 << 16);
        for (let round = 0; round < 8; round++) {
          for (let i = 0; i < addrs.length; i++) addrs[i] = a + k.prng.below(len / 4) * 4;
          yield cpu.batch(addrs, round & 1);
        }
      }),
  },
  {
    name: 'shared-writer',
    description: `maps ${SHARED_FILE} shared and writes a word into every page`,
    create: () =>
      program('shared-writer', function* () {
        const fd = yield sys.open(SHARED_FILE, O_RDWR);
        const a = yield sys.mmap(0, 64 * KiB, RW, MAP_SHARED, fd, 0);
        yield sys.close(fd);
        yield cpu.write(a, 64 * KiB, 4096, 1, 0xc0ffee);
        yield sys.log(`wrote 0xc0ffee into each page of ${SHARED_FILE}`);
        yield sys.sleep(2_000_000);
      }),
  },
  {
    name: 'shared-reader',
    description: `maps ${SHARED_FILE} shared read-only and reads what the writer wrote`,
    create: () =>
      program('shared-reader', function* () {
        const fd = yield sys.open(SHARED_FILE, O_RDONLY);
        const a = yield sys.mmap(0, 64 * KiB, PROT_READ, MAP_SHARED, fd, 0);
        yield sys.close(fd);
        yield sys.sleep(1_000_000);
        const word = new Uint8Array(4);
        yield cpu.load(a + 4096, word);
        const v = new DataView(word.buffer).getUint32(0, true);
        yield sys.log(`shared mapping reads 0x${v.toString(16)} (the writer's word)`);
        yield cpu.read(a, 64 * KiB);
      }),
  },
  {
    name: 'private-writer',
    description: `maps ${SHARED_FILE} private and writes: copies, the file does not change`,
    create: () =>
      program('private-writer', function* () {
        const fd = yield sys.open(SHARED_FILE, O_RDONLY);
        const a = yield sys.mmap(0, 64 * KiB, RW, MAP_PRIVATE, fd, 0);
        yield sys.close(fd);
        yield cpu.read(a, 64 * KiB);
        yield cpu.write(a, 64 * KiB, 4096, 1, 0xdead);
        yield sys.log('private copy written (copy-on-write from the page cache)');
      }),
  },
  {
    name: 'forker',
    description: 'writes 2 MiB, forks; the child writes half of it (copy-on-write) and exits 7',
    create: () =>
      program('forker', function* () {
        const len = 2 * MiB;
        const a = yield sys.mmap(0, len, RW, ANON);
        yield cpu.write(a, len, 4096, 1, 1);
        const child = yield sys.fork(() =>
          program('forker-child', function* () {
            yield cpu.write(a, len / 2, 4096, 1, 2);
            yield cpu.read(a, len);
            yield sys.exit(7);
          }),
        );
        const st = { status: 0 };
        const pid = yield sys.wait(child, st);
        yield sys.log(`child ${pid} exited with status ${(st.status >> 8) & 0xff}`);
        yield cpu.write(a, len, 4096, 1, 3);
      }),
  },
  {
    name: 'disk-reader',
    description: `maps ${DISK_FILE} (on the slow disk) and reads it: major faults, waits while others run`,
    create: () =>
      program('disk-reader', function* () {
        const fd = yield sys.open(DISK_FILE, O_RDONLY);
        const a = yield sys.mmap(0, 256 * KiB, PROT_READ, MAP_PRIVATE, fd, 0);
        const buf = yield sys.mmap(0, 64 * KiB, RW, ANON);
        const n = yield sys.read(fd, buf, 64 * KiB);
        yield sys.log(`read() of ${n} bytes from the disk done`);
        yield sys.close(fd);
        yield cpu.read(a, 256 * KiB);
      }),
  },
  {
    name: 'brk-heap',
    description: 'grows the heap with brk(2) to 1 MiB and touches it, then shrinks it',
    create: () =>
      program('brk-heap', function* () {
        const base = yield sys.brk(0);
        for (let i = 1; i <= 4; i++) {
          yield sys.brk(base + i * 256 * KiB);
          yield cpu.write(base + (i - 1) * 256 * KiB, 256 * KiB);
        }
        yield sys.maps();
        yield sys.brk(base);
      }),
  },
  {
    name: 'segv',
    description: 'writes to a read-only page: killed by SIGSEGV, its memory freed',
    create: () =>
      program('segv', function* () {
        const a = yield sys.mmap(0, 64 * KiB, RW, ANON);
        yield cpu.write(a, 64 * KiB);
        yield sys.mprotect(a, 64 * KiB, PROT_READ);
        yield cpu.write(a + 8192, 4);
        yield sys.log('unreachable');
      }),
  },
];

const extra: BuiltinProgram[] = [managedHeap];

/** Registers another built-in program (e.g. the managed-runtime workload). */
export function registerProgram(p: BuiltinProgram): void {
  if (!builtins.some((b) => b.name === p.name) && !extra.some((b) => b.name === p.name)) extra.push(p);
}

/** Every built-in program. */
export function builtinPrograms(): readonly BuiltinProgram[] {
  return [...builtins, ...extra];
}

/** The built-in program `name`. @throws SimError `E_UNKNOWN` listing the names */
export function builtinProgram(name: string): BuiltinProgram {
  const p = builtinPrograms().find((b) => b.name === name);
  if (p === undefined) {
    simFail(
      'E_UNKNOWN',
      `no built-in program '${name}' (have: ${builtinPrograms()
        .map((b) => b.name)
        .join(', ')})`,
      {
        name,
      },
    );
  }
  return p;
}

/** The programs of the default workload, in spawn order. */
export const DEFAULT_WORKLOAD = [
  'disk-reader',
  'shared-writer',
  'shared-reader',
  'private-writer',
  'forker',
  'demand-zero',
  'sweep',
  'random',
  'brk-heap',
  'managed-heap',
  'segv',
] as const;

/** Spawns the default workload (skipping programs not registered). Returns the number spawned. */
export function spawnDefaultWorkload(k: Kernel): number {
  setupFiles(k);
  let n = 0;
  for (const name of DEFAULT_WORKLOAD) {
    const p = builtinPrograms().find((b) => b.name === name);
    if (p === undefined) continue;
    k.spawn(p.create(k));
    n++;
  }
  return n;
}
