import { alignDown, alignUp, checkAlign } from './align.js';
import { PAGE_SIZE_1G, PAGE_SIZE_2M, PAGE_SIZE_4K, type PageSize } from './constants.js';
import { describeValue } from './describe.js';
import { fail } from './errors.js';
import type { AddrRange } from './range.js';

/** True when `size` is one of the x86-64 page sizes (4 KiB, 2 MiB, 1 GiB). Never throws. */
export function isPageSize(size: number): size is PageSize {
  return size === PAGE_SIZE_4K || size === PAGE_SIZE_2M || size === PAGE_SIZE_1G;
}

/** Throws `E_INVALID` unless `size` is 4 KiB, 2 MiB or 1 GiB. */
export function checkPageSize(size: number): asserts size is PageSize {
  if (!isPageSize(size)) {
    fail('E_INVALID', `page size ${describeValue(size)} is not 4 KiB, 2 MiB or 1 GiB`, { size });
  }
}

/**
 * The number of pages of `pageSize` bytes that the range touches (a partly covered page counts).
 *
 * @throws VmkitError `E_INVALID` if `pageSize` is not a power of two or `range` is not a range
 */
export function pageCount(range: AddrRange, pageSize: number = PAGE_SIZE_4K): number {
  checkRangeArg(range);
  checkAlign(pageSize, 'page size');
  if (range.isEmpty()) return 0;
  return (alignUp(range.end as number, pageSize) - alignDown(range.start, pageSize)) / pageSize;
}

/**
 * Iterates the start address of every page of `pageSize` bytes that the range touches, in order
 * (none for an empty range). The first page starts at `range.start` rounded down.
 *
 * @throws VmkitError `E_INVALID` if `pageSize` is not a power of two or `range` is not a range (when
 *   iteration starts: it is a generator)
 */
export function* pagesOf<A extends number>(
  range: AddrRange<A>,
  pageSize: number = PAGE_SIZE_4K,
): Generator<A> {
  checkRangeArg(range);
  checkAlign(pageSize, 'page size');
  if (range.isEmpty()) return;
  for (let a: number = alignDown(range.start, pageSize); a < range.end; a += pageSize) yield a as A;
}

/**
 * Calls `fn` with the start of every page of `pageSize` bytes that the range touches, in order (never
 * for an empty range); the allocation-free form of {@link pagesOf}.
 *
 * @throws VmkitError `E_INVALID` if `pageSize` is not a power of two, `range` is not a range or `fn` is
 *   not a function
 */
export function forEachPage<A extends number>(
  range: AddrRange<A>,
  pageSize: number,
  fn: (page: A) => void,
): void {
  checkRangeArg(range);
  checkAlign(pageSize, 'page size');
  if (typeof fn !== 'function') fail('E_INVALID', `callback ${describeValue(fn)} is not a function`, { fn });
  if (range.isEmpty()) return;
  for (let a: number = alignDown(range.start, pageSize); a < range.end; a += pageSize) fn(a as A);
}

function checkRangeArg(r: unknown): void {
  if (
    typeof r !== 'object' ||
    r === null ||
    !Number.isSafeInteger((r as { start?: unknown }).start) ||
    !Number.isSafeInteger((r as { end?: unknown }).end)
  ) {
    fail('E_INVALID', `${describeValue(r)} is not an AddrRange`, { range: r });
  }
}
