/**
 * Test budgets of this package, on top of @vmkit/testkit's (one place decides what `VMKIT_LONG=1`
 * means): property tests run a count sized for a loaded 2-core CI machine by default, and the long count
 * with `VMKIT_LONG=1` (e.g. `VMKIT_LONG=1 pnpm exec vitest run`).
 */
import { LONG_RUN, testTimeout } from '@vmkit/testkit';

/** True for the long (on-demand) runs: `VMKIT_LONG=1`. */
export const LONG = LONG_RUN;

/** `quick` runs by default, `long` with VMKIT_LONG=1. */
export function runs(quick: number, long: number): number {
  return LONG_RUN ? long : quick;
}

/** Timeout of a slow test (ms): 60 s by default (the quick runs take a few seconds on a loaded machine). */
export const SLOW_TIMEOUT = testTimeout(60_000);
