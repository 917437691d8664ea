import { isVmkitError } from '@vmkit/addr';
import { expectVmkitError } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhysicalMemory } from './physical-memory.js';

describe('PhysicalMemory', () => {
  it('is little-endian at every width and alignment', () => {
    const m = new PhysicalMemory(8192);
    m.write64(0x100, 0x1122_3344_5566_7788n);
    expect([...m.readBytes(0x100, 8)]).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(m.read32(0x104)).toBe(0x1122_3344);
    m.write32(0x201, 0xdead_beef);
    expect(m.read32(0x201)).toBe(0xdead_beef);
    expect(m.read8(0x201)).toBe(0xef);
  });
  it('copies, fills, reads into a buffer, exports and imports raw images', () => {
    const m = new PhysicalMemory(8192);
    m.fill(0, 16, 7);
    m.copy(4096, 0, 16);
    const out = new Uint8Array(20);
    m.readInto(4094, out, 2, 18);
    expect([...out.subarray(0, 6)]).toEqual([0, 0, 0, 0, 7, 7]);
    const img = m.exportImage();
    const n = new PhysicalMemory(8192);
    n.importImage(img);
    expect(Buffer.from(n.exportImage()).equals(Buffer.from(img))).toBe(true);
  });
  it('rejects out-of-range access with E_RANGE', () => {
    const m = new PhysicalMemory(4096);
    for (const f of [
      () => m.read32(4094),
      () => m.write8(4096, 1),
      () => m.readInto(0, new Uint8Array(4), 2, 4),
    ]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isVmkitError(err, 'E_RANGE')).toBe(true);
    }
  });
  it('word and byte accesses agree with a byte model and reject exactly the bad addresses', () => {
    // The single-chunk fast paths (aligned, in range) and the checked paths must give the same answers:
    // every address below is compared with a plain byte array, and anything that is not an integer
    // range inside the memory (negative, fractional, NaN, past the end, aliasing it modulo 2^32) throws.
    const size = 8192;
    const pas = fc.oneof(
      fc.integer({ min: -8, max: size + 8 }),
      fc.constantFrom(
        -0,
        0.5,
        4.5,
        -4,
        Number.NaN,
        2 ** 32,
        2 ** 32 + 4,
        2 ** 32 - 4,
        2 ** 53,
        size - 4,
        size - 1,
      ),
      fc.integer({ min: 0, max: 2 ** 20 }).map((k) => 2 ** 32 + k * 4),
    );
    const ops = fc.array(
      fc.record({
        op: fc.integer({ min: 0, max: 3 }),
        pa: pas,
        value: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
      }),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(ops, (list) => {
        const m = new PhysicalMemory(size);
        const model = new Uint8Array(size);
        for (const { op, pa, value } of list) {
          const len = op < 2 ? 4 : 1;
          const ok = Number.isInteger(pa) && pa >= 0 && pa + len <= size;
          let err: unknown;
          let got = 0;
          try {
            if (op === 0) got = m.read32(pa);
            else if (op === 1) m.write32(pa, value);
            else if (op === 2) got = m.read8(pa);
            else m.write8(pa, value);
          } catch (e) {
            err = e;
          }
          if (!ok) {
            // a non-integer (NaN, 1.5, Infinity) is E_INVALID, an integer outside the memory E_RANGE
            expect(isVmkitError(err, Number.isInteger(pa) ? 'E_RANGE' : 'E_INVALID')).toBe(true);
            continue;
          }
          if (op === 3 && value > 255) {
            // a byte out of range is refused, never truncated
            expect(isVmkitError(err, 'E_RANGE')).toBe(true);
            continue;
          }
          expect(err).toBeUndefined();
          const a = pa + 0; // -0 → 0
          if (op === 0) {
            expect(got).toBe(
              (model[a]! | (model[a + 1]! << 8) | (model[a + 2]! << 16) | (model[a + 3]! << 24)) >>> 0,
            );
          } else if (op === 1) {
            for (let b = 0; b < 4; b++) model[a + b] = (value >>> (8 * b)) & 0xff;
          } else if (op === 2) {
            expect(got).toBe(model[a]);
          } else {
            model[a] = value;
          }
        }
        expect([...m.readBytes(0, size)]).toEqual([...model]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('PhysicalMemory: every public entry validates (issue 9 §3)', () => {
  it('constructor: typed errors naming the value as passed', () => {
    expect(
      expectVmkitError(() => new PhysicalMemory(null as unknown as number), 'E_INVALID').message,
    ).toContain('null');
    expect(
      expectVmkitError(() => new PhysicalMemory('4096' as unknown as number), 'E_INVALID').message,
    ).toContain('"4096"');
    expectVmkitError(() => new PhysicalMemory({} as unknown as number), 'E_INVALID');
    expectVmkitError(() => new PhysicalMemory(undefined as unknown as number), 'E_INVALID');
    expectVmkitError(() => new PhysicalMemory(1.5), 'E_INVALID');
    expectVmkitError(() => new PhysicalMemory(-4096), 'E_RANGE');
    expectVmkitError(() => new PhysicalMemory(4097), 'E_UNALIGNED');
    expect(new PhysicalMemory({ size: 8192 }).size).toBe(8192);
  });

  it('writes never truncate: bad values are typed errors and memory is unchanged', () => {
    const m = new PhysicalMemory(8192);
    m.write32(0, 0x11223344);
    const before = m.exportImage();
    expectVmkitError(() => m.write8(0, 256), 'E_RANGE');
    expectVmkitError(() => m.write8(0, -1), 'E_RANGE');
    expectVmkitError(() => m.write8(0, 1.5), 'E_INVALID');
    expectVmkitError(() => m.write32(0, 2 ** 32), 'E_RANGE');
    expectVmkitError(() => m.write32(0, Number.NaN), 'E_INVALID');
    expectVmkitError(() => m.write32(2, 2 ** 32), 'E_RANGE'); // unaligned path too
    expectVmkitError(() => m.write64(0, 5 as unknown as bigint), 'E_INVALID');
    expectVmkitError(() => m.write64(0, 1n << 64n), 'E_RANGE');
    expectVmkitError(() => m.writeBytes(0, [1, 2] as unknown as Uint8Array), 'E_INVALID');
    expectVmkitError(() => m.fill(0, 16, 300), 'E_RANGE');
    expectVmkitError(() => m.importImage(new Uint8Array(4)), 'E_UNALIGNED');
    expectVmkitError(() => m.importImage(new Uint8Array(3 * 4096)), 'E_RANGE');
    expectVmkitError(() => m.importImage('x' as unknown as Uint8Array), 'E_INVALID');
    expectVmkitError(() => m.read32('16' as unknown as number), 'E_INVALID');
    expect(m.exportImage()).toEqual(before);
    // the accepted forms: an int32 from `|` is stored as its two's complement
    m.write32(4, 0x8000_0000 | 1);
    expect(m.read32(4)).toBe(0x8000_0001);
    m.write64(8, -1n);
    expect(m.read64(8)).toBe(0xffff_ffff_ffff_ffffn);
    m.importImage(new Uint8Array(4096).fill(7));
    expect(m.read8(4095)).toBe(7);
    expect(m.read8(4096)).toBe(0);
  });
});
