/**
 * Channels: the backing objects of segments (seed 001's `Chan`). A channel is a handle on a device
 * (a file, a zero device, a slow disk…); `dup()` makes another handle on the same device, `close()`
 * drops one, and the device is released when its last handle closes. Reads and writes are async and
 * return byte counts: short reads and writes are possible and callers must check the count.
 *
 * @module
 */
import { describe, KcoreError, kfail } from './errors.js';

/**
 * The device behind channels: what `read`/`write` reach. Implement it for your own backing object and
 * open handles on it with {@link openChan}. Offsets and counts are bytes.
 */
export interface ChanDevice {
  /** A name for messages (e.g. `"memfile(16384)"`). */
  readonly name: string;
  /**
   * Reads up to `buf.length` bytes at byte `offset` into `buf`; resolves to the count read (fewer at
   * the end of the device, 0 past it). May reject with any error (a device error).
   */
  read(buf: Uint8Array, offset: number): Promise<number>;
  /** Writes up to `buf.length` bytes of `buf` at byte `offset`; resolves to the count written. */
  write(buf: Uint8Array, offset: number): Promise<number>;
  /** Called once when the last handle on the device closes (optional). */
  release?(): Promise<void>;
}

/**
 * A handle on a {@link ChanDevice}: the seed's `Chan`. `device` is the identity that the address
 * spaces' page cache is keyed by, so every handle on one device (dup'ed or opened separately) shares
 * one physical page per device page.
 */
export interface Chan {
  /** The device this handle reaches (shared by every dup). */
  readonly device: ChanDevice;
  /** True once this handle was closed. */
  readonly closed: boolean;
  /**
   * Reads into `buf` from byte `offset`; resolves to the count read.
   *
   * @throws KcoreError `Gone` on a closed handle, `BadRequest` for an offset that is not an integer in
   *   `[0, 2^53)`; whatever the device rejects with
   */
  read(buf: Uint8Array, offset: number): Promise<number>;
  /** Writes `buf` at byte `offset`; resolves to the count written. Errors as {@link Chan.read}. */
  write(buf: Uint8Array, offset: number): Promise<number>;
  /**
   * Another handle on the same device (the device stays open until every handle is closed).
   *
   * @throws KcoreError `Gone` on a closed handle
   */
  dup(): Chan;
  /** Closes this handle; the device is released when its last handle closes. Closing twice is a no-op. */
  close(): Promise<void>;
}

/** True when `v` looks like a {@link Chan} (duck-typed: device, read, write, dup, close). */
export function isChan(v: unknown): v is Chan {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return (
    typeof c.read === 'function' &&
    typeof c.write === 'function' &&
    typeof c.dup === 'function' &&
    typeof c.close === 'function' &&
    typeof c.device === 'object' &&
    c.device !== null
  );
}

class OpenCount {
  handles = 1;
}

class Handle implements Chan {
  readonly device: ChanDevice;
  private readonly count: OpenCount;
  private isClosed = false;

  constructor(device: ChanDevice, count: OpenCount) {
    this.device = device;
    this.count = count;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  async read(buf: Uint8Array, offset: number): Promise<number> {
    this.check('read', buf, offset);
    return this.device.read(buf, offset);
  }

  async write(buf: Uint8Array, offset: number): Promise<number> {
    this.check('write', buf, offset);
    return this.device.write(buf, offset);
  }

  dup(): Chan {
    if (this.isClosed) kfail('Gone', 'chan closed', `dup of a closed handle on ${this.device.name}`);
    this.count.handles++;
    return new Handle(this.device, this.count);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    if (--this.count.handles === 0) await this.device.release?.();
  }

  private check(op: string, buf: Uint8Array, offset: number): void {
    if (this.isClosed) kfail('Gone', 'chan closed', `${op} on a closed handle on ${this.device.name}`);
    if (!(buf instanceof Uint8Array))
      kfail('BadRequest', `chan ${op}`, `buffer ${describe(buf)} is not a Uint8Array`, { buf });
    if (!Number.isSafeInteger(offset) || offset < 0)
      kfail('BadRequest', `chan ${op}`, `offset ${describe(offset)} is not an integer in [0, 2^53)`, {
        offset,
      });
  }
}

/** True when `v` has what a {@link ChanDevice} needs: `read` and `write` functions (and a `name`). */
function isDevice(v: unknown): v is ChanDevice {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  return typeof d.read === 'function' && typeof d.write === 'function';
}

/**
 * Opens a first handle on `device`.
 *
 * @throws KcoreError `BadRequest` unless `device` is an object with `read` and `write` functions
 */
export function openChan(device: ChanDevice): Chan {
  if (!isDevice(device))
    kfail('BadRequest', 'open chan', `${describe(device)} is not a ChanDevice (read, write)`);
  return new Handle(device, new OpenCount());
}

/** The error of a device call's bad arguments, or undefined (for devices used without a handle). */
function ioFault(op: string, buf: unknown, offset: unknown): KcoreError | undefined {
  if (!(buf instanceof Uint8Array))
    return new KcoreError('BadRequest', op, `buffer ${describe(buf)} is not a Uint8Array`, { buf });
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    return new KcoreError('BadRequest', op, `offset ${describe(offset)} is not an integer in [0, 2^53)`, {
      offset,
    });
  return undefined;
}

/**
 * A file held in memory: reads past its end are short, writes past its end grow it (up to
 * `maxSize`, after which writes are short).
 */
export class MemoryFile implements ChanDevice {
  readonly name: string;
  /** The largest size writes may grow the file to (default 1 GiB). */
  readonly maxSize: number;
  private data: Uint8Array;
  private len: number;
  /** Reads and writes served (for tests and statistics). */
  reads = 0;
  writes = 0;
  /** True after the last handle closed. */
  released = false;

  /**
   * @param contents the initial bytes (copied), or a size in bytes of zeros
   * @param maxSize how far writes may grow the file
   */
  constructor(contents: Uint8Array | number, maxSize = 1 << 30) {
    if (typeof maxSize !== 'number' || !Number.isSafeInteger(maxSize) || maxSize < 0 || maxSize > 2 ** 32)
      kfail('BadRequest', 'memfile', `maxSize ${describe(maxSize)} is not an integer in [0, 2^32]`);
    if (typeof contents === 'number') {
      if (!Number.isSafeInteger(contents) || contents < 0 || contents > maxSize)
        kfail('BadRequest', 'memfile', `size ${describe(contents)} is not an integer in [0, ${maxSize}]`);
    } else if (!(contents instanceof Uint8Array)) {
      kfail('BadRequest', 'memfile', `contents ${describe(contents)} is not a Uint8Array or a size`);
    }
    this.data = typeof contents === 'number' ? new Uint8Array(contents) : contents.slice();
    this.len = this.data.length;
    this.maxSize = maxSize;
    this.name = `memfile(${this.len})`;
  }

  /** Current size in bytes. */
  get size(): number {
    return this.len;
  }

  /** A copy of the file's bytes. */
  bytes(): Uint8Array {
    return this.data.slice(0, this.len);
  }

  /** @throws KcoreError `BadRequest` (a rejection) for a bad buffer or offset */
  read(buf: Uint8Array, offset: number): Promise<number> {
    const bad = ioFault('memfile read', buf, offset);
    if (bad !== undefined) return Promise.reject(bad);
    this.reads++;
    const n = Math.max(0, Math.min(buf.length, this.len - offset));
    if (n > 0) buf.set(this.data.subarray(offset, offset + n));
    return Promise.resolve(n);
  }

  /** @throws KcoreError `BadRequest` (a rejection) for a bad buffer or offset */
  write(buf: Uint8Array, offset: number): Promise<number> {
    const bad = ioFault('memfile write', buf, offset);
    if (bad !== undefined) return Promise.reject(bad);
    this.writes++;
    const end = Math.min(offset + buf.length, this.maxSize);
    const n = Math.max(0, end - offset);
    if (n === 0) return Promise.resolve(0);
    if (end > this.data.length) {
      const grown = new Uint8Array(Math.min(this.maxSize, Math.max(end, this.data.length * 2)));
      grown.set(this.data.subarray(0, this.len));
      this.data = grown;
    }
    this.data.set(buf.subarray(0, n), offset);
    if (end > this.len) this.len = end;
    return Promise.resolve(n);
  }

  release(): Promise<void> {
    this.released = true;
    return Promise.resolve();
  }
}

/** `/dev/zero`: reads give zeros (always the full count), writes are accepted and discarded. */
export class ZeroDevice implements ChanDevice {
  readonly name = 'zero';

  /** @throws KcoreError `BadRequest` (a rejection) for a bad buffer or offset */
  read(buf: Uint8Array, offset = 0): Promise<number> {
    const bad = ioFault('zero read', buf, offset);
    if (bad !== undefined) return Promise.reject(bad);
    buf.fill(0);
    return Promise.resolve(buf.length);
  }

  /** @throws KcoreError `BadRequest` (a rejection) for a bad buffer or offset */
  write(buf: Uint8Array, offset = 0): Promise<number> {
    const bad = ioFault('zero write', buf, offset);
    if (bad !== undefined) return Promise.reject(bad);
    return Promise.resolve(buf.length);
  }
}

/**
 * Simulated time, injected: the package never uses wall-clock timers. `sleep(delay)` resolves when the
 * clock has advanced by `delay` units past its current time (a discrete-event kernel implements it with
 * its event queue; tests use {@link ManualClock}).
 */
export interface Clock {
  /** The current simulated time. */
  now(): number;
  /** Resolves once the simulated time reaches `now() + delay`. */
  sleep(delay: number): Promise<void>;
}

/**
 * A {@link Clock} moved by hand: `advance(d)` (or `runAll()`) resolves the sleepers that became due,
 * in time order (ties in the order they slept).
 */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private waiting: { at: number; seq: number; wake: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(delay: number): Promise<void> {
    if (!(typeof delay === 'number' && delay >= 0 && Number.isFinite(delay)))
      kfail('BadRequest', 'clock sleep', `delay ${describe(delay)} is not a finite number ≥ 0`);
    return new Promise<void>((wake) => {
      this.waiting.push({ at: this.t + delay, seq: this.seq++, wake });
    });
  }

  /** Sleepers not yet woken. */
  get pending(): number {
    return this.waiting.length;
  }

  /**
   * Moves time forward by `delay` and wakes every sleeper due by then, in time order, letting the
   * woken code run (until it settles or sleeps again) before the next wake-up, so that chains of sleeps
   * inside the window run too.
   */
  async advance(delay: number): Promise<void> {
    if (!(typeof delay === 'number' && delay >= 0 && Number.isFinite(delay)))
      kfail('BadRequest', 'clock advance', `delay ${describe(delay)} is not a finite number ≥ 0`);
    const target = this.t + delay;
    for (;;) {
      await flushMicrotasks();
      this.waiting.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.waiting[0];
      if (next === undefined || next.at > target) break;
      this.waiting.shift();
      this.t = next.at;
      next.wake();
    }
    this.t = target;
    await flushMicrotasks();
  }

  /** Advances until no sleeper is left (at most `limit` wake-ups). */
  async runAll(limit = 1_000_000): Promise<void> {
    if (!(typeof limit === 'number' && Number.isSafeInteger(limit) && limit >= 0))
      kfail('BadRequest', 'clock run', `limit ${describe(limit)} is not an integer ≥ 0`);
    for (let i = 0; i < limit; i++) {
      await flushMicrotasks();
      this.waiting.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.waiting.shift();
      if (next === undefined) return;
      this.t = Math.max(this.t, next.at);
      next.wake();
    }
  }
}

/** Lets every pending promise continuation run (one event-loop turn: not a timer, no wall-clock time). */
function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Latencies of a {@link SlowDevice}, in the clock's units. */
export interface SlowDeviceOptions {
  /** Simulated time a read takes (default 0). */
  readLatency?: number;
  /** Simulated time a write takes (default 0). */
  writeLatency?: number;
}

/**
 * A device whose reads and writes complete after a latency in simulated time: the data moves when the
 * clock reaches the completion time (so a kernel can schedule other work meanwhile).
 */
export class SlowDevice implements ChanDevice {
  readonly name: string;
  readonly inner: ChanDevice;
  readonly clock: Clock;
  readonly readLatency: number;
  readonly writeLatency: number;

  /**
   * @throws KcoreError `BadRequest` unless `inner` is a device, `clock` a {@link Clock} (`now`, `sleep`)
   *   and the latencies finite numbers ≥ 0
   */
  constructor(inner: ChanDevice, clock: Clock, options: SlowDeviceOptions = {}) {
    if (!isDevice(inner)) kfail('BadRequest', 'slow device', `inner ${describe(inner)} is not a ChanDevice`);
    const ck = clock as unknown as Record<string, unknown> | null;
    if (
      typeof ck !== 'object' ||
      ck === null ||
      typeof ck.sleep !== 'function' ||
      typeof ck.now !== 'function'
    )
      kfail('BadRequest', 'slow device', `clock ${describe(clock)} is not a Clock (now, sleep)`);
    if (typeof options !== 'object' || options === null)
      kfail('BadRequest', 'slow device', `options ${describe(options)} is not an object`);
    const rl = options.readLatency ?? 0;
    const wl = options.writeLatency ?? 0;
    for (const [what, v] of [
      ['read latency', rl],
      ['write latency', wl],
    ] as const) {
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
        kfail('BadRequest', 'slow device', `${what} ${describe(v)} is not a finite number ≥ 0`);
    }
    this.inner = inner;
    this.clock = clock;
    this.readLatency = rl;
    this.writeLatency = wl;
    this.name = `slow(${inner.name})`;
  }

  async read(buf: Uint8Array, offset: number): Promise<number> {
    await this.clock.sleep(this.readLatency);
    return this.inner.read(buf, offset);
  }

  async write(buf: Uint8Array, offset: number): Promise<number> {
    await this.clock.sleep(this.writeLatency);
    return this.inner.write(buf, offset);
  }

  async release(): Promise<void> {
    await this.inner.release?.();
  }
}
