/**
 * Test budgets: explicit fast-check run counts and vitest timeouts, sized for a loaded 2-core CI
 * machine, with a long version on demand (`VMKIT_LONG=1` multiplies both by {@link LONG_FACTOR}).
 */

/** True when the long (on-demand) versions of the property tests run: `VMKIT_LONG=1`. */
export const LONG_RUN = process.env.VMKIT_LONG === '1';

/** How much more a long run does. */
export const LONG_FACTOR = 20;

/** A fast-check `numRuns`: `n` normally, `n * LONG_FACTOR` when `VMKIT_LONG=1`. */
export function propertyRuns(n: number): number {
  return LONG_RUN ? n * LONG_FACTOR : n;
}

/**
 * A vitest timeout in milliseconds for a test whose runs are sized by {@link propertyRuns}: `ms`
 * normally (give at least 4x the time the test takes on an idle machine), scaled with the runs when
 * `VMKIT_LONG=1`.
 */
export function testTimeout(ms: number): number {
  return LONG_RUN ? ms * LONG_FACTOR : ms;
}
