import { describe, expect, it } from 'vitest';
import {
  addrHi,
  addrLo,
  PTE_HI_PK_MASK,
  PTE_HI_SW_MASK,
  PTE_HI_XD,
  pteAddr,
  pteFromBigInt,
  pteToBigInt,
} from './pte.js';
import { PTE_ADDR_MASK, PTE_ADDR_MASK_HI, PTE_ADDR_MASK_LO } from './vmem/constants.js';

describe('PTE words', () => {
  it('split and join addresses across the 32-bit boundary (bits 51..12)', () => {
    const pa = 0xf_edcb_a987_6000;
    expect(addrLo(pa)).toBe(0xa987_6000);
    expect(addrHi(pa)).toBe(0xfedcb);
    expect(pteAddr(addrLo(pa) | 0xfff, addrHi(pa) | PTE_HI_XD)).toBe(pa);
  });
  it('masks match the SDM layout: address 51..12, software 58..52, key 62..59, XD 63', () => {
    expect(pteToBigInt(PTE_ADDR_MASK_LO, PTE_ADDR_MASK_HI)).toBe(PTE_ADDR_MASK);
    expect(pteToBigInt(0, PTE_HI_SW_MASK)).toBe(0x7fn << 52n);
    expect(pteToBigInt(0, PTE_HI_PK_MASK)).toBe(0xfn << 59n);
    expect(pteToBigInt(0, PTE_HI_XD)).toBe(1n << 63n);
    expect(pteFromBigInt(0x8000_0001_2345_6067n)).toEqual({ lo: 0x2345_6067, hi: 0x8000_0001 });
  });
});
