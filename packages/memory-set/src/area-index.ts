/**
 * The ordered structure behind a {@link MemorySet}: non-overlapping, non-empty spans keyed by their start.
 *
 * Three implementations are provided and measured against each other in `bench/memory-set.bench.ts`:
 * {@link BlockIndex} (the default, the measured winner), {@link BTreeIndex} (`sorted-btree`) and
 * {@link SortedArrayIndex}. Every method costs O(log n) plus the number of spans visited, except
 * `SortedArrayIndex`'s insert/delete (O(n) moves), which is why it loses at scale.
 *
 * @module
 */

/** Anything with an exclusive address range: a {@link MemoryArea}. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** An ordered map from start address to a span (callers guarantee spans never overlap and are non-empty). */
export interface AreaIndex<V extends Span> {
  /** Number of spans. */
  readonly size: number;
  /** The span holding `addr` (`start ≤ addr < end`), if any. */
  find(addr: number): V | undefined;
  /** The span with the greatest start `< addr`, if any. */
  lower(addr: number): V | undefined;
  /** Calls `fn` on each span with start `≥ addr` in address order until `fn` returns `false`. */
  forEachFrom(addr: number, fn: (v: V) => boolean): void;
  /**
   * Optional gap search (what makes `MemorySet.findFreeArea` logarithmic): the first span `s` with
   * `s.start ≥ addr` whose free gap before it, measured from `max(addr, end of the span before s)`, is
   * at least `minGap`; `undefined` when no such span exists (the only gap left is after the last span).
   */
  skipToGap?(addr: number, minGap: number): V | undefined;
  /** Adds a span (its start must not be present). */
  insert(v: V): void;
  /** Removes the span starting at `start`; returns whether it was present. */
  delete(start: number): boolean;
  /** Removes every span. */
  clear(): void;
  /** All spans in address order. */
  values(): IterableIterator<V>;
}

/** Builds an empty {@link AreaIndex}. */
export type AreaIndexFactory = <V extends Span>() => AreaIndex<V>;
