import { errorCode } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { VmkitError } from './errors.js';
import { checkPageSize, isPageSize } from './pages.js';
import { formatPhysAddr, physAdd, physAddr, physAddrToBigInt, physFrameAddr, physFrameNum } from './phys.js';
import type { PhysFrameNum } from './types.js';

describe('physical addresses (52 bits, byte-exact)', () => {
  it('accepts the whole 52-bit space exactly', () => {
    const top = physAddr(0xf_ffff_ffff_ffffn);
    expect(top).toBe(2 ** 52 - 1);
    expect(physAddrToBigInt(top)).toBe(0xf_ffff_ffff_ffffn);
    expect(formatPhysAddr(top)).toBe('0xfffffffffffff');
    expect(formatPhysAddr(physAddr(0x1000), true)).toBe('0x0000000001000');
    expect(physAddr('0x1_0000_0000')).toBe(2 ** 32);
    expect(physFrameAddr(physFrameNum(physAddr(0x12_3456_7fff)))).toBe(0x12_3456_7000);
    expect(physFrameAddr((2 ** 40 - 1) as PhysFrameNum)).toBe(2 ** 52 - 4096);
  });
  it('refuses what is not a physical address', () => {
    expect(errorCode(() => physAddr(2 ** 52))).toBe('E_RANGE');
    expect(errorCode(() => physAddr(-1))).toBe('E_RANGE');
    expect(errorCode(() => physAddr(Number.NaN))).toBe('E_INVALID');
    expect(errorCode(() => physAddr('zz'))).toBe('E_INVALID');
    expect(errorCode(() => physAddr(1n << 52n))).toBe('E_RANGE');
    expect(errorCode(() => physAdd(physAddr(2 ** 52 - 4096), 4096))).toBe('E_OVERFLOW');
    expect(errorCode(() => physAdd(physAddr(0), -1))).toBe('E_OVERFLOW');
    expect(errorCode(() => physAdd(physAddr(0), 0.5))).toBe('E_INVALID');
    expect(physAdd(physAddr(0x1000), 0x234)).toBe(0x1234);
  });
  it('page sizes', () => {
    expect([0x1000, 0x20_0000, 0x4000_0000].every(isPageSize)).toBe(true);
    expect(isPageSize(0x2000)).toBe(false);
    expect(errorCode(() => checkPageSize(0x8000))).toBe('E_INVALID');
  });
  it('errors are VmkitErrors with code, message and details', () => {
    let err: unknown;
    try {
      physAddr(-5);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VmkitError);
    expect(err).toBeInstanceOf(Error);
    const v = err as VmkitError;
    expect(v.code).toBe('E_RANGE');
    expect(v.message).toMatch(/^E_RANGE: physical address -5 /);
    expect(v.details).toEqual({ value: -5 });
    expect(v.name).toBe('VmkitError');
  });
});
