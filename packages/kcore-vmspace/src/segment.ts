/**
 * Segments: areas of `@vmkit/memory-set` whose backend carries the channel handle and the byte offset
 * of the area's first page in it. Splitting or shrinking an area moves the offset; the page table is
 * filled lazily by faults, so mapping an area maps nothing.
 *
 * @module
 */
import type { VirtAddr } from '@vmkit/addr';
import type { MappingBackend } from '@vmkit/memory-set';
import type { Chan } from './chan.js';
import { describe, kfail } from './errors.js';

/** No access (`PROT_NONE`): resident pages are kept but every access faults. */
export const PROT_NONE = 0;
/** Reads allowed. */
export const PROT_READ = 1;
/** Writes allowed (x86-64 cannot write without reading: a writable page is readable too). */
export const PROT_WRITE = 2;
/** Instruction fetches allowed (XD clear). */
export const PROT_EXEC = 4;
/** The seed's only protection: every page readable and writable. The default of `mmap`. */
export const PROT_RW = PROT_READ | PROT_WRITE;

/** A protection: a bitwise OR of {@link PROT_READ}, {@link PROT_WRITE}, {@link PROT_EXEC} (0 to 7). */
export type Prot = number;

/**
 * `rwx` text of a protection (`r-x`, `---`).
 *
 * @throws KcoreError `BadRequest` unless `prot` is an integer in 0..7
 */
export function formatProt(prot: Prot): string {
  if (typeof prot !== 'number' || !Number.isInteger(prot) || prot < 0 || prot > 7)
    kfail('BadRequest', 'format prot', `protection ${describe(prot)} is not an integer in 0..7`, { prot });
  return `${prot & PROT_READ ? 'r' : '-'}${prot & PROT_WRITE ? 'w' : '-'}${prot & PROT_EXEC ? 'x' : '-'}`;
}

/** The part of the space a segment's backend reaches to change page-table entries. */
export interface SegmentHost {
  /** Re-protects the resident pages of `[start, start + size)` of a segment. Cannot fail. */
  protectResident(start: number, size: number, prot: Prot, shared: boolean): void;
}

/**
 * The backend of one segment. `chan` is the segment's own handle (closed when the segment goes),
 * `offset` the byte offset in the channel of the area's first page, `shared` false for a private
 * (anonymous, copy-on-write) mapping.
 */
export class SegmentBackend implements MappingBackend<Prot, SegmentHost, VirtAddr> {
  readonly pageSize = 0x1000;
  readonly chan: Chan;
  readonly shared: boolean;
  offset: number;

  constructor(chan: Chan, offset: number, shared: boolean) {
    this.chan = chan;
    this.offset = offset;
    this.shared = shared;
  }

  /** Lazy: nothing is mapped until a fault. */
  map(): boolean {
    return true;
  }

  /**
   * Never called by `VmSpace` (munmap removes the pages itself, because writing dirty shared pages back
   * is asynchronous, then updates the set with `unmapMetadata`). Refuses, so misuse fails loudly.
   */
  unmap(): boolean {
    return false;
  }

  protect(start: VirtAddr, size: number, flags: Prot, host: SegmentHost): boolean {
    host.protectResident(start, size, flags, this.shared);
    return true;
  }

  /** The right part gets its own handle (`dup`) and the offset moved by `alignDiff`. */
  split(alignDiff: number): SegmentBackend {
    return new SegmentBackend(this.chan.dup(), this.offset + alignDiff, this.shared);
  }

  shrinkLeft(shrinkSize: number): void {
    this.offset += shrinkSize;
  }

  shrinkRight(): void {}

  /** Shares the handle: memory-set replaces the old area by the clone, so one handle stays live. */
  clone(): SegmentBackend {
    return new SegmentBackend(this.chan, this.offset, this.shared);
  }
}
