import type { VirtAddr } from '@vmkit/addr';
import { propertyRuns, testTimeout } from '@vmkit/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteMapMmapper } from './byte-map.js';
import type { ChunkStateMmapper } from './chunk-state.js';
import { isMmapperError } from './errors.js';
import { type MmapAnnotation, MmapStrategy } from './strategy.js';
import { type RecordedCall, RecordingOs } from './testing.js';
import { TwoLevelMmapper } from './two-level.js';

// A reference model written from MMTk 0.31's source, independently of the implementation: a Map from
// chunk index to state (absent = Unmapped) and the OS calls MMTk makes for each operation.
const CHUNK = 2 ** 22;
const PAGE = 4096;
type S = 'U' | 'Q' | 'M' | 'P';
const CODE: Record<S, number> = { U: 0, Q: 1, M: 2, P: 3 };
interface Call {
  call: string;
  start: number;
  bytes: number;
  prot: string;
}
type Op =
  | { kind: 'ensure' | 'quarantine'; start: number; pages: number; prot: 'ReadWrite' | 'ReadWriteExec' }
  | { kind: 'protect'; start: number; pages: number }
  | { kind: 'mark'; start: number; bytes: number };

class Model {
  readonly states = new Map<number, S>();
  readonly calls: Call[] = [];
  failAt = -1; // index in `calls` of a call that fails

  get(c: number): S {
    return this.states.get(c) ?? 'U';
  }

  /** Issues a call; false if it is the one made to fail. */
  private call(call: string, c: number, n: number, prot: string): boolean {
    this.calls.push({ call, start: c * CHUNK, bytes: n * CHUNK, prot });
    return this.calls.length - 1 !== this.failAt;
  }

  /** Applies op; returns the error kind expected ('os' | 'bad' | undefined). */
  apply(op: Op): 'os' | 'bad' | undefined {
    const bytes = op.kind === 'mark' ? op.bytes : op.pages * PAGE;
    const first = Math.floor(op.start / CHUNK);
    const end = Math.ceil((op.start + bytes) / CHUNK);
    switch (op.kind) {
      case 'mark':
        for (let c = first; c < end; c++) this.states.set(c, 'M');
        return undefined;
      case 'ensure':
        for (let c = first; c < end; c++) {
          const s = this.get(c);
          if (s === 'M') continue;
          const name = s === 'U' ? 'dzmmapNoreplace' : s === 'Q' ? 'dzmmap' : 'munprotect';
          if (!this.call(name, c, 1, op.prot)) return 'os';
          this.states.set(c, 'M');
        }
        return undefined;
      case 'quarantine': {
        for (let c = first; c < end; c++) if (this.get(c) === 'P') return 'bad';
        let c = first;
        while (c < end) {
          const s = this.get(c);
          let e = c + 1;
          while (e < end && this.get(e) === s) e++;
          if (s === 'U') {
            if (!this.call('mmapNoreserve', c, e - c, 'NoAccess')) return 'os';
            for (let k = c; k < e; k++) this.states.set(k, 'Q');
          }
          c = e;
        }
        return undefined;
      }
      case 'protect':
        for (let c = first; c < end; c++) if (this.get(c) === 'U' || this.get(c) === 'Q') return 'bad';
        for (let c = first; c < end; c++) {
          if (this.get(c) !== 'M') continue;
          if (!this.call('mprotect', c, 1, 'NoAccess')) return 'os';
          this.states.set(c, 'P');
        }
        return undefined;
    }
  }
}

const ANNO: MmapAnnotation = { kind: 'Space', name: 'prop' };

function run(m: ChunkStateMmapper, op: Op): 'os' | 'bad' | undefined {
  try {
    const s = op.start as VirtAddr;
    if (op.kind === 'mark') m.markAsMapped(s, op.bytes);
    else if (op.kind === 'protect') m.protect(s, op.pages);
    else if (op.kind === 'ensure') m.ensureMapped(s, op.pages, MmapStrategy.new(false, op.prot), ANNO);
    else m.quarantineAddressRange(s, op.pages, MmapStrategy.new(true, op.prot), ANNO);
    return undefined;
  } catch (e) {
    if (isMmapperError(e, 'E_OS')) return 'os';
    if (isMmapperError(e, 'E_BAD_TRANSITION')) return 'bad';
    throw e;
  }
}

/** Operations over a window of chunks: starts at page granularity, lengths from 0 to `maxChunks` chunks. */
function opArb(firstChunk: number, chunks: number, maxChunks: number, bigChunks: number[]): fc.Arbitrary<Op> {
  const start = fc
    .tuple(fc.integer({ min: firstChunk, max: firstChunk + chunks - 1 }), fc.integer({ min: 0, max: 1023 }))
    .map(([c, p]) => c * CHUNK + (p < 700 ? 0 : p) * PAGE); // mostly chunk-aligned starts
  const pages = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: maxChunks * 1024 }) },
    { weight: 1, arbitrary: fc.constantFrom(...bigChunks.map((n) => n * 1024)) },
  );
  const prot = fc.constantFrom('ReadWrite' as const, 'ReadWriteExec' as const);
  return fc.oneof(
    fc.record({ kind: fc.constant('ensure' as const), start, pages, prot }),
    fc.record({ kind: fc.constant('quarantine' as const), start, pages, prot }),
    fc.record({ kind: fc.constant('protect' as const), start, pages }),
    fc.record({
      kind: fc.constant('mark' as const),
      start,
      bytes: pages.map((p) => p * PAGE + (p % 3) * 100),
    }),
  );
}

const SETUPS: [string, (os: RecordingOs) => ChunkStateMmapper, number, number, number[]][] = [
  // two-level: chunks around the slab 0/1 boundary, and whole slabs (8,192 chunks) now and then
  ['TwoLevelMmapper', (os) => new TwoLevelMmapper(os), 8192 - 24, 48, [8192, 8192 + 24]],
  ['ByteMapMmapper', (os) => new ByteMapMmapper(os), 2048 - 48, 40, [48]],
];

describe.each(SETUPS)('%s against a reference chunk-state model', (_n, make, first, chunks, big) => {
  it(
    'random operation sequences: same states, same OS calls (count and arguments), same errors',
    () => {
      fc.assert(
        fc.property(
          fc.array(opArb(first, chunks, 12, big), { minLength: 1, maxLength: 25 }),
          fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
          (ops, failAt) => {
            const model = new Model();
            model.failAt = failAt ?? -1;
            let n = 0;
            const os = new RecordingOs({ fail: () => (n++ === failAt ? 'ENOMEM' : undefined) });
            const m = make(os);
            for (const op of ops) {
              if (op.start + (op.kind === 'mark' ? op.bytes : op.pages * PAGE) > m.mappableBytes) continue;
              if (op.kind === 'mark' && op.bytes + (op.start % CHUNK) > 0) {
                const lo = Math.floor(op.start / CHUNK) * CHUNK; // the VM mapped these chunks itself
                os.mapExternally(lo as VirtAddr, Math.ceil((op.start + op.bytes) / CHUNK) * CHUNK - lo);
              }
              const want = model.apply(op);
              expect(run(m, op)).toBe(want);
            }
            const got = os.calls.map((c: RecordedCall) => ({
              call: c.call,
              start: c.start,
              bytes: c.bytes,
              prot: c.prot,
            }));
            expect(got).toEqual(model.calls);
            // every chunk of the window (and whole big ranges through runs) matches the model
            const lo = first - 2;
            const hi = first + chunks + Math.max(...big) + 2;
            let c = lo;
            for (const r of m.stateRuns(
              (lo * CHUNK) as VirtAddr,
              (Math.min(hi * CHUNK, m.mappableBytes) - lo * CHUNK) / PAGE,
            )) {
              for (; c < r.end / CHUNK; c++) {
                if (CODE[model.get(c)] !== r.state) expect([c, r.state]).toEqual([c, CODE[model.get(c)]]);
              }
            }
            for (let k = first; k < first + chunks; k++) {
              expect(m.isMappedAddress((k * CHUNK + 0x1000) as VirtAddr)).toBe(model.get(k) === 'M');
            }
          },
        ),
        { numRuns: propertyRuns(150) }, // VMKIT_LONG=1 runs more
      );
    },
    testTimeout(60_000),
  );
});
