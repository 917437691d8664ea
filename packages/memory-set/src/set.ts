import { type AddrRange, EXACT_LIMIT, formatHex, isPowerOfTwo, type VirtAddr } from '@vmkit/addr';
import { MemoryArea } from './area.js';
import type { AreaIndex, AreaIndexFactory } from './area-index.js';
import type { MappingBackend } from './backend.js';
import { MappingFailure, mappingFail } from './errors.js';
import { BlockIndex } from './indexes/block-index.js';

const OP_MAP = 0;
const OP_UNMAP = 1;
const OP_PROTECT = 2;
type OpKind = typeof OP_MAP | typeof OP_UNMAP | typeof OP_PROTECT;
const VERB = ['map', 'unmap', 'protect'] as const;

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
export interface MemorySetOptions {
  /**
   * Builds the ordered structure that holds the areas (default: {@link BlockIndex}, the measured winner;
   * {@link BTreeIndex} and {@link SortedArrayIndex} are the measured alternatives).
   */
  index?: AreaIndexFactory;
}

/**
 * A set of non-overlapping {@link MemoryArea}s sharing one page table, in address order (the crate's
 * `MemorySet`): the bookkeeping behind `mmap`, `munmap` and `mprotect`.
 *
 * Every mutating operation is **transactional**: it validates and plans everything first (page-size
 * cuts, backend splits on clones), then makes the backend calls; if one returns `false` or throws, the
 * calls already made are undone in reverse order (see {@link MappingBackend} for the contract this needs),
 * and the set and the page table are left exactly as they were. Operations cost O(log n) plus the number
 * of areas they touch; none scans all areas except `clear` and iteration.
 *
 * Errors are {@link MappingFailure}s: `InvalidParam` (`E_INVALID_PARAM`), `AlreadyExists`
 * (`E_ALREADY_EXISTS`), `BadState` (`E_BAD_STATE`: a backend returned false or could not split); an error
 * thrown by a backend (e.g. `E_NOMEM`) is re-thrown as is after the rollback.
 *
 * @typeParam F flags; @typeParam PT page table; @typeParam A address type (default `VirtAddr`: the higher
 *   half is just larger numbers); @typeParam B backend type
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

  /** Creates an empty set. */
  constructor(options: MemorySetOptions = {}) {
    this.makeIndex = options.index ?? (<V extends { start: number; end: number }>() => new BlockIndex<V>());
    this.areas = this.makeIndex<MemoryArea<F, PT, A, B>>();
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
   */
  overlaps(range: AddrRange<A>): boolean {
    const { start, end } = range;
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

  /** The area holding `addr` (`start ≤ addr < end`), or `undefined`. O(log n), allocation-free. */
  find(addr: A): MemoryArea<F, PT, A, B> | undefined {
    return this.areas.find(addr);
  }

  /**
   * Finds the lowest free range of `size` bytes starting at or after `hint`, inside `limit`, with a start
   * aligned to `align` (the crate's `find_free_area`).
   *
   * The search starts at `max(hint, limit.start)` rounded up to `align`, skips the area holding it, then
   * tries each gap after it in address order. Unlike the crate, the returned range never extends past
   * `limit.end`, and an area that starts inside the alignment padding after its predecessor is not
   * overlooked. It stops at `limit.end`, so it visits only the areas it has to skip.
   *
   * @param hint where to start looking (an integer address)
   * @param size bytes wanted; must be a multiple of `align` (otherwise `undefined`, as in the crate)
   * @param limit the range the result must lie in
   * @param align a power of two
   * @returns the start of the free range, or `undefined` if there is none in `limit`
   * @throws MappingFailure `InvalidParam` if `align` is not a power of two, or `hint`/`size` are not
   *   non-negative integers below 2^53
   */
  findFreeArea(hint: A, size: number, limit: AddrRange<A>, align: number): A | undefined {
    if (!isPowerOfTwo(align))
      mappingFail('InvalidParam', `alignment ${align} is not a power of two`, { align });
    checkUint(hint, 'hint');
    checkUint(size, 'size');
    if (size % align !== 0) return undefined;
    const limitEnd = limit.end;
    let lastEnd = alignUpExact(Math.max(hint, limit.start), align);
    if (lastEnd + size > limitEnd) return undefined;
    const before = this.areas.lower(lastEnd);
    if (before !== undefined && before.end > lastEnd) lastEnd = alignUpExact(before.end, align);
    let found: number | undefined;
    let done = false;
    this.areas.forEachFrom(before !== undefined ? before.end : lastEnd, (a) => {
      if (lastEnd + size > limitEnd) {
        done = true;
        return false;
      }
      if (a.end <= lastEnd) return true;
      if (lastEnd + size <= a.start) {
        found = lastEnd;
        return false;
      }
      lastEnd = alignUpExact(a.end, align);
      return true;
    });
    if (found !== undefined) return found as A;
    if (done || lastEnd + size > limitEnd) return undefined;
    return lastEnd as A;
  }

  /**
   * Adds `area` and maps it through its backend.
   *
   * If it overlaps existing areas: with `unmapOverlap` the overlapped parts are unmapped first (areas
   * shrink, split or go) in the same transaction; without it nothing changes and `AlreadyExists` is
   * thrown. On any failure the set and the page table are as before.
   *
   * @throws MappingFailure `InvalidParam` if the area is empty, its backend's `pageSize` is not a power of
   *   two, or its start/size are not multiples of it, or an overlap cut would split a huge page;
   *   `AlreadyExists` (overlap, `unmapOverlap` false); `BadState` (a backend returned false or could not
   *   split); or the backend's own error (e.g. `E_NOMEM`)
   */
  map(area: MemoryArea<F, PT, A, B>, pageTable: PT, unmapOverlap: boolean): void {
    if (area.size === 0)
      mappingFail('InvalidParam', `cannot map the empty area at ${formatHex(area.start)}`, {});
    const ps = area.backend.pageSize;
    if (!isPowerOfTwo(ps))
      mappingFail('InvalidParam', `backend page size ${ps} is not a power of two`, { ps });
    if (area.start % ps !== 0 || area.size % ps !== 0) {
      mappingFail('InvalidParam', `${area} is not aligned to its backend's page size ${formatHex(ps)}`, {
        start: area.start,
        size: area.size,
        pageSize: ps,
      });
    }
    const plan = newPlan<F, PT, A, B>();
    if (this.overlaps(area.vaRange)) {
      if (!unmapOverlap) {
        mappingFail('AlreadyExists', `${area} overlaps an existing area`, {
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
  }

  /**
   * Removes the mappings in `[start, start + size)`: areas inside it go, areas across a boundary shrink,
   * an area holding the whole range splits in two (a hole in the middle). Unmapped gaps in the range are
   * fine; `size` 0 does nothing.
   *
   * @throws MappingFailure `InvalidParam` if `start`/`size` are not non-negative integers, `start + size`
   *   reaches 2^53, or a boundary falls inside a page of a touched area's backend (e.g. a 2 MiB page);
   *   `BadState` (a backend returned false or could not split); or the backend's own error. On any failure
   *   nothing changed.
   */
  unmap(start: A, size: number, pageTable: PT): void {
    const end = checkRange(start, size);
    if (size === 0) return;
    const plan = newPlan<F, PT, A, B>();
    this.planUnmap(start, end, plan);
    this.execute(plan.ops, pageTable);
    this.commit(plan);
  }

  /**
   * Changes the flags of the mappings in `[start, start + size)`. For each area overlapping the range,
   * `updateFlags(oldFlags)` gives the new flags, or `undefined` to leave that area untouched and unsplit;
   * an area that crosses a boundary of the range is split so that only the part inside changes.
   *
   * @param updateFlags a pure function of the old flags (called once per overlapping area, before any
   *   change)
   * @throws MappingFailure as {@link MemorySet.unmap}; nothing changed on failure
   */
  protect(start: A, size: number, updateFlags: (flags: F) => F | undefined, pageTable: PT): void {
    const end = checkRange(start, size);
    if (size === 0) return;
    const plan = newPlan<F, PT, A, B>();
    for (const area of this.touching(start, end)) {
      const nf = updateFlags(area.flags);
      if (nf !== undefined) this.planProtect(area, start, end, nf, plan);
    }
    if (plan.ops.length === 0) return;
    this.execute(plan.ops, pageTable);
    this.commit(plan);
  }

  /**
   * Unmaps every area and empties the set. On failure (a backend returned false or threw) everything is
   * re-mapped and the set is unchanged.
   *
   * @throws MappingFailure `BadState`, or the backend's own error
   */
  clear(pageTable: PT): void {
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
   * @throws MappingFailure `InvalidParam` if no area holds `addr`, `additionalSize` is not a non-negative
   *   integer multiple of the backend's page size, or the new end reaches 2^53; `AlreadyExists` if the grown
   *   area would overlap the next one; `BadState`/the backend's error if the map fails (nothing changed)
   */
  extendArea(addr: A, additionalSize: number, pageTable: PT): void {
    checkUint(additionalSize, 'additional size');
    if (additionalSize === 0) return;
    const area = this.areas.find(addr);
    if (area === undefined) mappingFail('InvalidParam', `no area holds ${formatHex(addr)}`, { addr });
    const newEnd = area.end + additionalSize;
    if (newEnd >= EXACT_LIMIT)
      mappingFail('InvalidParam', `${area} grown by ${additionalSize} overflows`, {});
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
      mappingFail('AlreadyExists', `${area} grown to ${formatHex(newEnd)} would overlap ${next}`, {});
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
  }

  /**
   * Removes the areas' bookkeeping in `[start, start + size)` exactly as {@link MemorySet.unmap} would
   * (removing, shrinking, splitting), without calling any backend's `unmap`: for callers that already moved
   * or detached the page-table entries.
   *
   * @throws MappingFailure `InvalidParam` (bad range, huge-page cut) or `BadState` (a backend could not
   *   split); nothing changed on failure
   */
  unmapMetadata(start: A, size: number): void {
    const end = checkRange(start, size);
    if (size === 0) return;
    const plan = newPlan<F, PT, A, B>();
    this.planUnmap(start, end, plan);
    this.commit(plan);
  }

  /**
   * Replaces the bookkeeping of the part `[area.start, area.end)` of the one existing area that contains
   * it by `area`, without touching the page table (the rest of the old area stays, split around it).
   *
   * @throws MappingFailure `InvalidParam` if `area` is empty, not aligned to its backend's page size, not
   *   inside one existing area, or cuts a huge page of it; `BadState` if the old backend cannot split
   */
  replaceAreaMetadata(area: MemoryArea<F, PT, A, B>): void {
    if (area.size === 0) mappingFail('InvalidParam', 'cannot insert an empty area', { start: area.start });
    const ps = area.backend.pageSize;
    if (!isPowerOfTwo(ps) || area.start % ps !== 0 || area.size % ps !== 0) {
      mappingFail('InvalidParam', `${area} is not aligned to its backend's page size ${ps}`, {});
    }
    const old = this.areas.find(area.start);
    if (old === undefined || area.end > old.end) {
      mappingFail('InvalidParam', `${area} does not lie inside one existing area`, {});
    }
    checkCut(old, area.start);
    checkCut(old, area.end);
    const plan = newPlan<F, PT, A, B>();
    plan.remove.push(old);
    let mid = old.backend.clone() as B;
    if (area.start > old.start) {
      const right = splitOrFail(old, mid, area.start);
      plan.insert.push(new MemoryArea(old.start, area.start - old.start, old.flags, mid));
      mid = right;
    }
    if (area.end < old.end) {
      const right = splitOrFail(old, mid, area.end, area.start);
      plan.insert.push(new MemoryArea(area.end, old.end - area.end, old.flags, right));
    }
    plan.insert.push(area);
    this.commit(plan);
  }

  /** One line per area, in address order, after a header with the count. */
  toString(): string {
    const lines = [`MemorySet(${this.len()} areas)`];
    for (const a of this.areas.values()) lines.push(`  ${a}`);
    return lines.join('\n');
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

  /** Plans the unmapping of `[start, end)` from every area it touches. */
  private planUnmap(start: number, end: number, plan: Plan<F, PT, A, B>): void {
    for (const area of this.touching(start, end)) {
      const cs = Math.max(area.start, start);
      const ce = Math.min(area.end, end);
      checkCut(area, cs);
      checkCut(area, ce);
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
        const right = splitOrFail(area, left, ce);
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
    checkCut(area, cs);
    checkCut(area, ce);
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
    if (ce < area.end) right = splitOrFail(area, mid, ce);
    if (cs > area.start) {
      const m = splitOrFail(area, mid, cs);
      plan.insert.push(new MemoryArea(area.start, cs - area.start, area.flags, mid));
      mid = m;
    }
    plan.insert.push(new MemoryArea(cs as A, ce - cs, nf, mid));
    if (right !== undefined) plan.insert.push(new MemoryArea(ce as A, area.end - ce, area.flags, right));
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
          throw new MappingFailure('BadState', `backend refused to ${VERB[op.kind]} ${rangeText(op)}`, {
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
            undoError ??= new Error(`undo of ${VERB[op.kind]} ${rangeText(op)} failed`);
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

  /** Applies a plan's area changes (after its backend calls succeeded). Cannot fail. */
  private commit(plan: Plan<F, PT, A, B>): void {
    for (const a of plan.remove) this.areas.delete(a.start);
    for (const a of plan.insert) this.areas.insert(a);
  }
}

function newPlan<F, PT, A extends number, B extends MappingBackend<F, PT, A>>(): Plan<F, PT, A, B> {
  return { ops: [], remove: [], insert: [] };
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

function rangeText<F, PT, A extends number>(op: Op<F, PT, A>): string {
  return `[${formatHex(op.start)}, ${formatHex(op.start + op.size)})`;
}

/** Throws InvalidParam unless `at` (strictly inside `area`) is a multiple of the area's page size. */
function checkCut<F, PT, A extends number, B extends MappingBackend<F, PT, A>>(
  area: MemoryArea<F, PT, A, B>,
  at: number,
): void {
  const ps = area.backend.pageSize;
  if (at > area.start && at < area.end && at % ps !== 0) {
    mappingFail(
      'InvalidParam',
      `cutting ${area} at ${formatHex(at)} would split one of its ${formatHex(ps)} pages`,
      {
        at,
        pageSize: ps,
      },
    );
  }
}

/**
 * Splits `backend` (a clone serving `[from, area.end)`, `from` defaulting to `area.start`) at `at`:
 * `backend` keeps `[from, at)`, the result serves `[at, area.end)`. Throws BadState if it refuses.
 */
function splitOrFail<F, PT, A extends number, B extends MappingBackend<F, PT, A>>(
  area: MemoryArea<F, PT, A, B>,
  backend: B,
  at: number,
  from: number = area.start,
): B {
  const right = backend.split(at - from);
  if (right === undefined) {
    mappingFail('BadState', `the backend of ${area} cannot be split at ${formatHex(at)}`, { at });
  }
  return right as B;
}

/** Throws InvalidParam unless `v` is an integer in [0, 2^53). */
function checkUint(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= EXACT_LIMIT) {
    mappingFail('InvalidParam', `${what} ${String(v)} is not an integer in [0, 2^53)`, { [what]: v });
  }
}

/** Validates `[start, start + size)` and returns its end. */
function checkRange(start: number, size: number): number {
  checkUint(start, 'start');
  checkUint(size, 'size');
  const end = start + size;
  if (end >= EXACT_LIMIT)
    mappingFail('InvalidParam', `${formatHex(start)} + ${formatHex(size)} overflows 2^53`, {});
  return end;
}

/** `v` rounded up to `align`; may exceed 2^53 only past any limit (callers compare against a limit). */
function alignUpExact(v: number, align: number): number {
  const r = v % align;
  return r === 0 ? v : v - r + align;
}
