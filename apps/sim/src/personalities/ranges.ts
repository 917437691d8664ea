/**
 * Attributes a kernel keeps per range of an address space when the design underneath has no room for
 * them (labels such as `[heap]`, "opened read-only" for shared file mappings): half-open ranges with a
 * value, cut by unmaps. Small sorted arrays: a process has few such ranges.
 *
 * @module
 */
import type { MapRequest } from '../personality.js';

export class RangeTags<T> {
  private starts: number[] = [];
  private ends: number[] = [];
  private values: T[] = [];

  /** Tags `[start, end)` with `value` (replacing what was there). */
  set(start: number, end: number, value: T): void {
    this.cut(start, end);
    let i = 0;
    while (i < this.starts.length && this.starts[i]! < start) i++;
    this.starts.splice(i, 0, start);
    this.ends.splice(i, 0, end);
    this.values.splice(i, 0, value);
  }

  /** Removes tags from `[start, end)`, splitting ranges that stick out. */
  cut(start: number, end: number): void {
    const s: number[] = [];
    const e: number[] = [];
    const v: T[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      const a = this.starts[i]!;
      const b = this.ends[i]!;
      const val = this.values[i]!;
      if (b <= start || a >= end) {
        s.push(a);
        e.push(b);
        v.push(val);
        continue;
      }
      if (a < start) {
        s.push(a);
        e.push(start);
        v.push(val);
      }
      if (b > end) {
        s.push(end);
        e.push(b);
        v.push(val);
      }
    }
    this.starts = s;
    this.ends = e;
    this.values = v;
  }

  /** The value tagging `addr`, if any. */
  at(addr: number): T | undefined {
    for (let i = 0; i < this.starts.length; i++)
      if (this.starts[i]! <= addr && addr < this.ends[i]!) return this.values[i];
    return undefined;
  }

  /** An independent copy (for fork). */
  clone(): RangeTags<T> {
    const c = new RangeTags<T>();
    c.starts = [...this.starts];
    c.ends = [...this.ends];
    c.values = [...this.values];
    return c;
  }
}

/** What a personality tags ranges with: the area's label, or that a shared file mapping may not be written. */
export interface AreaTag {
  label?: string;
  readOnlyFile?: boolean;
}

/**
 * Records the tags of the mapping `req` just made: its label if it has one, else "opened read-only" for a
 * shared mapping of a stored file without write access; otherwise the range carries no tag.
 */
export function tagMapping(tags: RangeTags<AreaTag>, req: MapRequest): void {
  const end = req.start + req.len;
  if (req.label !== undefined) tags.set(req.start, end, { label: req.label });
  else if (req.shared && req.file !== undefined && !req.file.anonymous && !req.mayWrite)
    tags.set(req.start, end, { readOnlyFile: true });
  else tags.cut(req.start, end);
}
