/**
 * Every system call's bad inputs return Linux's error number and change nothing (areas, page
 * tables, frames), on every personality.
 */
import { formatInfoTlb } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { events, PERSONALITIES, runAll } from '../test/helpers.js';
import {
  Errno,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from './errno.js';
import type { Kernel } from './kernel.js';
import { cpu, type Op, program, sys } from './program.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const BASE = 0x1000_0000;

type Fds = Record<'ro' | 'rw' | 'wo', number>;

interface Case {
  name: string;
  op: Op;
  want: number;
}

/** Runs `cases` in one process after a set-up; checks each result and that nothing changed. */
function errnoSuite(title: string, setup: () => Generator<Op, void, number>, cases: (fd: Fds) => Case[]) {
  describe.each(PERSONALITIES.map((p) => [p.name, p] as const))(`${title} (%s)`, (_n, personality) => {
    it('returns the right errno for each bad input and changes nothing', async () => {
      const results: { name: string; got: number; want: number; same: boolean }[] = [];
      let k!: Kernel;
      const prog = program('errno', function* () {
        const pid = yield sys.getpid();
        const fds: Fds = { ro: 0, rw: 0, wo: 0 };
        fds.ro = yield sys.open('/f', O_RDONLY);
        fds.rw = yield sys.open('/f', O_RDWR);
        fds.wo = yield sys.open('/f', O_WRONLY);
        yield* setup();
        const p = k.processes.get(pid)!;
        const snap = (): string =>
          `${k.maps(pid)}\n${formatInfoTlb(k.machine.mem, p.space.root)}\nframes ${k.machine.frames.usedFrames}`;
        for (const c of cases(fds)) {
          const before = snap();
          const got = yield c.op;
          results.push({ name: c.name, got, want: c.want, same: snap() === before });
        }
      });
      ({ k } = await runAll(personality, [prog], {}, (kk) => {
        k = kk;
        kk.files.create('/f', new Uint8Array(3 * 4096).fill(7));
      }));
      for (const r of results) {
        expect({ name: r.name, got: r.got }).toEqual({ name: r.name, got: r.want });
        expect({ name: r.name, unchanged: r.same }).toEqual({ name: r.name, unchanged: true });
      }
      expect(results.length).toBe(cases({ ro: 0, rw: 0, wo: 0 }).length);
    });
  });
}

function* mapped(): Generator<Op, void, number> {
  expect(yield sys.mmap(BASE, 4 * 4096, RW, ANON | MAP_FIXED)).toBe(BASE);
  yield cpu.write(BASE, 4 * 4096);
}

errnoSuite('mmap', mapped, (fd) => [
  { name: 'zero length', op: sys.mmap(0, 0, RW, ANON), want: -Errno.EINVAL },
  {
    name: 'fixed, unaligned address',
    op: sys.mmap(BASE + 1, 4096, RW, ANON | MAP_FIXED),
    want: -Errno.EINVAL,
  },
  {
    name: 'unaligned offset',
    op: sys.mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd.ro, 100),
    want: -Errno.EINVAL,
  },
  { name: 'neither shared nor private', op: sys.mmap(0, 4096, RW, MAP_ANONYMOUS), want: -Errno.EINVAL },
  { name: 'unknown prot bits', op: sys.mmap(0, 4096, 0x10, ANON), want: -Errno.EINVAL },
  { name: 'NaN address', op: sys.mmap(Number.NaN, 4096, RW, ANON), want: -Errno.EINVAL },
  { name: 'string length', op: sys.mmap(0, '4096' as unknown as number, RW, ANON), want: -Errno.EINVAL },
  { name: 'negative length', op: sys.mmap(0, -4096, RW, ANON), want: -Errno.EINVAL },
  { name: 'length past the user space', op: sys.mmap(0, 2 ** 50, RW, ANON), want: -Errno.ENOMEM },
  {
    name: 'fixed across the canonical hole',
    op: sys.mmap(2 ** 47 - 4096, 8192, RW, ANON | MAP_FIXED),
    want: -Errno.ENOMEM,
  },
  { name: 'fixed past TASK_SIZE', op: sys.mmap(TASK_SIZE, 4096, RW, ANON | MAP_FIXED), want: -Errno.ENOMEM },
  {
    name: 'fixed-noreplace over a mapping',
    op: sys.mmap(BASE + 4096, 4096, RW, ANON | MAP_FIXED_NOREPLACE),
    want: -Errno.EEXIST,
  },
  {
    name: 'fixed-noreplace partly over a mapping',
    op: sys.mmap(BASE - 4096, 8192, RW, ANON | MAP_FIXED_NOREPLACE),
    want: -Errno.EEXIST,
  },
  { name: 'bad fd', op: sys.mmap(0, 4096, PROT_READ, MAP_PRIVATE, 99), want: -Errno.EBADF },
  {
    name: 'shared writable on a read-only fd',
    op: sys.mmap(0, 4096, RW, MAP_SHARED, fd.ro),
    want: -Errno.EACCES,
  },
  {
    name: 'any mapping of a write-only fd',
    op: sys.mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd.wo),
    want: -Errno.EACCES,
  },
]);

errnoSuite('munmap', mapped, () => [
  { name: 'zero length', op: sys.munmap(BASE, 0), want: -Errno.EINVAL },
  { name: 'unaligned address', op: sys.munmap(BASE + 8, 4096), want: -Errno.EINVAL },
  { name: 'across the canonical hole', op: sys.munmap(TASK_SIZE - 4096, 8192 + 4096), want: -Errno.EINVAL },
  { name: 'negative address', op: sys.munmap(-4096, 4096), want: -Errno.EINVAL },
  { name: 'overflowing length', op: sys.munmap(BASE, 2 ** 64), want: -Errno.EINVAL },
]);

errnoSuite('mprotect', mapped, () => [
  { name: 'unaligned address', op: sys.mprotect(BASE + 4, 4096, PROT_READ), want: -Errno.EINVAL },
  { name: 'unknown prot bits', op: sys.mprotect(BASE, 4096, 0x40), want: -Errno.EINVAL },
  { name: 'nothing mapped', op: sys.mprotect(0x2000_0000, 4096, PROT_READ), want: -Errno.ENOMEM },
  { name: 'starts in a hole', op: sys.mprotect(BASE - 4096, 8192, PROT_READ), want: -Errno.ENOMEM },
  { name: 'past TASK_SIZE', op: sys.mprotect(TASK_SIZE, 4096, PROT_READ), want: -Errno.ENOMEM },
  { name: 'zero length is a success', op: sys.mprotect(BASE, 0, PROT_READ), want: 0 },
  { name: 'NaN length', op: sys.mprotect(BASE, Number.NaN, PROT_READ), want: -Errno.EINVAL },
]);

errnoSuite('files, brk, wait', mapped, (fd) => [
  { name: 'open a missing file', op: sys.open('/nope', O_RDONLY), want: -Errno.ENOENT },
  { name: 'open with access mode 3', op: sys.open('/f', 3), want: -Errno.EINVAL },
  { name: 'read a bad fd', op: sys.read(42, BASE, 16), want: -Errno.EBADF },
  { name: 'read a write-only fd', op: sys.read(fd.wo, BASE, 16), want: -Errno.EBADF },
  { name: 'write a read-only fd', op: sys.write(fd.ro, BASE, 16), want: -Errno.EBADF },
  { name: 'close a bad fd', op: sys.close(77), want: -Errno.EBADF },
  { name: 'wait without children', op: sys.wait(-1), want: -Errno.ECHILD },
  { name: 'brk below the heap start answers the current break', op: sys.brk(4096), want: 0x0100_0000 },
  { name: 'setaffinity to no CPU', op: sys.setaffinity(0), want: -Errno.EINVAL },
]);

describe.each(PERSONALITIES.map((p) => [p.name, p] as const))('user copies (%s)', (_n, personality) => {
  it('read() into an unmapped buffer is EFAULT, not a kill; write() from one too', async () => {
    const got: number[] = [];
    const prog = program('efault', function* () {
      const fd = yield sys.open('/f', O_RDWR | O_CREAT);
      got.push(yield sys.write(fd, 0x5000_0000, 16));
      const buf = yield sys.mmap(0, 4096, PROT_READ, ANON);
      got.push(yield sys.read(fd, buf, 16)); // read-only buffer: the copy faults → EFAULT
      got.push(yield sys.getpid());
    });
    const { k } = await runAll(personality, [prog], {}, (kk) =>
      kk.files.create('/f', new Uint8Array(64).fill(1)),
    );
    expect(got.slice(0, 2)).toEqual([-Errno.EFAULT, -Errno.EFAULT]);
    expect(k.processes.get(1)!.status).toBe(0);
  });

  it.skipIf(personality.coherentFileIo === false)(
    'read/write through the page cache are coherent with a shared mapping',
    async () => {
      const seen: number[] = [];
      const prog = program('coherent', function* () {
        const fd = yield sys.open('/f', O_RDWR);
        const a = yield sys.mmap(0, 8192, RW, MAP_SHARED, fd, 0);
        yield cpu.store(a + 10, new Uint8Array([0xab, 0xcd]));
        const buf = yield sys.mmap(0, 4096, RW, ANON);
        seen.push(yield sys.read(fd, buf, 16));
        const out = new Uint8Array(16);
        yield cpu.load(buf, out);
        seen.push(out[10]!, out[11]!, out[0]!);
        yield cpu.store(buf, new Uint8Array([9, 9, 9]));
        yield sys.write(fd, buf, 3); // at offset 16
        const back = new Uint8Array(3);
        yield cpu.load(a + 16, back);
        seen.push(...back);
        yield sys.close(fd);
      });
      const { k } = await runAll(personality, [prog], {}, (kk) =>
        kk.files.create('/f', new Uint8Array(8192).fill(1)),
      );
      expect(seen).toEqual([16, 0xab, 0xcd, 1, 9, 9, 9]);
      const f = k.files.get('/f')!;
      expect([...f.data.subarray(8, 20)]).toEqual([1, 1, 0xab, 0xcd, 1, 1, 1, 1, 9, 9, 9, 1]);
    },
  );

  it('a shared mapping of a read-only file cannot be made writable (EACCES) ', async () => {
    const got: number[] = [];
    const prog = program('eacces', function* () {
      const fd = yield sys.open('/f', O_RDONLY);
      const a = yield sys.mmap(0, 8192, PROT_READ, MAP_SHARED, fd, 0);
      got.push(yield sys.mprotect(a, 8192, RW));
      got.push(yield sys.mprotect(a, 8192, PROT_READ | PROT_EXEC));
      const b = yield sys.mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
      got.push(yield sys.mprotect(b, 8192, RW)); // private: allowed
    });
    const { trace } = await runAll(personality, [prog], {}, (kk) =>
      kk.files.create('/f', new Uint8Array(8192)),
    );
    expect(got).toEqual([-Errno.EACCES, 0, 0]);
    expect(events(trace, 'protect').map((e) => e.result)).toEqual(got);
  });
});
