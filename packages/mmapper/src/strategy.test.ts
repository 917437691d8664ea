import { expectVmkitError } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { formatMmapAnnotation, MmapAnnotation, MmapStrategy, protectionToNativeFlags } from './strategy.js';

describe('MmapAnnotation', () => {
  it("displays as MMTk's Display impl does", () => {
    expect(formatMmapAnnotation(MmapAnnotation.space('immix'))).toBe('mmtk:space:immix');
    expect(formatMmapAnnotation(MmapAnnotation.sideMeta('immix', 'mark'))).toBe('mmtk:sidemeta:immix:mark');
    expect(formatMmapAnnotation(MmapAnnotation.test('memory.rs', 42))).toBe('mmtk:test:memory.rs:42');
    expect(formatMmapAnnotation(MmapAnnotation.misc('vm'))).toBe('mmtk:misc:vm');
    expect(formatMmapAnnotation({ kind: 'Space', name: 'los' })).toBe('mmtk:space:los'); // plain objects too
  });

  it('rejects what is not an annotation, naming it', () => {
    expect(
      expectVmkitError(() => MmapAnnotation.space(3 as unknown as string), 'E_INVALID').message,
    ).toContain('name 3 that is not a string');
    // The field's own value is named, not its JSON (NaN would print as null there).
    expect(
      expectVmkitError(() => MmapAnnotation.misc(Number.NaN as unknown as string), 'E_INVALID').message,
    ).toContain('name NaN that is not a string');
    expect(expectVmkitError(() => MmapAnnotation.test('f', 1.5), 'E_INVALID').message).toContain(
      'line 1.5 that is not an integer',
    );
    expect(expectVmkitError(() => MmapAnnotation.test('f', -1), 'E_INVALID').message).toContain('line');
    expect(
      expectVmkitError(() => formatMmapAnnotation({ kind: 'X' } as never), 'E_INVALID').message,
    ).toContain('{"kind":"X"}');
    expectVmkitError(() => formatMmapAnnotation(null as never), 'E_INVALID');
    expectVmkitError(() => MmapAnnotation.sideMeta('a', undefined as never), 'E_INVALID');
  });
});

describe('MmapStrategy', () => {
  it("has MMTk's constants and constructor", () => {
    expect(MmapStrategy.INTERNAL_MEMORY).toEqual({ hugePage: 'No', prot: 'ReadWrite' });
    expect(MmapStrategy.SIDE_METADATA).toBe(MmapStrategy.INTERNAL_MEMORY);
    expect(MmapStrategy.TEST).toBe(MmapStrategy.INTERNAL_MEMORY);
    expect(MmapStrategy.new(true, 'ReadWriteExec')).toEqual({
      hugePage: 'TransparentHugePages',
      prot: 'ReadWriteExec',
    });
    expect(MmapStrategy.new(false, 'NoAccess')).toEqual({ hugePage: 'No', prot: 'NoAccess' });
    expect(Object.isFrozen(MmapStrategy.new(false, 'NoAccess'))).toBe(true);
    expectVmkitError(() => MmapStrategy.new(1 as never, 'ReadWrite'), 'E_INVALID');
    expectVmkitError(() => MmapStrategy.new(false, 'RW' as never), 'E_INVALID');
  });

  it('converts protections to POSIX PROT_* bits', () => {
    expect(protectionToNativeFlags('ReadWrite')).toBe(3);
    expect(protectionToNativeFlags('ReadWriteExec')).toBe(7);
    expect(protectionToNativeFlags('NoAccess')).toBe(0);
    expectVmkitError(() => protectionToNativeFlags('rw' as never), 'E_INVALID');
  });
});
