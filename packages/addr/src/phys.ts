import { formatHex } from './align.js';
import { PAGE_SIZE_4K, PHYS_SPACE_END } from './constants.js';
import { fail } from './errors.js';
import { parseBigInt } from './parse.js';
import type { PhysAddr, PhysFrameNum } from './types.js';

/**
 * Builds a {@link PhysAddr}: an integer in `[0, 2^52)` (MAXPHYADDR ≤ 52). A BigInt or text (`0x…` or
 * decimal) is accepted too.
 *
 * @throws VmkitError `E_INVALID` for NaN, a non-integer or unparsable text, `E_RANGE` for a negative
 *   value or one at or past 2^52
 */
export function physAddr(value: number | bigint | string): PhysAddr {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) fail('E_INVALID', `physical address ${value} is not an integer`, { value });
    if (value < 0 || value >= PHYS_SPACE_END) {
      fail('E_RANGE', `physical address ${value} is not in [0, 2^52)`, { value });
    }
    return value as PhysAddr;
  }
  const big = typeof value === 'bigint' ? value : parseBigInt(value, 'physical address');
  if (big < 0n || big >= BigInt(PHYS_SPACE_END)) {
    fail('E_RANGE', `physical address 0x${big.toString(16)} is not in [0, 2^52)`, { value: big });
  }
  return Number(big) as PhysAddr;
}

/** The physical address as a BigInt (edges only). */
export function physAddrToBigInt(pa: PhysAddr): bigint {
  return BigInt(pa);
}

/** Formats a physical address as `0x…` hex; with `pad`, 13 hex digits (52 bits). */
export function formatPhysAddr(pa: PhysAddr, pad = false): string {
  return pad ? `0x${pa.toString(16).padStart(13, '0')}` : formatHex(pa);
}

/**
 * `pa + delta` bytes, checked.
 *
 * @throws VmkitError `E_INVALID` for a non-integer delta, `E_OVERFLOW` if the result leaves `[0, 2^52)`
 */
export function physAdd(pa: PhysAddr, delta: number): PhysAddr {
  if (!Number.isInteger(delta)) fail('E_INVALID', `offset ${delta} is not an integer`, { pa, delta });
  const r = pa + delta;
  if (r < 0 || r >= PHYS_SPACE_END) {
    fail('E_OVERFLOW', `${formatHex(pa)} + ${delta} leaves the physical address space [0, 2^52)`, {
      pa,
      delta,
    });
  }
  return r as PhysAddr;
}

/** The 4 KiB frame number of `pa`. */
export function physFrameNum(pa: PhysAddr): PhysFrameNum {
  return Math.floor(pa / PAGE_SIZE_4K) as PhysFrameNum;
}

/** The first byte of 4 KiB frame `pfn`. */
export function physFrameAddr(pfn: PhysFrameNum): PhysAddr {
  return (pfn * PAGE_SIZE_4K) as PhysAddr;
}
