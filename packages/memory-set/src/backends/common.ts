/**
 * What the x86-64 backends share: argument checks (addr's single virtual-range rule), `PageFlags`
 * helpers, and the per-page-table store of the frames of `PROT_NONE` pages.
 *
 * @module
 */
import { checkVirtRange, formatHex, type PhysAddr } from '@vmkit/addr';
import type { PageFlags, PageMapper } from '@vmkit/paging-x86_64';
import { MappingFailure, mappingFail } from '../errors.js';
import { describe, formatRange } from '../text.js';

/**
 * Checks a range handed to an x86-64 backend: a valid virtual range (never across the canonical hole,
 * never past 2^48: addr's `checkVirtRange`), non-empty, `start` and `size` multiples of `pageSize`.
 *
 * @throws MappingFailure `InvalidParam` naming the range and the rule (the addr error as `cause`)
 */
export function checkBackendRange(start: number, size: number, pageSize: number, what: string): void {
  try {
    checkVirtRange(start, size, what);
  } catch (e) {
    const msg = e instanceof Error ? e.message.replace(/^E_[A-Z_]+: /, '') : String(e);
    throw new MappingFailure('InvalidParam', msg, { start, size }, e);
  }
  if (size === 0) mappingFail('InvalidParam', `${what} at ${formatRange(start, start)} is empty`, {});
  if (start % pageSize !== 0 || size % pageSize !== 0) {
    mappingFail(
      'InvalidParam',
      `${what} ${formatRange(start, start + size)} is not aligned to the page size ${formatHex(pageSize)}`,
      { start, size, pageSize },
    );
  }
}

/** Throws `InvalidParam` unless `pt` looks like a `PageMapper`. */
export function checkMapper(pt: unknown): asserts pt is PageMapper {
  const m = pt as Partial<PageMapper> | null | undefined;
  if (
    typeof m !== 'object' ||
    m === null ||
    typeof m.unmapRange !== 'function' ||
    typeof m.protectRange !== 'function'
  ) {
    mappingFail('InvalidParam', `page table ${describe(pt)} is not a PageMapper`, {});
  }
}

/** Throws `InvalidParam` unless `flags` is a `PageFlags` object. */
export function checkPageFlags(flags: unknown): asserts flags is PageFlags {
  const f = flags as Partial<Record<keyof PageFlags, unknown>> | null;
  if (
    typeof f !== 'object' ||
    f === null ||
    typeof f.writable !== 'boolean' ||
    typeof f.user !== 'boolean' ||
    typeof f.executable !== 'boolean' ||
    (f.readable !== undefined && typeof f.readable !== 'boolean')
  ) {
    mappingFail(
      'InvalidParam',
      `flags ${describe(flags)} are not PageFlags ({ readable?, writable, user, executable: boolean, … })`,
      { flags },
    );
  }
}

/** False for `PROT_NONE` flags (`readable: false`): such pages are kept not present. */
export function isReadable(flags: PageFlags): boolean {
  return flags.readable !== false;
}

/**
 * True when two `PageFlags` mean the same mapping: compares every field with its default filled in
 * (`readable` true; `global`, `writeThrough`, `cacheDisable` false). Use it as a set's
 * `flagsEqual` option so that `{ writable: true, user: true, executable: false }` and the same with
 * `readable: true` count as equal for `protect` and merging.
 */
export function samePageFlags(a: PageFlags, b: PageFlags): boolean {
  return (
    a === b ||
    ((a.readable !== false) === (b.readable !== false) &&
      a.writable === b.writable &&
      a.user === b.user &&
      a.executable === b.executable &&
      (a.global === true) === (b.global === true) &&
      (a.writeThrough === true) === (b.writeThrough === true) &&
      (a.cacheDisable === true) === (b.cacheDisable === true))
  );
}

/**
 * Frames of populated pages whose area is `PROT_NONE`, by page address, per page table: the pages are
 * not present (x86-64 has no read bit) but keep their frames and data, so that a `protect` back to an
 * accessible mode restores them. Kept per page table, not per backend: the set splits and merges
 * clones of backends, and areas in one page table never overlap, so the page address is the key.
 */
const hiddenFrames = new WeakMap<PageMapper, Map<number, PhysAddr>>();

/** The hidden frames of `pt` (created on demand when `create`). */
export function hiddenOf(pt: PageMapper, create: true): Map<number, PhysAddr>;
export function hiddenOf(pt: PageMapper, create: false): Map<number, PhysAddr> | undefined;
export function hiddenOf(pt: PageMapper, create: boolean): Map<number, PhysAddr> | undefined {
  let m = hiddenFrames.get(pt);
  if (m === undefined && create) {
    m = new Map();
    hiddenFrames.set(pt, m);
  }
  return m;
}

/**
 * The entries of `map` keyed by a page address in `[start, end)` (pages of `pageSize`), ascending by
 * discovery. Costs min(pages in the range, entries in the map): never a walk over every page of a huge
 * range when few entries exist.
 */
export function entriesIn(
  map: Map<number, PhysAddr> | undefined,
  start: number,
  end: number,
  pageSize: number,
): [number, PhysAddr][] {
  const out: [number, PhysAddr][] = [];
  if (map === undefined || map.size === 0) return out;
  if ((end - start) / pageSize <= map.size) {
    for (let va = start; va < end; va += pageSize) {
      const pa = map.get(va);
      if (pa !== undefined) out.push([va, pa]);
    }
  } else {
    for (const e of map) if (e[0] >= start && e[0] < end) out.push(e);
  }
  return out;
}
