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

describe('error assertions', () => {
  class FakeVmkitError extends Error {
    code = 'E_X';
    details = {};
    constructor() {
      super('E_X: boom');
      this.name = 'VmkitError';
    }
  }
  it('reads the code, or says what else happened', async () => {
    const { errorCode, expectVmkitError } = await import('./errors.js');
    expect(errorCode(() => 1)).toBeUndefined();
    expect(
      errorCode(() => {
        throw new FakeVmkitError();
      }),
    ).toBe('E_X');
    expect(
      errorCode(() => {
        throw new TypeError('t');
      }),
    ).toMatch(/^not a VmkitError/);
    expect(
      expectVmkitError(() => {
        throw new FakeVmkitError();
      }, 'E_X').message,
    ).toBe('E_X: boom');
    expect(() => expectVmkitError(() => 0, 'E_X')).toThrow(/nothing was thrown/);
    expect(() =>
      expectVmkitError(() => {
        throw new FakeVmkitError();
      }, 'E_Y'),
    ).toThrow(/expected a VmkitError E_Y/);
  });
});
