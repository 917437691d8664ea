import { describe, expect, it } from 'vitest';
import { formatHex } from './align.js';
import { describeValue, describeVirtAddr } from './describe.js';
import { AddrRange } from './range.js';

describe('describeValue: values as the caller passed them', () => {
  it('numbers', () => {
    expect(describeValue(0)).toBe('0');
    expect(describeValue(9)).toBe('9');
    expect(describeValue(16)).toBe('0x10');
    expect(describeValue(0x7fff_ffff_f000)).toBe('0x7ffffffff000');
    expect(describeValue(Number.NaN)).toBe('NaN');
    expect(describeValue(1.5)).toBe('1.5');
    expect(describeValue(-1)).toBe('-1');
    expect(describeValue(-16)).toBe('-16');
    expect(describeValue(-0)).toBe('-0');
    expect(describeValue(Number.NEGATIVE_INFINITY)).toBe('-Infinity');
    expect(describeValue(2 ** 60)).toBe('0x1000000000000000');
    expect(describeValue(1e300)).toBe('1e+300');
  });
  it('other types', () => {
    expect(describeValue('16')).toBe('"16"');
    expect(describeValue('')).toBe('""');
    expect(describeValue(16n)).toBe('0x10n');
    expect(describeValue(-1n)).toBe('-0x1n');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(true)).toBe('true');
    expect(describeValue({})).toBe('{}');
    expect(describeValue({ a: 1, b: 2n })).toBe('{"a":1,"b":"2n"}');
    expect(describeValue([1, 2])).toBe('[1,2]');
    expect(describeValue(Symbol('s'))).toBe('Symbol(s)');
    expect(describeValue(function named() {})).toBe('function named');
    expect(describeValue(new Map())).toBe('[object Map]');
    expect(describeValue(AddrRange.of(0x1000, 0x2000))).toBe('[0x1000, 0x2000)');
    expect(describeValue('x'.repeat(200))).toHaveLength(60);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(describeValue(cyclic)).toBe('[object Object]');
    const hostile = {
      toString() {
        throw new Error('no');
      },
    };
    expect(describeValue(hostile)).toBe('[object Object]');
  });
  it('formatHex never prints 0xNaN, -0xNaN or 0x1.8', () => {
    expect(formatHex(0x1000)).toBe('0x1000');
    expect(formatHex(Number.NaN)).toBe('NaN');
    expect(formatHex(-Number.NaN)).toBe('NaN');
    expect(formatHex(1.5)).toBe('1.5');
    expect(formatHex('16' as unknown as number)).toBe('"16"');
    expect(formatHex(-1)).toBe('-1');
  });
  it('describeVirtAddr prints a valid VirtAddr canonically and anything else as passed', () => {
    expect(describeVirtAddr(2 ** 47)).toBe('0xffff800000000000');
    expect(describeVirtAddr(0x1000)).toBe('0x1000');
    expect(describeVirtAddr(2 ** 48)).toBe('0x1000000000000');
    expect(describeVirtAddr(Number.NaN)).toBe('NaN');
    expect(describeVirtAddr('0x1000')).toBe('"0x1000"');
  });
});
