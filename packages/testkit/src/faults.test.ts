import { describe, expect, it } from 'vitest';
import { FaultInjector } from './faults.js';

describe('FaultInjector', () => {
  it('fails exactly the chosen calls', () => {
    const f = new FaultInjector([2, 4]);
    expect([1, 2, 3, 4, 5].map(() => f.shouldFail())).toEqual([false, true, false, true, false]);
    expect(f.count).toBe(5);
  });
  it('fails every call from failFrom on', () => {
    const f = new FaultInjector([], 3);
    expect([1, 2, 3, 4].map(() => f.shouldFail())).toEqual([false, false, true, true]);
    expect(FaultInjector.never().shouldFail()).toBe(false);
  });
});
