/**
 * A FIFO async mutex: `run(fn)` starts `fn` once every earlier `run` on the same mutex has settled.
 * Uncontended, `fn` starts at once (no extra promise hop); a waiter is woken by the holder's release,
 * which hands the lock over directly so that later callers queue behind it.
 *
 * @module
 */
export class Mutex {
  private locked = false;
  private readonly waiters: (() => void)[] = [];

  /** Runs `fn` under the mutex and resolves/rejects with its result. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.locked) await new Promise<void>((wake) => this.waiters.push(wake));
    else this.locked = true;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next !== undefined) next();
      else this.locked = false;
    }
  }

  /** Operations waiting (the running one not counted). */
  get waiting(): number {
    return this.waiters.length;
  }
}
