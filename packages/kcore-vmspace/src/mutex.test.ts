import { describe, expect, it } from 'vitest';
import { Mutex } from './mutex.js';

describe('Mutex', () => {
  it('runs callers one at a time in call order, through errors', async () => {
    const m = new Mutex();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const a = m.run(async () => {
      log.push('a start');
      await gate;
      log.push('a end');
      return 1;
    });
    const b = m.run(async () => {
      log.push('b');
      throw new Error('b fails');
    });
    const c = m.run(async () => {
      log.push('c');
      return 3;
    });
    expect(m.waiting).toBe(2);
    await Promise.resolve();
    expect(log).toEqual(['a start']);
    release();
    expect(await a).toBe(1);
    await expect(b).rejects.toThrow('b fails');
    expect(await c).toBe(3);
    expect(log).toEqual(['a start', 'a end', 'b', 'c']);
    const d = m.run(async () => 4); // a later caller after the queue drained
    expect(await d).toBe(4);
    expect(m.waiting).toBe(0);
  });
});
