import { VmkitError } from '@vmkit/addr';
import { describe, expect, it } from 'vitest';
import { rejects } from '../test/env.js';
import {
  isChan,
  isKcoreError,
  KcoreError,
  KcoreErrorCode,
  KcoreErrorKinds,
  ManualClock,
  MemoryFile,
  openChan,
  SlowDevice,
  ZeroDevice,
} from './index.js';

describe('channels', () => {
  it('a memory file reads short at its end and grows on write', async () => {
    const f = new MemoryFile(new Uint8Array([1, 2, 3]));
    const c = openChan(f);
    const b = new Uint8Array(8);
    expect(await c.read(b, 1)).toBe(2);
    expect([...b.subarray(0, 2)]).toEqual([2, 3]);
    expect(await c.read(b, 10)).toBe(0);
    expect(await c.write(new Uint8Array([9, 9]), 5)).toBe(2);
    expect([...f.bytes()]).toEqual([1, 2, 3, 0, 0, 9, 9]);
    const capped = new MemoryFile(4, 6);
    expect(await openChan(capped).write(new Uint8Array(4).fill(1), 4)).toBe(2); // short at maxSize
    expect(capped.size).toBe(6);
    expect(() => new MemoryFile(-1)).toThrow(/E_BAD_REQUEST: memfile: size -1/);
    expect(() => new MemoryFile('x' as never)).toThrow(/contents "x"/);
  });

  it('the zero device reads zeros in full and swallows writes', async () => {
    const c = openChan(new ZeroDevice());
    const b = new Uint8Array(16).fill(7);
    expect(await c.read(b, 12345)).toBe(16);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(await c.write(b, 0)).toBe(16);
  });

  it('handles: dup shares the device; the device is released when the last handle closes', async () => {
    const f = new MemoryFile(16);
    const a = openChan(f);
    const b = a.dup();
    expect(b.device).toBe(f);
    expect(isChan(b)).toBe(true);
    expect(isChan({ read() {} })).toBe(false);
    await a.close();
    await a.close(); // twice: no-op
    expect(f.released).toBe(false);
    await rejects(a.read(new Uint8Array(1), 0), 'Gone', 'chan closed');
    expect(() => a.dup()).toThrow(/E_GONE/);
    await b.close();
    expect(f.released).toBe(true);
  });

  it('handles check their arguments', async () => {
    const c = openChan(new MemoryFile(16));
    await rejects(c.read(new Uint8Array(1), -1), 'BadRequest', 'offset -1');
    await rejects(c.read(new Uint8Array(1), 0.5), 'BadRequest', 'offset 0.5');
    await rejects(c.write([1] as never, 0), 'BadRequest', 'buffer [1] is not a Uint8Array');
  });

  it('a slow device completes when the injected clock reaches its latency', async () => {
    const clock = new ManualClock();
    const f = new MemoryFile(new Uint8Array([5]));
    const c = openChan(new SlowDevice(f, clock, { readLatency: 10, writeLatency: 3 }));
    const b = new Uint8Array(1);
    let done = false;
    const r = c.read(b, 0).then((n) => {
      done = true;
      return n;
    });
    await clock.advance(9);
    expect(done).toBe(false);
    expect(clock.pending).toBe(1);
    await clock.advance(1);
    expect(await r).toBe(1);
    expect(done).toBe(true);
    expect(clock.now()).toBe(10);
    const w = c.write(new Uint8Array([6]), 0);
    await clock.runAll();
    expect(await w).toBe(1);
    expect(clock.now()).toBe(13);
    expect(() => new SlowDevice(f, clock, { readLatency: -1 })).toThrow(/read latency -1/);
    expect(() => clock.sleep(Number.NaN)).toThrow(/delay NaN/);
  });
});

describe('errors', () => {
  it('are VmkitErrors with the seed kinds and stable codes', () => {
    const e = new KcoreError('Conflict', 'mmap segment overlap', 'detail', { a: 1 });
    expect(e).toBeInstanceOf(VmkitError);
    expect(e.code).toBe('E_CONFLICT');
    expect(e.kind).toBe('Conflict');
    expect(e.seedMessage).toBe('mmap segment overlap');
    expect(e.message).toBe('E_CONFLICT: mmap segment overlap: detail');
    expect(e.details).toEqual({ kind: 'Conflict', a: 1 });
    expect(isKcoreError(e, 'Conflict')).toBe(true);
    expect(isKcoreError(e, 'Gone')).toBe(false);
    expect(Object.keys(KcoreErrorKinds)).toEqual([
      'OutOfMemory',
      'Forbidden',
      'NotFound',
      'BadRequest',
      'Timeout',
      'Conflict',
      'Gone',
      'InternalError',
      'InsufficientStorage',
      'NotImplemented',
      'SegmentFault',
    ]);
    expect(new Set(Object.values(KcoreErrorCode)).size).toBe(11);
    expect(new KcoreError('SegmentFault', '', 'no segment holds 0x0').message).toBe(
      'E_SEGMENT_FAULT: no segment holds 0x0',
    );
  });
});
