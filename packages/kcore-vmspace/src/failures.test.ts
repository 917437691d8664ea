// Failure injection: frame exhaustion at every allocation, channel read errors and short reads at
// every read, write-back errors. A failing step must give a clear error and change nothing; retried,
// it succeeds; at the end every space holds what a run without failures holds, and after free every
// frame is back.

import { FailingFrameAllocator } from '@vmkit/paging-x86_64/testing';
import { FaultInjector } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { env, patternFile } from '../test/env.js';
import {
  type ChanDevice,
  isKcoreError,
  type KcoreErrorKind,
  MemoryFile,
  openChan,
  PROT_READ,
  type VmContext,
  VmSpace,
} from './index.js';
import { FailingDevice } from './testing/index.js';

const V = 0x10_0000;
const S = 0x20_0000;

interface St {
  a?: VmSpace;
  b?: VmSpace;
  c?: VmSpace;
}

type Step = ((st: St, ctx: VmContext, priv: ChanDevice, shared: ChanDevice) => Promise<unknown>) & {
  multiPage?: boolean;
};

/** A read or write over several pages: on failure the pages faulted in before stay resident. */
function multi(step: Step): Step {
  step.multiPage = true;
  return step;
}

const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 3 + seed) & 255);

const steps: Step[] = [
  async (st, ctx) => {
    st.a = VmSpace.create(ctx);
  },
  (st, _c, priv) => st.a!.mmap(V, 0x4000, openChan(priv), 0x1000, true),
  (st, _c, _p, shared) => st.a!.mmap(S, 0x2000, openChan(shared), 0, false),
  multi((st) => st.a!.write(bytes(0x1000, 1), V + 0x800)),
  (st) => st.a!.fault(V + 0x2000, 'read'),
  multi((st) => st.a!.write(bytes(0x20, 2), S + 0xff0)),
  async (st) => {
    st.b = await st.a!.fork();
  },
  (st) => st.b!.write(bytes(0x10, 3), V + 0x1000),
  (st) => st.a!.write(bytes(0x10, 4), V + 0x2000),
  multi((st) => st.b!.read(new Uint8Array(0x1800), S + 0x400)),
  (st) => st.b!.fault(V + 0x3000),
  (st) => st.a!.protect(V, 0x2000, PROT_READ),
  (st) => st.a!.munmap(V + 0x1000, 0x1000),
  async (st, ctx, _p, shared) => {
    st.c = VmSpace.create(ctx);
    await st.c.mmap(S, 0x2000, openChan(shared), 0, true);
  },
  multi((st) => st.c!.read(new Uint8Array(0x2000), S)),
  (st) => st.b!.munmap(S, 0x1000),
];

/** What must not change when a step fails: every space's segments and leaf entries, frames, cache. */
function state(st: St, ctx: VmContext): string {
  const parts: string[] = [`free ${ctx.frames.freeFrames}`, `cached ${ctx.cacheStats().cached}`];
  for (const s of [st.a, st.b, st.c]) {
    if (s === undefined) continue;
    parts.push(s.formatMaps());
    parts.push(
      s.mapper
        .leaves()
        .map((l) => `${l.va.toString(16)}:${l.lo.toString(16)}:${l.hi.toString(16)}`)
        .join(','),
    );
  }
  return parts.join('\n');
}

/** The contents of every readable page of every space, after the steps. */
async function contents(st: St): Promise<number[][]> {
  const out: number[][] = [];
  for (const s of [st.a, st.b, st.c]) {
    if (s === undefined) continue;
    for (const g of s.segments()) {
      const b = new Uint8Array(g.end - g.start);
      await s.read(b, g.start);
      out.push([g.start, ...b.subarray(0, 64), ...b.subarray(b.length - 64)]);
    }
  }
  return out;
}

/**
 * Runs the steps; a step that fails must fail with `kind`, leave `state` unchanged, and succeed when
 * retried. Returns the final contents and the number of injected failures seen.
 */
async function scenario(
  ctx: VmContext,
  priv: ChanDevice,
  shared: ChanDevice,
  kind: KcoreErrorKind,
  stopInjecting: () => void,
): Promise<{ contents: number[][]; failures: number; files: Uint8Array[] }> {
  const st: St = {};
  let failures = 0;
  for (const step of steps) {
    const before = state(st, ctx);
    try {
      await step(st, ctx, priv, shared);
      continue;
    } catch (e) {
      if (!isKcoreError(e, kind)) throw new Error(`expected ${kind}, got ${String(e)}`);
      expect(e.message.length).toBeGreaterThan(10);
      failures++;
    }
    if (!step.multiPage) expect(state(st, ctx)).toBe(before);
    await step(st, ctx, priv, shared);
  }
  stopInjecting();
  const c = await contents(st);
  for (const s of [st.a, st.b, st.c]) expect(await s!.free()).toBe(false);
  return { contents: c, failures, files: [] };
}

function files() {
  const p = patternFile(8, 1).file;
  const s = patternFile(4, 2).file;
  return { p, s };
}

describe('failure injection', () => {
  it('frame exhaustion at every allocation: OutOfMemory, nothing changed, nothing leaked', async () => {
    const base = env(2);
    const f0 = files();
    const baseline = await scenario(base.ctx, f0.p, f0.s, 'OutOfMemory', () => {});
    expect(base.bitmap.freeFrames).toBe(base.bitmap.totalFrames);
    const counter = new FaultInjector();
    const countEnv = env(2, (inner) => new FailingFrameAllocator(inner, counter));
    const f1 = files();
    let calls = 0;
    await scenario(countEnv.ctx, f1.p, f1.s, 'OutOfMemory', () => {
      calls = counter.count; // allocations made by the steps (not by the final reads)
    });
    expect(calls).toBeGreaterThan(20);
    let injected = 0;
    for (let k = 1; k <= calls; k++) {
      let alloc: FailingFrameAllocator | undefined;
      const e = env(2, (inner) => (alloc = new FailingFrameAllocator(inner, new FaultInjector([k]))));
      const f = files();
      const r = await scenario(e.ctx, f.p, f.s, 'OutOfMemory', () => {
        alloc!.failWhen = undefined;
      });
      injected += r.failures;
      expect(JSON.stringify(r.contents)).toBe(JSON.stringify(baseline.contents));
      expect(e.bitmap.freeFrames).toBe(e.bitmap.totalFrames);
      expect(Buffer.compare(f.s.bytes(), f0.s.bytes())).toBe(0);
    }
    expect(injected).toBe(calls);
  }, 60_000);

  for (const [what, key] of [
    ['read errors', 'readError'],
    ['short reads', 'shortRead'],
  ] as const) {
    it(`channel ${what} at every read: InternalError, nothing changed, nothing leaked`, async () => {
      const base = env(2);
      const f0 = files();
      const baseline = await scenario(base.ctx, f0.p, f0.s, 'InternalError', () => {});
      const probe = files();
      const pc = new FailingDevice(probe.p);
      const sc = new FailingDevice(probe.s);
      let reads = 0;
      await scenario(env(2).ctx, pc, sc, 'InternalError', () => {
        reads = pc.reads + sc.reads;
      });
      expect(reads).toBeGreaterThan(5);
      let injected = 0;
      for (let k = 1; k <= reads; k++) {
        const f = files();
        const inj = new FaultInjector([k]);
        const pol = { shouldFail: () => inj.shouldFail() };
        const pd = new FailingDevice(f.p, { [key]: pol });
        const sd = new FailingDevice(f.s, { [key]: pol });
        const e = env(2);
        const r = await scenario(e.ctx, pd, sd, 'InternalError', () => {
          pd.options = {};
          sd.options = {};
        });
        injected += r.failures;
        expect(JSON.stringify(r.contents)).toBe(JSON.stringify(baseline.contents));
        expect(e.bitmap.freeFrames).toBe(e.bitmap.totalFrames);
        expect(e.ctx.cacheStats().cached).toBe(0);
      }
      expect(injected).toBe(reads);
    }, 60_000);
  }

  for (const key of ['writeError', 'shortWrite'] as const) {
    it(`${key} at every write-back: reported by the result, the other pages written, nothing leaked`, async () => {
      for (let k = 1; k <= 4; k++) {
        const { ctx, bitmap } = env(2);
        const file = new MemoryFile(0x4000);
        const dev = new FailingDevice(file, { [key]: new FaultInjector([k]) });
        const a = VmSpace.create(ctx);
        const b = VmSpace.create(ctx);
        await a.mmap(V, 0x4000, openChan(dev), 0, false);
        await b.mmap(S, 0x2000, openChan(dev), 0x2000, false); // file pages 2, 3: a second mapper
        for (let p = 0; p < 4; p++) await a.write(new Uint8Array([p + 1]), V + p * 0x1000);
        await b.fault(S + 0x1000, 'read'); // page 3 still has a mapper after a's munmap
        // pages 0, 1, 2 leave their last mapper here: write-backs 1, 2, 3
        const first = await a.munmap(V, 0x4000);
        expect(first).toBe(k <= 3);
        expect(await a.free()).toBe(false);
        // page 3 leaves with b: write-back 4
        expect(await b.free()).toBe(k === 4);
        expect(dev.writes).toBe(4);
        const got = [0, 1, 2, 3].map((p) => file.bytes()[p * 0x1000]);
        const want = [1, 2, 3, 4].map((v, p) => (p === k - 1 && key === 'writeError' ? 0 : v));
        expect(got).toEqual(want); // a short write still wrote its first half
        expect(ctx.cacheStats()).toMatchObject({ cached: 0, writeBacks: 4, failedWriteBacks: 1 });
        expect(bitmap.freeFrames).toBe(bitmap.totalFrames);
      }
    });
  }

  it('a write-back error loses that page only, reports it, and frees everything', async () => {
    const { ctx, bitmap } = env(2);
    const file = new MemoryFile(0x3000);
    const inj = new FaultInjector([2]);
    const dev = new FailingDevice(file, { writeError: inj });
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x3000, openChan(dev), 0, false);
    await s.write(new Uint8Array(0x3000).fill(7), V);
    expect(await s.free()).toBe(true);
    expect(dev.writes).toBe(3);
    expect([file.bytes()[0], file.bytes()[0x1000], file.bytes()[0x2000]]).toEqual([7, 0, 7]);
    expect(bitmap.freeFrames).toBe(bitmap.totalFrames);
  });
});
