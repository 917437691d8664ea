/**
 * Per-page protections after sequences of mmap/munmap/mprotect equal what Linux gives: worked
 * sequences with tables written from Linux's rules, and random sequences against a per-page model of
 * those rules. The page tables never grant more than the area allows.
 */
import type { VirtAddr } from '@vmkit/addr';
import { ACCESS_EXEC, ACCESS_USER, ACCESS_WRITE, Mmu } from '@vmkit/paging-x86_64';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PERSONALITIES, runAll } from '../test/helpers.js';
import {
  Errno,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from './errno.js';
import type { Kernel } from './kernel.js';
import type { Personality } from './personality.js';
import { cpu, type Op, program, sys } from './program.js';

const P = 4096;
const BASE = 0x2000_0000;
const R = PROT_READ;
const W = PROT_WRITE;
const X = PROT_EXEC;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const UNMAPPED = -1;

/** Per-page protection of the window as the kernel's areas say (−1: unmapped). */
function protTable(k: Kernel, pid: number, pages: number): number[] {
  const space = k.processes.get(pid)!.space;
  return Array.from({ length: pages }, (_, i) => space.areaAt((BASE + i * P) as VirtAddr)?.prot ?? UNMAPPED);
}

/** Checks the hardware view: no page is writable, user-readable or executable beyond its area's prot. */
function expectPtesWithinProt(k: Kernel, pid: number, pages: number): void {
  const space = k.processes.get(pid)!.space;
  const mmu = new Mmu(k.machine.mem, { tlbSize: 1 });
  mmu.writeCr3(space.root);
  for (let i = 0; i < pages; i++) {
    const va = (BASE + i * P) as VirtAddr;
    const prot = space.areaAt(va)?.prot ?? UNMAPPED;
    const ok = (access: number): boolean => mmu.probe(va, access).ok;
    if (ok(ACCESS_USER))
      expect({ page: i, prot, readable: prot > 0 }).toEqual({ page: i, prot, readable: true });
    if (ok(ACCESS_USER | ACCESS_WRITE))
      expect({ page: i, writable: (prot & W) !== 0 }).toEqual({ page: i, writable: true });
    if (ok(ACCESS_USER | ACCESS_EXEC))
      expect({ page: i, exec: (prot & X) !== 0 }).toEqual({ page: i, exec: true });
  }
}

async function runSteps(
  personality: Personality,
  steps: (k: () => Kernel, pid: () => number) => Generator<Op, void, number>,
) {
  let k!: Kernel;
  let pid = 0;
  const prog = program('prot', function* () {
    pid = yield sys.getpid();
    yield* steps(
      () => k,
      () => pid,
    );
  });
  await runAll(personality, [prog], {}, (kk) => {
    k = kk;
  });
}

describe.each(PERSONALITIES.map((p) => [p.name, p] as const))('Linux protections (%s)', (_n, personality) => {
  it('split, hole, ENOMEM after changing the part before the hole', async () => {
    const results: number[] = [];
    let table: number[] = [];
    let maps = '';
    await runSteps(personality, function* (k, pid) {
      results.push(yield sys.mmap(BASE, 8 * P, R | W, ANON | MAP_FIXED));
      yield cpu.write(BASE, 8 * P);
      results.push(yield sys.mprotect(BASE + 2 * P, 2 * P, R));
      results.push(yield sys.mprotect(BASE + 5 * P, P, 0));
      results.push(yield sys.munmap(BASE + 7 * P, P));
      results.push(yield sys.mprotect(BASE + 6 * P, 2 * P, R | X)); // page 7 is a hole
      table = protTable(k(), pid(), 9);
      maps = k().maps(pid());
      expectPtesWithinProt(k(), pid(), 9);
    });
    expect(results).toEqual([BASE, 0, 0, 0, -Errno.ENOMEM]);
    //            0      1      2  3  4      5  6      7         8
    expect(table).toEqual([R | W, R | W, R, R, R | W, 0, R | X, UNMAPPED, UNMAPPED]);
    expect(maps).toBe(
      [
        '20000000-20002000 rw-p 00000000 00:00 0 ',
        '20002000-20004000 r--p 00000000 00:00 0 ',
        '20004000-20005000 rw-p 00000000 00:00 0 ',
        '20005000-20006000 ---p 00000000 00:00 0 ',
        '20006000-20007000 r-xp 00000000 00:00 0 ',
      ].join('\n'),
    );
  });

  it('protecting back merges; MAP_FIXED replaces; fixed-noreplace refuses', async () => {
    const results: number[] = [];
    let table: number[] = [];
    let maps = '';
    await runSteps(personality, function* (k, pid) {
      results.push(yield sys.mmap(BASE, 4 * P, R, ANON | MAP_FIXED));
      results.push(yield sys.mprotect(BASE + P, P, R | W));
      results.push(yield sys.mprotect(BASE + P, P, R));
      results.push(yield sys.mmap(BASE + 2 * P, P, R | W | X, ANON | MAP_FIXED));
      results.push(yield sys.mmap(BASE + 3 * P, 2 * P, R | W, ANON | MAP_FIXED_NOREPLACE));
      results.push(yield sys.mmap(BASE + 4 * P, 2 * P, R | W, ANON | MAP_FIXED_NOREPLACE));
      yield cpu.read(BASE, 6 * P);
      table = protTable(k(), pid(), 7);
      maps = k().maps(pid());
      expectPtesWithinProt(k(), pid(), 7);
    });
    expect(results).toEqual([BASE, 0, 0, BASE + 2 * P, -Errno.EEXIST, BASE + 4 * P]);
    expect(table).toEqual([R, R, R | W | X, R, R | W, R | W, UNMAPPED]);
    expect(maps).toBe(
      [
        '20000000-20002000 r--p 00000000 00:00 0 ',
        '20002000-20003000 rwxp 00000000 00:00 0 ',
        '20003000-20004000 r--p 00000000 00:00 0 ',
        '20004000-20006000 rw-p 00000000 00:00 0 ',
      ].join('\n'),
    );
  });

  it('write access comes back after mprotect(rw) over copy-on-write and read-only pages', async () => {
    let word = 0;
    await runSteps(personality, function* () {
      yield sys.mmap(BASE, 2 * P, R | W, ANON | MAP_FIXED);
      yield cpu.write(BASE, 2 * P, P, 1, 0x11);
      yield sys.mprotect(BASE, 2 * P, R);
      yield sys.mprotect(BASE, 2 * P, R | W);
      yield cpu.write(BASE, 2 * P, P, 1, 0x22); // must succeed (not SIGSEGV)
      const out = new Uint8Array(1);
      yield cpu.load(BASE + P, out);
      word = out[0]!;
    });
    expect(word).toBe(0x22);
  });

  it('random mmap/munmap/mprotect sequences match a per-page model of Linux', async () => {
    const N = 16;
    type Step =
      | { op: 'map'; i: number; n: number; prot: number; noreplace: boolean }
      | { op: 'unmap'; i: number; n: number }
      | { op: 'protect'; i: number; n: number; prot: number }
      | { op: 'touch'; i: number };
    const prot = fc.constantFrom(0, R, R | W, R | X, R | W | X);
    const range = fc
      .integer({ min: 0, max: N - 1 })
      .chain((i) => fc.record({ i: fc.constant(i), n: fc.integer({ min: 1, max: N - i }) }));
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc
        .record({ r: range, prot, noreplace: fc.boolean() })
        .map(({ r, prot, noreplace }) => ({ op: 'map' as const, ...r, prot, noreplace })),
      range.map((r) => ({ op: 'unmap' as const, ...r })),
      fc.record({ r: range, prot }).map(({ r, prot }) => ({ op: 'protect' as const, ...r, prot })),
      fc.integer({ min: 0, max: N - 1 }).map((i) => ({ op: 'touch' as const, i })),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const model = new Array<number>(N).fill(UNMAPPED);
        const want: number[] = [];
        for (const s of steps) {
          if (s.op === 'map') {
            const busy = model.slice(s.i, s.i + s.n).some((p) => p !== UNMAPPED);
            if (s.noreplace && busy) want.push(-Errno.EEXIST);
            else {
              model.fill(s.prot, s.i, s.i + s.n);
              want.push(BASE + s.i * P);
            }
          } else if (s.op === 'unmap') {
            model.fill(UNMAPPED, s.i, s.i + s.n);
            want.push(0);
          } else if (s.op === 'protect') {
            let r = 0;
            for (let j = s.i; j < s.i + s.n; j++) {
              if (model[j] === UNMAPPED) {
                r = -Errno.ENOMEM;
                break;
              }
              model[j] = s.prot;
            }
            want.push(r);
          } else want.push(0);
        }
        const got: number[] = [];
        let table: number[] = [];
        await runSteps(personality, function* (k, pid) {
          for (const s of steps) {
            if (s.op === 'map') {
              const flags = ANON | (s.noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED);
              got.push(yield sys.mmap(BASE + s.i * P, s.n * P, s.prot, flags));
            } else if (s.op === 'unmap') got.push(yield sys.munmap(BASE + s.i * P, s.n * P));
            else if (s.op === 'protect') got.push(yield sys.mprotect(BASE + s.i * P, s.n * P, s.prot));
            else {
              // Touch only as the current protection allows (a forbidden access would kill the process).
              const p =
                k()
                  .processes.get(pid())!
                  .space.areaAt((BASE + s.i * P) as VirtAddr)?.prot ?? 0;
              if (p & W) yield cpu.write(BASE + s.i * P, 4);
              else if (p & R) yield cpu.read(BASE + s.i * P, 4);
              got.push(0);
            }
          }
          table = protTable(k(), pid(), N);
          expectPtesWithinProt(k(), pid(), N);
        });
        expect(got).toEqual(want);
        expect(table).toEqual(model);
      }),
      { numRuns: 40 },
    );
  }, 30_000);
});
