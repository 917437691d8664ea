import type { VirtAddr } from '@vmkit/addr';
import { describe, expect, it } from 'vitest';
import { MmapAnnotation, MmapStrategy } from './strategy.js';
import { RecordingOs } from './testing.js';

const START = 0x4000_0000 as VirtAddr;
const PAGE = 4096;
const TEST = MmapStrategy.TEST;
const ANNO = MmapAnnotation.test('memory.rs', 1);

// MMTk's util::memory tests, translated to the fake OS (the memory-set OS runs the same cases).
describe('RecordingOs: the memory cases of MMTk', () => {
  it('test_mmap: map twice with replace', () => {
    const os = new RecordingOs();
    expect(os.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(os.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(os.regions()).toHaveLength(1);
    expect(os.munmap(START, PAGE)).toBeUndefined();
    expect(os.regions()).toHaveLength(0);
  });

  it('test_mmap_noreplace: no-replace fails over a mapping with EEXIST', () => {
    const os = new RecordingOs();
    expect(os.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(os.dzmmapNoreplace(START, PAGE, TEST, ANNO)?.errno).toBe('EEXIST');
    expect(os.dzmmapNoreplace((START - PAGE) as VirtAddr, 2 * PAGE, TEST, ANNO)?.errno).toBe('EEXIST'); // partial overlap
    expect(os.dzmmapNoreplace((START + PAGE) as VirtAddr, PAGE, TEST, ANNO)).toBeUndefined(); // next to it is fine
    expect(os.calls.map((c) => c.errno)).toEqual([undefined, 'EEXIST', 'EEXIST', undefined]);
  });

  it('test_mmap_noreserve: quarantine then map', () => {
    const os = new RecordingOs();
    expect(os.mmapNoreserve(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(os.regionAt(START)).toMatchObject({ prot: 'NoAccess', noReserve: true });
    expect(os.dzmmapNoreplace(START, PAGE, TEST, ANNO)?.errno).toBe('EEXIST'); // a reservation is a mapping
    expect(os.dzmmap(START, PAGE, TEST, ANNO)).toBeUndefined();
    expect(os.regionAt(START)).toMatchObject({
      prot: 'ReadWrite',
      noReserve: false,
      annotation: 'mmtk:test:memory.rs:1',
    });
  });

  it('mprotect needs the whole range mapped (ENOMEM over a hole, as Linux), and splits regions', () => {
    const os = new RecordingOs();
    os.dzmmap(START, 4 * PAGE, TEST, ANNO);
    expect(os.mprotect(START, 5 * PAGE)?.errno).toBe('ENOMEM');
    expect(os.mprotect((START + PAGE) as VirtAddr, PAGE)).toBeUndefined();
    expect(os.regions().map((r) => [r.start - START, r.end - START, r.prot])).toEqual([
      [0, PAGE, 'ReadWrite'],
      [PAGE, 2 * PAGE, 'NoAccess'],
      [2 * PAGE, 4 * PAGE, 'ReadWrite'],
    ]);
    expect(os.munprotect((START + PAGE) as VirtAddr, PAGE, 'ReadWriteExec')).toBeUndefined();
    expect(os.regionAt((START + PAGE) as VirtAddr)?.prot).toBe('ReadWriteExec');
  });

  it('refuses a bad range with EINVAL and can fail chosen calls', () => {
    const os = new RecordingOs({ fail: (c) => (c.call === 'mprotect' ? 'EACCES' : undefined) });
    expect(os.dzmmap((START + 1) as VirtAddr, PAGE, TEST, ANNO)?.errno).toBe('EINVAL');
    expect(os.dzmmap(START, 0, TEST, ANNO)?.errno).toBe('EINVAL');
    os.dzmmap(START, PAGE, TEST, ANNO);
    expect(os.mprotect(START, PAGE)?.errno).toBe('EACCES');
    expect(os.regionAt(START)?.prot).toBe('ReadWrite');
    expect(os.describeCalls().at(-1)).toBe('mprotect 0x40000000 +4 KiB NoAccess -> EACCES');
  });
});
