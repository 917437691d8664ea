import type { VirtAddr } from '@vmkit/addr';
import { errorCode, expectVmkitError } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';
import { ByteMapMmapper } from './byte-map.js';
import type { ChunkStateMmapper } from './chunk-state.js';
import { MapState, TRANSITIONS } from './map-state.js';
import { Mmapper } from './mmapper.js';
import { MmapAnnotation, MmapStrategy } from './strategy.js';
import { RecordingOs, type RecordingOsOptions } from './testing.js';
import { TwoLevelMmapper } from './two-level.js';

const CHUNK = 0x40_0000;
const PAGES_PER_CHUNK = 1024;
const TEST = MmapStrategy.TEST;
const ANNO = MmapAnnotation.test('mmapper.test.ts', 1);
const va = (n: number): VirtAddr => n as VirtAddr;
const { Unmapped: U, Quarantined: Q, Mapped: M, Protected: P } = MapState;

type Make = (os: RecordingOs) => ChunkStateMmapper;
const IMPLS: [string, Make, number][] = [
  // name, constructor, a chunk-aligned test address (MMTk's *_TEST_REGION)
  ['ByteMapMmapper', (os) => new ByteMapMmapper(os), 0x6000_0000],
  ['TwoLevelMmapper', (os) => new TwoLevelMmapper(os), 0x7_ff80_0000], // slab 0's last two chunks: tests cross into slab 1
];

function setup<T extends ChunkStateMmapper>(make: (os: RecordingOs) => T, options: RecordingOsOptions = {}) {
  const os = new RecordingOs(options);
  return { os, m: make(os) };
}

function statesOf(m: ChunkStateMmapper, base: number, chunks: number): MapState[] {
  return Array.from({ length: chunks }, (_, i) => m.mapState(va(base + i * CHUNK)));
}

/** Puts chunk `c` (at `base + c × CHUNK`) into `state` through the public API. */
function force(m: ChunkStateMmapper, addr: number, state: MapState): void {
  if (state === Q) m.quarantineAddressRange(va(addr), PAGES_PER_CHUNK, TEST, ANNO);
  if (state === M || state === P) m.ensureMapped(va(addr), PAGES_PER_CHUNK, TEST, ANNO);
  if (state === P) m.protect(va(addr), PAGES_PER_CHUNK);
}

describe.each(IMPLS)('%s: MMTk test cases, translated', (_name, make, FIXED) => {
  it('ensure_mapped_1page', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED), 1, TEST, ANNO);
    expect(statesOf(m, FIXED, 2)).toEqual([M, U]);
    expect(os.describeCalls()).toEqual([
      `dzmmapNoreplace 0x${FIXED.toString(16)} +4 MiB ReadWrite mmtk:test:mmapper.test.ts:1`,
    ]);
  });

  it('ensure_mapped_1chunk', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED), PAGES_PER_CHUNK, TEST, ANNO);
    expect(statesOf(m, FIXED, 2)).toEqual([M, U]);
    expect(os.calls).toHaveLength(1);
  });

  it('ensure_mapped_more_than_1chunk: 1.5 chunks map exactly two chunks', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED), PAGES_PER_CHUNK * 1.5, TEST, ANNO);
    expect(statesOf(m, FIXED, 3)).toEqual([M, M, U]);
    expect(os.calls.map((c) => [c.call, c.start, c.bytes])).toEqual([
      ['dzmmapNoreplace', FIXED, CHUNK],
      ['dzmmapNoreplace', FIXED + CHUNK, CHUNK],
    ]);
  });

  it('protect: one of two chunks', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED), PAGES_PER_CHUNK * 2, TEST, ANNO);
    m.protect(va(FIXED), PAGES_PER_CHUNK);
    expect(statesOf(m, FIXED, 2)).toEqual([P, M]);
    expect(m.isMappedAddress(va(FIXED))).toBe(false);
    expect(m.isMappedAddress(va(FIXED + CHUNK))).toBe(true);
    expect(os.calls.at(-1)).toMatchObject({ call: 'mprotect', start: FIXED, bytes: CHUNK, prot: 'NoAccess' });
    expect(os.regionAt(va(FIXED))?.prot).toBe('NoAccess');
  });

  it('ensure_mapped_on_protected_chunks: unprotects with the strategy protection', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED), PAGES_PER_CHUNK * 2, TEST, ANNO);
    m.protect(va(FIXED), PAGES_PER_CHUNK);
    m.ensureMapped(va(FIXED), PAGES_PER_CHUNK * 2, MmapStrategy.new(false, 'ReadWriteExec'), ANNO);
    expect(statesOf(m, FIXED, 2)).toEqual([M, M]);
    expect(os.calls.at(-1)).toMatchObject({
      call: 'munprotect',
      start: FIXED,
      bytes: CHUNK,
      prot: 'ReadWriteExec',
    });
    expect(os.calls).toHaveLength(4);
  });
});

describe.each(IMPLS)('%s: the transition table', (_name, make, FIXED) => {
  const ops = ['ensureMapped', 'quarantine', 'protect', 'markAsMapped'] as const;
  for (const op of ops) {
    for (const from of [U, Q, M, P] as MapState[]) {
      const t = TRANSITIONS[op][from];
      it(`${op} from ${['Unmapped', 'Quarantined', 'Mapped', 'Protected'][from]}: ${t.call ?? 'no call'} -> ${t.next ?? 'refused'}`, () => {
        const { os, m } = setup(make);
        force(m, FIXED, from);
        const before = os.calls.length;
        const run = (): void => {
          if (op === 'ensureMapped') m.ensureMapped(va(FIXED), 1, TEST, ANNO);
          else if (op === 'quarantine') m.quarantineAddressRange(va(FIXED), 1, TEST, ANNO);
          else if (op === 'protect') m.protect(va(FIXED), 1);
          else m.markAsMapped(va(FIXED), 1);
        };
        if (t.next === undefined) {
          expectVmkitError(run, 'E_BAD_TRANSITION');
          expect(m.mapState(va(FIXED))).toBe(from);
          expect(os.calls.length).toBe(before);
          return;
        }
        run();
        expect(m.mapState(va(FIXED))).toBe(t.next);
        expect(m.isMappedAddress(va(FIXED + 0x1000))).toBe(t.next === M);
        const made = os.calls.slice(before).map((c) => c.call);
        expect(made).toEqual(t.call === undefined ? [] : [t.call]);
      });
    }
  }

  it('the table is MMTk 0.31: quarantine of a Mapped chunk stays Mapped; protect refuses Unmapped/Quarantined', () => {
    expect(TRANSITIONS.quarantine[M]).toEqual({ call: undefined, next: M });
    expect(TRANSITIONS.ensureMapped[Q]).toEqual({ call: 'dzmmap', next: M });
    expect(TRANSITIONS.protect[U].next).toBeUndefined();
    expect(TRANSITIONS.protect[Q].next).toBeUndefined();
    expect(TRANSITIONS.quarantine[P].next).toBeUndefined();
  });
});

describe.each(IMPLS)('%s: bulk quarantine, OS errors, marks', (_name, make, FIXED) => {
  it('quarantines each run of Unmapped chunks with one call and leaves the others alone', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED + 2 * CHUNK), 1, TEST, ANNO); // chunk 2 Mapped
    m.quarantineAddressRange(va(FIXED + 4 * CHUNK), 1, TEST, ANNO); // chunk 4 Quarantined
    const n = os.calls.length;
    m.quarantineAddressRange(va(FIXED), 8 * PAGES_PER_CHUNK, MmapStrategy.new(true, 'ReadWrite'), ANNO);
    expect(os.calls.slice(n).map((c) => [c.call, c.start, c.bytes / CHUNK, c.prot, c.hugePage])).toEqual([
      ['mmapNoreserve', FIXED, 2, 'NoAccess', 'TransparentHugePages'],
      ['mmapNoreserve', FIXED + 3 * CHUNK, 1, 'NoAccess', 'TransparentHugePages'],
      ['mmapNoreserve', FIXED + 5 * CHUNK, 3, 'NoAccess', 'TransparentHugePages'],
    ]);
    expect(statesOf(m, FIXED, 9)).toEqual([Q, Q, M, Q, Q, Q, Q, Q, U]);
    // quarantine then map: dzmmap replaces the reservation
    m.ensureMapped(va(FIXED), 1, TEST, ANNO);
    expect(os.calls.at(-1)).toMatchObject({ call: 'dzmmap', start: FIXED, errno: undefined });
    expect(os.regionAt(va(FIXED))).toMatchObject({ prot: 'ReadWrite', noReserve: false });
    expect(os.regionAt(va(FIXED + CHUNK))).toMatchObject({ prot: 'NoAccess', noReserve: true });
  });

  it('an OS error in ensureMapped: earlier chunks keep their new state, the failing one its old', () => {
    const { os, m } = setup(make, { fail: (c) => (c.seq === 2 ? 'ENOMEM' : undefined) });
    const e = expectVmkitError(() => m.ensureMapped(va(FIXED), 3 * PAGES_PER_CHUNK, TEST, ANNO), 'E_OS');
    expect(e.details).toMatchObject({
      call: 'dzmmapNoreplace',
      start: FIXED + CHUNK,
      bytes: CHUNK,
      errno: 'ENOMEM',
    });
    expect(e.message).toContain('ENOMEM');
    expect(statesOf(m, FIXED, 3)).toEqual([M, U, U]);
    expect(os.calls).toHaveLength(2); // stopped at the failure
    m.ensureMapped(va(FIXED), 3 * PAGES_PER_CHUNK, TEST, ANNO); // the OS recovers: the rest is mapped
    expect(statesOf(m, FIXED, 3)).toEqual([M, M, M]);
    expect(os.calls.map((c) => c.start)).toEqual([FIXED, FIXED + CHUNK, FIXED + CHUNK, FIXED + 2 * CHUNK]);
  });

  it('an OS error in quarantine stops at that run; a real EEXIST from the OS comes through', () => {
    const { os, m } = setup(make);
    os.dzmmap(va(FIXED + 3 * CHUNK), CHUNK, TEST, MmapAnnotation.misc('someone else'));
    m.markAsMapped(va(FIXED + CHUNK), CHUNK);
    const e = expectVmkitError(
      () => m.quarantineAddressRange(va(FIXED), 5 * PAGES_PER_CHUNK, TEST, ANNO),
      'E_OS',
    );
    expect(e.details).toMatchObject({
      call: 'mmapNoreserve',
      start: FIXED + 2 * CHUNK,
      bytes: 3 * CHUNK,
      errno: 'EEXIST',
    });
    expect(statesOf(m, FIXED, 5)).toEqual([Q, M, U, U, U]);
  });

  it('an OS error in protect: earlier chunks stay Protected, the failing one Mapped', () => {
    const { os, m } = setup(make, {
      fail: (c) => (c.call === 'mprotect' && c.start === FIXED + CHUNK ? 'EACCES' : undefined),
    });
    m.ensureMapped(va(FIXED), 3 * PAGES_PER_CHUNK, TEST, ANNO);
    const e = expectVmkitError(() => m.protect(va(FIXED), 3 * PAGES_PER_CHUNK), 'E_OS');
    expect(e.details).toMatchObject({ call: 'mprotect', start: FIXED + CHUNK, errno: 'EACCES' });
    expect(statesOf(m, FIXED, 3)).toEqual([P, M, M]);
    expect(os.callsOf('mprotect')).toHaveLength(2);
  });

  it('an OS interface that throws: the error passes through, the chunk keeps its state, the lock is released', () => {
    const os = new RecordingOs();
    os.dzmmapNoreplace = () => {
      throw new Error('kernel bug');
    };
    const m = make(os);
    expect(() => m.ensureMapped(va(FIXED), 1, TEST, ANNO)).toThrow('kernel bug');
    expect(m.mapState(va(FIXED))).toBe(U);
    m.quarantineAddressRange(va(FIXED), 1, TEST, ANNO); // would block forever if the lock were still held
    expect(m.mapState(va(FIXED))).toBe(Q);
  });

  it('eagerlyMmapAllSpaces takes any array-like of addresses (a Float64Array too)', () => {
    const { os, m } = setup(make);
    m.eagerlyMmapAllSpaces(
      new Float64Array([FIXED, FIXED + 2 * CHUNK]),
      MmapStrategy.new(true, 'ReadWriteExec'),
      ANNO,
    );
    expect(statesOf(m, FIXED, 3)).toEqual([M, M, U]);
    expect(os.calls.map((c) => [c.prot, c.hugePage])).toEqual([
      ['ReadWriteExec', 'TransparentHugePages'],
      ['ReadWriteExec', 'TransparentHugePages'],
    ]);
    m.eagerlyMmapAllSpaces([]); // nothing to map
    expect(os.calls).toHaveLength(2);
  });

  it('refuses before any call: protect over an Unmapped chunk, quarantine over a Protected one', () => {
    const { os, m } = setup(make);
    m.ensureMapped(va(FIXED), 2 * PAGES_PER_CHUNK, TEST, ANNO);
    const n = os.calls.length;
    const e = expectVmkitError(() => m.protect(va(FIXED), 3 * PAGES_PER_CHUNK), 'E_BAD_TRANSITION');
    expect(e.message).toContain(`0x${(FIXED + 2 * CHUNK).toString(16)} is Unmapped`);
    expect(statesOf(m, FIXED, 3)).toEqual([M, M, U]);
    m.protect(va(FIXED + CHUNK), 1);
    expectVmkitError(
      () => m.quarantineAddressRange(va(FIXED), 4 * PAGES_PER_CHUNK, TEST, ANNO),
      'E_BAD_TRANSITION',
    );
    expect(statesOf(m, FIXED, 4)).toEqual([M, P, U, U]);
    expect(os.calls.length).toBe(n + 1);
  });

  it('markAsMapped makes no call and rounds out to chunks (zero bytes at an unaligned start: its chunk)', () => {
    const { os, m } = setup(make);
    m.markAsMapped(va(FIXED), 0);
    expect(m.mapState(va(FIXED))).toBe(U);
    m.markAsMapped(va(FIXED + 0x1000), 0);
    expect(m.mapState(va(FIXED))).toBe(M);
    m.markAsMapped(va(FIXED + CHUNK + 0x3000), CHUNK);
    expect(statesOf(m, FIXED, 4)).toEqual([M, M, M, U]);
    expect(os.calls).toHaveLength(0);
    m.ensureMapped(va(FIXED), 3 * PAGES_PER_CHUNK, TEST, ANNO);
    expect(os.calls).toHaveLength(0);
  });

  it('eagerlyMmapAllSpaces maps every (start, end) pair, checking the whole map first', () => {
    const { os, m } = setup(make);
    m.eagerlyMmapAllSpaces([FIXED, FIXED + CHUNK, FIXED + 3 * CHUNK, FIXED + 3 * CHUNK + 0x1000]);
    expect(statesOf(m, FIXED, 4)).toEqual([M, U, U, M]);
    expect(os.calls.map((c) => c.annotation)).toEqual(['mmtk:misc:space-map', 'mmtk:misc:space-map']);
    expect(
      expectVmkitError(() => m.eagerlyMmapAllSpaces([FIXED, FIXED + CHUNK, FIXED]), 'E_INVALID').message,
    ).toContain('3 addresses');
    expect(
      expectVmkitError(
        () => m.eagerlyMmapAllSpaces([FIXED + 5 * CHUNK, FIXED + 6 * CHUNK, FIXED + CHUNK, FIXED]),
        'E_RANGE',
      ).message,
    ).toContain('above its end');
    expectVmkitError(
      () => m.eagerlyMmapAllSpaces([FIXED + 5 * CHUNK, FIXED + 6 * CHUNK, FIXED + 1, FIXED + CHUNK]),
      'E_UNALIGNED',
    );
    expectVmkitError(() => m.eagerlyMmapAllSpaces('abcd' as never), 'E_INVALID');
    expect(m.mapState(va(FIXED + 5 * CHUNK))).toBe(U); // the first pair of a bad map was not mapped
    expect(os.calls).toHaveLength(2);
  });

  it('refuses an OS interface that calls back into a state-changing method (would deadlock)', () => {
    const os = new RecordingOs();
    let m: ChunkStateMmapper | undefined;
    const inner = os.dzmmapNoreplace.bind(os);
    os.dzmmapNoreplace = (s, b, st, a) => {
      expect(m?.isMappedAddress(s)).toBe(false); // reads are fine
      m?.ensureMapped(va(s + CHUNK), 1, st, a);
      return inner(s, b, st, a);
    };
    m = make(os);
    expectVmkitError(() => m?.ensureMapped(va(FIXED), 1, TEST, ANNO), 'E_REENTRANT');
    expect(m.mapState(va(FIXED))).toBe(U);
    m.markAsMapped(va(FIXED), 1); // the lock was released
    expect(m.mapState(va(FIXED))).toBe(M);
  });
});

describe.each(IMPLS)(
  '%s: bad input gets a typed error naming the value, and nothing changes',
  (_name, make, FIXED) => {
    const cases: [string, unknown, unknown, string, string][] = [
      ['unaligned start', FIXED + 0x800, 1, 'E_UNALIGNED', '0x'],
      ['negative start', -4096, 1, 'E_RANGE', '-4096'],
      ['start past 2^48', 2 ** 48, 1, 'E_RANGE', '0x1000000000000'],
      ['fractional start', 4096.5, 1, 'E_INVALID', '4096.5'],
      ['NaN start', Number.NaN, 1, 'E_INVALID', 'NaN'],
      ['string start', '0x60000000', 1, 'E_INVALID', '"0x60000000"'],
      ['null start', null, 1, 'E_INVALID', 'null'],
      ['negative pages', FIXED, -1, 'E_RANGE', '-1'],
      ['fractional pages', FIXED, 1.5, 'E_INVALID', '1.5'],
      ['Infinity pages', FIXED, Number.POSITIVE_INFINITY, 'E_INVALID', 'Infinity'],
      ['undefined pages', FIXED, undefined, 'E_INVALID', 'undefined'],
      ['bigint pages', FIXED, 1n, 'E_INVALID', '1n'],
      ['pages past 2^53 bytes', FIXED, 2 ** 41, 'E_OVERFLOW', String(2 ** 41)],
    ];
    for (const [what, start, pages, code, named] of cases) {
      it(what, () => {
        const { os, m } = setup(make);
        const before = statesOf(m, FIXED, 2);
        for (const f of [
          () => m.ensureMapped(start as VirtAddr, pages as number, TEST, ANNO),
          () => m.quarantineAddressRange(start as VirtAddr, pages as number, TEST, ANNO),
          () => m.protect(start as VirtAddr, pages as number),
        ]) {
          expect(expectVmkitError(f, code).message).toContain(named);
        }
        expect(statesOf(m, FIXED, 2)).toEqual(before);
        expect(os.calls).toHaveLength(0);
      });
    }

    it('a bad strategy or annotation is refused even when every chunk is already Mapped', () => {
      const { os, m } = setup(make);
      m.markAsMapped(va(FIXED), CHUNK);
      expectVmkitError(
        () => m.ensureMapped(va(FIXED), 1, { hugePage: 'Yes', prot: 'ReadWrite' } as never, ANNO),
        'E_INVALID',
      );
      expectVmkitError(() => m.ensureMapped(va(FIXED), 1, TEST, { kind: 'Space' } as never), 'E_INVALID');
      expectVmkitError(() => m.quarantineAddressRange(va(FIXED), 1, undefined as never, ANNO), 'E_INVALID');
      expect(os.calls).toHaveLength(0);
    });

    it('mapState takes any address of the space; it checks it', () => {
      const { m } = setup(make);
      m.markAsMapped(va(FIXED), 1);
      expect(m.mapState(va(FIXED + 0x12345))).toBe(M);
      expectVmkitError(() => m.mapState(va(-1)), 'E_RANGE');
      expectVmkitError(() => m.mapState(va(m.mappableBytes)), 'E_RANGE');
      expectVmkitError(() => m.mapState('0' as never), 'E_INVALID');
    });

    it('isMappedAddress answers false for anything that is not an address of the space, never throws', () => {
      const { m } = setup(make);
      m.markAsMapped(va(0), CHUNK);
      expect(m.isMappedAddress(va(0x1000))).toBe(true);
      for (const bad of [
        -1,
        0.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        2 ** 48,
        2 ** 60,
        '4096',
        null,
        undefined,
        {},
      ]) {
        expect(m.isMappedAddress(bad as VirtAddr)).toBe(false);
      }
    });

    it('markAsMapped checks bytes (not pages)', () => {
      const { m } = setup(make);
      expect(expectVmkitError(() => m.markAsMapped(va(FIXED), -5), 'E_RANGE').message).toContain('bytes -5');
      expectVmkitError(() => m.markAsMapped(va(FIXED + 1), 5), 'E_UNALIGNED');
      expect(m.mapState(va(FIXED))).toBe(U);
    });

    it('rejects a bad OS interface at construction', () => {
      expect(errorCode(() => make({} as RecordingOs))).toBe('E_INVALID');
      expect(errorCode(() => make(null as unknown as RecordingOs))).toBe('E_INVALID');
    });
  },
);

describe('TwoLevelMmapper: the 48-bit space', () => {
  it('maps in the higher half and refuses a range across the canonical hole', () => {
    const { os, m } = setup((o) => new TwoLevelMmapper(o));
    const kernel = va(2 ** 48 - 2 * CHUNK); // 0xffffffffff800000
    m.ensureMapped(kernel, 2 * PAGES_PER_CHUNK, TEST, ANNO);
    expect(m.isMappedAddress(va(2 ** 48 - 1))).toBe(true);
    expect(os.describeCalls().map((l) => l.split(' ')[1])).toEqual([
      '0xffffffffff800000',
      '0xffffffffffc00000',
    ]);
    const e = expectVmkitError(
      () => m.ensureMapped(va(2 ** 47 - CHUNK), 2 * PAGES_PER_CHUNK, TEST, ANNO),
      'E_NONCANONICAL',
    );
    expect(e.message).toContain('0x7fffffc00000');
    expect(m.mapState(va(2 ** 47 - CHUNK))).toBe(U);
    m.ensureMapped(va(2 ** 47 - CHUNK), PAGES_PER_CHUNK, TEST, ANNO); // ending exactly at the hole is fine
    expect(m.isMappedAddress(va(2 ** 47 - 1))).toBe(true);
  });

  it('a 1 TiB quarantine is one OS call and allocates no slab (whole slabs hold a uniform state)', () => {
    const { os, m } = setup((o) => new TwoLevelMmapper(o));
    const heap = va(0x200_0000_0000); // 2 TiB, slab-aligned
    m.quarantineAddressRange(heap, 2 ** 40 / 4096, TEST, MmapAnnotation.space('heap'));
    expect(os.describeCalls()).toEqual(['mmapNoreserve 0x20000000000 +1048576 MiB NoAccess mmtk:space:heap']);
    expect(m.slabCount).toBe(0);
    expect(m.mapState(va(heap + 2 ** 40 - CHUNK))).toBe(Q);
    expect(m.mapState(va(heap + 2 ** 40))).toBe(U);
    m.ensureMapped(va(heap + 5 * CHUNK), 1, TEST, ANNO); // one slab is now needed
    expect(m.slabCount).toBe(1);
    expect(
      m.stateRuns(heap, 8 * PAGES_PER_CHUNK).map((r) => [r.start - heap, r.end - heap, r.state]),
    ).toEqual([
      [0, 5 * CHUNK, Q],
      [5 * CHUNK, 6 * CHUNK, M],
      [6 * CHUNK, 8 * CHUNK, Q],
    ]);
  });

  it('runs cross slab boundaries: one call for a run spanning two slabs', () => {
    const { os, m } = setup((o) => new TwoLevelMmapper(o));
    const slab1 = 2 ** 35;
    m.markAsMapped(va(slab1 - 4 * CHUNK), CHUNK); // slab 0 materialized
    m.markAsMapped(va(slab1 + 4 * CHUNK), CHUNK); // slab 1 materialized
    m.quarantineAddressRange(va(slab1 - 3 * CHUNK), 7 * PAGES_PER_CHUNK, TEST, ANNO);
    expect(os.calls.map((c) => [c.start - slab1, c.bytes / CHUNK])).toEqual([[-3 * CHUNK, 7]]);
    expect(m.slabCount).toBe(2);
  });
});

describe('ByteMapMmapper: a small space', () => {
  it('covers [0, 2^logMappableBytes) and refuses ranges beyond it', () => {
    const { os, m } = setup((o) => new ByteMapMmapper(o, { logMappableBytes: 24 })); // 4 chunks
    expect(m.logMappableBytes).toBe(24);
    m.ensureMapped(va(3 * CHUNK), PAGES_PER_CHUNK, TEST, ANNO);
    const e = expectVmkitError(
      () => m.ensureMapped(va(3 * CHUNK), PAGES_PER_CHUNK + 1, TEST, ANNO),
      'E_RANGE',
    );
    expect(e.message).toContain("mapper's space [0x0, 0x1000000)");
    expectVmkitError(() => m.ensureMapped(va(4 * CHUNK), 0, TEST, ANNO), 'E_RANGE');
    expect(m.isMappedAddress(va(4 * CHUNK))).toBe(false);
    expect(os.calls).toHaveLength(1);
  });

  it('checks its options', () => {
    const os = new RecordingOs();
    expectVmkitError(() => new ByteMapMmapper(os, { logMappableBytes: 21 }), 'E_RANGE');
    expectVmkitError(() => new ByteMapMmapper(os, { logMappableBytes: 41 }), 'E_RANGE');
    expectVmkitError(() => new ByteMapMmapper(os, { logMappableBytes: 30.5 }), 'E_RANGE');
    expectVmkitError(() => new ByteMapMmapper(os, null as never), 'E_INVALID');
    // null is not "no value": a wrong type, named in the message
    for (const bad of [null, '30', true]) {
      const e = expectVmkitError(
        () => new ByteMapMmapper(os, { logMappableBytes: bad as never }),
        'E_INVALID',
      );
      expect(e.message).toContain(`logMappableBytes ${JSON.stringify(bad)} is not a number`);
    }
    expect(new ByteMapMmapper(os).mappableBytes).toBe(2 ** 33);
  });
});

describe('Mmapper.fromShared', () => {
  it('attaches to the same state and lock (in one thread here; see worker.test.ts for threads)', () => {
    for (const make of [
      (o: RecordingOs) => new ByteMapMmapper(o),
      (o: RecordingOs) => new TwoLevelMmapper(o),
    ]) {
      const a = make(new RecordingOs());
      const osB = new RecordingOs();
      const b = Mmapper.fromShared(a.shared, osB);
      expect(b.constructor).toBe(a.constructor);
      a.ensureMapped(va(0x6000_0000), 1, TEST, ANNO);
      expect(b.isMappedAddress(va(0x6000_0000))).toBe(true);
      b.ensureMapped(va(0x6000_0000), 1, TEST, ANNO);
      expect(osB.calls).toHaveLength(0);
    }
  });

  it('refuses what is not a mapper state', () => {
    expectVmkitError(
      () => Mmapper.fromShared(new ArrayBuffer(64) as never, new RecordingOs()),
      'E_BAD_SHARED_STATE',
    );
    expectVmkitError(
      () => Mmapper.fromShared(new SharedArrayBuffer(64), new RecordingOs()),
      'E_BAD_SHARED_STATE',
    );
    expectVmkitError(() => Mmapper.fromShared(undefined as never, new RecordingOs()), 'E_BAD_SHARED_STATE');
    const byteMap = new ByteMapMmapper(new RecordingOs());
    expectVmkitError(
      () => TwoLevelMmapper.fromShared(byteMap.shared, new RecordingOs()),
      'E_BAD_SHARED_STATE',
    );
    expectVmkitError(() => Mmapper.fromShared(byteMap.shared, {} as never), 'E_INVALID');
  });
});
