import { VmkitError } from '@vmkit/addr';
import { PagingErrorCode } from '../errors.js';
import { addrHi, addrLo, PTE_A, PTE_P, PTE_RW, PTE_US } from '../pte.js';
import { MayMoveTable, type TableOps, type TableReadOps } from './table-ops.js';

/**
 * The low-word flags of an entry that points to a table: present, writable, user-accessible and
 * accessed (`P | R/W | U/S | A`). Permissions are decided by the leaves (a leaf's U/S and R/W still
 * apply), like the seed's i686 code; the seed's x86-64 code leaves U/S clear, which would make every
 * user leaf unreachable from user mode.
 */
export const TABLE_ENTRY_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A;

/** The low word of an entry pointing to the table at physical address `pa`. */
export function tableEntryLo(pa: number): number {
  return (addrLo(pa) | TABLE_ENTRY_FLAGS) >>> 0;
}

/** The high word of an entry pointing to the table at physical address `pa`. */
export function tableEntryHi(pa: number): number {
  return addrHi(pa);
}

/**
 * The context to fix up when a table moves (seed `UpdateParent`): each link knows the table it stands
 * for (`table`, its current base, updated when it moves) and how to make its parent point to a new
 * base — by rewriting the entry in the parent table (which may move the parent in turn, recursively),
 * or by loading a new root.
 *
 * Unlike the seed, a link holds its table's current base and its parent's entry as an offset into the
 * parent's (current) base, so that when a table moves, every later write through the same chain goes
 * to the moved copy (the seed's iterator would keep the old address).
 */
export interface UpdateParent<A> {
  /** The current base of the table this link stands for. */
  table: A;
  /**
   * Records that this link's table now lives at `newTable` and makes the parent point to it.
   *
   * @throws VmkitError `E_TABLE_IMMOVABLE` for {@link UpdateParentNone}
   */
  updateParent(op: TableOps<A>, newTable: A): void;
  /** The link of the child table `child` reached through the entry `entryOffset` bytes into this table. */
  forChildAtEntry(entryOffset: number, child: A): UpdateParent<A>;
}

/**
 * The link used when no table can move (seed `UpdateParentNone`): walks over read-only operations or
 * `MayNotMoveTable` writers. Asking it to update a parent is a contract violation of the operations
 * (a `MayNotMoveTable` writer reported a move) and throws `E_TABLE_IMMOVABLE`.
 */
export class UpdateParentNone<A> implements UpdateParent<A> {
  table: A;
  constructor(table: A) {
    this.table = table;
  }
  updateParent(_op: TableOps<A>, newTable: A): void {
    throw new VmkitError(
      PagingErrorCode.E_TABLE_IMMOVABLE,
      'a table moved although its operations may not move tables',
      {
        newTable,
      },
    );
  }
  forChildAtEntry(_entryOffset: number, child: A): UpdateParent<A> {
    return new UpdateParentNone(child);
  }
}

/** The link of the root table (seed `UpdateParentRoot`): a moved root is loaded with `op.updateRoot`. */
export class UpdateParentRoot<A> implements UpdateParent<A> {
  table: A;
  constructor(table: A) {
    this.table = table;
  }
  updateParent(op: TableOps<A>, newTable: A): void {
    this.table = newTable;
    (op as TableOps<A, MayMoveTable>).updateRoot(newTable);
  }
  forChildAtEntry(entryOffset: number, child: A): UpdateParent<A> {
    return new UpdateParentTable(this, entryOffset, child);
  }
}

/**
 * The link of a table below the root (seed `UpdateParentTable`): a move rewrites the parent's entry at
 * `entryOffset` (bytes into the parent table) with the new base, keeping the parent entry's flags as
 * they were, through {@link writeEntryUpdating} so the parent may move in turn.
 */
export class UpdateParentTable<A> implements UpdateParent<A> {
  table: A;
  readonly parent: UpdateParent<A>;
  readonly entryOffset: number;
  constructor(parent: UpdateParent<A>, entryOffset: number, table: A) {
    this.parent = parent;
    this.entryOffset = entryOffset;
    this.table = table;
  }
  updateParent(op: TableOps<A>, newTable: A): void {
    this.table = newTable;
    const addr = op.entryAddr(this.parent.table, this.entryOffset);
    const old = op.readEntry(addr, scratchWords);
    const pa = op.toPhys(newTable);
    const lo = ((old[0]! & 0xfff) | addrLo(pa)) >>> 0;
    const hi = ((old[1]! & 0xfff0_0000) | addrHi(pa)) >>> 0;
    writeEntryUpdating(op, this.parent, this.entryOffset, lo, hi);
  }
  forChildAtEntry(entryOffset: number, child: A): UpdateParent<A> {
    return new UpdateParentTable(this, entryOffset, child);
  }
}

const scratchWords = new Uint32Array(2);

/**
 * Writes the entry `entryOffset` bytes into `link`'s table and, when the write moved the table,
 * updates the whole chain of parents up to the root (seed `write_entry_updating`).
 */
export function writeEntryUpdating<A>(
  op: TableOps<A>,
  link: UpdateParent<A>,
  entryOffset: number,
  lo: number,
  hi: number,
): void {
  const moved = op.writeEntry(op.entryAddr(link.table, entryOffset), lo, hi);
  if (moved !== undefined) {
    if (op.tableMovability !== MayMoveTable) {
      throw new VmkitError(
        PagingErrorCode.E_TABLE_IMMOVABLE,
        'writeEntry of a MayNotMoveTable implementation reported a move',
        {},
      );
    }
    link.updateParent(op, moved as A);
  }
}

/** The root link for `op`: {@link UpdateParentRoot} (a `MayMoveTable` root can move) or {@link UpdateParentNone}. */
export function rootUpdateParent<A>(op: TableOps<A> | TableReadOps<A>): UpdateParent<A> {
  const root = op.rootTable();
  return 'tableMovability' in op && op.tableMovability === MayMoveTable
    ? new UpdateParentRoot(root)
    : new UpdateParentNone(root);
}
