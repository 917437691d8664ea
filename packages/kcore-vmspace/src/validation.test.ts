// Bad input at every public entry: the seed's error kind, a message naming the value as it was passed,
// and no change anywhere (segments, every leaf entry, frames, the page cache, the channels' devices).

import { BitmapFrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { env, patternFile } from '../test/env.js';
import {
  formatProt,
  isKcoreError,
  KcoreError,
  type KcoreErrorKind,
  ManualClock,
  MemoryFile,
  openChan,
  PROT_READ,
  PROT_RW,
  SlowDevice,
  USER_TOP,
  VmContext,
  VmSpace,
  ZeroDevice,
} from './index.js';
import { FailingDevice } from './testing/index.js';

const V = 0x10_0000;
const B = 0x4000_0000; // a free, aligned address for mmap

/** Values that are not integers in [0, 2^53), with the text a message must show for each. */
const NOT_UINT: [unknown, string][] = [
  [null, 'null'],
  [undefined, 'undefined'],
  ['4096', '"4096"'],
  [{}, '{}'],
  [[4096], '[4096]'],
  [true, 'true'],
  [4096n, '4096n'],
  [Number.NaN, 'NaN'],
  [Number.POSITIVE_INFINITY, 'Infinity'],
  [Number.NEGATIVE_INFINITY, '-Infinity'],
  [-4096, '-4096'],
  [-0.5, '-0.5'],
  [4096.5, '4096.5'],
  [2 ** 53, '0x20000000000000'],
  [2 ** 60, '0x1000000000000000'],
];

/** A populated world: two spaces (one forked), private and shared segments, a dirty cached page. */
async function world() {
  const e = env();
  const pf = patternFile(8, 1);
  const sf = patternFile(4, 2);
  const a = VmSpace.create(e.ctx);
  await a.mmap(V, 0x4000, pf.chan, 0x1000, true);
  await a.mmap(V + 0x8000, 0x2000, sf.chan, 0, false);
  await a.write(new Uint8Array([1, 2, 3]), V + 0xffe); // two private pages
  await a.write(new Uint8Array([4]), V + 0x8000); // a dirty cached page
  const b = await a.fork(); // the private pages are now copy-on-write
  await b.fault(V + 0x9000, 'read');
  const closed = pf.chan.dup();
  await closed.close();
  const state = () =>
    JSON.stringify({
      free: e.frames.freeFrames,
      cache: e.ctx.cacheStats(),
      spaces: [a, b].map((s) => ({
        maps: s.formatMaps(),
        leaves: s.mapper.leaves().map((l) => [l.va, l.lo, l.hi]),
        freed: s.freed,
      })),
      files: [pf.file, sf.file].map((f) => [
        f.reads,
        f.writes,
        f.released,
        Buffer.from(f.bytes()).toString('hex'),
      ]),
    });
  return { ...e, a, b, chan: pf.chan, closed, state };
}

type World = Awaited<ReturnType<typeof world>>;

/** Asserts that `run` fails (throws or rejects) with `kind` and `text`, changing nothing in `w`. */
async function refuses(w: World, run: () => unknown, kind: KcoreErrorKind, text: string): Promise<void> {
  const before = w.state();
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  if (!isKcoreError(err, kind)) throw new Error(`expected ${kind} with "${text}", got ${String(err)}`);
  expect(err.message).toContain(text);
  expect(w.state()).toBe(before);
}

describe('bad input at every entry of VmSpace: the seed error naming the value, nothing changes', () => {
  it('mmap: every argument', async () => {
    const w = await world();
    const z = openChan(new ZeroDevice());
    for (const [v, text] of NOT_UINT) {
      await refuses(
        w,
        () => w.a.mmap(v as number, 0x1000, z, 0, true),
        'BadRequest',
        `address ${text} is not`,
      );
      await refuses(w, () => w.a.mmap(B, v as number, z, 0, true), 'BadRequest', `length ${text} is not`);
      await refuses(
        w,
        () => w.a.mmap(B, 0x1000, z, v as number, true),
        'BadRequest',
        `offset ${text} is not`,
      );
    }
    await refuses(w, () => w.a.mmap(B, 0, z, 0, true), 'BadRequest', 'mmap invalid va range: length 0');
    await refuses(w, () => w.a.mmap(B + 0x800, 0x1000, z, 0, true), 'BadRequest', 'address 0x40000800');
    await refuses(w, () => w.a.mmap(B, 0xfff, z, 0, true), 'BadRequest', 'mmap va misaligned: length 0xfff');
    await refuses(
      w,
      () => w.a.mmap(B, 0x1000, z, 0x800, true),
      'BadRequest',
      'mmap va misaligned: offset 0x800',
    );
    await refuses(
      w,
      () => w.a.mmap(USER_TOP - 0x1000, 0x2000, z, 0, true),
      'BadRequest',
      '[0x7ffffffff000, +0x2000) passes the user top 0x800000000000 (the canonical hole)',
    );
    await refuses(
      w,
      () => w.a.mmap(USER_TOP, 0x1000, z, 0, true),
      'BadRequest',
      '0xffff800000000000 is not in the user half',
    );
    await refuses(w, () => w.a.mmap(2 ** 48, 0x1000, z, 0, true), 'BadRequest', 'mmap invalid va range');
    await refuses(
      w,
      () => w.a.mmap(B, 0x1000, z, 2 ** 53 - 0x1000, true),
      'BadRequest',
      'mmap invalid offset: offset 0x1ffffffffff000 + length 0x1000 passes 2^53',
    );
    for (const [c, text] of [
      [null, 'null is not a Chan'],
      [undefined, 'undefined is not a Chan'],
      ['file', '"file" is not a Chan'],
      [{}, '{} is not a Chan'],
      [new MemoryFile(16), '[MemoryFile] is not a Chan'],
      [w.closed, 'the handle on memfile(32768) is closed'],
    ] as const) {
      await refuses(
        w,
        () => w.a.mmap(B, 0x1000, c as never, 0, true),
        'BadRequest',
        `mmap bad chan: ${text}`,
      );
    }
    for (const [f, text] of [
      [null, 'null'],
      [undefined, 'undefined'],
      [1, '1'],
      ['true', '"true"'],
    ] as const) {
      await refuses(
        w,
        () => w.a.mmap(B, 0x1000, z, 0, f as never),
        'BadRequest',
        `anonymous ${text} is not a boolean`,
      );
    }
    for (const [p, text] of [
      [null, 'null'],
      [-1, '-1'],
      [8, '8'],
      [1.5, '1.5'],
      [Number.NaN, 'NaN'],
      ['rw', '"rw"'],
    ] as const) {
      await refuses(w, () => w.a.mmap(B, 0x1000, z, 0, true, p as never), 'BadRequest', `protection ${text}`);
    }
    await refuses(w, () => w.a.mmap(V + 0x3000, 0x2000, z, 0, true), 'Conflict', 'mmap segment overlap');
    await z.close();
  });

  it('munmap, protect, fault, read, write', async () => {
    const w = await world();
    for (const [v, text] of NOT_UINT) {
      await refuses(w, () => w.a.munmap(v as number, 0x1000), 'BadRequest', `address ${text} is not`);
      await refuses(w, () => w.a.munmap(V, v as number), 'BadRequest', `length ${text} is not`);
      await refuses(
        w,
        () => w.a.protect(v as number, 0x1000, PROT_READ),
        'BadRequest',
        `address ${text} is not`,
      );
      await refuses(w, () => w.a.protect(V, v as number, PROT_READ), 'BadRequest', `length ${text} is not`);
      await refuses(w, () => w.a.fault(v as number), 'BadRequest', `fault: address ${text} is not`);
      await refuses(
        w,
        () => w.a.read(new Uint8Array(4), v as number),
        'BadRequest',
        `vm read: offset ${text}`,
      );
      await refuses(
        w,
        () => w.a.write(new Uint8Array(4), v as number),
        'BadRequest',
        `vm write: offset ${text}`,
      );
    }
    await refuses(w, () => w.a.munmap(V, 0), 'BadRequest', 'mmap invalid va range: length 0 at 0x100000');
    await refuses(w, () => w.a.munmap(USER_TOP - 0x1000, 0x2000), 'BadRequest', 'canonical hole');
    await refuses(w, () => w.a.munmap(USER_TOP + 0x1000, 0x1000), 'BadRequest', '0xffff800000001000');
    await refuses(w, () => w.a.protect(V, 0, PROT_READ), 'BadRequest', 'protect invalid va range: length 0');
    await refuses(w, () => w.a.protect(V + 8, 0x1000, PROT_READ), 'BadRequest', 'address 0x100008');
    await refuses(w, () => w.a.protect(V, 0x800, PROT_READ), 'BadRequest', 'length 0x800');
    await refuses(w, () => w.a.protect(USER_TOP - 0x1000, 0x2000, PROT_READ), 'BadRequest', 'canonical hole');
    for (const [p, text] of [
      [undefined, 'undefined'],
      [null, 'null'],
      [8, '8'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
      ['r', '"r"'],
    ] as const) {
      await refuses(
        w,
        () => w.a.protect(V, 0x1000, p as never),
        'BadRequest',
        `protect bad prot: protection ${text}`,
      );
    }
    await refuses(w, () => w.a.protect(V + 0x3000, 0x2000, PROT_READ), 'NotFound', '0x104000');
    await refuses(
      w,
      () => w.a.fault(2 ** 48),
      'BadRequest',
      'address 0x1000000000000 is not a virtual address',
    );
    await refuses(w, () => w.a.fault(USER_TOP), 'SegmentFault', 'no segment holds 0xffff800000000000');
    for (const [acc, text] of [
      [null, 'null'],
      ['READ', '"READ"'],
      [1, '1'],
      [{}, '{}'],
    ] as const) {
      await refuses(w, () => w.a.fault(V, acc as never), 'BadRequest', `access ${text} is not`);
    }
    for (const [buf, text] of [
      [null, 'null'],
      [undefined, 'undefined'],
      ['abc', '"abc"'],
      [[1, 2], '[1,2]'],
      [new Uint16Array(2), 'Uint16Array(2)'],
      [new ArrayBuffer(4), 'ArrayBuffer(4)'],
    ] as const) {
      await refuses(
        w,
        () => w.a.read(buf as never, V),
        'BadRequest',
        `vm read: buffer ${text} is not a Uint8Array`,
      );
      await refuses(
        w,
        () => w.a.write(buf as never, V),
        'BadRequest',
        `vm write: buffer ${text} is not a Uint8Array`,
      );
    }
    await refuses(w, () => w.a.read(new Uint8Array(8), USER_TOP - 4), 'BadRequest', 'canonical hole');
    await refuses(w, () => w.a.write(new Uint8Array(8), USER_TOP - 4), 'BadRequest', 'canonical hole');
    // a read-only segment after a writable one: no byte of the range is written, no page faulted in
    await w.a.protect(V + 0x2000, 0x2000, PROT_READ);
    await refuses(
      w,
      () => w.a.write(new Uint8Array(0x2000).fill(9), V + 0x1800),
      'Forbidden',
      'vm write: 0x102000 is in a r-- segment',
    );
    await refuses(
      w,
      () => w.a.read(new Uint8Array(0x10), V + 0x3ff8),
      'Forbidden',
      'vm read: 0x104000 in [0x103ff8, 0x104008) is in no segment',
    );
  });

  it('checkOverlap, create, the context, the tlb hook, and a freed space', async () => {
    const w = await world();
    for (const [r, text] of [
      [null, 'range null is not a { start, end } object'],
      [undefined, 'range undefined is not'],
      ['0-1', 'range "0-1" is not'],
      [{ start: Number.NaN, end: 0x1000 }, 'range start NaN is not an integer in [0, 2^48]'],
      [{ start: 0, end: '4096' }, 'range end "4096" is not'],
      [{ start: -1, end: 0x1000 }, 'range start -1'],
      [{ start: 0.5, end: 0x1000 }, 'range start 0.5'],
      [{ start: 0, end: 2 ** 48 + 0x1000 }, 'range end 0x1000000001000'],
      [{ start: 0, end: Number.POSITIVE_INFINITY }, 'range end Infinity'],
      [{ start: 0x5000, end: 0x1000 }, 'range [0x5000, 0x1000) ends before it starts'],
      [
        { start: USER_TOP - 0x1000, end: USER_TOP + 0x1000 },
        'range [0x7ffffffff000, 0xffff800000001000) crosses the canonical hole at 0x800000000000',
      ],
    ] as const) {
      await refuses(w, () => w.a.checkOverlap(r as never), 'BadRequest', `check overlap: ${text}`);
    }
    await refuses(
      w,
      () => w.a.checkOverlap({ start: V + 0x3fff, end: V + 0x4001 }),
      'Conflict',
      '[0x100000, 0x104000)',
    );
    expect(() => w.a.checkOverlap({ start: V + 0x4000, end: V + 0x8000 })).not.toThrow();
    expect(() => w.a.checkOverlap({ start: USER_TOP, end: 2 ** 48 })).not.toThrow(); // the higher half
    expect(() => w.a.checkOverlap({ start: V + 0x9000, end: V + 0x9000 })).not.toThrow(); // empty

    for (const [c, text] of [
      [null, 'null'],
      [undefined, 'undefined'],
      [{}, '{}'],
      ['ctx', '"ctx"'],
    ] as const) {
      await refuses(
        w,
        () => VmSpace.create(c as never),
        'BadRequest',
        `vm space: context ${text} is not a VmContext`,
      );
    }
    const mem = new PhysicalMemory(1 << 20);
    const frames = new BitmapFrameAllocator(mem);
    for (const [o, text] of [
      [null, 'options null is not'],
      [7, 'options 7 is not'],
      [{ mem: null, frames }, 'mem null is not a PhysicalMemory'],
      [{ mem: new Uint8Array(64), frames }, 'mem Uint8Array(64) is not a PhysicalMemory'],
      [{ mem, frames: {} }, 'frames {} is not a FrameAllocator'],
      [{ mem, frames: mem }, 'frames [PhysicalMemory] is not a FrameAllocator'],
    ] as const) {
      await refuses(w, () => new VmContext(o as never), 'BadRequest', `vm context: ${text}`);
    }
    for (const [t, text] of [
      [null, 'null'],
      [5, '5'],
      [{}, '{}'],
      [{ invalidatePage() {} }, '{}'],
    ] as const) {
      await refuses(
        w,
        () => {
          w.a.tlb = t as never;
        },
        'BadRequest',
        `vm space tlb: ${text} is not undefined or`,
      );
    }
    expect(w.a.tlb).toBeUndefined();
    const hook = { invalidatePage() {}, invalidateAll() {} };
    w.b.tlb = hook;
    expect(w.b.tlb).toBe(hook);
    w.b.tlb = undefined;

    const gone = VmSpace.create(w.ctx);
    await gone.free();
    const z = openChan(new ZeroDevice());
    for (const op of [
      () => gone.mmap(B, 0x1000, z, 0, true),
      () => gone.munmap(B, 0x1000),
      () => gone.protect(B, 0x1000, PROT_RW),
      () => gone.fork(),
      () => gone.fault(B),
      () => gone.read(new Uint8Array(1), B),
      () => gone.write(new Uint8Array(1), B),
    ]) {
      await refuses(w, op, 'Gone', 'vm space freed');
    }
    expect(await gone.free()).toBe(false); // twice: nothing
    expect(gone.segments()).toEqual([]);
    expect([gone.residentPages(), gone.tableFrames(), gone.residentPageList().length]).toEqual([0, 0, 0]);
  });
});

describe('bad input to channels, devices, the clock and the helpers', () => {
  it('names the value and changes nothing', async () => {
    const w = await world();
    for (const [d, text] of [
      [null, 'null'],
      [undefined, 'undefined'],
      [{}, '{}'],
      ['dev', '"dev"'],
      [{ read() {} }, '{}'],
    ] as const) {
      await refuses(w, () => openChan(d as never), 'BadRequest', `open chan: ${text} is not a ChanDevice`);
    }
    const c = w.chan.dup();
    for (const [v, text] of NOT_UINT) {
      await refuses(
        w,
        () => c.read(new Uint8Array(1), v as number),
        'BadRequest',
        `chan read: offset ${text}`,
      );
      await refuses(
        w,
        () => c.write(new Uint8Array(1), v as number),
        'BadRequest',
        `chan write: offset ${text}`,
      );
    }
    await refuses(w, () => c.read('x' as never, 0), 'BadRequest', 'chan read: buffer "x"');
    await c.close();
    await refuses(w, () => c.read(new Uint8Array(1), 0), 'Gone', 'read on a closed handle on memfile(32768)');
    await refuses(w, () => c.write(new Uint8Array(1), 0), 'Gone', 'write on a closed handle');
    await refuses(w, () => c.dup(), 'Gone', 'dup of a closed handle');

    const f = new MemoryFile(new Uint8Array([1, 2, 3]));
    for (const [v, text] of NOT_UINT) {
      await refuses(
        w,
        () => f.read(new Uint8Array(1), v as number),
        'BadRequest',
        `memfile read: offset ${text}`,
      );
      await refuses(
        w,
        () => f.write(new Uint8Array(1), v as number),
        'BadRequest',
        `memfile write: offset ${text}`,
      );
    }
    // a device call with bad arguments rejects (it does not throw synchronously)
    const p = f.read(null as never, 0);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toThrow(/memfile read: buffer null/);
    expect([f.reads, f.writes, [...f.bytes()]]).toEqual([0, 0, [1, 2, 3]]);
    await refuses(
      w,
      () => new ZeroDevice().read(new Uint8Array(1), -1),
      'BadRequest',
      'zero read: offset -1',
    );
    await refuses(w, () => new MemoryFile(16, Number.NaN), 'BadRequest', 'memfile: maxSize NaN');
    await refuses(w, () => new MemoryFile(16, -1), 'BadRequest', 'memfile: maxSize -1');
    await refuses(
      w,
      () => new MemoryFile(32, 16),
      'BadRequest',
      'memfile: size 32 is not an integer in [0, 16]',
    );
    await refuses(w, () => new MemoryFile(null as never), 'BadRequest', 'memfile: contents null');

    const clock = new ManualClock();
    await refuses(w, () => new SlowDevice(null as never, clock), 'BadRequest', 'slow device: inner null');
    await refuses(
      w,
      () => new SlowDevice(f, {} as never),
      'BadRequest',
      'slow device: clock {} is not a Clock',
    );
    await refuses(
      w,
      () => new SlowDevice(f, clock, null as never),
      'BadRequest',
      'slow device: options null',
    );
    for (const [v, text] of [
      [Number.NaN, 'NaN'],
      [-1, '-1'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
      ['5', '"5"'],
    ] as const) {
      await refuses(
        w,
        () => new SlowDevice(f, clock, { readLatency: v as never }),
        'BadRequest',
        `read latency ${text}`,
      );
      await refuses(
        w,
        () => new SlowDevice(f, clock, { writeLatency: v as never }),
        'BadRequest',
        `write latency ${text}`,
      );
      await refuses(w, () => clock.sleep(v as never), 'BadRequest', `clock sleep: delay ${text}`);
      await refuses(w, () => clock.advance(v as never), 'BadRequest', `clock advance: delay ${text}`);
    }
    await refuses(w, () => clock.runAll(-1), 'BadRequest', 'clock run: limit -1');
    await refuses(w, () => clock.runAll(0.5), 'BadRequest', 'clock run: limit 0.5');
    expect([clock.now(), clock.pending]).toEqual([0, 0]);

    for (const [v, text] of [
      [8, '8'],
      [-1, '-1'],
      [null, 'null'],
      ['rw', '"rw"'],
    ] as const) {
      await refuses(w, () => formatProt(v as never), 'BadRequest', `format prot: protection ${text}`);
    }
    expect([formatProt(0), formatProt(5), formatProt(7)]).toEqual(['---', 'r-x', 'rwx']);
    await refuses(w, () => new KcoreError('Oops' as never, 'x', 'y'), 'BadRequest', 'kind "Oops"');
    await refuses(w, () => new FailingDevice(null as never), 'BadRequest', 'failing device: inner null');
    await refuses(w, () => new FailingDevice(f, 3 as never), 'BadRequest', 'failing device: options 3');
  });
});
