import type { VirtAddr } from '@vmkit/addr';

/**
 * What a {@link MemoryArea} does to a page table when the {@link MemorySet} maps, unmaps or protects
 * (part of) it: the crate's `MappingBackend` trait.
 *
 * Different areas may have different backends: a linear backend knows the physical address when it maps;
 * a lazy backend may map nothing and fill pages on fault. Addresses and sizes are in bytes (Numbers of
 * the address type `A`, exact integers below 2^53). `start`/`size` passed to `map`, `unmap` and `protect`
 * always lie inside the backend's area, are multiples of {@link MappingBackend.pageSize} and are absolute
 * (not relative to the area start).
 *
 * ## Contract (what the transactional {@link MemorySet} relies on)
 * 1. **Each call is all-or-nothing.** When `map`, `unmap` or `protect` returns `false` or throws, it has
 *    changed nothing (the page table and the backend's own state are as before the call).
 * 2. **Each call can be undone by its inverse within the same set operation.** After a successful
 *    `unmap(r)` the set may call `map(r, oldFlags)`; after `protect(r, f)`, `protect(r, oldFlags)`; after
 *    `map(r, f)`, `unmap(r)`. These compensating calls must succeed and restore the translation exactly.
 *    A backend that releases resources on unmap (frames) must therefore keep them until
 *    {@link MappingBackend.settle} and reuse them when asked to re-map the same range.
 * 3. **`split`, `shrinkLeft`, `shrinkRight` and `clone` never touch a page table** and are only ever called
 *    on fresh clones, so a failed operation leaves the set's backends untouched.
 *
 * @typeParam F the flags type (copied by value: keep it immutable, e.g. a number or a frozen object)
 * @typeParam PT the page table type handed to every call
 * @typeParam A the address type (any Number brand; defaults to `VirtAddr`)
 */
export interface MappingBackend<F, PT, A extends number = VirtAddr> {
  /**
   * The granularity of this backend's mappings in bytes: a power of two (4 KiB, 2 MiB or 1 GiB for x86-64
   * page tables; 1 for a byte-granular mock). The set never cuts an area of this backend at an address
   * that is not a multiple of it, and refuses to map an area whose start or size is not a multiple of it.
   */
  readonly pageSize: number;

  /**
   * Maps `[start, start + size)` with `flags`. Returns `true` on success; `false` (or a thrown error, e.g.
   * `E_NOMEM`) on failure, having changed nothing.
   */
  map(start: A, size: number, flags: F, pageTable: PT): boolean;

  /** Unmaps `[start, start + size)`. Returns `true` on success; `false`/throws having changed nothing. */
  unmap(start: A, size: number, pageTable: PT): boolean;

  /**
   * Changes the flags of `[start, start + size)` to `newFlags`. Returns `true` on success; `false`/throws
   * having changed nothing.
   */
  protect(start: A, size: number, newFlags: F, pageTable: PT): boolean;

  /**
   * Splits this backend at `alignDiff` bytes after the start of its area: this backend becomes the left
   * part `[start, start + alignDiff)` and the returned backend serves `[start + alignDiff, end)`. Returns
   * `undefined` when the backend cannot be split there (the set then fails with `BadState`).
   *
   * @param alignDiff bytes from the area start, a positive multiple of {@link MappingBackend.pageSize}
   */
  split(alignDiff: number): MappingBackend<F, PT, A> | undefined;

  /**
   * The area loses `shrinkSize` bytes at its start (its start moves up by `shrinkSize`); adjust any
   * position-dependent state. `shrinkSize` is a positive multiple of {@link MappingBackend.pageSize}.
   */
  shrinkLeft(shrinkSize: number): void;

  /** The area loses `shrinkSize` bytes at its end (its end moves down by `shrinkSize`). */
  shrinkRight(shrinkSize: number): void;

  /**
   * An independent copy of this backend (the crate's `Clone` bound). The set splits and shrinks clones,
   * never the backend of a live area, so that a failed operation changes nothing.
   */
  clone(): MappingBackend<F, PT, A>;

  /**
   * Optional: joins the backend of the area that starts exactly where this backend's area ends, so that
   * the two areas can become one (merging, see {@link MemorySetOptions.merge} and
   * {@link MemorySet.mergeAdjacent}). Called only on a fresh clone of the left area's backend, and only
   * when both areas carry equal flags; the set never calls it on a live backend.
   *
   * Return `true` when this backend now serves both areas, `[start, start + size + next's size)` (e.g. a
   * linear backend with the same offset, a file backend whose offset continues), or `false` when the two
   * are not compatible (nothing is merged; the clone is dropped). Must not touch a page table; a throw
   * counts as `false`. Without this method, areas of the backend are never merged.
   *
   * @param next the right neighbour's backend (possibly of another class: check it)
   * @param size bytes of this backend's area (the left one)
   */
  merge?(next: MappingBackend<F, PT, A>, size: number): boolean;

  /**
   * Optional: called once on every backend a set operation used, after the operation finished (committed
   * or rolled back). A backend that deferred releasing resources in `unmap` (see the contract) releases
   * them here. Must not throw.
   */
  settle?(pageTable: PT): void;
}
