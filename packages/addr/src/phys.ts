import { formatHex } from './align.js';
import { PAGE_SIZE_4K, PHYS_SPACE_END } from './constants.js';
import { describeValue } from './describe.js';
import { fail } from './errors.js';
import { parseBigInt } from './parse.js';
import type { PhysAddr, PhysFrameNum } from './types.js';

/**
 * Builds a {@link PhysAddr}: an integer in `[0, 2^52)` (MAXPHYADDR ≤ 52). A BigInt or text (`0x…` or
 * decimal) is accepted too.
 *
 * @throws VmkitError `E_INVALID` for any other type (`null`, `undefined`, an object), NaN, a
 *   non-integer or unparsable text, `E_RANGE` for a negative value or one at or past 2^52
 */
export function physAddr(value: number | bigint | string): PhysAddr {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      fail('E_INVALID', `physical address ${describeValue(value)} is not an integer`, { value });
    }
    if (value < 0 || value >= PHYS_SPACE_END) {
      fail('E_RANGE', `physical address ${describeValue(value)} is not in [0, 2^52)`, { value });
    }
    return (value + 0) as PhysAddr; // + 0 turns -0 into 0
  }
  if (typeof value !== 'bigint' && typeof value !== 'string') {
    fail('E_INVALID', `physical address ${describeValue(value)} is not a Number, a BigInt or a string`, {
      value,
    });
  }
  const big = typeof value === 'bigint' ? value : parseBigInt(value, 'physical address');
  if (big < 0n || big >= BigInt(PHYS_SPACE_END)) {
    fail('E_RANGE', `physical address ${describeValue(value)} is not in [0, 2^52)`, { value });
  }
  return Number(big) as PhysAddr;
}

function checkPhys(pa: unknown, what = 'physical address'): asserts pa is PhysAddr {
  if (typeof pa !== 'number' || !Number.isInteger(pa)) {
    fail('E_INVALID', `${what} ${describeValue(pa)} is not an integer Number`, { pa });
  }
  if (pa < 0 || pa >= PHYS_SPACE_END)
    fail('E_RANGE', `${what} ${describeValue(pa)} is not in [0, 2^52)`, { pa });
}

/**
 * The physical address as a BigInt (edges only).
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` unless `pa` is an integer in `[0, 2^52)`
 */
export function physAddrToBigInt(pa: PhysAddr): bigint {
  checkPhys(pa);
  return BigInt(pa);
}

/**
 * Formats a physical address as `0x…` hex; with `pad`, 13 hex digits (52 bits).
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` unless `pa` is an integer in `[0, 2^52)`
 */
export function formatPhysAddr(pa: PhysAddr, pad = false): string {
  checkPhys(pa);
  return pad ? `0x${pa.toString(16).padStart(13, '0')}` : formatHex(pa);
}

/**
 * `pa + delta` bytes, checked.
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` if `pa` is not a PhysAddr, `E_INVALID` for a delta that is
 *   not an integer Number, `E_OVERFLOW` if the result leaves `[0, 2^52)`
 */
export function physAdd(pa: PhysAddr, delta: number): PhysAddr {
  checkPhys(pa);
  if (typeof delta !== 'number' || !Number.isInteger(delta)) {
    fail('E_INVALID', `offset ${describeValue(delta)} is not an integer Number`, { pa, delta });
  }
  const r = pa + delta;
  if (r < 0 || r >= PHYS_SPACE_END) {
    fail(
      'E_OVERFLOW',
      `${formatHex(pa)} + ${describeValue(delta)} leaves the physical address space [0, 2^52)`,
      {
        pa,
        delta,
      },
    );
  }
  return r as PhysAddr;
}

/** The 4 KiB frame number of `pa`. Hot path: unchecked. */
export function physFrameNum(pa: PhysAddr): PhysFrameNum {
  return Math.floor(pa / PAGE_SIZE_4K) as PhysFrameNum;
}

/**
 * The first byte of 4 KiB frame `pfn`. Hot path: unchecked; the checked form is
 * `physAddr(pfn * PAGE_SIZE_4K)`.
 */
export function physFrameAddr(pfn: PhysFrameNum): PhysAddr {
  return (pfn * PAGE_SIZE_4K) as PhysAddr;
}
