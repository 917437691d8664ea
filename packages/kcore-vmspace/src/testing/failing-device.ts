import type { ChanDevice } from '../chan.js';
import { describe, kfail } from '../errors.js';

/** Decides, call by call, whether an operation fails (e.g. `FaultInjector` of vmkit's tests). */
export interface FailurePolicy {
  /** Counts one call and answers true when it must fail. */
  shouldFail(): boolean;
}

/** When a {@link FailingDevice} fails. Every policy counts only the calls of its own kind. */
export interface FailingDeviceOptions {
  /** Reads that reject with an `Error` ("injected read error"). */
  readError?: FailurePolicy;
  /** Reads that succeed short: half the requested bytes are read and counted. */
  shortRead?: FailurePolicy;
  /** Writes that reject. */
  writeError?: FailurePolicy;
  /** Writes that succeed short (half the bytes). */
  shortWrite?: FailurePolicy;
}

/**
 * A {@link ChanDevice} for tests: forwards to `inner`, except on the calls the policies pick, where it
 * rejects or completes short. Counts what it did. Policies may be replaced at any time.
 */
export class FailingDevice implements ChanDevice {
  readonly name: string;
  readonly inner: ChanDevice;
  options: FailingDeviceOptions;
  /** Calls seen and failures injected. */
  reads = 0;
  writes = 0;
  failures = 0;

  /** @throws KcoreError `BadRequest` unless `inner` is a device (`read`, `write`) and `options` an object */
  constructor(inner: ChanDevice, options: FailingDeviceOptions = {}) {
    const d = inner as unknown as Record<string, unknown> | null;
    if (typeof d !== 'object' || d === null || typeof d.read !== 'function' || typeof d.write !== 'function')
      kfail('BadRequest', 'failing device', `inner ${describe(inner)} is not a ChanDevice`);
    if (typeof options !== 'object' || options === null)
      kfail('BadRequest', 'failing device', `options ${describe(options)} is not an object`);
    this.inner = inner;
    this.options = options;
    this.name = `failing(${inner.name})`;
  }

  async read(buf: Uint8Array, offset: number): Promise<number> {
    this.reads++;
    if (this.options.readError?.shouldFail()) {
      this.failures++;
      throw new Error(`injected read error at offset ${offset}`);
    }
    if (this.options.shortRead?.shouldFail()) {
      this.failures++;
      return this.inner.read(buf.subarray(0, buf.length >>> 1), offset);
    }
    return this.inner.read(buf, offset);
  }

  async write(buf: Uint8Array, offset: number): Promise<number> {
    this.writes++;
    if (this.options.writeError?.shouldFail()) {
      this.failures++;
      throw new Error(`injected write error at offset ${offset}`);
    }
    if (this.options.shortWrite?.shouldFail()) {
      this.failures++;
      return this.inner.write(buf.subarray(0, buf.length >>> 1), offset);
    }
    return this.inner.write(buf, offset);
  }

  async release(): Promise<void> {
    await this.inner.release?.();
  }
}
