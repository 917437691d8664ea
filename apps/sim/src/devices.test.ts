/**
 * SimFile's byte paths against a reference model of what a reader sees: the frame of a cached page,
 * the stored bytes (zeros past them) of any other page.
 */
import { BitmapFrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Disk, type FileIo, SimFile } from './devices.js';
import { EventEngine } from './engine.js';

const P = 4096;
const PAGES = 6;

type Step =
  | { kind: 'cache'; page: number }
  | { kind: 'scribble'; at: number; bytes: Uint8Array }
  | { kind: 'store'; at: number; bytes: Uint8Array }
  | { kind: 'read'; at: number; n: number };

const span = (max: number) =>
  fc
    .tuple(fc.nat(PAGES * P - 1), fc.uint8Array({ minLength: 1, maxLength: max }))
    .map(([at, bytes]) => ({ at, bytes: bytes.subarray(0, Math.min(bytes.length, PAGES * P - at)) }));

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.nat(PAGES - 1).map((page) => ({ kind: 'cache' as const, page })),
  span(600).map((s) => ({ kind: 'scribble' as const, ...s })),
  span(2 * P + 100).map((s) => ({ kind: 'store' as const, ...s })),
  fc
    .tuple(fc.nat(PAGES * P - 1), fc.nat(2 * P + 100))
    .map(([at, n]) => ({ kind: 'read' as const, at, n: Math.min(n, PAGES * P - at) })),
);

describe('SimFile.readAt / store', () => {
  it('read what the model says a reader sees; store reaches the stored bytes and every cached page', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3 * P }), fc.array(step, { maxLength: 30 }), (init, steps) => {
        const mem = new PhysicalMemory(64 * P);
        const frames = new BitmapFrameAllocator(mem);
        const io: FileIo = { mem, frames, disk: new Disk(new EventEngine(), 0, 1e9) };
        const f = new SimFile('/f', 2, 'memory', init.slice());
        const view = new Uint8Array(PAGES * P);
        view.set(init);
        for (const s of steps) {
          if (s.kind === 'cache') {
            const pa = f.page(s.page, io) as number;
            mem.readInto(pa, view, s.page * P, P);
          } else if (s.kind === 'scribble') {
            // Writes through a mapping: only cached pages have a frame to write to.
            for (let i = 0; i < s.bytes.length; i++) {
              const pa = f.cached(Math.floor((s.at + i) / P));
              if (pa === undefined) continue;
              mem.write8(pa + ((s.at + i) % P), s.bytes[i]!);
              view[s.at + i] = s.bytes[i]!;
            }
          } else if (s.kind === 'store') {
            f.store(mem, s.at, s.bytes);
            view.set(s.bytes, s.at);
            expect(f.data.subarray(s.at, s.at + s.bytes.length)).toEqual(s.bytes);
          } else {
            const out = new Uint8Array(s.n + 3).fill(0xee);
            f.readAt(mem, s.at, out, 3, s.n);
            expect(out.subarray(0, 3)).toEqual(new Uint8Array(3).fill(0xee));
            // Bytes of uncached pages past the stored data are left as they were.
            const want = view.slice(s.at, s.at + s.n);
            for (let i = 0; i < s.n; i++) {
              const at = s.at + i;
              if (f.cached(Math.floor(at / P)) === undefined && at >= f.data.length) want[i] = 0xee;
            }
            expect(out.subarray(3)).toEqual(want);
          }
        }
      }),
      { numRuns: 100 },
    );
  }, 20_000);
});
