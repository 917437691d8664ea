import { describe, expect, it, vi } from 'vitest';
import { fail, isVmkitError, VMKIT_ERROR_BRAND, VmkitError } from './errors.js';

class SubError extends VmkitError<'E_SUB'> {
  readonly extra = 1;
  constructor() {
    super('E_SUB', 'sub');
  }
}

describe('VmkitError', () => {
  it('carries code, message and details', () => {
    const e = new VmkitError('E_X', 'the rule', { v: 1 });
    expect(e.message).toBe('E_X: the rule');
    expect(e.code).toBe('E_X');
    expect(e.details).toEqual({ v: 1 });
    expect(e.name).toBe('VmkitError');
    expect(e).toBeInstanceOf(Error);
    expect(() => fail('E_RANGE', 'x')).toThrow(VmkitError);
  });
  it('isVmkitError filters by code and refuses look-alikes without the brand', () => {
    const e = new SubError();
    expect(isVmkitError(e)).toBe(true);
    expect(isVmkitError(e, 'E_SUB')).toBe(true);
    expect(isVmkitError(e, 'E_OTHER')).toBe(false);
    const lookAlike = Object.assign(new Error('E_X: y'), { name: 'VmkitError', code: 'E_X' });
    expect(isVmkitError(lookAlike)).toBe(false);
    for (const v of [null, undefined, 1, 'E_X', {}]) expect(isVmkitError(v)).toBe(false);
  });
  it('instanceof: the base recognises any vmkit error; a subclass keeps its ordinary meaning', () => {
    const sub = new SubError();
    const base = new VmkitError('E_X', 'x');
    expect(sub instanceof VmkitError).toBe(true);
    expect(sub instanceof SubError).toBe(true);
    expect(base instanceof SubError).toBe(false);
    expect(new Error('x') instanceof VmkitError).toBe(false);
    expect((null as unknown) instanceof VmkitError).toBe(false);
    const u: unknown = sub;
    if (u instanceof SubError) expect(u.extra).toBe(1); // narrowing to the subclass still type-checks
    expect(Object.keys(sub)).not.toContain(String(VMKIT_ERROR_BRAND));
  });
  it('recognises errors thrown by another copy of @vmkit/addr (issue #9)', async () => {
    vi.resetModules();
    const other = (await import('./errors.js')) as typeof import('./errors.js');
    expect(other.VmkitError).not.toBe(VmkitError); // a second, independent copy of the module
    const foreign = new other.VmkitError('E_RANGE', 'from the other copy');
    expect(foreign instanceof Error).toBe(true);
    expect(Object.getPrototypeOf(foreign)).not.toBe(VmkitError.prototype);
    expect(isVmkitError(foreign)).toBe(true);
    expect(isVmkitError(foreign, 'E_RANGE')).toBe(true);
    expect(foreign instanceof VmkitError).toBe(true);
    expect(other.isVmkitError(new VmkitError('E_X', 'x'), 'E_X')).toBe(true);
    expect(new VmkitError('E_X', 'x') instanceof other.VmkitError).toBe(true);
    expect(new SubError() instanceof other.VmkitError).toBe(true);
  });
});
