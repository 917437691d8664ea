import { describeValue } from './describe.js';
import { fail } from './errors.js';

const HEX = /^0x[0-9a-f](?:_?[0-9a-f])*$/i;
const DEC = /^[0-9](?:_?[0-9])*$/;

/**
 * Parses address text into a BigInt: `0x…` hex or decimal, underscores between digits allowed,
 * surrounding white space ignored.
 *
 * @throws VmkitError `E_INVALID` for anything else (signs, empty text, other bases, a non-string)
 */
export function parseBigInt(text: string, what = 'value'): bigint {
  if (typeof text !== 'string') {
    fail('E_INVALID', `${what} ${describeValue(text)} is not text to parse`, { text });
  }
  const t = text.trim();
  if (HEX.test(t) || DEC.test(t)) return BigInt(t.replace(/_/g, ''));
  return fail('E_INVALID', `cannot parse ${describeValue(text)} as a ${what} (hex 0x… or decimal)`, {
    text,
  });
}
