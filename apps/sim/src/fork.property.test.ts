/**
 * Random sequences of writes and forks against a reference model of page contents, on every
 * personality: a private region is each process's own after a fork (copy-on-write or copied), a shared
 * one is one memory; the frame census holds at the end.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PERSONALITIES, runAll } from '../test/helpers.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from './errno.js';
import { cpu, type Op, program, sys } from './program.js';

const P = 4096;
const PRIV = 0x5000_0000;
const SHARED = 0x6000_0000;
const NPRIV = 8;
const NSHARED = 4;
const RW = PROT_READ | PROT_WRITE;

type W = { shared: boolean; page: number; value: number };
type Step = { kind: 'w'; w: W } | { kind: 'fork'; child: W[] };

const write = fc.record({
  shared: fc.boolean(),
  page: fc.integer({ min: 0, max: NPRIV - 1 }),
  value: fc.integer({ min: 1, max: 0x7fff_ffff }),
});
const w = write.map((x) => ({ ...x, page: x.shared ? x.page % NSHARED : x.page }));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: w.map((x) => ({ kind: 'w' as const, w: x })) },
  { weight: 1, arbitrary: fc.array(w, { maxLength: 6 }).map((c) => ({ kind: 'fork' as const, child: c })) },
);

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function* store(x: W): Generator<Op, void, number> {
  yield cpu.store((x.shared ? SHARED : PRIV) + x.page * P, u32(x.value));
}

function* readAll(out: number[]): Generator<Op, void, number> {
  const b = new Uint8Array(4);
  for (let i = 0; i < NPRIV; i++) {
    yield cpu.load(PRIV + i * P, b);
    out.push(new DataView(b.buffer).getUint32(0, true));
  }
  for (let i = 0; i < NSHARED; i++) {
    yield cpu.load(SHARED + i * P, b);
    out.push(new DataView(b.buffer).getUint32(0, true));
  }
}

describe.each(PERSONALITIES.map((p) => [p.name, p] as const))(
  'fork and memory contents (%s)',
  (_n, personality) => {
    it('private pages are per process after fork, shared pages are one memory (model check)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
          const priv = new Array<number>(NPRIV).fill(0);
          const shared = new Array<number>(NSHARED).fill(0);
          const want: number[][] = [];
          const got: number[][] = [];
          // The expected results, in the order the processes report them (each child before its parent goes on).
          for (const s of steps) {
            if (s.kind === 'w') (s.w.shared ? shared : priv)[s.w.page] = s.w.value;
            else {
              const cp = [...priv];
              for (const x of s.child) (x.shared ? shared : cp)[x.page] = x.value;
              want.push([...cp, ...shared]);
            }
          }
          want.push([...priv, ...shared]);
          const parent = program('parent', function* () {
            yield sys.mmap(PRIV, NPRIV * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
            yield sys.mmap(SHARED, NSHARED * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
            for (const s of steps) {
              if (s.kind === 'w') yield* store(s.w);
              else {
                const child = yield sys.fork(() =>
                  program('child', function* () {
                    for (const x of s.child) yield* store(x);
                    const out: number[] = [];
                    yield* readAll(out);
                    got.push(out);
                  }),
                );
                yield sys.wait(child);
              }
            }
            const out: number[] = [];
            yield* readAll(out);
            got.push(out);
          });
          await runAll(personality, [parent]);
          expect(got).toEqual(want);
        }),
        { numRuns: 25 },
      );
    }, 60_000);
  },
);
