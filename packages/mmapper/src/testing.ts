/**
 * `@vmkit/mmapper/testing`: a recording fake operating system for tests (yours and ours). It keeps the
 * process's mappings as regions, answers each {@link MmapOs} call as Linux would (`EEXIST` for a
 * no-replace map over a mapping, `ENOMEM` for `mprotect` over a hole, `EINVAL` for a bad range), records
 * every call with its arguments, and can be told to fail chosen calls.
 *
 * @packageDocumentation
 */
import { formatVirtAddr, type VirtAddr } from '@vmkit/addr';
import type { MmapOs, MmapOsCallName, OsResult } from './os.js';
import { BAD_PAGE_RANGE, isPageRange, osError } from './os-result.js';
import {
  formatMmapAnnotation,
  type HugePageSupport,
  type MmapAnnotation,
  type MmapProtection,
  type MmapStrategy,
} from './strategy.js';

/** One recorded OS call. */
export interface RecordedCall {
  /** 1-based number of the call on this OS. */
  readonly seq: number;
  readonly call: MmapOsCallName;
  readonly start: VirtAddr;
  readonly bytes: number;
  /** The protection asked for (`NoAccess` for `mmapNoreserve` and `mprotect`). */
  readonly prot: MmapProtection;
  /** The strategy's huge-page policy (map calls only). */
  readonly hugePage?: HugePageSupport;
  /** The annotation's display string (map calls only), e.g. `mmtk:space:immix`. */
  readonly annotation?: string;
  /** `undefined` when the call succeeded, else the error name it returned. */
  readonly errno: string | undefined;
}

/** A mapping of the fake process, as {@link RecordingOs.regions} lists it. */
export interface FakeRegion {
  readonly start: VirtAddr;
  readonly end: number;
  readonly prot: MmapProtection;
  /** Mapped with `MAP_NORESERVE` (a quarantine reservation). */
  readonly noReserve: boolean;
  readonly annotation: string;
  readonly hugePage: HugePageSupport;
}

/** Options of {@link RecordingOs}. */
export interface RecordingOsOptions {
  /**
   * Decides whether a call fails before it does anything: return an error name (e.g. `'ENOMEM'`) to
   * make it fail, `undefined` to let it run. Receives the call as it will be recorded (without `errno`).
   */
  readonly fail?: (call: Omit<RecordedCall, 'errno'>) => string | undefined;
}

/**
 * A fake OS that records every call and models the mappings the calls make. Single-threaded (give each
 * worker its own, or share state through your own `SharedArrayBuffer`).
 */
export class RecordingOs implements MmapOs {
  /** Every call, in order (failed ones too, with their `errno`). */
  readonly calls: RecordedCall[] = [];
  private readonly map: FakeRegion[] = [];
  private readonly failHook: RecordingOsOptions['fail'];

  constructor(options: RecordingOsOptions = {}) {
    this.failHook = options.fail;
  }

  dzmmap(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.run('dzmmap', start, bytes, strategy.prot, strategy, anno, () => {
      this.carve(start, start + bytes);
      this.insert(start, start + bytes, strategy.prot, false, anno, strategy.hugePage);
      return undefined;
    });
  }

  dzmmapNoreplace(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.run('dzmmapNoreplace', start, bytes, strategy.prot, strategy, anno, () => {
      if (this.overlaps(start, start + bytes)) return osError('EEXIST', 'the range overlaps a mapping');
      this.insert(start, start + bytes, strategy.prot, false, anno, strategy.hugePage);
      return undefined;
    });
  }

  mmapNoreserve(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.run('mmapNoreserve', start, bytes, 'NoAccess', strategy, anno, () => {
      if (this.overlaps(start, start + bytes)) return osError('EEXIST', 'the range overlaps a mapping');
      this.insert(start, start + bytes, 'NoAccess', true, anno, strategy.hugePage);
      return undefined;
    });
  }

  mprotect(start: VirtAddr, bytes: number): OsResult {
    return this.run('mprotect', start, bytes, 'NoAccess', undefined, undefined, () =>
      this.reprotect(start, bytes, 'NoAccess'),
    );
  }

  munprotect(start: VirtAddr, bytes: number, prot: MmapProtection): OsResult {
    return this.run('munprotect', start, bytes, prot, undefined, undefined, () =>
      this.reprotect(start, bytes, prot),
    );
  }

  /**
   * Maps `[start, start + bytes)` read-write without recording a call, replacing what was there: memory
   * the VM mapped itself, before telling the mapper with `markAsMapped`.
   */
  mapExternally(
    start: VirtAddr,
    bytes: number,
    anno: MmapAnnotation = { kind: 'Misc', name: 'vm' },
  ): OsResult {
    if (!isPageRange(start, bytes, false)) return osError('EINVAL', 'bad range');
    this.carve(start, start + bytes);
    this.insert(start, start + bytes, 'ReadWrite', false, anno, 'No');
    return undefined;
  }

  /** Removes every mapping in `[start, start + bytes)` (not part of {@link MmapOs}; for tests' clean-up). */
  munmap(start: VirtAddr, bytes: number): OsResult {
    if (!isPageRange(start, bytes, false)) return osError('EINVAL', 'bad range');
    this.carve(start, start + bytes);
    return undefined;
  }

  /** The current mappings in address order (adjacent equal mappings are not merged). */
  regions(): FakeRegion[] {
    return this.map.slice();
  }

  /** The calls of one kind. */
  callsOf(name: MmapOsCallName): RecordedCall[] {
    return this.calls.filter((c) => c.call === name);
  }

  /**
   * The calls as one line each, e.g. `dzmmapNoreplace 0x40000000 +4 MiB ReadWrite mmtk:space:immix`
   * (a failed call ends with `-> ERRNO`).
   */
  describeCalls(): string[] {
    return this.calls.map((c) => {
      const size = c.bytes % 0x10_0000 === 0 ? `+${c.bytes / 0x10_0000} MiB` : `+${c.bytes / 1024} KiB`;
      const parts = [c.call, formatVirtAddr(c.start), size, c.prot];
      if (c.annotation !== undefined) parts.push(c.annotation);
      if (c.errno !== undefined) parts.push(`-> ${c.errno}`);
      return parts.join(' ');
    });
  }

  private run(
    call: MmapOsCallName,
    start: VirtAddr,
    bytes: number,
    prot: MmapProtection,
    strategy: MmapStrategy | undefined,
    anno: MmapAnnotation | undefined,
    act: () => OsResult,
  ): OsResult {
    const rec: Omit<RecordedCall, 'errno'> = {
      seq: this.calls.length + 1,
      call,
      start,
      bytes,
      prot,
      ...(strategy !== undefined ? { hugePage: strategy.hugePage } : {}),
      ...(anno !== undefined ? { annotation: formatMmapAnnotation(anno) } : {}),
    };
    let r: OsResult;
    const injected = this.failHook?.(rec);
    if (injected !== undefined) r = osError(injected, 'injected failure');
    else if (!isPageRange(start, bytes, false)) r = osError('EINVAL', BAD_PAGE_RANGE);
    else r = act();
    this.calls.push({ ...rec, errno: r?.errno });
    return r;
  }

  /** Index of the first region whose end is above `addr` (regions are sorted and disjoint). */
  private firstEndingAfter(addr: number): number {
    let lo = 0;
    let hi = this.map.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.map[mid] as FakeRegion).end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private overlaps(start: number, end: number): boolean {
    const r = this.map[this.firstEndingAfter(start)];
    return r !== undefined && r.start < end;
  }

  /** Linux mprotect: ENOMEM unless the whole range is mapped; else every page gets `prot`. */
  private reprotect(start: number, bytes: number, prot: MmapProtection): OsResult {
    const end = start + bytes;
    let at = start;
    for (let i = this.firstEndingAfter(start); i < this.map.length && at < end; i++) {
      const r = this.map[i] as FakeRegion;
      if (r.start > at) break;
      at = r.end;
    }
    if (at < end) return osError('ENOMEM', `${formatVirtAddr(at as VirtAddr)} is not mapped`);
    const pieces = this.carve(start, end);
    const i = this.firstEndingAfter(start);
    this.map.splice(i, 0, ...pieces.map((p) => ({ ...p, prot })));
    return undefined;
  }

  /** Removes `[start, end)` from every region (splitting); returns the removed pieces. */
  private carve(start: number, end: number): FakeRegion[] {
    const i = this.firstEndingAfter(start);
    let j = i;
    while (j < this.map.length && (this.map[j] as FakeRegion).start < end) j++;
    const hit = this.map.slice(i, j);
    const kept: FakeRegion[] = [];
    const removed: FakeRegion[] = [];
    for (const r of hit) {
      if (r.start < start) kept.push({ ...r, end: start });
      removed.push({ ...r, start: Math.max(r.start, start) as VirtAddr, end: Math.min(r.end, end) });
      if (r.end > end) kept.push({ ...r, start: end as VirtAddr });
    }
    this.map.splice(i, j - i, ...kept);
    return removed;
  }

  private insert(
    start: number,
    end: number,
    prot: MmapProtection,
    noReserve: boolean,
    anno: MmapAnnotation,
    hugePage: HugePageSupport,
  ): void {
    const r: FakeRegion = {
      start: start as VirtAddr,
      end,
      prot,
      noReserve,
      annotation: formatMmapAnnotation(anno),
      hugePage,
    };
    this.map.splice(this.firstEndingAfter(start), 0, r);
  }

  /** The mapping holding `addr`, if any. */
  regionAt(addr: VirtAddr): FakeRegion | undefined {
    const r = this.map[this.firstEndingAfter(addr)];
    return r !== undefined && r.start <= addr ? r : undefined;
  }
}
