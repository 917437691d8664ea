/**
 * Error assertions for vmkit's typed errors, duck-typed on `name === 'VmkitError'` and `code` so that
 * this package does not depend on `@vmkit/addr` (which uses it).
 */

/** A thrown vmkit error as tests see it. */
export interface CodedError extends Error {
  code: string;
  details: Readonly<Record<string, unknown>>;
}

function isCoded(e: unknown): e is CodedError {
  return e instanceof Error && e.name === 'VmkitError' && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * Runs `fn` and returns the code of the VmkitError it throws, `undefined` when it returns normally, or
 * `'not a VmkitError: …'` for any other throw (so an assertion on the code fails with a useful diff).
 */
export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isCoded(e) ? e.code : `not a VmkitError: ${String(e)}`;
  }
  return undefined;
}

/**
 * Runs `fn`, asserts that it throws a VmkitError with `code`, and returns the error (for checks of its
 * message or details). Throws an assertion error otherwise.
 */
export function expectVmkitError(fn: () => unknown, code: string): CodedError {
  try {
    fn();
  } catch (e) {
    if (isCoded(e) && e.code === code) return e;
    throw new Error(`expected a VmkitError ${code}, got ${String(e)}`);
  }
  throw new Error(`expected a VmkitError ${code}, nothing was thrown`);
}
