import type { AreaIndex, Span } from '../area-index.js';

/**
 * An {@link AreaIndex} over one sorted array with binary search. Finds are fast and cache-friendly, but
 * insert and delete move O(n) elements: kept as the measured alternative, not the default.
 */
export class SortedArrayIndex<V extends Span> implements AreaIndex<V> {
  private readonly items: V[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Index of the first span with start ≥ addr (`strict`: > addr). */
  private bound(addr: number, strict: boolean): number {
    const a = this.items;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const s = (a[mid] as V).start;
      if (s < addr || (strict && s === addr)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(addr: number): V | undefined {
    const i = this.bound(addr, true) - 1;
    const v = this.items[i];
    return v !== undefined && addr < v.end ? v : undefined;
  }

  lower(addr: number): V | undefined {
    return this.items[this.bound(addr, false) - 1];
  }

  forEachFrom(addr: number, fn: (v: V) => boolean): void {
    const a = this.items;
    for (let i = this.bound(addr, false); i < a.length; i++) if (!fn(a[i] as V)) return;
  }

  insert(v: V): void {
    this.items.splice(this.bound(v.start, false), 0, v);
  }

  delete(start: number): boolean {
    const i = this.bound(start, false);
    if (this.items[i]?.start !== start) return false;
    this.items.splice(i, 1);
    return true;
  }

  clear(): void {
    this.items.length = 0;
  }

  values(): IterableIterator<V> {
    return this.items.values();
  }
}
