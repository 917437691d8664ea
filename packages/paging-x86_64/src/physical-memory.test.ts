import { isVmkitError } from '@vmkit/addr';
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
});
