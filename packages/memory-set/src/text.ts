/**
 * Text for `toString` and error messages: addresses printed as users read them, values shown as the
 * caller passed them. Never throws.
 *
 * @module
 */
import { describeValue, formatHex, formatVirtAddr, type VirtAddr } from '@vmkit/addr';

const HALF = 2 ** 47;
const TOP = 2 ** 48;

/**
 * An address as users read it: a virtual address (an integer in `[0, 2^48)`) canonically
 * (`0xffff800000000000`), the end of the space (`2^48`, exclusive end) as `0x10000000000000000`, any
 * larger integer in plain hex, anything else as {@link describe} shows it.
 */
export function formatAddr(v: number): string {
  if (!Number.isSafeInteger(v) || v < 0) return describe(v);
  if (v < TOP) return formatVirtAddr(v as VirtAddr);
  if (v === TOP) return '0x10000000000000000';
  return formatHex(v);
}

/** The exclusive end of a range starting at `start`: `0x800000000000` ends the lower half. */
export function formatEnd(start: number, end: number, virtual: boolean): string {
  if (!virtual) return formatHex(end);
  if (end === HALF && start < HALF) return '0x800000000000';
  return formatAddr(end);
}

/** `[start, end)` in the address format of a set (`virtual`: canonical) or plain hex. */
export function formatRange(start: number, end: number, virtual = true): string {
  return virtual
    ? `[${formatAddr(start)}, ${formatEnd(start, end, true)})`
    : `[${formatHex(start)}, ${formatHex(end)})`;
}

/**
 * Any value as the caller passed it (`@vmkit/addr`'s `describeValue`): a non-negative integer in hex,
 * another Number as JavaScript prints it (`NaN`, `-1`, `1.5`), a string quoted (`"16"`), `null`,
 * `undefined`, a plain object or array as short JSON.
 */
export const describe: (v: unknown) => string = describeValue;
