import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventEngine } from './engine.js';
import { Prng } from './prng.js';

describe('EventEngine', () => {
  it('runs events by time, then in posting order', async () => {
    const e = new EventEngine();
    const seen: string[] = [];
    const log = (s: string): void => {
      seen.push(`${e.now}:${s}`);
    };
    e.post(30, log, 'c');
    e.post(10, log, 'a');
    e.post(10, log, 'b');
    e.post(
      20,
      (s: string) => {
        log(s);
        e.post(20, log, 'same-time');
        e.post(5, log, 'past→now');
      },
      'x',
    );
    await e.run();
    expect(seen).toEqual(['10:a', '10:b', '20:x', '20:same-time', '20:past→now', '30:c']);
    expect(e.processed).toBe(6);
  });

  it('pops in (time, order) order for random postings (heap vs sort)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
        const e = new EventEngine();
        const out: number[] = [];
        times.forEach((t, i) => {
          e.post(t, (k: number) => out.push(k), i);
        });
        while (e.step()) {}
        const want = times.map((t, i) => [t, i] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
        expect(out).toEqual(want.map((w) => w[1]));
      }),
      { numRuns: 200 },
    );
  });

  it('interleaved posts and steps match a sorted reference, across slot reuse and growth', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(-1)), {
          minLength: 1,
          maxLength: 900,
        }),
        (ops) => {
          const e = new EventEngine();
          const model: { t: number; id: number }[] = [];
          const out: number[] = [];
          const want: number[] = [];
          let id = 0;
          for (const op of ops) {
            if (op >= 0) {
              const t = e.now + op;
              e.post(t, (k: number) => out.push(k), id);
              model.push({ t, id: id++ });
            } else if (model.length > 0) {
              model.sort((a, b) => a.t - b.t || a.id - b.id);
              want.push(model.shift()!.id);
              e.step();
            }
          }
          while (e.step()) {}
          model.sort((a, b) => a.t - b.t || a.id - b.id);
          want.push(...model.map((m) => m.id));
          expect(out).toEqual(want);
          expect(e.queued).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('stops at `until` and goes on from there', async () => {
    const e = new EventEngine();
    const seen: number[] = [];
    for (const t of [5, 50, 500]) e.post(t, (x: number) => seen.push(x), t);
    await e.run(100);
    expect(seen).toEqual([5, 50]);
    expect(e.queued).toBe(1);
    await e.run();
    expect(seen).toEqual([5, 50, 500]);
  });

  it('joins tracked promises to simulated time, deterministically', async () => {
    const e = new EventEngine();
    const seen: string[] = [];
    const later = (t: number): Promise<number> =>
      new Promise((resolve) =>
        e.post(
          t,
          (r: (v: number) => void) => {
            e.wantDrain();
            r(t);
          },
          resolve,
        ),
      );
    e.track(
      later(50).then((v) => v + 1),
      (v) => seen.push(`then ${v} at ${e.now}`),
      () => {},
    );
    e.post(40, () => seen.push('event 40'), 0);
    e.post(60, () => seen.push('event 60'), 0);
    await e.run();
    expect(seen).toEqual(['event 40', 'then 51 at 50', 'event 60']);
    expect(e.inFlight).toBe(0);
  });

  it('reports a deadlock instead of hanging', async () => {
    const e = new EventEngine();
    e.track(
      new Promise<void>(() => {}),
      () => {},
      () => {},
    );
    await expect(e.run()).rejects.toThrow(/E_DEADLOCK/);
  });
});

describe('Prng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xs = Array.from({ length: 8 }, () => a.u32());
    expect(Array.from({ length: 8 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.u32())).not.toEqual(xs);
  });

  it('spreads below(n) evenly (chi-square, 16 buckets)', () => {
    const r = new Prng(7);
    const n = 16;
    const counts = new Array<number>(n).fill(0);
    const N = 64_000;
    for (let i = 0; i < N; i++) counts[r.below(n)]!++;
    const exp = N / n;
    const chi = counts.reduce((s, c) => s + (c - exp) ** 2 / exp, 0);
    expect(chi).toBeLessThan(40); // 15 degrees of freedom: p < 0.001 at 37.7
  });

  it('rejects bad seeds', () => {
    for (const s of [-1, 1.5, Number.NaN, 2 ** 53]) expect(() => new Prng(s)).toThrow(/E_CONFIG/);
  });
});
