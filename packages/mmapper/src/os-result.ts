/**
 * What the two fake operating systems (`./testing`'s `RecordingOs`, `./memory-set`'s `MemorySetOs`)
 * share when answering an {@link MmapOs} call. Internal: not exported from the package root.
 *
 * @module
 */
import type { MmapOs, OsError } from './os.js';

/** The `message` of the `EINVAL` an OS call answers for a range {@link isPageRange} refuses. */
export const BAD_PAGE_RANGE = 'start not page-aligned or size not a positive multiple of 4 KiB';

/** An {@link OsError} with its text. */
export function osError(errno: string, message: string): OsError {
  return { errno, message };
}

/**
 * Whether `[start, start + bytes)` is a range an {@link MmapOs} call accepts: integers, `start ≥ 0`,
 * `bytes > 0`, both multiples of 4 KiB, the end at most 2^48; with `oneHalf`, also not crossing 2^47
 * (the canonical hole).
 */
export function isPageRange(start: number, bytes: number, oneHalf: boolean): boolean {
  return (
    Number.isInteger(start) &&
    Number.isInteger(bytes) &&
    start >= 0 &&
    bytes > 0 &&
    start % 0x1000 === 0 &&
    bytes % 0x1000 === 0 &&
    start + bytes <= 2 ** 48 &&
    (!oneHalf || start >= 2 ** 47 || start + bytes <= 2 ** 47)
  );
}
