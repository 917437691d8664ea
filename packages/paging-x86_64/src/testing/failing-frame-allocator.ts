import { type PhysAddr, VmkitError } from '@vmkit/addr';
import { PagingErrorCode } from '../errors.js';
import type { FrameAllocator } from '../frame-allocator.js';

/** Decides, call by call, whether an allocation fails (e.g. `FaultInjector` of vmkit's tests). */
export interface FailurePolicy {
  /** Counts one allocation call and answers true when it must fail. */
  shouldFail(): boolean;
}

/**
 * A {@link FrameAllocator} for tests: it forwards to `inner`, except that `allocFrame` and
 * `allocContiguous` throw `E_NOMEM` (with nothing allocated) on the calls `failWhen` picks. Use it to
 * check that your code leaves everything as it was when memory runs out at any step.
 *
 * `failWhen` may be replaced at any time; `undefined` never fails.
 */
export class FailingFrameAllocator implements FrameAllocator {
  /** The current failure policy (`undefined`: never fail). */
  failWhen: FailurePolicy | undefined;
  /** Allocation calls that were made to fail so far. */
  failures = 0;
  private readonly inner: FrameAllocator;

  constructor(inner: FrameAllocator, failWhen?: FailurePolicy) {
    this.inner = inner;
    this.failWhen = failWhen;
  }

  get totalFrames(): number {
    return this.inner.totalFrames;
  }

  get freeFrames(): number {
    return this.inner.freeFrames;
  }

  allocFrame(): PhysAddr {
    this.maybeFail('allocFrame');
    return this.inner.allocFrame();
  }

  allocContiguous(count: number, align: number): PhysAddr {
    this.maybeFail('allocContiguous');
    return this.inner.allocContiguous(count, align);
  }

  incRef(frame: PhysAddr): number {
    return this.inner.incRef(frame);
  }

  decRef(frame: PhysAddr): number {
    return this.inner.decRef(frame);
  }

  freeContiguous(frame: PhysAddr, count: number): void {
    this.inner.freeContiguous(frame, count);
  }

  refCount(frame: PhysAddr): number {
    return this.inner.refCount(frame);
  }

  private maybeFail(call: string): void {
    if (this.failWhen?.shouldFail()) {
      this.failures++;
      throw new VmkitError(PagingErrorCode.E_NOMEM, `${call}: injected allocation failure`, {
        injected: true,
      });
    }
  }
}
