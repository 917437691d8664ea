import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import { ACCESS_USER, Mmu } from '@vmkit/paging-x86_64';
import { FailingFrameAllocator } from '@vmkit/paging-x86_64/testing';
import { FaultInjector } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { env, patternByte, patternFile, peek, rejects, snapshot } from '../test/env.js';
import {
  type Chan,
  type ChanDevice,
  type KcoreErrorKind,
  ManualClock,
  MemoryFile,
  openChan,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_RW,
  SlowDevice,
  USER_TOP,
  VmContext,
  VmSpace,
  ZeroDevice,
} from './index.js';
import { FailingDevice } from './testing/index.js';

const V = 0x10_0000; // a base address for the tests

function frameOf(s: VmSpace, va: number): number | undefined {
  return s.mapper.translate(va as VirtAddr)?.pa;
}

describe('mmap: validation in the documented order, nothing changes on error', () => {
  it('rejects bad ranges, misalignment, bad channels and overlap with the seed messages', async () => {
    const { ctx, frames } = env();
    const { chan } = patternFile(4);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x2000, chan, 0, true);
    const before = snapshot(s, frames);
    await rejects(s.mmap(V, 0, chan, 0, true), 'BadRequest', 'mmap invalid va range: length 0');
    await rejects(s.mmap(V + 1, 0, chan, 0, true), 'BadRequest', 'mmap invalid va range'); // range first
    await rejects(s.mmap(USER_TOP - 0x1000, 0x2000, chan, 0, true), 'BadRequest', 'canonical hole');
    await rejects(s.mmap(USER_TOP, 0x1000, chan, 0, true), 'BadRequest', 'not in the user half');
    await rejects(
      s.mmap(0x4000_0800, 0x1000, chan, 0, true),
      'BadRequest',
      'mmap va misaligned: address 0x40000800',
    );
    await rejects(
      s.mmap(0x4000_0000, 0x1800, chan, 0, true),
      'BadRequest',
      'mmap va misaligned: length 0x1800',
    );
    await rejects(
      s.mmap(0x4000_0000, 0x1000, chan, 0x10, true),
      'BadRequest',
      'mmap va misaligned: offset 0x10 is not a multiple of 4096',
    );
    await rejects(s.mmap(V + 0x1000, 0x1001, chan, 0, true), 'BadRequest', 'misaligned'); // misaligned before overlap
    for (const [bad, text] of [
      [Number.NaN, 'NaN'],
      [-4096, '-4096'],
      [0.5, '0.5'],
      [2 ** 53, '0x20000000000000'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
    ] as const) {
      await rejects(s.mmap(bad, 0x1000, chan, 0, true), 'BadRequest', `address ${text} is not an integer`);
      await rejects(s.mmap(0x4000_0000, bad, chan, 0, true), 'BadRequest', 'length');
      await rejects(s.mmap(0x4000_0000, 0x1000, chan, bad, true), 'BadRequest', 'offset');
    }
    await rejects(
      s.mmap('0x1000' as unknown as number, 0x1000, chan, 0, true),
      'BadRequest',
      'address "0x1000"',
    );
    await rejects(s.mmap(null as unknown as number, 0x1000, chan, 0, true), 'BadRequest', 'address null');
    await rejects(s.mmap(0x4000_0000, 0x1000, {} as never, 0, true), 'BadRequest', 'mmap bad chan');
    const closed = chan.dup();
    await closed.close();
    await rejects(s.mmap(0x4000_0000, 0x1000, closed, 0, true), 'BadRequest', 'closed');
    await rejects(s.mmap(0x4000_0000, 0x1000, chan, 0, 1 as never), 'BadRequest', 'anonymous 1');
    await rejects(s.mmap(0x4000_0000, 0x1000, chan, 0, true, 8), 'BadRequest', 'protection 8');
    const e = await rejects(s.mmap(V + 0x1000, 0x2000, chan, 0, true), 'Conflict', 'mmap segment overlap');
    expect(e.code).toBe('E_CONFLICT');
    expect(e.message).toContain('[0x101000, 0x103000) overlaps the segment [0x100000, 0x102000)');
    expect(snapshot(s, frames)).toEqual(before);
    await s.free();
  });

  it('checkOverlap answers for ranges and refuses malformed ones', () => {
    const { ctx } = env();
    const s = VmSpace.create(ctx);
    expect(() => s.checkOverlap({ start: 0, end: 0x1000 })).not.toThrow();
    expect(() => s.checkOverlap({ start: 5, end: 1 })).toThrow(/BAD_REQUEST/);
  });

  it('maps nothing eagerly: a terabyte costs one segment', async () => {
    const { ctx, frames } = env();
    const s = VmSpace.create(ctx);
    const used = frames.totalFrames - frames.freeFrames;
    await s.mmap(0x100_0000_0000, 2 ** 40, openChan(new ZeroDevice()), 0, true);
    expect(frames.totalFrames - frames.freeFrames).toBe(used);
    expect(s.residentPages()).toBe(0);
    expect(s.formatMaps()).toBe('10000000000-20000000000 rw-p 00000000 zero');
    await s.fault(0x180_0000_0123);
    expect(s.residentPages()).toBe(1);
    await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});

describe('fault: the three cases', () => {
  it('(3) an unfetched private page is read at its own channel offset', async () => {
    const { ctx } = env();
    const { chan } = patternFile(8);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x3000, chan, 0x4000, true); // pages 4, 5, 6 of the file
    for (let k = 0; k < 3; k++) {
      await s.fault(V + k * 0x1000 + 0x10);
      expect(await peek(s, V + k * 0x1000 + 100, 2)).toEqual([
        patternByte(4 + k, 100),
        patternByte(4 + k, 101),
      ]);
    }
    const t = s.mapper.translate((V + 0x1000) as VirtAddr)!;
    expect(t.flags.writable).toBe(true);
    expect(t.flags.user).toBe(true);
    expect(t.flags.executable).toBe(false);
    await s.free();
  });

  it('a short read is InternalError and nothing is left behind', async () => {
    const { ctx, frames } = env();
    const file = new MemoryFile(0x1800); // the second page is short
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x2000, openChan(file), 0, true);
    const before = snapshot(s, frames);
    await rejects(s.fault(V + 0x1000), 'InternalError', 'read page from chan failed: short read of page 1');
    expect(snapshot(s, frames)).toEqual(before);
    await s.mmap(V + 0x4000, 0x2000, openChan(file), 0, false); // shared: the cache keeps nothing
    await rejects(s.fault(V + 0x5000), 'InternalError', 'short read');
    expect(ctx.cacheStats().cached).toBe(0);
    await s.fault(V + 0x4000);
    await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('(1) shared pages: one physical page per channel page across spaces; writes reach the channel at munmap', async () => {
    const { ctx, frames } = env();
    const { file, chan } = patternFile(4);
    const a = VmSpace.create(ctx);
    const b = VmSpace.create(ctx);
    await a.mmap(V, 0x4000, chan, 0, false);
    await b.mmap(0x20_0000, 0x2000, chan, 0x2000, false); // file pages 2, 3
    await a.fault(V + 0x2000);
    await b.fault(0x20_0000);
    expect(frameOf(a, V + 0x2000)).toBe(frameOf(b, 0x20_0000));
    expect(ctx.cacheStats().loads).toBe(1);
    await a.write(new Uint8Array([0xaa, 0xbb]), V + 0x2000);
    expect(await peek(b, 0x20_0000, 2)).toEqual([0xaa, 0xbb]);
    await b.write(new Uint8Array([0xcc]), 0x20_1000);
    expect(await peek(a, V + 0x3000, 1)).toEqual([0xcc]);
    expect(file.bytes()[0x2000]).toBe(patternByte(2, 0)); // not yet written back
    expect(await a.munmap(V, 0x4000)).toBe(false);
    expect(file.bytes()[0x2000]).toBe(patternByte(2, 0)); // b still maps it
    expect(await b.munmap(0x20_0000, 0x2000)).toBe(false);
    expect([file.bytes()[0x2000], file.bytes()[0x2001], file.bytes()[0x3000]]).toEqual([0xaa, 0xbb, 0xcc]);
    expect(file.bytes()[0x1000]).toBe(patternByte(1, 0)); // clean pages are not written
    expect(ctx.cacheStats()).toMatchObject({ writeBacks: 2, cached: 0 });
    await a.free();
    await b.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('a private fault copies a channel page another mapping holds in the cache (its newest contents)', async () => {
    const { ctx } = env();
    const { chan, file } = patternFile(2);
    const a = VmSpace.create(ctx);
    const b = VmSpace.create(ctx);
    await a.mmap(V, 0x2000, chan, 0, false);
    await a.write(new Uint8Array([0xee]), V + 0x1000); // cached and dirty, not yet written back
    await b.mmap(V, 0x2000, chan, 0, true);
    expect(await peek(b, V + 0x1000, 2)).toEqual([0xee, patternByte(1, 1)]);
    expect(file.reads).toBe(1); // a's load of page 1: b's copy came from the cache
    await a.write(new Uint8Array([0xdd]), V + 0x1000); // b's private copy no longer follows
    expect(await peek(b, V + 0x1000, 1)).toEqual([0xee]);
    await a.free();
    await b.free();
  });

  it('a private mapping never writes back', async () => {
    const { ctx } = env();
    const { file, chan, bytes } = patternFile(2);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x2000, chan, 0, true);
    await s.write(new Uint8Array(0x2000).fill(9), V);
    expect(await s.munmap(V, 0x2000)).toBe(false);
    expect(file.bytes()).toEqual(bytes);
    expect(file.writes).toBe(0);
    await s.free();
  });

  it('outside every segment is SegmentFault; forbidden accesses are Forbidden', async () => {
    const { ctx, frames } = env();
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true, PROT_READ);
    await rejects(s.fault(V + 0x1000), 'SegmentFault', 'no segment holds 0x101000');
    await rejects(s.fault(USER_TOP + 5), 'SegmentFault');
    await rejects(s.fault(-1), 'BadRequest', 'address -1');
    await rejects(s.fault(V, 'poke' as never), 'BadRequest', 'access "poke"');
    await rejects(s.fault(V, 'write'), 'Forbidden', 'write at 0x100000 in a r-- segment');
    await rejects(s.fault(V, 'execute'), 'Forbidden');
    expect(s.residentPages()).toBe(0);
    await s.fault(V); // default for a read-only segment: read
    expect(s.mapper.translate(V as VirtAddr)!.flags.writable).toBe(false);
    await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});

describe('fork and copy-on-write', () => {
  it('parent and child each see their own writes; unwritten pages stay shared', async () => {
    const { ctx, frames } = env();
    const { chan } = patternFile(4);
    const p = VmSpace.create(ctx);
    await p.mmap(V, 0x4000, chan, 0, true);
    await p.write(new Uint8Array([1]), V);
    await p.fault(V + 0x1000);
    await p.fault(V + 0x2000);
    const used = frames.freeFrames;
    const c = await p.fork();
    expect(frameOf(c, V)).toBe(frameOf(p, V));
    expect(p.mapper.translate(V as VirtAddr)!.flags.writable).toBe(false);
    await c.write(new Uint8Array([2]), V);
    await p.write(new Uint8Array([3]), V + 0x1000);
    expect(await peek(p, V, 1)).toEqual([1]);
    expect(await peek(c, V, 1)).toEqual([2]);
    expect(await peek(p, V + 0x1000, 1)).toEqual([3]);
    expect(await peek(c, V + 0x1000, 1)).toEqual([patternByte(1, 0)]);
    expect(frameOf(c, V + 0x2000)).toBe(frameOf(p, V + 0x2000)); // never written: still shared
    expect(frameOf(c, V)).not.toBe(frameOf(p, V));
    // the unfetched page 3 is fetched independently
    expect(await peek(c, V + 0x3000, 1)).toEqual([patternByte(3, 0)]);
    expect(used - frames.freeFrames).toBeGreaterThanOrEqual(3);
    await c.free();
    // the parent is the sole owner again: a write regains permission without a copy
    const f = frameOf(p, V + 0x2000);
    await p.write(new Uint8Array([4]), V + 0x2000);
    expect(frameOf(p, V + 0x2000)).toBe(f);
    await p.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('shared segments stay shared after fork', async () => {
    const { ctx, frames } = env();
    const { file, chan } = patternFile(2);
    const p = VmSpace.create(ctx);
    await p.mmap(V, 0x2000, chan, 0, false);
    await p.write(new Uint8Array([7]), V);
    const c = await p.fork();
    expect(c.residentPages()).toBe(0); // the child faults into the cache
    expect(await peek(c, V, 1)).toEqual([7]);
    await c.write(new Uint8Array([8]), V + 1);
    expect(await peek(p, V, 2)).toEqual([7, 8]);
    expect(frameOf(c, V)).toBe(frameOf(p, V));
    await p.free();
    await c.free();
    expect([...file.bytes().subarray(0, 2)]).toEqual([7, 8]);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('a fork of a fork: three owners, each copy on its own write', async () => {
    const { ctx, frames } = env();
    const a = VmSpace.create(ctx);
    await a.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true);
    await a.write(new Uint8Array([1]), V);
    const b = await a.fork();
    const c = await b.fork();
    expect(frames.refCount(frameOf(a, V) as PhysAddr)).toBe(3);
    await b.write(new Uint8Array([2]), V);
    expect(frames.refCount(frameOf(a, V) as PhysAddr)).toBe(2);
    expect([await peek(a, V, 1), await peek(b, V, 1), await peek(c, V, 1)]).toEqual([[1], [2], [1]]);
    for (const s of [a, b, c]) await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('fork asks for a TLB flush of the parent; a COW break for one page', async () => {
    const { ctx } = env();
    const p = VmSpace.create(ctx);
    const log: string[] = [];
    p.tlb = {
      invalidatePage: (va) => log.push(`page ${va.toString(16)}`),
      invalidateAll: () => log.push('all'),
    };
    await p.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true);
    await p.write(new Uint8Array([1]), V);
    const c = await p.fork();
    await p.write(new Uint8Array([1]), V);
    expect(log).toEqual(['all', 'page 100000']);
    await c.free();
    await p.free();
  });
});

describe('munmap', () => {
  it('a hole splits a segment; the right part keeps reading at its own offsets', async () => {
    const { ctx } = env();
    const { chan, file } = patternFile(8);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x6000, chan, 0x1000, true); // file pages 1..6
    await s.fault(V + 0x2000);
    expect(await s.munmap(V + 0x2000, 0x2000)).toBe(false);
    expect(s.formatMaps()).toBe(
      [`00100000-00102000 rw-p 00001000 ${file.name}`, `00104000-00106000 rw-p 00005000 ${file.name}`].join(
        '\n',
      ),
    );
    expect(s.residentPages()).toBe(0);
    expect(await peek(s, V + 0x4000, 1)).toEqual([patternByte(5, 0)]);
    expect(await peek(s, V + 0x5fff, 1)).toEqual([patternByte(6, 0xfff)]);
    await rejects(s.read(new Uint8Array(1), V + 0x2000), 'Forbidden', 'vm read');
    await s.free();
  });

  it('partial overlaps shrink from the left (offset advances) and the right; unaligned ranges take whole pages', async () => {
    const { ctx } = env();
    const { chan } = patternFile(16);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x4000, chan, 0, true);
    await s.mmap(V + 0x6000, 0x4000, chan, 0x8000, false);
    await s.munmap(V + 0x3fff, 0x3002); // touches pages 3 .. 7: shrinks both
    expect(
      s.segments().map((x) => [x.start.toString(16), x.end.toString(16), x.offset.toString(16), x.shared]),
    ).toEqual([
      ['100000', '103000', '0', false],
      ['108000', '10a000', 'a000', true],
    ]);
    expect(await peek(s, V + 0x8000, 1)).toEqual([patternByte(10, 0)]);
    await s.free();
  });

  it('removes segments inside the range and closes their handles; gaps are fine', async () => {
    const { ctx } = env();
    const a = new MemoryFile(0x2000);
    const b = new MemoryFile(0x2000);
    const s = VmSpace.create(ctx);
    const ca = openChan(a);
    await s.mmap(V, 0x2000, ca, 0, false);
    await s.mmap(V + 0x8000, 0x2000, openChan(b), 0, true);
    await ca.close(); // the space keeps its own handle
    expect(a.released).toBe(false);
    await s.munmap(0, 0x20_0000);
    expect(s.segments()).toEqual([]);
    expect(a.released).toBe(true);
    expect(await s.munmap(0, 0x20_0000)).toBe(false); // nothing there: fine
    await rejects(s.munmap(V, 0), 'BadRequest', 'mmap invalid va range');
    await rejects(s.munmap(USER_TOP - 0x1000, 0x2000), 'BadRequest', 'canonical hole');
    await s.free();
  });

  it('reports a failed or short write-back by its return value; the unmapping completes', async () => {
    const { ctx, frames } = env();
    const dev = new FailingDevice(new MemoryFile(0x3000), { writeError: { shouldFail: () => true } });
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x3000, openChan(dev), 0, false);
    await s.write(new Uint8Array([1]), V);
    await s.fault(V + 0x1000, 'read'); // clean: no write-back
    expect(await s.munmap(V, 0x2000)).toBe(true);
    expect(s.segments().length).toBe(1);
    dev.options = { shortWrite: { shouldFail: () => true } };
    await s.write(new Uint8Array([1]), V + 0x2000);
    expect(await s.munmap(V, 0x3000)).toBe(true);
    expect(dev.writes).toBe(2);
    await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});

describe('read and write through the space', () => {
  it('cross pages and segments with unaligned offsets and lengths', async () => {
    const { ctx } = env();
    const { chan } = patternFile(4);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x2000, chan, 0, true);
    await s.mmap(V + 0x2000, 0x2000, openChan(new ZeroDevice()), 0, false);
    const data = new Uint8Array(0x2100).map((_, i) => (i * 13) & 255);
    await s.write(data, V + 0xf80);
    const back = new Uint8Array(0x2100);
    await s.read(back, V + 0xf80);
    expect(back).toEqual(data);
    expect(await peek(s, V + 0xf7f, 1)).toEqual([patternByte(0, 0xf7f)]);
  });

  it('stop at a gap with Forbidden before touching anything', async () => {
    const { ctx, frames } = env();
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true);
    await s.mmap(V + 0x2000, 0x1000, openChan(new ZeroDevice()), 0, true);
    const before = snapshot(s, frames);
    await rejects(s.write(new Uint8Array(0x1800).fill(1), V + 0x800), 'Forbidden', 'vm write: 0x101000');
    await rejects(s.read(new Uint8Array(0x10), V - 8), 'Forbidden', 'vm read: 0xffff8');
    expect(snapshot(s, frames)).toEqual(before);
    await rejects(s.read(new Uint8Array(4), USER_TOP - 2), 'BadRequest', 'vm read');
    await rejects(s.write([1] as never, V), 'BadRequest', 'vm write');
    await s.read(new Uint8Array(0), V + 0x1000); // empty: nothing to do
    await s.free();
  });
});

describe('protect (extension)', () => {
  it('splits segments, makes pages read-only, parks them under PROT_NONE and restores them', async () => {
    const { ctx, frames } = env();
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x4000, openChan(new ZeroDevice()), 0, true);
    await s.write(new Uint8Array([5, 6]), V + 0x1000);
    await s.protect(V + 0x1000, 0x2000, PROT_READ);
    expect(
      s
        .formatMaps()
        .split('\n')
        .map((l) => l.slice(0, 22)),
    ).toEqual(['00100000-00101000 rw-p', '00101000-00103000 r--p', '00103000-00104000 rw-p']);
    expect(s.segments()[1]!.offset).toBe(0x1000);
    expect(s.mapper.translate((V + 0x1000) as VirtAddr)!.flags.writable).toBe(false);
    await rejects(s.write(new Uint8Array([1]), V + 0x1000), 'Forbidden', 'vm write');
    await s.protect(V + 0x1000, 0x1000, PROT_NONE);
    expect(s.mapper.translate((V + 0x1000) as VirtAddr)).toBeUndefined(); // not present
    expect(s.residentPages()).toBe(1); // but kept
    await rejects(s.read(new Uint8Array(1), V + 0x1000), 'Forbidden');
    await rejects(s.fault(V + 0x1000, 'read'), 'Forbidden');
    await s.protect(V + 0x1000, 0x1000, PROT_RW | PROT_EXEC);
    const t = s.mapper.translate((V + 0x1000) as VirtAddr)!;
    expect([t.flags.writable, t.flags.executable]).toEqual([true, true]);
    expect(await peek(s, V + 0x1000, 2)).toEqual([5, 6]);
    await rejects(s.protect(V + 0x3000, 0x2000, PROT_READ), 'NotFound', '0x104000');
    await rejects(s.protect(V + 1, 0x1000, PROT_READ), 'BadRequest', 'protect va misaligned');
    await rejects(s.protect(V, 0x1000, -1), 'BadRequest', 'protection -1');
    await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('a private page shared with a fork stays copy-on-write when made writable again', async () => {
    const { ctx } = env();
    const p = VmSpace.create(ctx);
    await p.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true);
    await p.write(new Uint8Array([1]), V);
    const c = await p.fork();
    await p.protect(V, 0x1000, PROT_READ);
    await p.protect(V, 0x1000, PROT_RW);
    expect(p.mapper.translate(V as VirtAddr)!.flags.writable).toBe(false);
    await p.write(new Uint8Array([2]), V);
    expect(await peek(c, V, 1)).toEqual([1]);
    await p.free();
    await c.free();
  });
});

describe('free and lifetime', () => {
  it('returns every frame and makes the space Gone', async () => {
    const { ctx, frames } = env();
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x10_0000, openChan(new ZeroDevice()), 0, true);
    for (let k = 0; k < 0x100; k += 7) await s.fault(V + k * 0x1000);
    expect(await s.free()).toBe(false);
    expect(await s.free()).toBe(false);
    expect(frames.freeFrames).toBe(frames.totalFrames);
    expect(s.freed).toBe(true);
    await rejects(s.fault(V), 'Gone');
    await rejects(s.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true), 'Gone');
    await rejects(s.fork(), 'Gone');
  });
});

describe('concurrency', () => {
  it('two faults on one shared page at once read it once; a slow channel does not block another space', async () => {
    const { ctx, frames } = env();
    const clock = new ManualClock();
    const file = new MemoryFile(0x2000);
    const slow = new SlowDevice(file, clock, { readLatency: 100, writeLatency: 50 });
    const a = VmSpace.create(ctx);
    const b = VmSpace.create(ctx);
    const other = VmSpace.create(ctx);
    await a.mmap(V, 0x2000, openChan(slow), 0, false);
    await b.mmap(V, 0x2000, openChan(slow), 0, false);
    await other.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true);
    const order: string[] = [];
    const fa = a.fault(V).then(() => order.push('a'));
    const fb = b.fault(V).then(() => order.push('b'));
    const fa2 = a.fault(V).then(() => order.push('a2')); // same space: runs after the first
    await other.write(new Uint8Array([1]), V); // not blocked by the pending slow reads
    order.push('other');
    expect(order).toEqual(['other']);
    await clock.advance(100);
    await Promise.all([fa, fb, fa2]);
    expect(order).toEqual(['other', 'a', 'b', 'a2']);
    expect(file.reads).toBe(1);
    expect(frameOf(a, V)).toBe(frameOf(b, V));
    await a.write(new Uint8Array([9]), V);
    const freeing = Promise.all([a.free(), b.free(), other.free()]);
    await clock.runAll();
    expect(await freeing).toEqual([false, false, false]);
    expect(file.bytes()[0]).toBe(9);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('when a shared load fails, the space waiting on it loads the page itself', async () => {
    const { ctx, frames } = env();
    const clock = new ManualClock();
    const file = new MemoryFile(0x1000);
    let first = true;
    const dev = new FailingDevice(new SlowDevice(file, clock, { readLatency: 10 }), {
      readError: {
        shouldFail: () => {
          const f = first;
          first = false;
          return f;
        },
      },
    });
    const a = VmSpace.create(ctx);
    const b = VmSpace.create(ctx);
    await a.mmap(V, 0x1000, openChan(dev), 0, false);
    await b.mmap(V, 0x1000, openChan(dev), 0, false);
    const fa = a.fault(V).then(
      () => 'ok',
      (e: Error) => e.message,
    );
    const fb = b.fault(V).then(() => 'ok');
    await clock.runAll();
    expect(await fa).toContain('E_INTERNAL: read page from chan failed');
    expect(await fb).toBe('ok');
    expect(a.residentPages()).toBe(0);
    expect(b.residentPages()).toBe(1);
    await a.free();
    await b.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('operations on one space run in call order', async () => {
    const { ctx } = env();
    const s = VmSpace.create(ctx);
    const z = openChan(new ZeroDevice());
    const steps = [
      s.mmap(V, 0x1000, z, 0, true),
      s.write(new Uint8Array([1]), V),
      s.munmap(V, 0x1000),
      s.mmap(V, 0x1000, z, 0, true),
    ];
    await Promise.all(steps);
    expect(await peek(s, V, 1)).toEqual([0]);
    await s.free();
  });
});

describe('an MMU runs over the root', () => {
  it('reads what write() stored and faults where nothing is resident', async () => {
    const { ctx, mem } = env();
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x2000, openChan(new ZeroDevice()), 0, true);
    await s.write(new Uint8Array([0x78, 0x56, 0x34, 0x12]), V + 0x10);
    const mmu = new Mmu(mem);
    mmu.writeCr3(s.root);
    expect(mmu.read32(V + 0x10, ACCESS_USER)).toBe(0x12345678);
    expect(mmu.read32(V + 0x1000, ACCESS_USER)).toBe(-1);
    await s.free();
  });
});

describe('many segments', () => {
  it('munmap, protect and read find exactly the touched segments among hundreds', async () => {
    const { ctx, frames } = env();
    const s = VmSpace.create(ctx);
    const file = new MemoryFile(0x1000);
    const c = openChan(file);
    for (let k = 0; k < 300; k++) await s.mmap(V + k * 0x3000, 0x1000, c, 0, k % 2 === 0);
    await c.close();
    expect(await s.munmap(V + 100 * 0x3000 + 0x800, 50 * 0x3000 - 0x1000)).toBe(false); // segments 100 .. 149
    expect(s.segments().length).toBe(250);
    expect(s.segments()[100]!.start).toBe(V + 150 * 0x3000);
    await rejects(s.protect(V + 0x1000, 0x1000, PROT_READ), 'NotFound', '0x101000');
    await s.protect(V + 200 * 0x3000, 0x1000, PROT_READ);
    expect(s.segments()[150]!.prot).toBe(PROT_READ);
    await rejects(s.read(new Uint8Array(0x3000), V + 10 * 0x3000), 'Forbidden', 'vm read: 0x11f000');
    expect(file.released).toBe(false);
    await s.free();
    expect(file.released).toBe(true);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('two concurrent faults on one private page read it once', async () => {
    const { ctx } = env();
    const clock = new ManualClock();
    const file = new MemoryFile(0x1000);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x1000, openChan(new SlowDevice(file, clock, { readLatency: 5 })), 0, true);
    const both = Promise.all([s.fault(V), s.fault(V + 8)]);
    await clock.runAll();
    await both;
    expect(file.reads).toBe(1);
    expect(s.residentPages()).toBe(1);
    await s.free();
  });
});

describe('argument checks of the other operations', () => {
  it('name the value and change nothing', async () => {
    const { ctx, frames } = env();
    expect(() => VmSpace.create({} as never)).toThrow(
      /E_BAD_REQUEST: vm space: context \{\} is not a VmContext/,
    );
    expect(() => new VmContext(null as never)).toThrow(
      /vm context: options null is not a \{ mem, frames \} object/,
    );
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x2000, openChan(new ZeroDevice()), 0, true);
    await s.fault(V);
    const before = snapshot(s, frames);
    await rejects(s.munmap(-1, 0x1000), 'BadRequest', 'address -1');
    await rejects(s.munmap(V, Number.NaN), 'BadRequest', 'length NaN');
    await rejects(s.munmap(V, 2 ** 47), 'BadRequest', 'canonical hole');
    await rejects(s.fault(2 ** 53), 'BadRequest', 'address 0x20000000000000');
    await rejects(s.fault(1.5), 'BadRequest', 'address 1.5');
    await rejects(s.protect(V, 0, PROT_READ), 'BadRequest', 'length 0');
    await rejects(s.protect(V, 0x1800, PROT_READ), 'BadRequest', 'length 0x1800');
    await rejects(s.protect(V, 0x1000, 'r' as never), 'BadRequest', 'protection "r"');
    await rejects(s.read(new Uint8Array(1), -5), 'BadRequest', 'offset -5');
    await rejects(s.write(new Uint8Array(1), 2 ** 53), 'BadRequest', 'vm write');
    expect(() => s.checkOverlap(null as never)).toThrow(/range null/);
    expect(snapshot(s, frames)).toEqual(before);
    await s.free();
  });
});

describe('a shared kernel half', () => {
  it('is left alone by fork, free and the walks', async () => {
    const { ctx, frames, mem } = env();
    const kernel = VmSpace.create(ctx);
    await kernel.mmap(V, 0x1000, openChan(new ZeroDevice()), 0, true); // just to own some tables
    const kTable = frames.allocFrame(); // a "kernel PDPT" linked at PML4 entry 511 of each space
    const link = (s: VmSpace) => {
      mem.write32(s.root + 511 * 8, (kTable | 7) >>> 0);
      mem.write32(s.root + 511 * 8 + 4, 0);
    };
    const s = VmSpace.create(ctx);
    link(s);
    await s.mmap(V, 0x2000, openChan(new ZeroDevice()), 0, true);
    await s.write(new Uint8Array([1]), V);
    const c = await s.fork();
    expect(mem.read32(c.root + 511 * 8)).toBe(0); // the child gets only the user half
    link(c);
    expect(s.residentPages()).toBe(1);
    await s.free();
    await c.free();
    await kernel.free();
    expect(frames.refCount(kTable)).toBe(1);
    frames.decRef(kTable);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});

describe('mmap validation order (README "The rules"): with two faults, the earlier one is reported', () => {
  it('for every pair of faults in different arguments', async () => {
    const B = 0x4000_0000;
    type Args = [number, number, unknown, number, unknown, unknown];
    interface Fault {
      arg: number; // which argument it changes (-1: the space's state)
      apply(a: Args, s: VmSpace, z: Chan): Promise<void> | void;
      kind: KcoreErrorKind;
      text: string;
    }
    const set =
      (i: number, v: unknown) =>
      (a: Args): void => {
        a[i] = v;
      };
    // In the documented order: types, then range, then alignment, then the offset's end, the channel,
    // the flag, the protection, a freed space, overlap.
    const faults: Fault[] = [
      { arg: 0, apply: set(0, Number.NaN), kind: 'BadRequest', text: 'mmap invalid va range: address NaN' },
      { arg: 1, apply: set(1, 'x'), kind: 'BadRequest', text: 'mmap invalid va range: length "x"' },
      { arg: 3, apply: set(3, -1), kind: 'BadRequest', text: 'mmap invalid offset: offset -1' },
      { arg: 1, apply: set(1, 0), kind: 'BadRequest', text: 'mmap invalid va range: length 0' },
      {
        arg: 0,
        apply: set(0, USER_TOP),
        kind: 'BadRequest',
        text: 'mmap invalid va range: 0xffff800000000000',
      },
      { arg: 0, apply: set(0, B + 0x800), kind: 'BadRequest', text: 'mmap va misaligned: address' },
      { arg: 1, apply: set(1, 0x1800), kind: 'BadRequest', text: 'mmap va misaligned: length' },
      { arg: 3, apply: set(3, 0x10), kind: 'BadRequest', text: 'mmap va misaligned: offset' },
      {
        arg: 3,
        apply: set(3, 2 ** 53 - 0x1000),
        kind: 'BadRequest',
        text: 'mmap invalid offset: offset 0x1f',
      },
      {
        arg: 2,
        apply: async (a, _s, z) => {
          const c = z.dup();
          await c.close();
          a[2] = c;
        },
        kind: 'BadRequest',
        text: 'mmap bad chan',
      },
      { arg: 4, apply: set(4, 'yes'), kind: 'BadRequest', text: 'mmap bad flag' },
      { arg: 5, apply: set(5, 9), kind: 'BadRequest', text: 'mmap bad prot' },
      { arg: -1, apply: async (_a, s) => void (await s.free()), kind: 'Gone', text: 'vm space freed' },
      {
        arg: -2,
        apply: (_a, s, z) => s.mmap(B - 0x1000, 0x2000, z, 0, true),
        kind: 'Conflict',
        text: 'mmap segment overlap',
      },
    ];
    const { ctx } = env();
    const z = openChan(new ZeroDevice());
    let pairs = 0;
    for (let i = 0; i < faults.length; i++) {
      for (let j = i; j < faults.length; j++) {
        const [fi, fj] = [faults[i]!, faults[j]!];
        if (i !== j && fi.arg === fj.arg) continue;
        const s = VmSpace.create(ctx);
        const args: Args = [B, 0x1000, z, 0, true, PROT_RW];
        // state faults first (the overlapping mapping before a free), then the argument faults
        for (const f of (i === j ? [fi] : [fj, fi]).sort((x, y) => x.arg - y.arg)) await f.apply(args, s, z);
        const e = await rejects(s.mmap(...(args as Parameters<VmSpace['mmap']>)), fi.kind, fi.text);
        expect(e.kind).toBe(fi.kind);
        if (!s.freed) await s.free();
        pairs++;
      }
    }
    expect(pairs).toBeGreaterThan(80);
  });
});

describe('after fault returns, the page is readable and writable (all three cases)', () => {
  it('unfetched private, copy-on-write (shared and sole owner) and shared pages', async () => {
    const { ctx, frames } = env();
    const { chan } = patternFile(4);
    const p = VmSpace.create(ctx);
    await p.mmap(V, 0x2000, chan, 0, true);
    await p.mmap(V + 0x4000, 0x1000, chan, 0x3000, false);
    const rw = (s: VmSpace, va: number) => {
      const t = s.mapper.translate(va as VirtAddr);
      return t === undefined ? 'absent' : `${t.flags.writable ? 'rw' : 'r'}`;
    };
    await p.fault(V + 5); // (3) unfetched private
    await p.fault(V + 0x1000, 'read'); // read only: stays read-write in a writable private segment
    expect([rw(p, V), rw(p, V + 0x1000)]).toEqual(['rw', 'rw']);
    const c = await p.fork();
    expect([rw(p, V), rw(c, V), rw(c, V + 0x1000)]).toEqual(['r', 'r', 'r']);
    const shared = frameOf(p, V);
    expect(frames.refCount(shared as PhysAddr)).toBe(2);
    await c.fault(V + 9); // (2) copy-on-write, shared with the parent: copied
    expect(rw(c, V)).toBe('rw');
    expect(frameOf(c, V)).not.toBe(shared);
    expect(await peek(c, V, 3)).toEqual([patternByte(0, 0), patternByte(0, 1), patternByte(0, 2)]);
    expect(frames.refCount(shared as PhysAddr)).toBe(1);
    await p.fault(V); // (2) copy-on-write, now the sole owner: no copy
    expect([rw(p, V), frameOf(p, V)]).toEqual(['rw', shared]);
    await c.fault(V + 0x4000); // (1) shared: the cached page, read-write
    await p.fault(V + 0x4000);
    expect([rw(c, V + 0x4000), rw(p, V + 0x4000)]).toEqual(['rw', 'rw']);
    expect(frameOf(c, V + 0x4000)).toBe(frameOf(p, V + 0x4000));
    expect(frames.refCount(frameOf(p, V + 0x4000) as PhysAddr)).toBe(3); // the cache + two entries
    await c.free();
    await p.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});

describe('fork failing part-way', () => {
  it('at each of its allocations: OutOfMemory, the child freed, the parent exactly as it was', async () => {
    let alloc: FailingFrameAllocator | undefined;
    const { ctx, frames } = env(8, (inner) => {
      alloc = new FailingFrameAllocator(inner);
      return alloc;
    });
    const priv = patternFile(8, 1);
    const sh = patternFile(2, 2);
    const p = VmSpace.create(ctx);
    const log: string[] = [];
    p.tlb = { invalidatePage: (va) => log.push(`page ${va}`), invalidateAll: () => log.push('all') };
    await p.mmap(V, 0x8000, priv.chan, 0, true);
    await p.mmap(0x4000_0000, 0x2000, sh.chan, 0, false);
    await p.mmap(0x80_0000_0000, 0x1000, priv.chan, 0, true); // another PML4 entry: more tables
    for (const va of [V, V + 0x3000, V + 0x7000, 0x80_0000_0000]) await p.write(new Uint8Array([7]), va);
    await p.fault(0x4000_0000);
    const state = () =>
      JSON.stringify([
        p.formatMaps(),
        p.mapper.leaves().map((l) => [l.va, l.lo, l.hi]),
        frames.freeFrames,
        ctx.cacheStats(),
        [priv.file.released, sh.file.released, priv.file.reads, sh.file.reads],
      ]);
    const before = state();
    const counter = new FaultInjector();
    alloc!.failWhen = counter;
    const probe = await p.fork();
    const allocs = counter.count;
    alloc!.failWhen = undefined;
    await probe.free();
    // the probe fork downgraded the parent's entries: undo that by breaking COW (sole owner again)
    for (const va of [V, V + 0x3000, V + 0x7000, 0x80_0000_0000]) await p.fault(va, 'write');
    const after = state();
    expect(allocs).toBeGreaterThanOrEqual(6); // the root and the tables of two PML4 entries
    for (let k = 1; k <= allocs; k++) {
      log.length = 0;
      alloc!.failWhen = new FaultInjector([k]);
      const e = await rejects(p.fork(), 'OutOfMemory', 'no frame left for');
      expect(e.code).toBe('E_OUT_OF_MEMORY');
      alloc!.failWhen = undefined;
      expect(state()).toBe(after);
      expect(log).toEqual([]); // nothing was downgraded, so nothing to flush
    }
    expect(after.replace(/"free":\d+/, '')).toBe(before.replace(/"free":\d+/, ''));
    const c = await p.fork();
    expect(await peek(c, V + 0x3000, 2)).toEqual([7, patternByte(3, 1, 1)]);
    await c.free();
    await p.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
    expect(priv.file.released).toBe(false); // the test's own handle is still open
  });
});

describe('munmap is atomic', () => {
  it('fails before changing anything when a split cannot get a handle', async () => {
    const { ctx, frames } = env();
    const { chan } = patternFile(8);
    const s = VmSpace.create(ctx);
    await s.mmap(V, 0x8000, chan, 0, true);
    await s.write(new Uint8Array([1]), V + 0x4000);
    await s.segments()[0]!.chan.close(); // misuse: the space's own handle
    const before = snapshot(s, frames);
    const leaves = JSON.stringify(s.residentPageList());
    await rejects(s.munmap(V + 0x2000, 0x1000), 'Gone', 'dup of a closed handle'); // a hole: needs a split
    expect(snapshot(s, frames)).toEqual(before);
    expect(JSON.stringify(s.residentPageList())).toBe(leaves);
    expect(await s.munmap(V, 0x8000)).toBe(false); // whole: no split needed, completes
    expect(s.segments()).toEqual([]);
    await s.free();
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });

  it('completes when a device fails to release, and reports it by the return value', async () => {
    const { ctx, frames } = env();
    const file = new MemoryFile(0x2000);
    const dev: ChanDevice = {
      name: 'bad-release',
      read: (b, o) => file.read(b, o),
      write: (b, o) => file.write(b, o),
      release: () => Promise.reject(new Error('release failed')),
    };
    const s = VmSpace.create(ctx);
    const c = openChan(dev);
    await s.mmap(V, 0x2000, c, 0, false);
    await c.close();
    await s.write(new Uint8Array([5]), V);
    expect(await s.munmap(V, 0x2000)).toBe(true);
    expect(s.segments()).toEqual([]);
    expect(file.bytes()[0]).toBe(5); // written back before the release
    expect(await s.free()).toBe(false);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});

describe('concurrency with a slow device on an injected clock', () => {
  it('private faults of two spaces overlap in simulated time; a slow write-back blocks only its own space', async () => {
    const { ctx, frames } = env();
    const clock = new ManualClock();
    const file = new MemoryFile(0x4000);
    const slow = new SlowDevice(file, clock, { readLatency: 100, writeLatency: 40 });
    const a = VmSpace.create(ctx);
    const b = VmSpace.create(ctx);
    await a.mmap(V, 0x4000, openChan(slow), 0, true);
    await b.mmap(V, 0x4000, openChan(slow), 0, true);
    const done: string[] = [];
    const fa = a.fault(V).then(() => done.push(`a@${clock.now()}`));
    const fb = b.fault(V + 0x1000).then(() => done.push(`b@${clock.now()}`));
    await clock.advance(100);
    await Promise.all([fa, fb]);
    expect(done).toEqual(['a@100', 'b@100']); // not 100 and 200: neither waited for the other
    expect(file.reads).toBe(2);

    // a shared dirty page of `a` is written back slowly; `b` keeps working meanwhile, `a` waits
    await a.mmap(
      0x4000_0000,
      0x1000,
      openChan(new SlowDevice(file, clock, { writeLatency: 40 })),
      0x3000,
      false,
    );
    const zero = openChan(new ZeroDevice());
    const loading = a.fault(0x4000_0000); // a shared page of a slow device with no read latency
    await clock.runAll();
    await loading;
    await a.write(new Uint8Array([0x42]), 0x4000_0000);
    const order: string[] = [];
    const unmapping = a.munmap(0x4000_0000, 0x1000).then((bad) => order.push(`a munmap ${bad}`));
    const aNext = a.fault(V + 0x2000, 'read').catch(() => undefined);
    const aAfter = aNext.then(() => order.push('a next'));
    await b.mmap(0x5000_0000, 0x1000, zero, 0, true);
    await b.write(new Uint8Array([1]), 0x5000_0000);
    order.push('b done');
    expect(order).toEqual(['b done']);
    await clock.advance(40);
    await unmapping;
    expect(order).toEqual(['b done', 'a munmap false']);
    expect(file.bytes()[0x3000]).toBe(0x42);
    await clock.runAll();
    await aAfter;
    expect(order).toEqual(['b done', 'a munmap false', 'a next']);
    const freeing = Promise.all([a.free(), b.free()]);
    await clock.runAll();
    expect(await freeing).toEqual([false, false]);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});
