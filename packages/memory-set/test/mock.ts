/**
 * Test doubles for the memory-set tests: the crate's mock page table (an array of per-unit flags, 0 =
 * unmapped) and its mock backend, made all-or-nothing per call and able to fail on chosen calls.
 */
import { VmkitError } from '@vmkit/addr';
import type { FaultInjector } from '@vmkit/testkit';
import type { MappingBackend } from '../src/index.js';

/** A mock page table: one flags byte per `unit` bytes of address space (0 = not mapped). */
export class MockPageTable {
  readonly entries: Uint8Array;
  constructor(
    readonly size: number,
    readonly unit = 1,
  ) {
    this.entries = new Uint8Array(size / unit);
  }
  /** Flags of the unit holding `addr` (0 if unmapped). */
  at(addr: number): number {
    return this.entries[Math.floor(addr / this.unit)] ?? 0;
  }
}

/** How an injected failure shows: the backend returns false, or throws `E_NOMEM`. */
export type FailMode = 'false' | 'throw';

/** Shared knobs of a family of mock backends (clones and split parts share them). */
export interface MockControl {
  injector?: FaultInjector;
  mode?: FailMode;
  /** Every call made, for assertions: `map 0x1000+0x1000 f=1`. */
  log?: string[];
  /** Make `split` refuse (returns undefined). */
  refuseSplit?: boolean;
}

/**
 * The crate's mock backend: `map` requires every unit free and writes the flags, `unmap`/`protect`
 * require every unit mapped. Checks before writing, so a refused call changes nothing.
 */
export class MockBackend implements MappingBackend<number, MockPageTable, number> {
  constructor(
    readonly pageSize = 1,
    readonly control: MockControl = {},
  ) {}

  private fail(): boolean {
    if (!this.control.injector?.shouldFail()) return false;
    if (this.control.mode === 'throw') throw new VmkitError('E_NOMEM', 'injected allocation failure');
    return true;
  }

  private span(pt: MockPageTable, start: number, size: number): [number, number] {
    return [Math.floor(start / pt.unit), Math.floor((start + size) / pt.unit)];
  }

  map(start: number, size: number, flags: number, pt: MockPageTable): boolean {
    this.control.log?.push(`map ${start.toString(16)}+${size.toString(16)} f=${flags}`);
    if (this.fail()) return false;
    const [a, b] = this.span(pt, start, size);
    for (let i = a; i < b; i++) if (pt.entries[i] !== 0) return false;
    pt.entries.fill(flags, a, b);
    return true;
  }

  unmap(start: number, size: number, pt: MockPageTable): boolean {
    this.control.log?.push(`unmap ${start.toString(16)}+${size.toString(16)}`);
    if (this.fail()) return false;
    const [a, b] = this.span(pt, start, size);
    for (let i = a; i < b; i++) if (pt.entries[i] === 0) return false;
    pt.entries.fill(0, a, b);
    return true;
  }

  protect(start: number, size: number, newFlags: number, pt: MockPageTable): boolean {
    this.control.log?.push(`protect ${start.toString(16)}+${size.toString(16)} f=${newFlags}`);
    if (this.fail()) return false;
    const [a, b] = this.span(pt, start, size);
    for (let i = a; i < b; i++) if (pt.entries[i] === 0) return false;
    pt.entries.fill(newFlags, a, b);
    return true;
  }

  split(_alignDiff: number): MockBackend | undefined {
    return this.control.refuseSplit ? undefined : new MockBackend(this.pageSize, this.control);
  }

  shrinkLeft(_n: number): void {}
  shrinkRight(_n: number): void {}

  clone(): MockBackend {
    return new MockBackend(this.pageSize, this.control);
  }

  /** Merges with a mock of the same page size and the same control (the set's merging option). */
  merge(next: MappingBackend<number, MockPageTable, number>, _size: number): boolean {
    return next instanceof MockBackend && next.pageSize === this.pageSize && next.control === this.control;
  }
}
