import type { VirtAddr } from '@vmkit/addr';
import { vmmFail } from './errors.js';
import type { VirtualMemoryMap } from './map.js';

/** What a view reads from the manager (internal). */
export interface ViewSource {
  size(): number;
  get(start: number): VirtualMemoryMap | undefined;
  values(): IterableIterator<VirtualMemoryMap>;
}

/**
 * A read-only ordered view of a manager's memory maps keyed by start address (the seed's
 * `&BTreeMap<usize, VirtualMemoryMap>`), valid only inside the callback it was handed to. It implements
 * `ReadonlyMap`, iterating in address order; `get` is O(log n) and iteration builds nothing up front.
 */
export class MemmapView implements ReadonlyMap<VirtAddr, VirtualMemoryMap> {
  private src: ViewSource | undefined;

  /** @internal */
  constructor(src: ViewSource) {
    this.src = src;
  }

  /** @internal Ends the view's life (its callback returned). */
  close(): void {
    this.src = undefined;
  }

  protected source(): ViewSource {
    const s = this.src;
    if (s === undefined) vmmFail('E_DISPOSED', 'a memory-map view is valid only inside its callback');
    return s;
  }

  get size(): number {
    return this.source().size();
  }

  /** The map starting exactly at `start`. */
  get(start: VirtAddr): VirtualMemoryMap | undefined {
    return this.source().get(start);
  }

  has(start: VirtAddr): boolean {
    return this.source().get(start) !== undefined;
  }

  /** The maps in address order. */
  values(): MapIterator<VirtualMemoryMap> {
    return this.source().values() as MapIterator<VirtualMemoryMap>;
  }

  /** The start addresses in order. */
  *keys(): MapIterator<VirtAddr> {
    for (const m of this.source().values()) yield m.start;
  }

  /** `[start, map]` pairs in order. */
  *entries(): MapIterator<[VirtAddr, VirtualMemoryMap]> {
    for (const m of this.source().values()) yield [m.start, m];
  }

  [Symbol.iterator](): MapIterator<[VirtAddr, VirtualMemoryMap]> {
    return this.entries();
  }

  forEach(
    fn: (map: VirtualMemoryMap, start: VirtAddr, view: ReadonlyMap<VirtAddr, VirtualMemoryMap>) => void,
  ): void {
    for (const m of this.source().values()) fn(m, m.start, this);
  }
}

/** What a mutable view changes in the manager (internal). */
export interface MutableViewSource extends ViewSource {
  insert(map: VirtualMemoryMap): VirtualMemoryMap | undefined;
  remove(start: number): VirtualMemoryMap | undefined;
  clear(): void;
}

/**
 * The view `withMemmapsMut` hands its callback (the seed's `&mut BTreeMap`): the read side of
 * {@link MemmapView} plus `insert`, `remove` and `clear`, each applied to the manager at once and with
 * its checks (no overlapping maps, ever), and each removing the resident pages of what it removes, so
 * the page table never holds a page outside the maps. Iterating it while changing it sees a snapshot.
 */
export class MutableMemmapView extends MemmapView {
  private readonly msrc: MutableViewSource;

  /** @internal */
  constructor(src: MutableViewSource) {
    super(src);
    this.msrc = src;
  }

  /**
   * Adds `map`, replacing the map that starts at the same address if there is one (returned, like
   * `BTreeMap::insert`). Errors as `addMemoryMap` (alignment, overlap with any other map); nothing
   * changes on error.
   */
  insert(map: VirtualMemoryMap): VirtualMemoryMap | undefined {
    this.source();
    return this.msrc.insert(map);
  }

  /** Removes and returns the map starting exactly at `start` (its resident pages leave the page table). */
  remove(start: VirtAddr): VirtualMemoryMap | undefined {
    this.source();
    return this.msrc.remove(start);
  }

  /** Removes every map. */
  clear(): void {
    this.source();
    this.msrc.clear();
  }

  override values(): MapIterator<VirtualMemoryMap> {
    return [...this.source().values()].values() as MapIterator<VirtualMemoryMap>;
  }
}
