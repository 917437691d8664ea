// Random sequences of mmap / munmap / protect / fork / fault / read / write / free over several spaces,
// checked page by page against a reference model of each space's contents, with a frame-leak check.

import type { PhysAddr } from '@vmkit/addr';
import type { FrameAllocator } from '@vmkit/paging-x86_64';
import { FailingFrameAllocator } from '@vmkit/paging-x86_64/testing';
import { FaultInjector } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { env, patternFile } from '../test/env.js';
import { isKcoreError, type MemoryFile, PROT_NONE, PROT_READ, PROT_RW, VmSpace } from './index.js';

const BASE = 0x40_0000;
const WINDOW = 6; // pages of address space used
const FILE_PAGES = 16;
const PG = 4096;
const LONG = process.env.VMKIT_LONG === '1';

interface MSeg {
  start: number; // page
  end: number;
  shared: boolean;
  file: number;
  off: number; // file page of `start`
  prot: number;
}
interface MSpace {
  segs: MSeg[];
  priv: Map<number, Uint8Array>; // resident private pages
}

type Op =
  | { t: 'mmap'; s: number; start: number; n: number; file: number; off: number; anon: boolean; prot: number }
  | { t: 'munmap'; s: number; start: number; n: number }
  | { t: 'protect'; s: number; start: number; n: number; prot: number }
  | { t: 'fork'; s: number }
  | { t: 'free'; s: number }
  | { t: 'fault'; s: number; page: number; write: boolean }
  | { t: 'read'; s: number; at: number; len: number }
  | { t: 'write'; s: number; at: number; len: number; seed: number };

const sp = fc.nat(3);
const page = fc.nat(WINDOW - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('mmap' as const),
      s: sp,
      start: page,
      n: fc.integer({ min: 1, max: 4 }),
      file: fc.nat(1),
      off: fc.nat(8),
      anon: fc.boolean(),
      prot: fc.constantFrom(PROT_RW, PROT_RW, PROT_READ),
    }),
  },
  fc.record({ t: fc.constant('munmap' as const), s: sp, start: page, n: fc.integer({ min: 1, max: 6 }) }),
  fc.record({
    t: fc.constant('protect' as const),
    s: sp,
    start: page,
    n: fc.integer({ min: 1, max: 4 }),
    prot: fc.constantFrom(PROT_RW, PROT_READ, PROT_NONE),
  }),
  { weight: 2, arbitrary: fc.record({ t: fc.constant('fork' as const), s: sp }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('free' as const), s: sp }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('fault' as const), s: sp, page, write: fc.boolean() }) },
  fc.record({
    t: fc.constant('read' as const),
    s: sp,
    at: fc.nat(WINDOW * PG - 1),
    len: fc.integer({ min: 1, max: 2 * PG }),
  }),
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('write' as const),
      s: sp,
      at: fc.nat(WINDOW * PG - 1),
      len: fc.integer({ min: 1, max: 2 * PG }),
      seed: fc.nat(255),
    }),
  },
);

class Model {
  files: Uint8Array[];
  spaces: (MSpace | undefined)[] = [{ segs: [], priv: new Map() }];

  constructor(files: Uint8Array[]) {
    this.files = files.map((f) => f.slice());
  }

  seg(m: MSpace, p: number): MSeg | undefined {
    return m.segs.find((g) => g.start <= p && p < g.end);
  }

  /** The bytes of page p as the model says (making a private page resident). */
  pageBytes(m: MSpace, p: number): Uint8Array {
    const g = this.seg(m, p)!;
    const fp = g.off + p - g.start;
    const fileView = this.files[g.file]!.subarray(fp * PG, fp * PG + PG);
    if (g.shared) return fileView;
    let b = m.priv.get(p);
    if (b === undefined) {
      b = fileView.slice();
      m.priv.set(p, b);
    }
    return b;
  }

  /** Cut [a, b) out of m's segments (munmap / protect bookkeeping). */
  cut(m: MSpace, a: number, b: number, replaceProt?: number): void {
    const out: MSeg[] = [];
    for (const g of m.segs) {
      if (g.end <= a || g.start >= b) {
        out.push(g);
        continue;
      }
      if (g.start < a) out.push({ ...g, end: a });
      if (replaceProt !== undefined) {
        const s = Math.max(a, g.start);
        out.push({ ...g, start: s, end: Math.min(b, g.end), off: g.off + s - g.start, prot: replaceProt });
      }
      if (g.end > b) out.push({ ...g, start: b, off: g.off + b - g.start });
    }
    m.segs = out.sort((x, y) => x.start - y.start);
  }

  covered(m: MSpace, a: number, b: number, ok: (g: MSeg) => boolean): boolean {
    for (let p = a; p < b; p++) {
      const g = this.seg(m, p);
      if (g === undefined || !ok(g)) return false;
    }
    return true;
  }
}

/** Index of the first differing byte, or -1 (fast: vitest's deep equality is per element). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.compare(a, b) === 0) return -1;
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return Math.min(a.length, b.length);
}

async function expectKind(p: Promise<unknown>, kind: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (isKcoreError(e) && e.kind === kind) return;
    throw new Error(`expected ${kind}, got ${String(e)}`);
  }
  throw new Error(`expected ${kind}, got success`);
}

/**
 * Reference counts are exact: a private frame has one reference per entry that maps it (in any
 * space), a cached frame one for the cache plus one per entry, and nothing else is allocated but the
 * spaces' tables.
 */
/** Every live space's segments and resident pages, and the free frames: what a failure must not change. */
function snap(spaces: (VmSpace | undefined)[], frames: FrameAllocator): string {
  const parts = [String(frames.freeFrames)];
  for (const s of spaces) {
    if (s === undefined) continue;
    parts.push(s.formatMaps(), JSON.stringify(s.residentPageList()));
  }
  return parts.join('\n');
}

function checkRefcounts(spaces: (VmSpace | undefined)[], frames: FrameAllocator): void {
  const entries = new Map<number, { n: number; shared: boolean }>();
  let tables = 0;
  for (const s of spaces) {
    if (s === undefined) continue;
    tables += 1 + s.tableFrames();
    for (const p of s.residentPageList()) {
      const e = entries.get(p.frame) ?? { n: 0, shared: p.shared };
      e.n++;
      entries.set(p.frame, e);
    }
  }
  let used = tables;
  for (const [frame, e] of entries) {
    expect(frames.refCount(frame as PhysAddr)).toBe(e.shared ? e.n + 1 : e.n);
    used++;
  }
  expect(frames.totalFrames - frames.freeFrames).toBe(used);
}

/**
 * Runs `ops` against the model. With `failAt` > 0 the `failAt`-th frame allocation fails: the operation
 * hit must reject with `OutOfMemory` and (single-page operations) leave every space exactly as it was;
 * a multi-page read or write may leave the pages it faulted in before resident (the model then takes
 * its copies of those private pages at that point). Returns the number of injected failures seen.
 */
async function run(ops: Op[], failAt = 0): Promise<number> {
  const injector = new FaultInjector(failAt > 0 ? [failAt] : []);
  let failing: FailingFrameAllocator | undefined;
  const { ctx, frames } = env(4, (inner) => {
    failing = new FailingFrameAllocator(inner);
    return failing;
  });
  let injected = 0;
  const fs = [patternFile(FILE_PAGES, 1), patternFile(FILE_PAGES, 2)];
  const model = new Model(fs.map((f) => f.bytes));
  const spaces: (VmSpace | undefined)[] = [VmSpace.create(ctx)];
  failing!.failWhen = injector; // counted from the first operation on
  for (const o0 of ops) {
    // `s` picks among the live spaces; when all were freed, a fresh one starts.
    if (!spaces.some((x) => x !== undefined)) {
      try {
        spaces[0] = VmSpace.create(ctx);
      } catch (e) {
        if (failAt === 0 || !isKcoreError(e, 'OutOfMemory')) throw e;
        injected++;
        continue;
      }
      model.spaces[0] = { segs: [], priv: new Map() };
    }
    const live = spaces.flatMap((x, i) => (x === undefined ? [] : [i]));
    const o = { ...o0, s: live[o0.s % live.length]! };
    const s = spaces[o.s]!;
    const m = model.spaces[o.s]!;
    checkRefcounts(spaces, frames);
    const before = failAt > 0 ? snap(spaces, frames) : '';
    /** Awaits `p`; false when it failed with the injected OutOfMemory (state checked, model synced). */
    const ok = async (p: Promise<unknown>, atomic: boolean): Promise<boolean> => {
      try {
        await p;
        return true;
      } catch (e) {
        if (failAt === 0 || !isKcoreError(e, 'OutOfMemory')) throw e;
      }
      injected++;
      if (atomic) expect(snap(spaces, frames)).toBe(before);
      for (let k = 0; k < spaces.length; k++) {
        const m2 = model.spaces[k];
        if (spaces[k] === undefined || m2 === undefined) continue;
        for (const r of spaces[k]!.residentPageList()) {
          const pg = (r.va - BASE) / PG;
          if (!r.shared && !m2.priv.has(pg)) model.pageBytes(m2, pg);
        }
      }
      return false;
    };
    switch (o.t) {
      case 'mmap': {
        const n = Math.min(o.n, WINDOW - o.start);
        const p = s.mmap(BASE + o.start * PG, n * PG, fs[o.file]!.chan, o.off * PG, o.anon, o.prot);
        if (m.segs.some((g) => g.start < o.start + n && o.start < g.end)) {
          await expectKind(p, 'Conflict');
          break;
        }
        if (!(await ok(p, true))) break;
        m.segs.push({
          start: o.start,
          end: o.start + n,
          shared: !o.anon,
          file: o.file,
          off: o.off,
          prot: o.prot,
        });
        m.segs.sort((x, y) => x.start - y.start);
        break;
      }
      case 'munmap': {
        expect(await s.munmap(BASE + o.start * PG, o.n * PG)).toBe(false);
        for (let p = o.start; p < o.start + o.n; p++) m.priv.delete(p);
        model.cut(m, o.start, o.start + o.n);
        break;
      }
      case 'protect': {
        const b = Math.min(WINDOW, o.start + o.n);
        const p = s.protect(BASE + o.start * PG, (b - o.start) * PG, o.prot);
        if (!model.covered(m, o.start, b, () => true)) {
          await expectKind(p, 'NotFound');
          break;
        }
        if (!(await ok(p, true))) break;
        model.cut(m, o.start, b, o.prot);
        break;
      }
      case 'fork': {
        const free = spaces.findIndex((x, i) => i > 0 && x === undefined);
        const slot = free < 0 ? spaces.length : free;
        if (slot > 3) break;
        let child: VmSpace | undefined;
        if (
          !(await ok(
            s.fork().then((c) => {
              child = c;
            }),
            true,
          ))
        )
          break;
        spaces[slot] = child;
        const priv = new Map<number, Uint8Array>();
        for (const [k, v] of m.priv) priv.set(k, v.slice());
        model.spaces[slot] = { segs: m.segs.map((g) => ({ ...g })), priv };
        break;
      }
      case 'free': {
        expect(await s.free()).toBe(false);
        spaces[o.s] = undefined;
        model.spaces[o.s] = undefined;
        break;
      }
      case 'fault': {
        const g = model.seg(m, o.page);
        const p = s.fault(BASE + o.page * PG + 123, o.write ? 'write' : 'read');
        if (g === undefined) await expectKind(p, 'SegmentFault');
        else if (g.prot === PROT_NONE || (o.write && g.prot === PROT_READ)) await expectKind(p, 'Forbidden');
        else if (await ok(p, true)) model.pageBytes(m, o.page);
        break;
      }
      case 'read': {
        const len = Math.min(o.len, WINDOW * PG - o.at);
        const buf = new Uint8Array(len);
        const p = s.read(buf, BASE + o.at);
        const a = Math.floor(o.at / PG);
        const b = Math.ceil((o.at + len) / PG);
        if (!model.covered(m, a, b, (g) => g.prot !== PROT_NONE)) {
          await expectKind(p, 'Forbidden');
          break;
        }
        if (!(await ok(p, false))) break;
        const want = new Uint8Array(len);
        for (let i = 0; i < len; ) {
          const va = o.at + i;
          const pg = Math.floor(va / PG);
          const n = Math.min(len - i, (pg + 1) * PG - va);
          want.set(model.pageBytes(m, pg).subarray(va - pg * PG, va - pg * PG + n), i);
          i += n;
        }
        expect(firstDiff(buf, want), `read at ${o.at} of ${len}`).toBe(-1);
        break;
      }
      case 'write': {
        const len = Math.min(o.len, WINDOW * PG - o.at);
        const data = new Uint8Array(len).map((_, i) => (i * 17 + o.seed) & 255);
        const p = s.write(data, BASE + o.at);
        const a = Math.floor(o.at / PG);
        const b = Math.ceil((o.at + len) / PG);
        if (!model.covered(m, a, b, (g) => g.prot === PROT_RW)) {
          await expectKind(p, 'Forbidden');
          break;
        }
        if (!(await ok(p, false))) break;
        for (let i = 0; i < len; ) {
          const va = o.at + i;
          const pg = Math.floor(va / PG);
          const n = Math.min(len - i, (pg + 1) * PG - va);
          model.pageBytes(m, pg).set(data.subarray(i, i + n), va - pg * PG);
          i += n;
        }
        break;
      }
    }
  }
  failing!.failWhen = undefined; // the audit runs without injection
  checkRefcounts(spaces, frames); // after the last operation too
  // The audit: every readable page of every live space equals the model.
  for (let k = 0; k < spaces.length; k++) {
    const s = spaces[k];
    const m = model.spaces[k];
    if (s === undefined || m === undefined) continue;
    for (const g of m.segs) {
      if (g.prot === PROT_NONE) continue;
      for (let p = g.start; p < g.end; p++) {
        const buf = new Uint8Array(PG);
        await s.read(buf, BASE + p * PG);
        expect(firstDiff(buf, model.pageBytes(m, p)), `space ${k} page ${p}`).toBe(-1);
      }
    }
  }
  for (const s of spaces) if (s !== undefined) expect(await s.free()).toBe(false);
  expect(frames.freeFrames).toBe(frames.totalFrames);
  expect(ctx.cacheStats().cached).toBe(0);
  expect(injected).toBeLessThanOrEqual(1);
  for (let f = 0; f < 2; f++)
    expect(firstDiff((fs[f]!.file as MemoryFile).bytes(), model.files[f]!)).toBe(-1);
  return injected;
}

describe('VmSpace against a reference model', () => {
  it(
    'random operation sequences keep every space equal to the model, and leak no frame',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40, size: 'max' }), async (ops) => {
          await run(ops);
        }),
        { numRuns: LONG ? 3000 : 100 },
      );
    },
    LONG ? 600_000 : 60_000,
  );

  it(
    'with frame exhaustion injected at a random allocation: OutOfMemory, nothing changed, nothing leaked',
    async () => {
      let injected = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(op, { minLength: 1, maxLength: 40, size: 'max' }),
          fc.integer({ min: 1, max: 24 }),
          async (ops, failAt) => {
            injected += await run(ops, failAt);
          },
        ),
        { numRuns: LONG ? 2000 : 80 },
      );
      expect(injected).toBeGreaterThan(10); // the injection does hit operations
    },
    LONG ? 600_000 : 60_000,
  );
});
