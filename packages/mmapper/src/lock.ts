/**
 * A mutex in shared memory (one `Int32Array` word), for transitions serialized across worker threads:
 * the three-state futex mutex (0 free, 1 held, 2 held with waiters) of Drepper's "Futexes Are Tricky",
 * over `Atomics.compareExchange` / `Atomics.wait` / `Atomics.notify`. An uncontended lock/unlock is two
 * atomic operations and no system call. Node allows `Atomics.wait` on the main thread too.
 *
 * @module
 */

/** Acquires the mutex at `words[index]`, blocking (`Atomics.wait`) while another thread holds it. */
export function lockWord(words: Int32Array, index: number): void {
  let c = Atomics.compareExchange(words, index, 0, 1);
  if (c === 0) return;
  do {
    if (c === 2 || Atomics.compareExchange(words, index, 1, 2) !== 0) Atomics.wait(words, index, 2);
    c = Atomics.compareExchange(words, index, 0, 2);
  } while (c !== 0);
}

/** Releases the mutex at `words[index]`, waking one waiter if there is one. */
export function unlockWord(words: Int32Array, index: number): void {
  if (Atomics.sub(words, index, 1) !== 1) {
    Atomics.store(words, index, 0);
    Atomics.notify(words, index, 1);
  }
}
