// Issue #9, section 3: every public function validates types and domains, with a message that names the
// value as the caller passed it. Each exported function is either fuzzed here with hostile values in
// every checked parameter, listed as a never-throwing describer/predicate, or listed as a documented
// unchecked hot-path helper; a new export that is none of these fails the first test.
import { describe, expect, it } from 'vitest';
import * as addr from './index.js';
import { isVmkitError } from './index.js';

const HOSTILE: readonly unknown[] = [
  null,
  undefined,
  {},
  '16',
  Number.NaN,
  1.5,
  -1,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  [1],
  16n,
];

type Fn = (...args: never[]) => unknown;
const va = addr.virtAddr(0x1000);
const range = addr.AddrRange.of(0x1000, 0x3000);
const vrange = addr.AddrRange.virtFromSize(va, 0x2000);

/** name → [function, valid arguments, fuzzed positions, hostile values that are legitimately accepted]. */
const CHECKED: Record<string, [Fn, unknown[], number[], unknown[]?]> = {
  virtAddr: [addr.virtAddr, [0x1000], [0], ['16', 16n]],
  virtAddrFromBigInt: [addr.virtAddrFromBigInt, [0x1000n], [0], [16n]],
  virtAddrFromBits: [addr.virtAddrFromBits, [0x1000], [0]],
  virtAddrFromSigned: [addr.virtAddrFromSigned, [-1], [0], [-1]],
  canonicalize: [addr.canonicalize, [0x1000], [0], [16n]],
  physAddr: [addr.physAddr, [0x1000], [0], ['16', 16n]],
  formatVirtAddr: [addr.formatVirtAddr, [va], [0]],
  formatPhysAddr: [addr.formatPhysAddr, [0x1000], [0]],
  virtAddrToBigInt: [addr.virtAddrToBigInt, [va], [0]],
  virtAddrToSigned: [addr.virtAddrToSigned, [va], [0]],
  physAddrToBigInt: [addr.physAddrToBigInt, [0x1000], [0]],
  parseVirtAddr: [addr.parseVirtAddr, ['0x1000'], [0], ['16']],
  parseBigInt: [addr.parseBigInt, ['0x1000'], [0], ['16']],
  virtAdd: [addr.virtAdd, [va, 0x10], [0, 1], [-1]],
  virtEnd: [addr.virtEnd, [va, 0x10], [0, 1]],
  virtAlignUp: [addr.virtAlignUp, [va, 0x1000], [0, 1]],
  physAdd: [addr.physAdd, [0x1000, 0x10], [0, 1], [-1]],
  alignUp: [addr.alignUp, [0x1001, 0x1000], [0, 1]],
  checkedAlignDown: [addr.checkedAlignDown, [0x1001, 0x1000], [0, 1]],
  checkAlign: [addr.checkAlign, [0x1000], [0]],
  checkAligned: [addr.checkAligned, [0x2000, 0x1000], [0, 1]],
  checkedAdd: [addr.checkedAdd, [0x1000, 0x10], [0, 1], [-1]],
  checkUint: [addr.checkUint, [0x1000], [0]],
  checkPageSize: [addr.checkPageSize, [0x1000], [0]],
  checkVirtRange: [addr.checkVirtRange, [va, 0x1000], [0, 1]],
  checkVirtAddr: [addr.checkVirtAddr, [va], [0]],
  virtDistance: [addr.virtDistance, [va, va], [0, 1]],
  tableIndex: [addr.tableIndex, [va, 1], [1]],
  pageCount: [addr.pageCount, [range, 0x1000], [0, 1], [undefined]], // undefined: the default page size
  pagesOf: [(r: never, s: never) => [...addr.pagesOf(r, s)], [range, 0x1000], [0, 1], [undefined]],
  forEachPage: [addr.forEachPage, [range, 0x1000, () => {}], [0, 1, 2]],
  formatVirtRange: [addr.formatVirtRange, [vrange], [0]],
  'AddrRange.of': [addr.AddrRange.of, [0x1000, 0x2000], [0, 1]],
  'AddrRange.fromSize': [addr.AddrRange.fromSize, [0x1000, 0x2000], [0, 1]],
  'AddrRange.virt': [addr.AddrRange.virt, [va, 0x2000], [0, 1]],
  'AddrRange.virtFromSize': [addr.AddrRange.virtFromSize, [va, 0x2000], [0, 1]],
  'AddrRange#splitAt': [(at: never) => vrange.splitAt(at), [0x2000], [0]],
  'AddrRange#overlaps': [(r: never) => range.overlaps(r), [range], [0]],
  'AddrRange#intersection': [(r: never) => range.intersection(r), [range], [0]],
  'AddrRange#containsRange': [(r: never) => range.containsRange(r), [range], [0]],
  'AddrRange#equals': [(r: never) => range.equals(r), [range], [0]],
};
/** Never throw, by contract: predicates and message helpers. */
const TOTAL: Record<string, Fn> = {
  isCanonical: addr.isCanonical,
  isPowerOfTwo: addr.isPowerOfTwo,
  isPageSize: addr.isPageSize,
  isVirtAddr: addr.isVirtAddr,
  isVirtRange: addr.isVirtRange,
  isVmkitError: addr.isVmkitError,
  formatHex: addr.formatHex,
  describeValue: addr.describeValue,
  describeVirtAddr: addr.describeVirtAddr,
};
/** Documented unchecked per-access hot-path helpers (README "What is checked"). */
const HOT = [
  'alignDown',
  'isAligned',
  'pageOffset',
  'pml4Index',
  'pdptIndex',
  'pdIndex',
  'ptIndex',
  'isHigherHalf',
  'virtPageNum',
  'virtPageAddr',
  'physFrameNum',
  'physFrameAddr',
];
const OTHER = ['fail', 'VmkitError', 'AddrRange'];

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('every public function validates (issue #9, section 3)', () => {
  it('every exported function is covered', () => {
    const fns = Object.entries(addr)
      .filter(([, v]) => typeof v === 'function')
      .map(([k]) => k);
    const covered = new Set([...Object.keys(CHECKED), ...Object.keys(TOTAL), ...HOT, ...OTHER]);
    expect(fns.filter((k) => !covered.has(k))).toEqual([]);
  });

  for (const [name, [fn, valid, positions, accepted = []]] of Object.entries(CHECKED)) {
    it(`${name}: typed errors for hostile values, naming them as passed`, () => {
      expect(thrown(() => fn(...(valid as never[])))).toBeUndefined();
      for (const i of positions) {
        for (const h of HOSTILE) {
          const args = [...valid];
          args[i] = h;
          const e = thrown(() => fn(...(args as never[])));
          if (e === undefined) {
            expect(accepted, `${name} accepted ${String(h)} at argument ${i}`).toContain(h);
            continue;
          }
          expect(isVmkitError(e), `${name}(${String(h)} at ${i}) threw ${String(e)}`).toBe(true);
          const msg = (e as Error).message;
          expect(msg).not.toMatch(/0xNaN|-0xNaN|0x[0-9a-f]+\.[0-9a-f]|0xInfinity/);
          if (h === '16') expect(msg).toContain('"16"');
          if (Number.isNaN(h)) expect(msg).toContain('NaN');
          if (h === 1.5) expect(msg).toContain('1.5');
        }
      }
    });
  }

  it('predicates and describers never throw and never print 0xNaN', () => {
    for (const [name, fn] of Object.entries(TOTAL)) {
      for (const h of HOSTILE) {
        const e = thrown(() => fn(h as never));
        expect(e, `${name}(${String(h)})`).toBeUndefined();
        const r = (fn as (v: unknown) => unknown)(h);
        if (typeof r === 'string') expect(r).not.toMatch(/0xNaN|0x[0-9a-f]+\.[0-9a-f]/);
        if (typeof r === 'boolean' && name !== 'isVmkitError') {
          // only a safe integer can satisfy a predicate
          if (r) expect(Number.isSafeInteger(h) || typeof h === 'bigint').toBe(true);
        }
      }
    }
  });

  it('-0 is held as 0', () => {
    for (const f of [addr.virtAddr, addr.physAddr, addr.virtAddrFromBits] as ((v: number) => number)[]) {
      expect(Object.is(f(-0), 0)).toBe(true);
    }
  });

  it('issue #9 reproductions', () => {
    for (const v of [null, undefined, {}]) {
      expect(
        isVmkitError(
          thrown(() => addr.virtAddr(v as never)),
          'E_INVALID',
        ),
      ).toBe(true);
    }
    expect(
      isVmkitError(
        thrown(() => addr.alignUp(0x1234, 0)),
        'E_INVALID',
      ),
    ).toBe(true);
    expect(
      isVmkitError(
        thrown(() => addr.alignUp(0x1234, 3)),
        'E_INVALID',
      ),
    ).toBe(true);
    expect(
      isVmkitError(
        thrown(() => addr.alignUp(1.5, 4096)),
        'E_INVALID',
      ),
    ).toBe(true);
    expect(
      isVmkitError(
        thrown(() => addr.checkedAdd(Number.NaN, 1)),
        'E_INVALID',
      ),
    ).toBe(true);
    expect(
      isVmkitError(
        thrown(() => addr.formatVirtAddr(Number.NaN as addr.VirtAddr)),
        'E_INVALID',
      ),
    ).toBe(true);
    const split = thrown(() => vrange.splitAt(Number.NaN as addr.VirtAddr)) as Error;
    expect(split.message).toBe('E_INVALID: split point NaN is not an integer Number');
    const outside = thrown(() => vrange.splitAt(0x9000 as addr.VirtAddr)) as Error;
    expect(outside.message).toBe('E_RANGE: split point 0x9000 is outside [0x1000, 0x3000)');
    expect((thrown(() => addr.AddrRange.of(1.5, 4)) as Error).message).toBe(
      'E_INVALID: range start 1.5 is not an integer',
    );
    expect((thrown(() => addr.AddrRange.of(Number.NaN, 4)) as Error).message).toBe(
      'E_INVALID: range start NaN is not an integer',
    );
    expect((thrown(() => addr.checkUint('16', 'size')) as Error).message).toBe(
      'E_INVALID: size "16" is not a number',
    );
  });

  it('a virtual AddrRange prints canonical addresses (issue #9, section 4)', () => {
    const k = addr.virtAddr('0xffff800000000000');
    const r = addr.AddrRange.virtFromSize(k, 0x2000);
    expect(r.toString()).toBe('[0xffff800000000000, 0xffff800000002000)');
    const [a, b] = r.splitAt(addr.virtAdd(k, 0x1000));
    expect(`${a} ${b}`).toBe(
      '[0xffff800000000000, 0xffff800000001000) [0xffff800000001000, 0xffff800000002000)',
    );
    expect(`${r.intersection(b)}`).toBe('[0xffff800000001000, 0xffff800000002000)');
    expect(`${addr.AddrRange.virt(addr.virtAddr('0xfffffffffffff000'), 2 ** 48)}`).toBe(
      '[0xfffffffffffff000, 0x10000000000000000)',
    );
    expect(`${addr.AddrRange.virtFromSize(addr.virtAddr(0x7fff_ffff_f000), 0x1000)}`).toBe(
      '[0x7ffffffff000, 0x800000000000)',
    );
    expect(String(k)).toBe('140737488355328'); // a raw VirtAddr is a Number (README says so)
    const err = thrown(() => r.splitAt(addr.virtAddr('0xffff900000000000'))) as Error;
    expect(err.message).toBe(
      'E_RANGE: split point 0xffff900000000000 is outside [0xffff800000000000, 0xffff800000002000)',
    );
  });
});
