/**
 * Failure injection shared by every package's tests: a counter that says "fail now" on chosen calls.
 *
 * A backend, frame allocator or channel under test calls {@link FaultInjector.shouldFail} at each
 * operation that can fail, and fails (returns false, throws its typed error…) when it answers true.
 */
export class FaultInjector {
  private calls = 0;
  private readonly failAt: ReadonlySet<number>;
  private readonly failFrom: number;

  /**
   * @param failAt 1-based call numbers that fail (e.g. `[3]` fails the third call only)
   * @param failFrom every call from this 1-based number on fails (default: never)
   */
  constructor(failAt: Iterable<number> = [], failFrom = Number.POSITIVE_INFINITY) {
    this.failAt = new Set(failAt);
    this.failFrom = failFrom;
  }

  /** An injector that never fails. */
  static never(): FaultInjector {
    return new FaultInjector();
  }

  /** Counts a call and says whether it must fail. */
  shouldFail(): boolean {
    this.calls++;
    return this.failAt.has(this.calls) || this.calls >= this.failFrom;
  }

  /** How many calls were counted. */
  get count(): number {
    return this.calls;
  }
}
