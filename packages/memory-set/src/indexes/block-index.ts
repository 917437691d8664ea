import type { AreaIndex, Span } from '../area-index.js';

/** A block holds at most this many spans; a full block splits in two. */
const BLOCK_MAX = 256;
/** A block this small after a delete merges with a neighbour when the two fit in 3/4 of a block. */
const BLOCK_MIN = BLOCK_MAX >> 2;

/** One sorted run of spans: starts and ends in typed arrays (exact up to 2^53), values beside them. */
class Block<V> {
  n = 0;
  readonly starts = new Float64Array(BLOCK_MAX);
  readonly ends = new Float64Array(BLOCK_MAX);
  readonly vals: (V | undefined)[] = new Array<V | undefined>(BLOCK_MAX).fill(undefined);
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
    b.starts[i] = start;
    b.ends[i] = v.end;
    vals[i] = v;
    b.n++;
    this.count++;
    if (i === 0) this.mins[bi] = start;
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
    b.n--;
    vals[b.n] = undefined;
    this.count--;
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
  }

  private removeBlock(at: number): void {
    this.mins.copyWithin(at, at + 1, this.blocks.length);
    this.blocks.splice(at, 1);
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
    r.n = b.n - half;
    b.n = half;
    this.insertBlock(bi + 1, r);
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
    a.n += c.n;
    this.removeBlock(right);
  }
}
