import { describe, expect, it } from 'vitest';
import { Kernel } from './kernel.js';
import { DIRECT_MAP, Machine, resolveConfig } from './machine.js';
import type { Program } from './program.js';

describe('machine configuration', () => {
  it.each([
    [{ ramBytes: 1000 }, /ramBytes 1000 is not an integer in/],
    [{ ramBytes: 2 ** 21 + 1 }, /ramBytes 2097153 is not a multiple of 4096/],
    [{ cpus: 0 }, /cpus 0 is not an integer in \[1, 32\]/],
    [{ cpus: 1.5 }, /cpus 1.5/],
    [{ tlbEntries: 3 }, /tlbEntries 3 is not a power of two/],
    [{ sliceNs: Number.NaN }, /sliceNs NaN/],
    [{ seed: -1 }, /seed -1/],
    [{ diskBytesPerSec: '9' as unknown as number }, /diskBytesPerSec 9 is not an integer/],
  ])('rejects %j naming the value', (cfg, re) => {
    expect(() => resolveConfig(cfg)).toThrow(re);
    expect(() => resolveConfig(cfg)).toThrow(/E_CONFIG/);
  });

  it('maps all RAM in the kernel half with memory-set and shares nothing else', () => {
    const m = new Machine({ ramBytes: 8 * 2 ** 20, cpus: 3 });
    expect(m.cpus.map((c) => c.mmu.currentPcid)).toEqual([0, 0, 0]);
    expect(m.kernelAreas.len()).toBe(1);
    expect(m.kernelTable.translate((DIRECT_MAP + 0x12345) as never)?.pa).toBe(0x12345);
    expect(m.kernelTable.translate(0x12345 as never)).toBeUndefined();
    // PML4 + PDPT + PD: the census baseline.
    expect(m.baselineFrames).toBe(3);
  });

  it('refuses a program that is not one', () => {
    const k = new Kernel({ ramBytes: 4 * 2 ** 20 });
    expect(() => k.spawn({} as Program)).toThrow(/E_PROGRAM/);
    expect(() => k.spawn(null as unknown as Program)).toThrow(/is not a program/);
  });
});
