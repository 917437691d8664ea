import type { AreaIndex, Span } from '../area-index.js';

/** A block holds at most this many spans; a full block splits in two. */
const BLOCK_MAX = 256; // positions (locate) pack a block number and a slot as bi * 256 + i: keep in step
/** A block this small after a delete merges with a neighbour when the two fit in 3/4 of a block. */
const BLOCK_MIN = BLOCK_MAX >> 2;

/** One sorted run of spans: starts and ends in typed arrays (exact up to 2^53), values beside them. */
class Block<V> {
  n = 0;
  readonly starts = new Float64Array(BLOCK_MAX);
  readonly ends = new Float64Array(BLOCK_MAX);
  readonly vals: (V | undefined)[] = new Array<V | undefined>(BLOCK_MAX).fill(undefined);
  /** Each span's tag ({@link BlockIndex.setTagAt}), beside `vals`; built on the first tag set in the block. */
  tags: unknown[] | null = null;
  /**
   * Longest gap before a span of this block (the first one's measured from the previous block's end;
   * none for the first block).
   */
  gap = 0;
  /** `gap` must be recomputed. */
  dirty = true;
  /** Removed from the index (merged away or emptied). */
  dead = false;
}

/** First index in `keys[0..n)` with `keys[i] > addr` (`strict`) or `keys[i] >= addr`. */
function bound(keys: Float64Array, n: number, addr: number, strict: boolean): number {
  let lo = 0;
  let hi = n;
  if (strict) {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) <= addr) lo = mid + 1;
      else hi = mid;
    }
  } else {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) < addr) lo = mid + 1;
      else hi = mid;
    }
  }
  return lo;
}

/**
 * The default {@link AreaIndex}: a sorted list of blocks of ≤ 256 spans (a two-level B+ tree of fixed
 * height). A top-level `Float64Array` holds each block's first start; each block keeps starts and ends in
 * `Float64Array`s, so `find` is two binary searches over typed arrays and reads no span object until it
 * returns one. Insert and delete move at most one block's elements plus, on a block split or merge, the
 * top-level array (n / 128 entries at most).
 */
export class BlockIndex<V extends Span> implements AreaIndex<V> {
  private blocks: Block<V>[] = [];
  private mins = new Float64Array(8);
  private count = 0;
  /** Max-tree over the blocks' gaps (leaves at `cap + k`), rebuilt lazily by the gap search. */
  private tree = new Float64Array(2);
  private cap = 1;
  /** The block list changed shape since the tree was built. */
  private shapeDirty = true;
  /** Blocks whose gap changed since the last gap search. */
  private dirtyBlocks: Block<V>[] = [];

  get size(): number {
    return this.count;
  }

  /** Index of the last block whose first start is ≤ addr (`strict`) / < addr; -1 if none. */
  private blockOf(addr: number, strict: boolean): number {
    return bound(this.mins, this.blocks.length, addr, strict) - 1;
  }

  find(addr: number): V | undefined {
    const bi = this.blockOf(addr, true);
    if (bi < 0) return undefined;
    const b = this.blocks[bi] as Block<V>;
    const i = bound(b.starts, b.n, addr, true) - 1;
    return addr < (b.ends[i] as number) ? b.vals[i] : undefined;
  }

  /**
   * The position of the span holding `addr` (`start ≤ addr < end`), or -1: {@link find} without reading
   * the span. A position is valid until the next insert, delete or clear; read it with {@link startAt},
   * {@link endAt}, {@link valueAt} and {@link tagAt}, which read only the index's own arrays (at 100,000
   * spans, reading the span object itself is one more cache miss).
   */
  locate(addr: number): number {
    const bi = this.blockOf(addr, true);
    if (bi < 0) return -1;
    const b = this.blocks[bi] as Block<V>;
    const i = bound(b.starts, b.n, addr, true) - 1;
    return addr < (b.ends[i] as number) ? bi * BLOCK_MAX + i : -1;
  }

  /** Start of the span at `pos` (from {@link locate}). */
  startAt(pos: number): number {
    return (this.blocks[pos >> 8] as Block<V>).starts[pos & 255] as number;
  }

  /** End of the span at `pos` (from {@link locate}). */
  endAt(pos: number): number {
    return (this.blocks[pos >> 8] as Block<V>).ends[pos & 255] as number;
  }

  /** The span at `pos` (from {@link locate}). */
  valueAt(pos: number): V {
    return (this.blocks[pos >> 8] as Block<V>).vals[pos & 255] as V;
  }

  /**
   * The tag of the span at `pos` (from {@link locate}): a value the caller attached with
   * {@link setTagAt}, `undefined` until then. A tag belongs to its entry: inserting a span starts it
   * untagged, and it goes with the span's deletion, so a tag never outlives the span object it was set for.
   */
  tagAt(pos: number): unknown {
    const t = (this.blocks[pos >> 8] as Block<V>).tags;
    return t === null ? undefined : t[pos & 255];
  }

  /** Attaches `tag` to the span at `pos` (from {@link locate}); see {@link tagAt}. */
  setTagAt(pos: number, tag: unknown): void {
    const b = this.blocks[pos >> 8] as Block<V>;
    if (b.tags === null) b.tags = new Array<unknown>(BLOCK_MAX).fill(undefined);
    b.tags[pos & 255] = tag;
  }

  lower(addr: number): V | undefined {
    const bi = this.blockOf(addr, false);
    if (bi < 0) return undefined;
    const b = this.blocks[bi] as Block<V>;
    return b.vals[bound(b.starts, b.n, addr, false) - 1];
  }

  forEachFrom(addr: number, fn: (v: V) => boolean): void {
    const blocks = this.blocks;
    let bi = Math.max(this.blockOf(addr, true), 0);
    if (bi >= blocks.length) return;
    let b = blocks[bi] as Block<V>;
    let i = bound(b.starts, b.n, addr, false);
    for (;;) {
      for (; i < b.n; i++) if (!fn(b.vals[i] as V)) return;
      if (++bi >= blocks.length) return;
      b = blocks[bi] as Block<V>;
      i = 0;
    }
  }

  insert(v: V): void {
    const start = v.start;
    if (this.blocks.length === 0) this.insertBlock(0, new Block<V>());
    const bi = Math.max(this.blockOf(start, true), 0);
    const b = this.blocks[bi] as Block<V>;
    const i = bound(b.starts, b.n, start, false);
    b.starts.copyWithin(i + 1, i, b.n);
    b.ends.copyWithin(i + 1, i, b.n);
    const vals = b.vals;
    for (let j = b.n; j > i; j--) vals[j] = vals[j - 1];
    const tags = b.tags;
    if (tags !== null) {
      for (let j = b.n; j > i; j--) tags[j] = tags[j - 1];
      tags[i] = undefined;
    }
    b.starts[i] = start;
    b.ends[i] = v.end;
    vals[i] = v;
    b.n++;
    this.count++;
    if (i === 0) this.mins[bi] = start;
    this.touch(bi);
    if (b.n === BLOCK_MAX) this.splitBlock(bi);
  }

  delete(start: number): boolean {
    const bi = this.blockOf(start, true);
    if (bi < 0) return false;
    const b = this.blocks[bi] as Block<V>;
    const i = bound(b.starts, b.n, start, false);
    if (i >= b.n || b.starts[i] !== start) return false;
    b.starts.copyWithin(i, i + 1, b.n);
    b.ends.copyWithin(i, i + 1, b.n);
    const vals = b.vals;
    for (let j = i; j < b.n - 1; j++) vals[j] = vals[j + 1];
    const tags = b.tags;
    if (tags !== null) for (let j = i; j < b.n - 1; j++) tags[j] = tags[j + 1];
    b.n--;
    vals[b.n] = undefined;
    if (tags !== null) tags[b.n] = undefined;
    this.count--;
    this.touch(bi);
    if (b.n === 0) this.removeBlock(bi);
    else {
      if (i === 0) this.mins[bi] = b.starts[0] as number;
      if (b.n < BLOCK_MIN) this.maybeMerge(bi);
    }
    return true;
  }

  clear(): void {
    this.blocks = [];
    this.mins = new Float64Array(8);
    this.count = 0;
    this.dirtyBlocks = [];
    this.shapeDirty = true;
  }

  /**
   * The first span with start ≥ `addr` whose gap before it (from `max(addr, previous end)`) is at least
   * `minGap`. O(log n) through the max-tree of block gaps, plus one or two block scans; the tree is
   * brought up to date here, for the blocks changed since the last search.
   */
  skipToGap(addr: number, minGap: number): V | undefined {
    const blocks = this.blocks;
    if (blocks.length === 0) return undefined;
    this.refreshGaps();
    const bi = Math.max(this.blockOf(addr, true), 0);
    const b = blocks[bi] as Block<V>;
    const hit = this.scanBlock(bi, bound(b.starts, b.n, addr, false), addr, minGap);
    if (hit !== undefined) return hit;
    for (let k = this.firstGapBlock(bi + 1, minGap); k >= 0; k = this.firstGapBlock(k + 1, minGap)) {
      const v = this.scanBlock(k, 0, addr, minGap);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** The first span of block `bi` from index `i` whose gap (from max(addr, previous end)) ≥ minGap. */
  private scanBlock(bi: number, i: number, addr: number, minGap: number): V | undefined {
    const b = this.blocks[bi] as Block<V>;
    if (i >= b.n) return undefined;
    const prevEnd = i > 0 ? (b.ends[i - 1] as number) : this.endBefore(bi);
    if ((b.starts[i] as number) - Math.max(prevEnd, addr) >= minGap) return b.vals[i];
    // The gaps after span i are inner gaps of the block: none fits when the block's longest is short.
    if (b.gap < minGap) return undefined;
    for (let j = i + 1; j < b.n; j++) {
      if ((b.starts[j] as number) - Math.max(b.ends[j - 1] as number, addr) >= minGap) return b.vals[j];
    }
    return undefined;
  }

  /** End of the last span before block `bi` (0 for the first block). */
  private endBefore(bi: number): number {
    if (bi === 0) return 0;
    const p = this.blocks[bi - 1] as Block<V>;
    return p.ends[p.n - 1] as number;
  }

  /** Marks block `bi` and the next one (whose first gap starts at this block's end) for a gap update. */
  private touch(bi: number): void {
    const b = this.blocks[bi];
    if (b !== undefined && !b.dirty) {
      b.dirty = true;
      this.dirtyBlocks.push(b);
    }
    const c = this.blocks[bi + 1];
    if (c !== undefined && !c.dirty) {
      c.dirty = true;
      this.dirtyBlocks.push(c);
    }
  }

  private recomputeGap(k: number): void {
    const b = this.blocks[k] as Block<V>;
    // The first block's leading gap is never searched through the tree (only by an exact scan).
    let g = k === 0 ? Number.NEGATIVE_INFINITY : (b.starts[0] as number) - this.endBefore(k);
    for (let j = 1; j < b.n; j++) {
      const d = (b.starts[j] as number) - (b.ends[j - 1] as number);
      if (d > g) g = d;
    }
    b.gap = g;
    b.dirty = false;
  }

  /** Brings the block gaps and the max-tree up to date (work proportional to the changes). */
  private refreshGaps(): void {
    const blocks = this.blocks;
    if (this.shapeDirty) {
      for (let k = 0; k < blocks.length; k++) if ((blocks[k] as Block<V>).dirty) this.recomputeGap(k);
      let cap = 1;
      while (cap < blocks.length) cap *= 2;
      const tree = new Float64Array(2 * cap).fill(Number.NEGATIVE_INFINITY);
      for (let k = 0; k < blocks.length; k++) tree[cap + k] = (blocks[k] as Block<V>).gap;
      for (let i = cap - 1; i >= 1; i--) tree[i] = Math.max(tree[2 * i] as number, tree[2 * i + 1] as number);
      this.tree = tree;
      this.cap = cap;
      this.shapeDirty = false;
      this.dirtyBlocks = [];
      return;
    }
    if (this.dirtyBlocks.length === 0) return;
    const tree = this.tree;
    for (const b of this.dirtyBlocks) {
      if (b.dead || !b.dirty) continue;
      const k = this.blockOf(b.starts[0] as number, true);
      this.recomputeGap(k);
      let i = this.cap + k;
      tree[i] = b.gap;
      for (i >>= 1; i >= 1; i >>= 1) tree[i] = Math.max(tree[2 * i] as number, tree[2 * i + 1] as number);
    }
    this.dirtyBlocks = [];
  }

  /** The first block index ≥ k0 whose gap is ≥ minGap, or -1. */
  private firstGapBlock(k0: number, minGap: number): number {
    if (k0 >= this.blocks.length) return -1;
    const tree = this.tree;
    const cap = this.cap;
    let i = cap + k0;
    if ((tree[i] as number) >= minGap) return k0;
    for (;;) {
      while ((i & 1) === 1) i >>= 1; // climb while a right child
      if (i === 0) return -1;
      i++; // the subtree just to the right
      if ((tree[i] as number) >= minGap) {
        while (i < cap) {
          i *= 2;
          if ((tree[i] as number) < minGap) i++;
        }
        return i - cap;
      }
    }
  }

  *values(): IterableIterator<V> {
    for (const b of this.blocks) for (let i = 0; i < b.n; i++) yield b.vals[i] as V;
  }

  private insertBlock(at: number, b: Block<V>): void {
    const nb = this.blocks.length;
    if (nb + 1 > this.mins.length) {
      const m = new Float64Array(this.mins.length * 2);
      m.set(this.mins);
      this.mins = m;
    }
    this.mins.copyWithin(at + 1, at, nb);
    this.mins[at] = b.n > 0 ? (b.starts[0] as number) : 0;
    this.blocks.splice(at, 0, b);
    this.shapeDirty = true;
  }

  private removeBlock(at: number): void {
    const b = this.blocks[at] as Block<V>;
    b.dead = true;
    this.touch(at); // the next block's first gap now starts at another block's end
    this.mins.copyWithin(at, at + 1, this.blocks.length);
    this.blocks.splice(at, 1);
    this.shapeDirty = true;
  }

  private splitBlock(bi: number): void {
    const b = this.blocks[bi] as Block<V>;
    const half = b.n >> 1;
    const r = new Block<V>();
    r.starts.set(b.starts.subarray(half, b.n));
    r.ends.set(b.ends.subarray(half, b.n));
    for (let j = half; j < b.n; j++) {
      r.vals[j - half] = b.vals[j];
      b.vals[j] = undefined;
    }
    const tags = b.tags;
    if (tags !== null) {
      const rt = new Array<unknown>(BLOCK_MAX).fill(undefined);
      for (let j = half; j < b.n; j++) {
        rt[j - half] = tags[j];
        tags[j] = undefined;
      }
      r.tags = rt;
    }
    r.n = b.n - half;
    b.n = half;
    this.insertBlock(bi + 1, r);
    this.touch(bi);
    this.touch(bi + 1);
  }

  /** Merges block `bi` into a neighbour when the two fit in 3/4 of a block. */
  private maybeMerge(bi: number): void {
    const limit = (BLOCK_MAX * 3) >> 2;
    const b = this.blocks[bi] as Block<V>;
    const next = this.blocks[bi + 1];
    const prev = this.blocks[bi - 1];
    if (next !== undefined && b.n + next.n <= limit) this.mergeInto(bi, bi + 1);
    else if (prev !== undefined && prev.n + b.n <= limit) this.mergeInto(bi - 1, bi);
  }

  /** Appends block `right` (= left + 1) to block `left` and removes it. */
  private mergeInto(left: number, right: number): void {
    const a = this.blocks[left] as Block<V>;
    const c = this.blocks[right] as Block<V>;
    a.starts.set(c.starts.subarray(0, c.n), a.n);
    a.ends.set(c.ends.subarray(0, c.n), a.n);
    for (let j = 0; j < c.n; j++) a.vals[a.n + j] = c.vals[j];
    if (c.tags !== null) {
      if (a.tags === null) a.tags = new Array<unknown>(BLOCK_MAX).fill(undefined);
      for (let j = 0; j < c.n; j++) a.tags[a.n + j] = c.tags[j];
    } else if (a.tags !== null) {
      for (let j = 0; j < c.n; j++) a.tags[a.n + j] = undefined;
    }
    a.n += c.n;
    this.removeBlock(right);
    this.touch(left);
  }
}
