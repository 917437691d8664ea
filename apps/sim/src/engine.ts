import { simFail } from './errors.js';

/** The callback of a timed event: called with the argument it was posted with. */
export type EventFn<T> = (arg: T) => void;

/**
 * A discrete-event engine in simulated time (nanoseconds, a Number). Events sit in a binary heap
 * ordered by (time, posting order), so two runs that post the same events see them in the same order;
 * nothing here reads the wall clock. Each event lives in a slot (time and sequence number in
 * `Float64Array`s, callback and argument in arrays) and the heap is an `Int32Array` of slot numbers, so
 * sifting moves one integer per level; slots are reused, and posting and popping allocate nothing once
 * the arrays have grown. (Measured against four parallel arrays moved per level, same run: 199 vs
 * 286 ns per event with 1000 pending, 131 vs 186 ns with 16, on a loaded 2-core machine.)
 *
 * Asynchronous work (a fault handler returning a promise) is joined to simulated time through
 * {@link track}: the engine lets the promise's continuations run (they are microtasks) after the
 * event that may have resolved them and before the next event, so the order stays deterministic.
 */
export class EventEngine {
  /** The current simulated time in ns. */
  now = 0;
  /** Events processed so far. */
  processed = 0;
  private times = new Float64Array(256);
  private seqs = new Float64Array(256);
  private fns: (EventFn<never> | undefined)[] = [];
  private args: unknown[] = [];
  private heap = new Int32Array(256);
  private freeSlots: number[] = [];
  private slots = 0;
  private size = 0;
  private seq = 0;
  private pending = 0;
  private drain = false;
  private stopped = false;

  /** Events waiting. */
  get queued(): number {
    return this.size;
  }

  /** Promises tracked and not settled yet. */
  get inFlight(): number {
    return this.pending;
  }

  /**
   * Posts `fn(arg)` at simulated time `time` (≥ now; an earlier time is treated as now).
   */
  post<T>(time: number, fn: EventFn<T>, arg: T): void {
    const t = Math.max(time, this.now);
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.slots++;
      if (slot >= this.times.length) this.grow();
    }
    const s = this.seq++;
    const times = this.times;
    const seqs = this.seqs;
    times[slot] = t;
    seqs[slot] = s;
    this.fns[slot] = fn as EventFn<never>;
    this.args[slot] = arg;
    const h = this.heap;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = h[p]!;
      const pt = times[ps]!;
      if (pt < t || (pt === t && seqs[ps]! < s)) break;
      h[i] = ps;
      i = p;
    }
    h[i] = slot;
  }

  /**
   * Tracks a promise whose continuations are part of the simulation; `then`/`catch` receive its
   * outcome inside the event loop (never after the loop ended).
   */
  track<T>(p: Promise<T>, then: (value: T) => void, fail: (err: unknown) => void): void {
    this.pending++;
    this.drain = true;
    p.then(
      (v) => {
        this.pending--;
        then(v);
      },
      (e: unknown) => {
        this.pending--;
        fail(e);
      },
    );
  }

  /** Asks the loop to let microtasks run after the current event (a device completed a request). */
  wantDrain(): void {
    this.drain = true;
  }

  /** Stops {@link run} after the current event. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Runs one event if there is one (synchronously; tracked promises' continuations may be pending).
   * @returns false when the queue is empty
   */
  step(): boolean {
    if (this.size === 0) return false;
    const top = this.heap[0]!;
    const fn = this.fns[top]!;
    const arg = this.args[top];
    this.now = this.times[top]!;
    this.fns[top] = undefined;
    this.args[top] = undefined;
    this.freeSlots.push(top);
    this.popTop();
    this.processed++;
    (fn as EventFn<unknown>)(arg);
    return true;
  }

  /**
   * Runs events until the queue is empty and no tracked promise is pending, or `until` (simulated ns)
   * is passed, or {@link stop} is called. `onProgress` is called every `progressEvery` events.
   *
   * @throws SimError `E_DEADLOCK` when tracked promises are pending but no event can ever settle them
   */
  async run(until = Number.POSITIVE_INFINITY, onProgress?: () => void, progressEvery = 4096): Promise<void> {
    this.stopped = false;
    let n = 0;
    for (;;) {
      if (this.drain) {
        this.drain = false;
        await macrotask();
      }
      if (this.stopped) return;
      if (this.size === 0) {
        if (this.pending === 0) return;
        await macrotask();
        if (this.size === 0 && !this.drain) {
          simFail('E_DEADLOCK', `${this.pending} operation(s) wait and no event is scheduled`, {
            pending: this.pending,
          });
        }
        continue;
      }
      if (this.times[this.heap[0]!]! > until) return;
      this.step();
      if (onProgress !== undefined && ++n === progressEvery) {
        n = 0;
        onProgress();
      }
    }
  }

  /** Removes the heap's root and restores the heap (the root's slot was already released). */
  private popTop(): void {
    const last = --this.size;
    if (last === 0) return;
    const h = this.heap;
    const times = this.times;
    const seqs = this.seqs;
    const x = h[last]!;
    const xt = times[x]!;
    const xs = seqs[x]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= last) break;
      const r = c + 1;
      if (r < last) {
        const rs = h[r]!;
        const cs = h[c]!;
        if (times[rs]! < times[cs]! || (times[rs] === times[cs] && seqs[rs]! < seqs[cs]!)) c = r;
      }
      const cs = h[c]!;
      const ct = times[cs]!;
      if (xt < ct || (xt === ct && xs < seqs[cs]!)) break;
      h[i] = cs;
      i = c;
    }
    h[i] = x;
  }

  private grow(): void {
    const n = this.times.length * 2;
    const t = new Float64Array(n);
    t.set(this.times);
    this.times = t;
    const q = new Float64Array(n);
    q.set(this.seqs);
    this.seqs = q;
    const h = new Int32Array(n);
    h.set(this.heap);
    this.heap = h;
  }
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
