import type { PhysAddr } from '@vmkit/addr';

/**
 * A page-table entry read out of a table: a `Uint32Array` of length 2 holding the low word (`[0]`,
 * bits 31..0) and the high word (`[1]`, bits 63..32). Callers pass one reusable buffer to
 * {@link TableReadOps.readEntry}, so reading an entry never allocates and never makes a BigInt.
 */
export type PteWords = Uint32Array;

/** A fresh two-word entry buffer for {@link TableReadOps.readEntry}. */
export function newPteWords(): PteWords {
  return new Uint32Array(2);
}

/**
 * The read-only operations on page-table structures (seed `TableReadOps`), so that the same walking
 * code runs over simulated physical memory, an off-line table buffer or a snapshot.
 *
 * `A` is the implementation's table address (the seed's `TableAddr`): a physical address Number for
 * the implementations of this package, anything for a test double.
 */
export interface TableReadOps<A> {
  /**
   * The address of the entry `entryOffset` **bytes** (not entries: index × 8) past `addr`.
   * Normally called with a table base and `index * 8`.
   */
  entryAddr(addr: A, entryOffset: number): A;
  /** Reads the 8-byte entry at `addr` into `out` (`out[0]` = low word, `out[1]` = high word); returns `out`. */
  readEntry(addr: A, out: PteWords): PteWords;
  /** The physical address of a table address (what goes into a parent entry or CR3). */
  toPhys(addr: A): PhysAddr;
  /** The table address of a physical address read from an entry (bits 51..12) or CR3. */
  fromPhys(pa: PhysAddr): A;
  /** The root (PML4) table of the space these operations currently work on. */
  rootTable(): A;
}

/** Marker of {@link TableOps} implementations that may have to move a table to write it (seed `MayMoveTable`). */
export const MayMoveTable = 'MayMoveTable';
/** Marker of {@link TableOps} implementations that always write tables in place (seed `MayNotMoveTable`). */
export const MayNotMoveTable = 'MayNotMoveTable';
/** {@link MayMoveTable}. */
export type MayMoveTable = typeof MayMoveTable;
/** {@link MayNotMoveTable}. */
export type MayNotMoveTable = typeof MayNotMoveTable;
/** Either movability marker (seed `TableMovability`). */
export type TableMovability = MayMoveTable | MayNotMoveTable;
/**
 * What a write reports about a moved table (seed `TableMoveInfo`): the new table base for
 * `MayMoveTable`, `never` (the seed's `Void`) for `MayNotMoveTable`.
 */
export type TableMoveInfo<A, M extends TableMovability> = M extends MayMoveTable ? A : never;

/**
 * The writing operations on page-table structures (seed `TableOps`).
 *
 * `tableMovability` says whether writing an entry may move its table (for example out of a read-only
 * snapshot into scratch memory). When it does, {@link writeEntry} returns the table's new base, and the
 * caller rewrites the parent entry (the `UpdateParent` chain), up to {@link updateRoot} when the root
 * itself moved.
 *
 * Two optional methods let {@link map} and {@link spaceAwareMap} check everything before they change
 * anything, so that a failure leaves the tables exactly as they were: {@link canAllocTables} and
 * {@link wouldMove}. Every implementation in this package provides both; an implementation without
 * them works, but then an allocation failure in the middle of an operation leaves it half applied.
 */
export interface TableOps<A, M extends TableMovability = TableMovability> extends TableReadOps<A> {
  /** {@link MayMoveTable} or {@link MayNotMoveTable}. */
  readonly tableMovability: M;
  /** Allocates a zeroed 4 KiB table. Throws (typically `E_NOMEM`) when none is left. */
  allocTable(): A;
  /**
   * Writes the entry at `addr` (words `lo`, `hi`). When the table holding `addr` had to be moved to be
   * written, returns the new base of that table (the entry is written in the moved copy); otherwise
   * `undefined`.
   */
  writeEntry(addr: A, lo: number, hi: number): TableMoveInfo<A, M> | undefined;
  /** Makes `newRoot` the root table (CR3) of the current space. Only `MayMoveTable` implementations are ever asked. */
  updateRoot(newRoot: TableMoveInfo<A, M>): void;
  /** True when `count` more tables (allocations plus moves) can be provided now. */
  canAllocTables?(count: number): boolean;
  /** True when writing an entry of `table` would move it (a `MayMoveTable` implementation's read-only tables). */
  wouldMove?(table: A): boolean;
}
