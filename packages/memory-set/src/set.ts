import {
  type AddrRange,
  checkVirtRange,
  EXACT_LIMIT,
  formatHex,
  isPowerOfTwo,
  type VirtAddr,
} from '@vmkit/addr';
import { MemoryArea } from './area.js';
import type { AreaIndex, AreaIndexFactory } from './area-index.js';
import type { MappingBackend } from './backend.js';
import { MappingFailure, mappingFail } from './errors.js';
import { flagsEqual } from './flags.js';
import { BlockIndex } from './indexes/block-index.js';
import { describe, formatAddr, formatRange } from './text.js';

const OP_MAP = 0;
const OP_UNMAP = 1;
const OP_PROTECT = 2;
type OpKind = typeof OP_MAP | typeof OP_UNMAP | typeof OP_PROTECT;
const VERB = ['map', 'unmap', 'protect'] as const;

/** The canonical hole starts here (`0x0000800000000000`, held as 2^47); the space ends at 2^48. */
const HALF = 2 ** 47;
const TOP = 2 ** 48;

/** One backend call of a planned operation, with what undoes it. */
interface Op<F, PT, A extends number> {
  backend: MappingBackend<F, PT, A>;
  kind: OpKind;
  start: A;
  size: number;
  /** Flags for map/protect. */
  flags: F;
  /** Flags to restore on undo (unmap → map with these, protect → protect with these). */
  oldFlags: F;
}

/** A fully validated operation: backend calls to make, then areas to remove and insert. */
interface Plan<F, PT, A extends number, B extends MappingBackend<F, PT, A>> {
  ops: Op<F, PT, A>[];
  remove: MemoryArea<F, PT, A, B>[];
  insert: MemoryArea<F, PT, A, B>[];
}

/** Options of a {@link MemorySet}. */
export interface MemorySetOptions<F = unknown> {
  /**
   * Builds the ordered structure that holds the areas (default: {@link BlockIndex}, the measured winner;
   * {@link BTreeIndex} and {@link SortedArrayIndex} are the measured alternatives).
   */
  index?: AreaIndexFactory;
  /**
   * `true` (default): addresses are x86-64 `VirtAddr`s (the low 48 bits of a canonical address). Every
   * range the set accepts (an area to map, a range to unmap, protect or list, a growth) must lie inside
   * one half of the space, `[0, 2^47)` or `[2^47, 2^48)` (`@vmkit/addr`'s `checkVirtRange`: it never
   * crosses the canonical hole nor passes the top), `findFreeArea` searches each half separately and
   * never returns a range across the hole, and `toString` and messages print canonical addresses
   * (`0xffff800000000000`). `false`: addresses are any integers in `[0, 2^53)` (physical addresses, page
   * numbers, test mocks), printed in plain hex.
   */
  virtual?: boolean;
  /**
   * Merge adjacent compatible areas after every `map`, `protect` and `extendArea` (default `false`):
   * two areas that touch, carry equal flags ({@link MemorySetOptions.flagsEqual}) and whose backends
   * agree to join ({@link MappingBackend.merge}) become one, as Linux merges VMAs, so that a listing
   * of the set (a `/proc/PID/maps`) shows as many areas as Linux would. Merging only rewrites the
   * bookkeeping; the page table is not touched. {@link MemorySet.mergeAdjacent} does it on demand.
   */
  merge?: boolean;
  /**
   * Flags equality, used by `protect` (new flags equal to an area's flags change nothing and split
   * nothing) and by merging. Default {@link flagsEqual}: by value (primitives, and plain objects/arrays
   * property by property, a property holding `undefined` counting as absent). The x86-64 entry point
   * has `samePageFlags`, which also knows the defaults of `PageFlags` (`readable` true, the rest false).
   */
  flagsEqual?: (a: F, b: F) => boolean;
}

/**
 * What {@link MemorySet.unmap} and {@link MemorySet.protect} did over `[start, start + size)`.
 * `holeBytes > 0` means part of the range lies in no area: where POSIX `mprotect` answers `ENOMEM`
 * (the set still changed the areas that were there: check first with {@link MemorySet.areasIn} if the
 * whole request must fail).
 */
export interface RangeResult {
  /** Bytes of the range that lay inside areas. */
  readonly coveredBytes: number;
  /** Bytes of the range that lay in no area (`size - coveredBytes`). */
  readonly holeBytes: number;
  /** Areas the range overlapped (counted before any split). */
  readonly areas: number;
  /** `unmap`: bytes removed (= `coveredBytes`); `protect`: bytes whose flags changed. */
  readonly changedBytes: number;
}

const NOTHING: RangeResult = Object.freeze({ coveredBytes: 0, holeBytes: 0, areas: 0, changedBytes: 0 });

/**
 * A set of non-overlapping {@link MemoryArea}s sharing one page table, in address order (the crate's
 * `MemorySet`): the bookkeeping behind `mmap`, `munmap` and `mprotect`.
 *
 * Every mutating operation is **transactional**: it validates and plans everything first (page-size
 * cuts, backend splits on clones), then makes the backend calls; if one returns `false` or throws, the
 * calls already made are undone in reverse order (see {@link MappingBackend} for the contract this needs),
 * and the set and the page table are left exactly as they were. Operations cost O(log n) plus the number
 * of areas they touch; none scans all areas except `clear`, iteration and `mergeAdjacent()` of the whole
 * set.
 *
 * Addresses: by default the set holds x86-64 virtual addresses and refuses any range that crosses the
 * canonical hole or leaves `[0, 2^48)` ({@link MemorySetOptions.virtual}); `{ virtual: false }` lifts
 * that rule for other address types.
 *
 * Errors are {@link MappingFailure}s: `InvalidParam` (`E_INVALID_PARAM`), `AlreadyExists`
 * (`E_ALREADY_EXISTS`), `BadState` (`E_BAD_STATE`: a backend returned false or could not split); an error
 * thrown by a backend (e.g. `E_NOMEM`) is re-thrown as is after the rollback. Every public method checks
 * its arguments (types, integers, ranges) first; on any error the set is unchanged.
 *
 * @typeParam F flags; @typeParam PT page table; @typeParam A address type (default `VirtAddr`); @typeParam
 *   B backend type
 */
export class MemorySet<
  F,
  PT,
  A extends number = VirtAddr,
  B extends MappingBackend<F, PT, A> = MappingBackend<F, PT, A>,
> implements Iterable<MemoryArea<F, PT, A, B>>
{
  private readonly areas: AreaIndex<MemoryArea<F, PT, A, B>>;
  private readonly makeIndex: AreaIndexFactory;
  /** Addresses are VirtAddrs: the canonical-hole rule applies and addresses print canonically. */
  readonly virtual: boolean;
  /** Adjacent compatible areas are merged after each operation. */
  readonly merging: boolean;
  private readonly eq: (a: F, b: F) => boolean;

  /**
   * Creates an empty set.
   *
   * @throws MappingFailure `InvalidParam` if `options` is not an object or one of its fields has the
   *   wrong type
   */
  constructor(options: MemorySetOptions<F> = {}) {
    if (typeof options !== 'object' || options === null)
      mappingFail('InvalidParam', `options ${describe(options)} is not an object`, { options });
    const { index, virtual, merge, flagsEqual: eq } = options;
    if (index !== undefined && typeof index !== 'function')
      mappingFail('InvalidParam', `options.index ${describe(index)} is not a function`, {});
    if (virtual !== undefined && typeof virtual !== 'boolean')
      mappingFail('InvalidParam', `options.virtual ${describe(virtual)} is not a boolean`, {});
    if (merge !== undefined && typeof merge !== 'boolean')
      mappingFail('InvalidParam', `options.merge ${describe(merge)} is not a boolean`, {});
    if (eq !== undefined && typeof eq !== 'function')
      mappingFail('InvalidParam', `options.flagsEqual ${describe(eq)} is not a function`, {});
    this.makeIndex = index ?? (<V extends { start: number; end: number }>() => new BlockIndex<V>());
    this.areas = this.makeIndex<MemoryArea<F, PT, A, B>>();
    this.virtual = virtual ?? true;
    this.merging = merge ?? false;
    this.eq = eq ?? flagsEqual;
  }

  /** Number of areas. */
  len(): number {
    return this.areas.size;
  }

  /** True when the set holds no area. */
  isEmpty(): boolean {
    return this.areas.size === 0;
  }

  /** The areas in address order. */
  iter(): IterableIterator<MemoryArea<F, PT, A, B>> {
    return this.areas.values();
  }

  [Symbol.iterator](): IterableIterator<MemoryArea<F, PT, A, B>> {
    return this.areas.values();
  }

  /**
   * True when `range` shares at least one address with an area (an empty range overlaps nothing).
   * O(log n).
   *
   * @throws MappingFailure `InvalidParam` if `range` is not a range (`{ start, end }` integers, end ≥ start)
   */
  overlaps(range: AddrRange<A>): boolean {
    const { start, end } = checkRangeObject(range, 'range');
    if (!(start < end)) return false;
    const before = this.areas.lower(start);
    if (before !== undefined && before.end > start) return true;
    let hit = false;
    this.areas.forEachFrom(start, (a) => {
      hit = a.start < end;
      return false;
    });
    return hit;
  }

  /**
   * The area holding `addr` (`start ≤ addr < end`), or `undefined`. O(log n), allocation-free.
   *
   * @throws MappingFailure `InvalidParam` if `addr` is not an integer Number in `[0, 2^53)`
   */
  find(addr: A): MemoryArea<F, PT, A, B> | undefined {
    if (!Number.isSafeInteger(addr) || addr < 0) badUint(addr, 'address');
    return this.areas.find(addr);
  }

  /**
   * The areas overlapping `[start, start + size)`, in address order (whole areas, not clipped). A range
   * they do not cover entirely has holes: compare their extents with the range (POSIX `mprotect` answers
   * `ENOMEM` there). O(log n + k).
   *
   * @throws MappingFailure `InvalidParam` for a bad range (as {@link MemorySet.unmap})
   */
  areasIn(start: A, size: number): MemoryArea<F, PT, A, B>[] {
    const end = this.checkRange(start, size, 'range');
    if (size === 0) return [];
    return this.touching(start, end);
  }

  /**
   * Finds the lowest free range of `size` bytes starting at or after `hint`, inside `limit`, with a start
   * aligned to `align` (the crate's `find_free_area`).
   *
   * The search starts at `max(hint, limit.start)` rounded up to `align`, skips the area holding it, then
   * tries each gap after it in address order. Unlike the crate, the returned range never extends past
   * `limit.end`, and an area that starts inside the alignment padding after its predecessor is not
   * overlooked. In a virtual set (the default) each half of the space is searched separately (the lower
   * half first when `hint` is in it), so the range never crosses the canonical hole nor passes 2^48.
   *
   * Cost: with the default {@link BlockIndex}, O(log n) per gap that is long enough but defeated by the
   * alignment (gaps too short are skipped through the index's gap summary); other indexes visit the
   * areas they skip.
   *
   * @param hint where to start looking (an integer address)
   * @param size bytes wanted; must be a multiple of `align` (otherwise `undefined`, as in the crate)
   * @param limit the range the result must lie in
   * @param align a power of two
   * @returns the start of the free range, or `undefined` if there is none in `limit`
   * @throws MappingFailure `InvalidParam` if `align` is not a power of two, `hint`/`size` are not
   *   integers in `[0, 2^53)`, or `limit` is not a range
   */
  findFreeArea(hint: A, size: number, limit: AddrRange<A>, align: number): A | undefined {
    if (typeof align !== 'number' || !isPowerOfTwo(align))
      mappingFail('InvalidParam', `alignment ${describe(align)} is not a power of two`, { align });
    checkUint(hint, 'hint');
    checkUint(size, 'size');
    const lim = checkRangeObject(limit, 'limit');
    if (size % align !== 0) return undefined;
    if (!this.virtual) return this.freeIn(hint, size, lim.start, lim.end, align) as A | undefined;
    // Each half on its own: the lower half first unless the hint is above it.
    if (hint < HALF) {
      const low = this.freeIn(hint, size, lim.start, Math.min(lim.end, HALF), align);
      if (low !== undefined) return low as A;
    }
    return this.freeIn(hint, size, Math.max(lim.start, HALF), Math.min(lim.end, TOP), align) as A | undefined;
  }

  /**
   * Adds `area` and maps it through its backend.
   *
   * If it overlaps existing areas: with `unmapOverlap` the overlapped parts are unmapped first (areas
   * shrink, split or go) in the same transaction; without it nothing changes and `AlreadyExists` is
   * thrown. On any failure the set and the page table are as before. With merging on, the new area then
   * joins compatible neighbours.
   *
   * @param pageTable handed to the backends (must not be `undefined`)
   * @param unmapOverlap a boolean
   * @throws MappingFailure `InvalidParam` if `area` is not a {@link MemoryArea}, `pageTable` is
   *   `undefined`, `unmapOverlap` is not a boolean, the area is empty, its backend's `pageSize` is not a
   *   power of two or its start/size are not multiples of it, the area crosses the canonical hole or
   *   leaves `[0, 2^48)` (virtual set), or an overlap cut would split a huge page; `AlreadyExists`
   *   (overlap, `unmapOverlap` false); `BadState` (a backend returned false or could not split); or the
   *   backend's own error (e.g. `E_NOMEM`)
   */
  map(area: MemoryArea<F, PT, A, B>, pageTable: PT, unmapOverlap: boolean): void {
    this.checkArea(area);
    checkPageTable(pageTable);
    if (typeof unmapOverlap !== 'boolean')
      mappingFail('InvalidParam', `unmapOverlap ${describe(unmapOverlap)} is not a boolean`, {});
    const plan = newPlan<F, PT, A, B>();
    if (this.overlaps(area.vaRange)) {
      if (!unmapOverlap) {
        mappingFail('AlreadyExists', `${this.areaText(area)} overlaps an existing area`, {
          start: area.start,
          end: area.end,
        });
      }
      this.planUnmap(area.start, area.end, plan);
    }
    plan.ops.push({
      backend: area.backend,
      kind: OP_MAP,
      start: area.start,
      size: area.size,
      flags: area.flags,
      oldFlags: area.flags,
    });
    plan.insert.push(area);
    this.execute(plan.ops, pageTable);
    this.commit(plan);
    if (this.merging) this.mergeAround(area.start, area.end);
  }

  /**
   * Removes the mappings in `[start, start + size)`: areas inside it go, areas across a boundary shrink,
   * an area holding the whole range splits in two (a hole in the middle). Unmapped gaps in the range are
   * fine; `size` 0 does nothing.
   *
   * @returns what was covered: `holeBytes > 0` when part of the range was in no area
   * @throws MappingFailure `InvalidParam` if `start`/`size` are not non-negative integers, `start + size`
   *   reaches 2^53, the range crosses the canonical hole or leaves `[0, 2^48)` (virtual set),
   *   `pageTable` is `undefined`, or a boundary falls inside a page of a touched area's backend (e.g. a
   *   2 MiB page); `BadState` (a backend returned false or could not split); or the backend's own error.
   *   On any failure nothing changed.
   */
  unmap(start: A, size: number, pageTable: PT): RangeResult {
    const end = this.checkRange(start, size, 'range');
    checkPageTable(pageTable);
    if (size === 0) return NOTHING;
    const plan = newPlan<F, PT, A, B>();
    const covered = this.planUnmap(start, end, plan);
    this.execute(plan.ops, pageTable);
    this.commit(plan);
    return result(size, covered, plan.remove.length, covered);
  }

  /**
   * Changes the flags of the mappings in `[start, start + size)`. For each area overlapping the range,
   * `updateFlags(oldFlags)` gives the new flags, or `undefined` to leave that area untouched and unsplit;
   * new flags equal by value to the old ones ({@link MemorySetOptions.flagsEqual}) change nothing
   * either. An area that crosses a boundary of the range is split so that only the part inside changes.
   * With merging on, changed parts then join compatible neighbours.
   *
   * @param updateFlags a pure function of the old flags (called once per overlapping area, before any
   *   change)
   * @returns what was covered and changed: `holeBytes > 0` when part of the range was in no area
   * @throws MappingFailure as {@link MemorySet.unmap}, and `InvalidParam` if `updateFlags` is not a
   *   function; nothing changed on failure
   */
  protect(start: A, size: number, updateFlags: (flags: F) => F | undefined, pageTable: PT): RangeResult {
    const end = this.checkRange(start, size, 'range');
    if (typeof updateFlags !== 'function')
      mappingFail('InvalidParam', `updateFlags ${describe(updateFlags)} is not a function`, {});
    checkPageTable(pageTable);
    if (size === 0) return NOTHING;
    const plan = newPlan<F, PT, A, B>();
    const touched = this.touching(start, end);
    let covered = 0;
    let changed = 0;
    for (const area of touched) {
      const part = Math.min(area.end, end) - Math.max(area.start, start);
      covered += part;
      const nf = updateFlags(area.flags);
      if (nf === undefined || this.eq(nf, area.flags)) continue;
      this.planProtect(area, start, end, nf, plan);
      changed += part;
    }
    const res = result(size, covered, touched.length, changed);
    if (plan.ops.length === 0) return res;
    this.execute(plan.ops, pageTable);
    this.commit(plan);
    if (this.merging) this.mergeAround(start, end);
    return res;
  }

  /**
   * Unmaps every area and empties the set. On failure (a backend returned false or threw) everything is
   * re-mapped and the set is unchanged.
   *
   * @throws MappingFailure `InvalidParam` if `pageTable` is `undefined`; `BadState`, or the backend's own
   *   error
   */
  clear(pageTable: PT): void {
    checkPageTable(pageTable);
    const ops: Op<F, PT, A>[] = [];
    for (const a of this.areas.values()) {
      ops.push({
        backend: a.backend,
        kind: OP_UNMAP,
        start: a.start,
        size: a.size,
        flags: a.flags,
        oldFlags: a.flags,
      });
    }
    this.execute(ops, pageTable);
    this.areas.clear();
  }

  /**
   * Grows the area holding `addr` by `additionalSize` bytes at its end, mapping the new part with the
   * area's flags through its backend.
   *
   * @throws MappingFailure `InvalidParam` if `addr` is not an integer address, no area holds it,
   *   `additionalSize` is not a non-negative integer multiple of the backend's page size, the new end
   *   reaches 2^53 or (virtual set) crosses the canonical hole or passes 2^48; `AlreadyExists` if the
   *   grown area would overlap the next one; `BadState`/the backend's error if the map fails (nothing
   *   changed)
   */
  extendArea(addr: A, additionalSize: number, pageTable: PT): void {
    checkUint(addr, 'address');
    checkUint(additionalSize, 'additional size');
    checkPageTable(pageTable);
    if (additionalSize === 0) return;
    const area = this.areas.find(addr);
    if (area === undefined) mappingFail('InvalidParam', `no area holds ${this.fmt(addr)}`, { addr });
    const newEnd = area.end + additionalSize;
    if (newEnd >= EXACT_LIMIT)
      mappingFail(
        'InvalidParam',
        `${this.areaText(area)} grown by ${describe(additionalSize)} overflows`,
        {},
      );
    if (this.virtual) this.checkVirt(area.start, area.size + additionalSize, 'grown area');
    const ps = area.backend.pageSize;
    if (additionalSize % ps !== 0) {
      mappingFail(
        'InvalidParam',
        `growth ${formatHex(additionalSize)} is not a multiple of ${formatHex(ps)}`,
        {
          additionalSize,
          pageSize: ps,
        },
      );
    }
    let next: MemoryArea<F, PT, A, B> | undefined;
    this.areas.forEachFrom(area.end, (a) => {
      next = a;
      return false;
    });
    if (next !== undefined && newEnd > next.start) {
      mappingFail(
        'AlreadyExists',
        `${this.areaText(area)} grown to ${this.fmt(newEnd)} would overlap ${this.areaText(next)}`,
        {},
      );
    }
    const op: Op<F, PT, A> = {
      backend: area.backend,
      kind: OP_MAP,
      start: area.end,
      size: additionalSize,
      flags: area.flags,
      oldFlags: area.flags,
    };
    this.execute([op], pageTable);
    this.areas.delete(area.start);
    this.areas.insert(new MemoryArea(area.start, area.size + additionalSize, area.flags, area.backend));
    if (this.merging) this.mergeAround(area.start, newEnd);
  }

  /**
   * Removes the areas' bookkeeping in `[start, start + size)` exactly as {@link MemorySet.unmap} would
   * (removing, shrinking, splitting), without calling any backend's `unmap`: for callers that already moved
   * or detached the page-table entries.
   *
   * @returns what was covered
   * @throws MappingFailure `InvalidParam` (bad range, huge-page cut) or `BadState` (a backend could not
   *   split); nothing changed on failure
   */
  unmapMetadata(start: A, size: number): RangeResult {
    const end = this.checkRange(start, size, 'range');
    if (size === 0) return NOTHING;
    const plan = newPlan<F, PT, A, B>();
    const covered = this.planUnmap(start, end, plan);
    this.commit(plan);
    return result(size, covered, plan.remove.length, covered);
  }

  /**
   * Replaces the bookkeeping of the part `[area.start, area.end)` of the one existing area that contains
   * it by `area`, without touching the page table (the rest of the old area stays, split around it).
   *
   * @throws MappingFailure `InvalidParam` if `area` is not a {@link MemoryArea}, is empty, not aligned
   *   to its backend's page size, not inside one existing area, or cuts a huge page of it; `BadState` if
   *   the old backend cannot split
   */
  replaceAreaMetadata(area: MemoryArea<F, PT, A, B>): void {
    this.checkArea(area);
    const old = this.areas.find(area.start);
    if (old === undefined || area.end > old.end) {
      mappingFail('InvalidParam', `${this.areaText(area)} does not lie inside one existing area`, {});
    }
    this.checkCut(old, area.start);
    this.checkCut(old, area.end);
    const plan = newPlan<F, PT, A, B>();
    plan.remove.push(old);
    let mid = old.backend.clone() as B;
    if (area.start > old.start) {
      const right = this.splitOrFail(old, mid, area.start);
      plan.insert.push(new MemoryArea(old.start, area.start - old.start, old.flags, mid));
      mid = right;
    }
    if (area.end < old.end) {
      const right = this.splitOrFail(old, mid, area.end, area.start);
      plan.insert.push(new MemoryArea(area.end, old.end - area.end, old.flags, right));
    }
    plan.insert.push(area);
    this.commit(plan);
  }

  /**
   * Merges every pair of adjacent compatible areas in `[start, start + size)` (default: the whole set)
   * and the neighbours touching its ends: areas that touch, carry equal flags and whose backends agree
   * ({@link MappingBackend.merge}) become one. Bookkeeping only: the page table is not touched.
   *
   * @returns the number of merges made (areas removed)
   * @throws MappingFailure `InvalidParam` for a bad range
   */
  mergeAdjacent(start?: A, size?: number): number {
    if (start === undefined && size === undefined) return this.mergeAround(0, EXACT_LIMIT);
    const end = this.checkRange(start as A, size as number, 'range');
    return this.mergeAround(start as number, end);
  }

  /** One line per area, in address order, after a header with the count. */
  toString(): string {
    const lines = [`MemorySet(${this.len()} areas)`];
    for (const a of this.areas.values()) lines.push(`  ${this.areaText(a)}`);
    return lines.join('\n');
  }

  // ------------------------------------------------------------------ internals

  private fmt(v: number): string {
    return this.virtual ? formatAddr(v) : formatHex(v);
  }

  private areaText(a: MemoryArea<F, PT, A, B>): string {
    return a.toString(this.virtual);
  }

  /** Throws unless `[start, start + size)` is a valid virtual range (addr's single rule). */
  private checkVirt(start: number, size: number, what: string): void {
    try {
      checkVirtRange(start, size, what);
    } catch (e) {
      const msg = e instanceof Error ? e.message.replace(/^E_[A-Z_]+: /, '') : String(e);
      throw new MappingFailure('InvalidParam', msg, { start, size }, e);
    }
  }

  /** Validates `[start, start + size)` for this set and returns its end. */
  private checkRange(start: number, size: number, what: string): number {
    checkUint(start, `${what} start`);
    checkUint(size, `${what} size`);
    const end = start + size;
    if (end >= EXACT_LIMIT)
      mappingFail('InvalidParam', `${formatHex(start)} + ${formatHex(size)} overflows 2^53`, {});
    if (this.virtual) this.checkVirt(start, size, what);
    return end;
  }

  /** Validates an area to map or insert. */
  private checkArea(area: MemoryArea<F, PT, A, B>): void {
    if (!isAreaLike(area))
      mappingFail('InvalidParam', `area ${describe(area)} is not a MemoryArea with a backend`, { area });
    if (area.size === 0)
      mappingFail('InvalidParam', `cannot map the empty area at ${this.fmt(area.start)}`, {});
    const ps = area.backend.pageSize;
    if (typeof ps !== 'number' || !isPowerOfTwo(ps))
      mappingFail('InvalidParam', `backend page size ${describe(ps)} is not a power of two`, { ps });
    if (this.virtual) this.checkVirt(area.start, area.size, 'area');
    if (area.start % ps !== 0 || area.size % ps !== 0) {
      mappingFail(
        'InvalidParam',
        `${this.areaText(area)} is not aligned to its backend's page size ${formatHex(ps)}`,
        { start: area.start, size: area.size, pageSize: ps },
      );
    }
  }

  /** The lowest aligned free `[x, x + size)` with `x ≥ hint` inside `[lo, hi)`, or undefined. */
  private freeIn(hint: number, size: number, lo: number, hi: number, align: number): number | undefined {
    let cur = alignUpExact(Math.max(hint, lo), align);
    if (cur + size > hi) return undefined;
    const before = this.areas.lower(cur);
    if (before !== undefined && before.end > cur) cur = alignUpExact(before.end, align);
    const skip = this.areas.skipToGap;
    if (skip !== undefined) {
      // The index jumps over gaps shorter than `size`; a long-enough gap may still fail the alignment.
      for (;;) {
        if (cur + size > hi) return undefined;
        const next = skip.call(this.areas, cur, size);
        if (next === undefined) {
          const last = this.areas.lower(Number.POSITIVE_INFINITY);
          const x = last !== undefined && last.end > cur ? alignUpExact(last.end, align) : cur;
          return x + size <= hi ? x : undefined;
        }
        const prev = this.areas.lower(next.start);
        const x = prev !== undefined && prev.end > cur ? alignUpExact(prev.end, align) : cur;
        if (x + size > hi) return undefined;
        if (x + size <= next.start) return x;
        cur = alignUpExact(next.end, align);
      }
    }
    let found: number | undefined;
    let done = false;
    this.areas.forEachFrom(before !== undefined ? before.end : cur, (a) => {
      if (cur + size > hi) {
        done = true;
        return false;
      }
      if (a.end <= cur) return true;
      if (cur + size <= a.start) {
        found = cur;
        return false;
      }
      cur = alignUpExact(a.end, align);
      return true;
    });
    if (found !== undefined) return found;
    if (done || cur + size > hi) return undefined;
    return cur;
  }

  /** The areas overlapping `[start, end)`, in address order. */
  private touching(start: number, end: number): MemoryArea<F, PT, A, B>[] {
    const out: MemoryArea<F, PT, A, B>[] = [];
    const before = this.areas.lower(start);
    if (before !== undefined && before.end > start) out.push(before);
    this.areas.forEachFrom(start, (a) => {
      if (a.start >= end) return false;
      out.push(a);
      return true;
    });
    return out;
  }

  /** Plans the unmapping of `[start, end)` from every area it touches; returns the bytes covered. */
  private planUnmap(start: number, end: number, plan: Plan<F, PT, A, B>): number {
    let covered = 0;
    for (const area of this.touching(start, end)) {
      const cs = Math.max(area.start, start);
      const ce = Math.min(area.end, end);
      covered += ce - cs;
      this.checkCut(area, cs);
      this.checkCut(area, ce);
      plan.remove.push(area);
      plan.ops.push({
        backend: area.backend,
        kind: OP_UNMAP,
        start: cs as A,
        size: ce - cs,
        flags: area.flags,
        oldFlags: area.flags,
      });
      if (cs > area.start && ce < area.end) {
        // A hole in the middle: split at the hole's end, then shrink the left part to the hole's start.
        const left = area.backend.clone() as B;
        const right = this.splitOrFail(area, left, ce);
        left.shrinkRight(ce - cs);
        plan.insert.push(new MemoryArea(area.start, cs - area.start, area.flags, left));
        plan.insert.push(new MemoryArea(ce as A, area.end - ce, area.flags, right));
      } else if (cs > area.start) {
        const left = area.backend.clone() as B;
        left.shrinkRight(area.end - cs);
        plan.insert.push(new MemoryArea(area.start, cs - area.start, area.flags, left));
      } else if (ce < area.end) {
        const right = area.backend.clone() as B;
        right.shrinkLeft(ce - area.start);
        plan.insert.push(new MemoryArea(ce as A, area.end - ce, area.flags, right));
      }
    }
    return covered;
  }

  /** Plans giving `[start, end) ∩ area` the flags `nf`, splitting the area at the range's boundaries. */
  private planProtect(
    area: MemoryArea<F, PT, A, B>,
    start: number,
    end: number,
    nf: F,
    plan: Plan<F, PT, A, B>,
  ): void {
    const cs = Math.max(area.start, start);
    const ce = Math.min(area.end, end);
    this.checkCut(area, cs);
    this.checkCut(area, ce);
    plan.remove.push(area);
    plan.ops.push({
      backend: area.backend,
      kind: OP_PROTECT,
      start: cs as A,
      size: ce - cs,
      flags: nf,
      oldFlags: area.flags,
    });
    if (cs === area.start && ce === area.end) {
      plan.insert.push(new MemoryArea(area.start, area.size, nf, area.backend));
      return;
    }
    let mid = area.backend.clone() as B;
    let right: B | undefined;
    if (ce < area.end) right = this.splitOrFail(area, mid, ce);
    if (cs > area.start) {
      const m = this.splitOrFail(area, mid, cs);
      plan.insert.push(new MemoryArea(area.start, cs - area.start, area.flags, mid));
      mid = m;
    }
    plan.insert.push(new MemoryArea(cs as A, ce - cs, nf, mid));
    if (right !== undefined) plan.insert.push(new MemoryArea(ce as A, area.end - ce, area.flags, right));
  }

  /**
   * Merges adjacent compatible areas among those overlapping `[start, end]` and their neighbours.
   * Bookkeeping only; cannot fail (a backend whose `merge` throws is treated as incompatible).
   */
  private mergeAround(start: number, end: number): number {
    let merges = 0;
    // Start from the area before `start` (it may end exactly there), else the first one from `start`.
    let cur = this.areas.lower(start) ?? this.firstFrom(start);
    while (cur !== undefined && cur.end <= end) {
      const next = this.firstFrom(cur.end);
      if (next === undefined) break;
      if (next.start === cur.end) {
        const joined = this.tryMerge(cur, next);
        if (joined !== undefined) {
          merges++;
          cur = joined;
          continue;
        }
      }
      cur = next;
    }
    return merges;
  }

  /** The first area starting at or after `addr`. */
  private firstFrom(addr: number): MemoryArea<F, PT, A, B> | undefined {
    let first: MemoryArea<F, PT, A, B> | undefined;
    this.areas.forEachFrom(addr, (a) => {
      first = a;
      return false;
    });
    return first;
  }

  /** Joins `l` and its touching right neighbour `r` if flags and backends agree; returns the new area. */
  private tryMerge(
    l: MemoryArea<F, PT, A, B>,
    r: MemoryArea<F, PT, A, B>,
  ): MemoryArea<F, PT, A, B> | undefined {
    const b = l.backend;
    if (typeof b.merge !== 'function' || !this.eq(l.flags, r.flags)) return undefined;
    let joined: B;
    try {
      joined = b.clone() as B;
      if (joined.merge?.(r.backend, l.size) !== true) return undefined;
    } catch {
      return undefined;
    }
    const area = new MemoryArea<F, PT, A, B>(l.start, l.size + r.size, l.flags, joined);
    this.areas.delete(l.start);
    this.areas.delete(r.start);
    this.areas.insert(area);
    return area;
  }

  /**
   * Makes the planned backend calls in order. If one returns false or throws, undoes the ones made in
   * reverse order and re-throws (false becomes `BadState`). Settles every backend used, either way.
   */
  private execute(ops: Op<F, PT, A>[], pageTable: PT): void {
    let i = 0;
    try {
      for (; i < ops.length; i++) {
        const op = ops[i] as Op<F, PT, A>;
        if (!apply(op, pageTable, false)) {
          throw new MappingFailure('BadState', `backend refused to ${VERB[op.kind]} ${this.opText(op)}`, {
            start: op.start,
            size: op.size,
          });
        }
      }
    } catch (err) {
      let undoError: unknown;
      for (let j = i - 1; j >= 0; j--) {
        const op = ops[j] as Op<F, PT, A>;
        try {
          if (!apply(op, pageTable, true))
            undoError ??= new Error(`undo of ${VERB[op.kind]} ${this.opText(op)} failed`);
        } catch (e) {
          undoError ??= e;
        }
      }
      settle(ops, pageTable);
      if (undoError !== undefined) {
        throw new MappingFailure(
          'BadState',
          'a backend broke the rollback contract (its compensating call failed); the set is unchanged but the page table may not be',
          { undoError },
          err,
        );
      }
      throw err;
    }
    settle(ops, pageTable);
  }

  private opText(op: Op<F, PT, A>): string {
    return formatRange(op.start, op.start + op.size, this.virtual);
  }

  /** Applies a plan's area changes (after its backend calls succeeded). Cannot fail. */
  private commit(plan: Plan<F, PT, A, B>): void {
    for (const a of plan.remove) this.areas.delete(a.start);
    for (const a of plan.insert) this.areas.insert(a);
  }

  /** Throws InvalidParam unless `at` (strictly inside `area`) is a multiple of the area's page size. */
  private checkCut(area: MemoryArea<F, PT, A, B>, at: number): void {
    const ps = area.backend.pageSize;
    if (at > area.start && at < area.end && at % ps !== 0) {
      mappingFail(
        'InvalidParam',
        `cutting ${this.areaText(area)} at ${this.fmt(at)} would split one of its ${formatHex(ps)} pages`,
        { at, pageSize: ps },
      );
    }
  }

  /**
   * Splits `backend` (a clone serving `[from, area.end)`, `from` defaulting to `area.start`) at `at`:
   * `backend` keeps `[from, at)`, the result serves `[at, area.end)`. Throws BadState if it refuses.
   */
  private splitOrFail(area: MemoryArea<F, PT, A, B>, backend: B, at: number, from: number = area.start): B {
    const right = backend.split(at - from);
    if (right === undefined) {
      mappingFail('BadState', `the backend of ${this.areaText(area)} cannot be split at ${this.fmt(at)}`, {
        at,
      });
    }
    return right as B;
  }
}

function newPlan<F, PT, A extends number, B extends MappingBackend<F, PT, A>>(): Plan<F, PT, A, B> {
  return { ops: [], remove: [], insert: [] };
}

function result(size: number, covered: number, areas: number, changed: number): RangeResult {
  return { coveredBytes: covered, holeBytes: size - covered, areas, changedBytes: changed };
}

/** Makes one backend call, or (`undo`) the call that reverses it. */
function apply<F, PT, A extends number>(op: Op<F, PT, A>, pt: PT, undo: boolean): boolean {
  const b = op.backend;
  switch (op.kind) {
    case OP_MAP:
      return undo ? b.unmap(op.start, op.size, pt) : b.map(op.start, op.size, op.flags, pt);
    case OP_UNMAP:
      return undo ? b.map(op.start, op.size, op.oldFlags, pt) : b.unmap(op.start, op.size, pt);
    default:
      return b.protect(op.start, op.size, undo ? op.oldFlags : op.flags, pt);
  }
}

/** Calls `settle` once on each distinct backend of `ops` that has one. */
function settle<F, PT, A extends number>(ops: Op<F, PT, A>[], pt: PT): void {
  let seen: Set<MappingBackend<F, PT, A>> | undefined;
  for (const op of ops) {
    const b = op.backend;
    if (b.settle === undefined) continue;
    seen ??= new Set();
    if (seen.has(b)) continue;
    seen.add(b);
    b.settle(pt);
  }
}

/** True for a MemoryArea (of this or another copy of the package): integer bounds and a backend. */
function isAreaLike(a: unknown): a is MemoryArea<unknown, unknown, number> {
  if (typeof a !== 'object' || a === null) return false;
  const x = a as { start?: unknown; end?: unknown; backend?: unknown };
  if (!Number.isSafeInteger(x.start) || !Number.isSafeInteger(x.end)) return false;
  if ((x.start as number) < 0 || (x.end as number) < (x.start as number)) return false;
  const b = x.backend as Record<string, unknown> | null | undefined;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.map === 'function' &&
    typeof b.unmap === 'function' &&
    typeof b.protect === 'function' &&
    typeof b.split === 'function' &&
    typeof b.clone === 'function'
  );
}

/** A missing page table is a caller's mistake, not something to hand to a backend. */
function checkPageTable(pt: unknown): void {
  if (pt === undefined)
    mappingFail('InvalidParam', 'page table undefined: pass the page table the backends map into', {});
}

function badUint(v: unknown, what: string): never {
  return mappingFail('InvalidParam', `${what} ${describe(v)} is not an integer in [0, 2^53)`, {
    [what]: v,
  });
}

/** Throws InvalidParam unless `v` is an integer Number in [0, 2^53). */
function checkUint(v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) badUint(v, what);
}

/** Validates a range object (`{ start, end }`, integers, `end ≥ start`) and returns it. */
function checkRangeObject(r: unknown, what: string): { start: number; end: number } {
  if (typeof r !== 'object' || r === null)
    mappingFail('InvalidParam', `${what} ${describe(r)} is not an address range`, {});
  const { start, end } = r as { start?: unknown; end?: unknown };
  checkUint(start, `${what} start`);
  checkUint(end, `${what} end`);
  if ((end as number) < (start as number))
    mappingFail('InvalidParam', `${what} ${describe(r)} ends before it starts`, {});
  return { start: start as number, end: end as number };
}

/** `v` rounded up to `align`; may exceed 2^53 only past any limit (callers compare against a limit). */
function alignUpExact(v: number, align: number): number {
  const r = v % align;
  return r === 0 ? v : v - r + align;
}
