import { expectVmkitError, FaultInjector } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { BitmapFrameAllocator } from '../bitmap-frame-allocator.js';
import { PhysicalMemory } from '../physical-memory.js';
import { FailingFrameAllocator } from './failing-frame-allocator.js';

describe('FailingFrameAllocator', () => {
  it('fails exactly the picked allocation calls with E_NOMEM and allocates nothing then', () => {
    const inner = new BitmapFrameAllocator(new PhysicalMemory(64 * 4096));
    const frames = new FailingFrameAllocator(inner, new FaultInjector([2, 3]));
    const a = frames.allocFrame();
    const free = inner.freeFrames;
    expectVmkitError(() => frames.allocFrame(), 'E_NOMEM');
    expectVmkitError(() => frames.allocContiguous(2, 8192), 'E_NOMEM');
    expect(inner.freeFrames).toBe(free);
    expect(frames.failures).toBe(2);
    const run = frames.allocContiguous(2, 8192);
    expect(run % 8192).toBe(0);
    expect(frames.refCount(a)).toBe(1);
    frames.failWhen = undefined;
    frames.decRef(a);
    frames.freeContiguous(run, 2);
    expect(frames.freeFrames).toBe(frames.totalFrames);
  });
});
