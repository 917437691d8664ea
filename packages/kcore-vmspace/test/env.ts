import { BitmapFrameAllocator, type FrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import { expect } from 'vitest';
import {
  isKcoreError,
  type KcoreErrorKind,
  MemoryFile,
  openChan,
  VmContext,
  type VmSpace,
} from '../src/index.js';

/** A context over `mib` MiB of RAM with a bitmap allocator (or `wrap` around it). */
export function env(mib = 8, wrap?: (inner: FrameAllocator) => FrameAllocator) {
  const mem = new PhysicalMemory(mib << 20);
  const bitmap = new BitmapFrameAllocator(mem);
  const frames = wrap ? wrap(bitmap) : bitmap;
  const ctx = new VmContext({ mem, frames });
  return { mem, bitmap, frames, ctx };
}

/** Byte `i` of page `p` of a pattern file tagged `tag`. */
export function patternByte(p: number, i: number, tag = 0): number {
  return (p * 7 + i + tag * 31) & 255;
}

/** A memory file of `pages` pages of {@link patternByte}s. */
export function patternFile(pages: number, tag = 0) {
  const bytes = new Uint8Array(pages * 4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = patternByte(Math.floor(i / 4096), i % 4096, tag);
  const file = new MemoryFile(bytes);
  return { file, chan: openChan(file), bytes };
}

/** Reads `len` bytes of `space` at `va`. */
export async function peek(space: VmSpace, va: number, len: number): Promise<number[]> {
  const b = new Uint8Array(len);
  await space.read(b, va);
  return [...b];
}

/** Asserts that `p` rejects with a KcoreError of `kind` whose message contains `text`; returns it. */
export async function rejects(p: Promise<unknown>, kind: KcoreErrorKind, text?: string) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (!isKcoreError(err, kind)) throw new Error(`expected KcoreError ${kind}, got ${String(err)}`);
  if (text !== undefined) expect(err.message).toContain(text);
  return err;
}

/** The state a failing call must leave unchanged. */
export function snapshot(space: VmSpace, frames: FrameAllocator) {
  return {
    maps: space.formatMaps(),
    resident: space.residentPages(),
    free: frames.freeFrames,
  };
}
