/** End-to-end behaviour of the kernel on every personality; each run ends with a frame census. */
import { describe, expect, it } from 'vitest';
import { events, expectNoLeak, PERSONALITIES, runAll, testKernel } from '../test/helpers.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  O_RDONLY,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  SIGBUS,
  SIGKILL,
  SIGSEGV,
} from './errno.js';
import { cpu, type Program, program, sys } from './program.js';
import { EVENT_NAMES, simulate } from './run.js';
import { builtinProgram, setupFiles } from './workloads.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function u32(b: Uint8Array, off = 0): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(off, true);
}

describe.each(PERSONALITIES.map((p) => [p.name, p] as const))('kernel (%s)', (_n, personality) => {
  it('demand-zero: fresh pages read as zero, one minor fault per page', async () => {
    let sum = -1;
    const prog = program('dz', function* () {
      const a = yield sys.mmap(0, 32 * P, RW, ANON);
      const out = new Uint8Array(8);
      yield cpu.load(a + 5 * P + 100, out);
      sum = out.reduce((s, x) => s + x, 0);
      yield cpu.read(a, 32 * P);
    });
    const { k } = await runAll(personality, [prog]);
    expect(sum).toBe(0);
    const st = k.processes.get(1)!.stats;
    expect(st.minorFaults).toBe(32);
    expect(st.majorFaults + st.cowFaults).toBe(0);
    expect(st.peakResident).toBe(32);
  });

  it('a file mapped shared by two processes and private by a third', async () => {
    const seen: Record<string, number> = {};
    const writer = program('writer', function* () {
      const fd = yield sys.open('/data/f', O_RDWR);
      const a = yield sys.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
      yield cpu.write(a, 4 * P, P, 1, 0xabcd1234);
      yield sys.sleep(500_000);
    });
    const reader = program('reader', function* () {
      const fd = yield sys.open('/data/f', O_RDONLY);
      const a = yield sys.mmap(0, 4 * P, PROT_READ, MAP_SHARED, fd, 0);
      yield sys.sleep(200_000);
      const b = new Uint8Array(4);
      yield cpu.load(a + 2 * P, b);
      seen.reader = u32(b);
    });
    const priv = program('private', function* () {
      const fd = yield sys.open('/data/f', O_RDONLY);
      const a = yield sys.mmap(0, 4 * P, RW, MAP_PRIVATE, fd, 0);
      yield sys.sleep(100_000);
      const b = new Uint8Array(4);
      yield cpu.load(a + 3 * P, b);
      seen.privateBefore = u32(b);
      yield cpu.write(a + 3 * P, 4, 4, 1, 0x55);
      yield cpu.load(a + 3 * P, b);
      seen.privateAfter = u32(b);
      yield sys.sleep(300_000);
      yield cpu.load(a + P, b); // a page it never wrote: still the file's (shared) page
      seen.privateOther = u32(b);
    });
    const { k } = await runAll(personality, [writer, reader, priv], {}, (kk) =>
      kk.files.create('/data/f', new Uint8Array(4 * P).fill(0x01)),
    );
    expect(seen).toEqual({
      reader: 0xabcd1234,
      privateBefore: 0xabcd1234,
      privateAfter: 0x55,
      privateOther: 0xabcd1234,
    });
    const data = k.files.get('/data/f')!.data;
    expect(u32(data, 3 * P)).toBe(0xabcd1234); // the private write never reaches the file
    expect(u32(data, 4)).toBe(0x01010101);
    // Linux (memset) maps the cached page read-only at the read and copies it at the write; kcore
    // copies a private file page at its first fault, read or write (the seed's fault case 3).
    // (Scarlet likewise: a private map's owner page is copied at the first fault.)
    expect(k.processes.get(3)!.stats.cowFaults).toBe(personality.name === 'memset' ? 1 : 0);
  });

  it('fork with copy-on-write: each side sees its own writes; frames are shared until written', async () => {
    const seen: number[] = [];
    let sharedFrames = 0;
    const k = testKernel(personality);
    const prog = program('parent', function* () {
      const a = yield sys.mmap(0x3000_0000, 16 * P, RW, ANON | MAP_FIXED);
      yield cpu.write(a, 16 * P, P, 1, 0xaaaa);
      const before = k.machine.frames.usedFrames;
      const child = yield sys.fork(() =>
        program('child', function* () {
          sharedFrames = k.machine.frames.usedFrames - before; // only the child's tables are new
          yield cpu.write(a, 8 * P, P, 1, 0xbbbb);
          const b = new Uint8Array(4);
          yield cpu.load(a, b);
          seen.push(u32(b));
          yield cpu.load(a + 12 * P, b);
          seen.push(u32(b));
          yield sys.exit(5);
        }),
      );
      const st = { status: 0 };
      expect(yield sys.wait(child, st)).toBe(child);
      seen.push(st.status);
      const b = new Uint8Array(4);
      yield cpu.load(a, b);
      seen.push(u32(b));
    });
    k.spawn(prog);
    await k.run();
    expectNoLeak(k);
    expect(seen).toEqual([0xbbbb, 0xaaaa, 5 << 8, 0xaaaa]);
    if (personality.name === 'scarlet') {
      // Scarlet forks by copying every private page at once.
      expect(sharedFrames).toBeGreaterThanOrEqual(16);
      expect(k.processes.get(2)!.stats.cowFaults).toBe(0);
    } else {
      expect(sharedFrames).toBeLessThan(16);
      expect(k.processes.get(2)!.stats.cowFaults).toBe(8);
    }
  });

  it('a process blocked on the slow disk does not stop another from running', async () => {
    const { k, trace } = await runAll(personality, [], { cpus: 1, diskLatencyNs: 2_000_000 }, (kk) => {
      setupFiles(kk);
      kk.spawn(builtinProgram('disk-reader').create(kk));
      kk.spawn(
        program('cpu-bound', function* () {
          const a = yield sys.mmap(0, 16 * P, RW, ANON);
          yield cpu.read(a, 16 * P, 16, 512); // 2 M accesses: 2 ms of simulated time
        }),
      );
    });
    const reader = k.processes.get(1)!;
    expect(reader.stats.majorFaults).toBeGreaterThan(0);
    expect(reader.stats.ioWaitNs).toBeGreaterThan(0);
    const all = trace.map((l) => JSON.parse(l) as { ev: string; pid: number });
    const firstIo = all.findIndex((e) => e.ev === 'io' && e.pid === 1);
    const readerExit = all.findIndex((e) => e.ev === 'exit' && e.pid === 1);
    const sweepRuns = all.filter(
      (e, i) => e.ev === 'schedule' && e.pid === 2 && i > firstIo && i < readerExit,
    );
    expect(firstIo).toBeGreaterThanOrEqual(0);
    expect(sweepRuns.length).toBeGreaterThan(0);
    // The 2 M accesses (2 ms) overlap the disk waits: the run is shorter than their sum.
    expect(k.processes.get(2)!.stats.accesses).toBe(2 * 2 ** 20);
    expect(k.now).toBeLessThan(reader.stats.ioWaitNs + 2 * 2 ** 20);
  }, 10_000);

  it('TLB shootdowns reach exactly the CPUs that cached the address space', async () => {
    const k = testKernel(personality, { cpus: 4 });
    const a = 0x4000_0000;
    let entriesOnCpu0 = -1;
    let entriesBefore = -1;
    const cached = (cpuId: number): number =>
      k.machine.cpus[cpuId]!.mmu.tlb.entries().filter(
        (e) => e.vpn * P >= a && e.vpn * P < a + 4 * P && e.pcid !== 'global',
      ).length;
    const prog = program('migrant', function* () {
      yield sys.setaffinity(0b0001);
      yield sys.mmap(a, 8 * P, RW, ANON | MAP_FIXED);
      yield cpu.write(a, 8 * P); // cached on CPU 0
      yield sys.setaffinity(0b0010); // moves to CPU 1
      yield cpu.read(a, 8 * P); // cached on CPU 1
      entriesBefore = cached(0);
      yield sys.munmap(a, 4 * P); // on CPU 1: CPU 0 needs a shootdown, CPUs 2 and 3 never ran us
      entriesOnCpu0 = cached(0);
    });
    const hog = (cpuMask: number): Program =>
      program('hog', function* () {
        yield sys.setaffinity(cpuMask);
        yield cpu.read(0x5000_0000, 4, 4, 1); // faults: SIGSEGV ends it quickly
      });
    const tlb: { cpu: number; pid: number; pages: number; reason: string }[] = [];
    // Every shootdown goes to a CPU that ran the address space before (so may cache it).
    const ranOn = new Map<number, Set<number>>();
    const strays: string[] = [];
    k.events.on('schedule', (e) => {
      if (!ranOn.has(e.pid)) ranOn.set(e.pid, new Set());
      ranOn.get(e.pid)!.add(e.cpu);
    });
    k.events.on('tlb', (e) => {
      tlb.push(e);
      if (!ranOn.get(e.pid)?.has(e.cpu)) strays.push(`pid ${e.pid} → cpu ${e.cpu}`);
    });
    k.spawn(prog);
    k.spawn(hog(0b1100));
    await k.run();
    expectNoLeak(k);
    const munmapShots = tlb.filter((e) => e.pid === 1 && e.reason === 'shootdown');
    expect(munmapShots.map((e) => e.cpu)).toEqual([0]);
    expect(munmapShots[0]!.pages).toBe(4);
    expect(entriesBefore).toBe(4);
    expect(entriesOnCpu0).toBe(0);
    expect(strays).toEqual([]);
    expect([...ranOn.get(1)!].sort()).toEqual([0, 1]);
    expect(tlb.filter((e) => e.pid === 1 && (e.cpu === 2 || e.cpu === 3))).toEqual([]);
    expect(k.shootdowns).toBe(tlb.length);
  });

  it('a segmentation fault kills only the faulting process and frees its memory', async () => {
    const good = program('good', function* () {
      const a = yield sys.mmap(0, 8 * P, RW, ANON);
      yield cpu.write(a, 8 * P);
    });
    const bad = program('bad', function* () {
      const a = yield sys.mmap(0, 8 * P, RW, ANON);
      yield cpu.write(a, 8 * P);
      yield cpu.write(0x10, 4); // nothing mapped at 0
      yield sys.log('not reached');
    });
    const exec = program('nx', function* () {
      const a = yield sys.mmap(0, P, RW, ANON);
      yield cpu.exec(a, 4); // not executable
    });
    const { k, trace } = await runAll(personality, [good, bad, exec]);
    expect(k.processes.get(1)!.status).toBe(0);
    expect(k.processes.get(2)!.status).toBe(SIGSEGV);
    expect(k.processes.get(3)!.status).toBe(SIGSEGV);
    expect(k.output.some((l) => l.includes('not reached'))).toBe(false);
    expect(
      events<{ kind: string; va: string }>(trace, 'fault')
        .filter((e) => e.kind === 'segv')
        .map((e) => e.va),
    ).toContain('0x10');
  });

  it('SIGBUS past the end of a mapped file; OOM kills the process, not the kernel', async () => {
    const bus = program('bus', function* () {
      const fd = yield sys.open('/small', O_RDONLY);
      const a = yield sys.mmap(0, 4 * P, PROT_READ, MAP_PRIVATE, fd, 0);
      yield cpu.read(a, 4 * P);
    });
    const hungry = program('hungry', function* () {
      const a = yield sys.mmap(0, 64 * 2 ** 20, RW, ANON);
      yield cpu.write(a, 64 * 2 ** 20);
    });
    const { k } = await runAll(personality, [bus, hungry], { ramBytes: 8 * 2 ** 20 }, (kk) =>
      kk.files.create('/small', new Uint8Array(P + 10)),
    );
    expect(k.processes.get(1)!.status).toBe(SIGBUS);
    expect(k.processes.get(1)!.stats.minorFaults).toBe(2);
    expect(k.processes.get(2)!.status).toBe(SIGKILL);
  }, 10_000);

  it("a managed heap grows through @vmkit/mmapper over the process's own mmap and mprotect", async () => {
    const { k, trace } = await runAll(personality, [], { ramBytes: 32 * 2 ** 20 }, (kk) =>
      kk.spawn(builtinProgram('managed-heap').create(kk)),
    );
    const name = '[anon:mmtk:space:immix]';
    expect(k.output).toEqual([
      `${'200000000000-200000c00000 rw-p 00000000 00:00 0'.padEnd(73)}${name}`,
      `${'200000c00000-200004000000 ---p 00000000 00:00 0'.padEnd(73)}${name}`,
      '[1] managed heap: 12 MiB allocated in 3 chunks; protected during GC true; OS calls: mmapNoreserve 1, dzmmap 3, mprotect 1, munprotect 1',
    ]);
    expect(k.processes.get(1)!.status).toBe(0);
    // Scarlet's mprotect drops the resident pages, which fault back in when read after the collection.
    expect(k.processes.get(1)!.stats.minorFaults).toBe(personality.name === 'scarlet' ? 4 * 1024 : 3 * 1024);
    // The mapper's OS calls are the process's own system calls: 1 reservation, 3 chunk maps, 2 protects.
    const calls = events<{ call: string }>(trace, 'syscall').map((e) => e.call);
    expect(calls.filter((c) => c === 'mmap').length).toBe(4);
    expect(calls.filter((c) => c === 'mprotect').length).toBe(2);
  });

  it('brk grows and shrinks the heap', async () => {
    let maps = '';
    const got: number[] = [];
    const k = testKernel(personality);
    k.spawn(
      program('heap', function* () {
        const b = yield sys.brk(0);
        got.push(b);
        got.push(yield sys.brk(b + 10_000));
        yield cpu.write(b, 10_000);
        maps = k.maps(1);
        got.push(yield sys.brk(b + 100));
        got.push(k.processes.get(1)!.space.residentPages());
      }),
    );
    await k.run();
    expectNoLeak(k);
    expect(got).toEqual([0x0100_0000, 0x0100_0000 + 10_000, 0x0100_0000 + 100, 1]);
    expect(maps).toBe(`${'01000000-01003000 rw-p 00000000 00:00 0'.padEnd(73)}[heap]`);
  });

  it('is deterministic: one seed gives identical traces; another seed changes the random program', async () => {
    const run = async (seed: number) =>
      simulate(
        { kind: 'builtin', names: ['random', 'forker', 'disk-reader', 'shared-writer', 'segv'] },
        {
          seed,
          personality: personality.name,
          ramBytes: 32 * 2 ** 20,
          diskLatencyNs: 200_000,
          onEvent: () => {},
        },
      );
    const traces: string[][] = [];
    for (const seed of [7, 7, 8]) {
      const lines: string[] = [];
      const { kernel, report } = await simulate(
        { kind: 'builtin', names: ['random', 'forker', 'disk-reader', 'shared-writer', 'segv'] },
        {
          seed,
          personality: personality.name,
          ramBytes: 32 * 2 ** 20,
          diskLatencyNs: 200_000,
          onEvent: (l) => lines.push(l),
        },
      );
      expectNoLeak(kernel);
      expect(report.system.leakedFrames).toBe(0);
      traces.push(lines);
    }
    void run;
    expect(traces[0]!.length).toBeGreaterThan(100);
    expect(traces[1]).toEqual(traces[0]);
    expect(traces[2]).not.toEqual(traces[0]);
  }, 30_000);

  it('runs the default workload: the whole mission, every frame returned', async () => {
    const seen = new Set<string>();
    const { kernel, report } = await simulate(
      { kind: 'default' },
      { personality: personality.name, onEvent: (l) => seen.add((JSON.parse(l) as { ev: string }).ev) },
    );
    expect([...seen].sort()).toEqual([...EVENT_NAMES].sort()); // every observer event occurs
    expectNoLeak(kernel);
    const by = new Map(report.processes.map((p) => [p.name, p]));
    expect(by.get('segv')!.status).toBe('killed by SIGSEGV');
    expect(by.get('forker-child')!.status).toBe('exit 7');
    expect(by.get('disk-reader')!.majorFaults).toBeGreaterThan(0);
    // Scarlet forks by copying: no copy-on-write faults afterwards.
    if (personality.name !== 'scarlet') expect(by.get('forker-child')!.cowFaults).toBeGreaterThan(0);
    expect(by.get('demand-zero')!.minorFaults).toBe(2048);
    expect(by.get('private-writer')!.cowFaults).toBe(personality.name === 'memset' ? 16 : 0);
    for (const p of report.processes)
      if (p.name !== 'segv' && p.name !== 'forker-child') expect(p.status).toBe('exit 0');
    expect(kernel.output).toContain("[3] shared mapping reads 0xc0ffee (the writer's word)");
    expect(report.system.leakedFrames).toBe(0);
  }, 60_000);
});

describe('personalities chosen per process', () => {
  it('runs processes of every personality side by side, each with its own PCID', async () => {
    const k = testKernel(PERSONALITIES[0]!, { cpus: 2 });
    k.files.create('/data/f', new Uint8Array(4 * P).fill(3));
    const sums: Record<string, number> = {};
    const body = (name: string): Program =>
      program(name, function* () {
        const fd = yield sys.open('/data/f', O_RDWR);
        const a = yield sys.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
        const b = yield sys.mmap(0, 8 * P, RW, ANON);
        yield cpu.write(b, 8 * P, P, 1, 7);
        const child = yield sys.fork(() =>
          program(`${name}-child`, function* () {
            yield cpu.write(b, 4 * P, P, 1, 9);
          }),
        );
        yield sys.wait(child);
        const out = new Uint8Array(4);
        yield cpu.load(b, out);
        sums[name] = u32(out); // 7: the child's write (9) went to its own copy
        yield cpu.load(a + P, out);
        sums[`${name}-file`] = out[0]!;
      });
    const procs = PERSONALITIES.map((p) => k.spawn(body(p.name), { personality: p }));
    const pcids = new Set<number>();
    k.events.on('schedule', () => {
      for (const p of procs) if (p.state === 'running' || p.state === 'ready') pcids.add(p.pcid);
    });
    await k.run();
    expectNoLeak(k);
    expect(pcids.size).toBe(PERSONALITIES.length);
    for (const p of procs) expect(p.status).toBe(0);
    for (const p of PERSONALITIES) {
      expect(sums[p.name]).toBe(7);
      expect(sums[`${p.name}-file`]).toBe(3);
    }
    expect(procs.map((p) => p.space.constructor.name)).toEqual(['MemsetSpace', 'KcoreSpace', 'ScarletSpace']);
  });
});

describe('observers', () => {
  it('build no event objects when nobody listens', async () => {
    const k = testKernel(PERSONALITIES[0]!);
    const spy = vi_count(k);
    k.spawn(
      program('quiet', function* () {
        const a = yield sys.mmap(0, 4 * P, RW, ANON);
        yield cpu.write(a, 4 * P);
      }),
    );
    await k.run();
    expect(spy()).toBe(0);
    expect(k.processes.get(1)!.stats.minorFaults).toBe(4);
  });
});

/** Counts calls of the kernel's emit (there should be none without listeners). */
function vi_count(k: ReturnType<typeof testKernel>): () => number {
  let n = 0;
  const emit = k.events.emit.bind(k.events);
  (k.events as unknown as { emit: (...a: unknown[]) => boolean }).emit = (...args: unknown[]) => {
    n++;
    return (emit as (...a: unknown[]) => boolean)(...args);
  };
  return () => n;
}
