import {
  checkAligned,
  checkUint,
  checkVirtAddr,
  fail,
  formatHex,
  formatVirtAddr,
  PAGE_SIZE_4K,
  PHYS_SPACE_END,
  type PhysAddr,
  type VirtAddr,
  VmkitError,
  virtEnd,
} from '@vmkit/addr';
import { PagingErrorCode } from '../errors.js';
import { addrHi, addrLo, PTE_P, PTE_PS, PTE_RW, PTE_US, pteAddr } from '../pte.js';
import { levelShift } from './constants.js';
import { leafFlagsHi, leafFlagsLo, type Mapping, type MappingKind } from './mapping.js';
import type { TableOps } from './table-ops.js';
import {
  rootUpdateParent,
  tableEntryHi,
  tableEntryLo,
  type UpdateParent,
  writeEntryUpdating,
} from './update-parent.js';

type Level = 1 | 2 | 3 | 4;

const W = new Uint32Array(2);

/** Per-call state of {@link map} (one object per call, never per page). */
interface MapCtx<A> {
  readonly op: TableOps<A>;
  readonly unmapped: boolean;
  /** Intermediate flags the mapping needs on its path (U/S for user, R/W for writable). */
  readonly want: number;
  readonly flagsLo: number;
  readonly flagsHi: number;
  readonly virtBase: number;
  readonly physBase: number;
  tables: number;
  moves: number;
}

/**
 * Maps `mapping.len` bytes at `mapping.virtBase` to `mapping.physBase` onwards with 4 KiB leaves
 * (seed `map`), allocating intermediate tables (PDPT, PD, PT) as needed and overwriting leaves that
 * are already there. With `MappingKind.Unmapped` the leaves of the range are cleared (never any table
 * allocated; a 2 MiB / 1 GiB leaf entirely inside the range is cleared too).
 *
 * Leaves are encoded like the seed's x86-64 `map_page` (P, A and D preset, write-back caching,
 * R/W for writable `Basic`, bit 9 and never R/W for `Cow`, XD unless executable) plus U/S when
 * `userAccessible` (the seed's x86-64 code ignores it). New table entries are `P | R/W | U/S | A`; an
 * existing entry on the path that lacks the U/S (user mapping) or R/W (writable mapping) bit gets it
 * added, so the leaf alone decides the access.
 *
 * Everything is checked before anything is written: a failing call leaves tables, allocator and
 * memory exactly as they were (given operations that implement `canAllocTables`/`wouldMove`, as all of
 * this package's do). No TLB is flushed: that is the MMU's business.
 *
 * @param op the table operations (the space is `op.rootTable()`)
 * @param mapping `virtBase` and `len` 4 KiB aligned, `len > 0`, the range inside one canonical half;
 *   `physBase` 4 KiB aligned with `physBase + len ≤ 2^52` (ignored for `Unmapped`)
 * @throws VmkitError `E_UNALIGNED`, `E_RANGE`, `E_INVALID`, `E_OVERFLOW`, `E_NONCANONICAL` for bad
 *   input; `E_MAPPING_CONFLICT` when the range runs into a 2 MiB / 1 GiB leaf (which is never split);
 *   `E_NOMEM` when the tables needed cannot be allocated
 */
export function map<A>(op: TableOps<A>, mapping: Mapping): void {
  const { virtBase, physBase, len, kind, userAccessible } = mapping;
  checkKind(kind);
  checkVirtAddr(virtBase, 'virtBase');
  checkAligned(virtBase, PAGE_SIZE_4K, 'virtBase');
  checkUint(len, 'len');
  if (len === 0) fail('E_RANGE', 'mapping length 0 is not positive', { len });
  checkAligned(len, PAGE_SIZE_4K, 'len');
  const vend = virtEnd(virtBase, len);
  const unmapped = kind.type === 'Unmapped';
  if (!unmapped) {
    checkUint(physBase, 'physBase');
    checkAligned(physBase, PAGE_SIZE_4K, 'physBase');
    if (physBase + len > PHYS_SPACE_END) {
      fail('E_RANGE', `physical range ${formatHex(physBase)} + ${formatHex(len)} passes 2^52`, {
        physBase,
        len,
      });
    }
  }
  const ctx: MapCtx<A> = {
    op,
    unmapped,
    want: unmapped
      ? 0
      : (userAccessible ? PTE_US : 0) | (kind.type === 'Basic' && kind.writable ? PTE_RW : 0),
    flagsLo: leafFlagsLo(kind, userAccessible),
    flagsHi: leafFlagsHi(kind),
    virtBase,
    physBase: unmapped ? 0 : physBase,
    tables: 0,
    moves: 0,
  };
  const root = op.rootTable();
  precheck(ctx, root, 4, virtBase, vend);
  const need = ctx.tables + ctx.moves;
  if (need > 0 && op.canAllocTables !== undefined && !op.canAllocTables(need)) {
    throw new VmkitError(
      PagingErrorCode.E_NOMEM,
      `mapping ${formatVirtAddr(virtBase as VirtAddr)} +${formatHex(len)} needs ${need} tables, not available`,
      {
        virtBase,
        len,
        tables: need,
      },
    );
  }
  apply(ctx, rootUpdateParent(op), 4, virtBase, vend);
}

function checkKind(kind: MappingKind): void {
  const t = (kind as { type?: unknown } | undefined)?.type;
  if (t !== 'Unmapped' && t !== 'Basic' && t !== 'Cow') {
    fail('E_INVALID', `mapping kind ${String(t)} is not Unmapped, Basic or Cow`, { kind });
  }
}

/** New tables needed below a missing entry of a level-`level` table to map `[a, b)`. */
export function tablesBelow(level: Level, a: number, b: number): number {
  let n = 0;
  for (let k = 1; k < level; k++) {
    const span = 2 ** (levelShift(k as Level) + 9);
    n += Math.floor((b - 1) / span) - Math.floor(a / span) + 1;
  }
  return n;
}

/** Read-only pass: conflicts throw; counts tables to allocate and tables that would move. Returns "table written". */
function precheck<A>(ctx: MapCtx<A>, table: A, level: Level, vmin: number, vend: number): boolean {
  const op = ctx.op;
  const block = 2 ** levelShift(level);
  let written = false;
  let va = vmin;
  while (va < vend) {
    const blockStart = va - (va % block);
    const blockEnd = blockStart + block;
    const end = Math.min(blockEnd, vend);
    const off = (Math.floor(va / block) % 512) * 8;
    if (level === 1) {
      if (!ctx.unmapped) {
        written = true;
        break;
      }
      op.readEntry(op.entryAddr(table, off), W);
      if ((W[0]! | W[1]!) !== 0) {
        written = true;
        break;
      }
      va = end;
      continue;
    }
    op.readEntry(op.entryAddr(table, off), W);
    const lo = W[0]!;
    const hi = W[1]!;
    if ((lo & PTE_P) !== 0) {
      if (level <= 3 && (lo & PTE_PS) !== 0) {
        if (!(ctx.unmapped && va === blockStart && end === blockEnd)) {
          throw new VmkitError(
            PagingErrorCode.E_MAPPING_CONFLICT,
            `${formatVirtAddr(va as VirtAddr)} lies in a ${level === 3 ? '1 GiB' : '2 MiB'} leaf at ${formatVirtAddr(blockStart as VirtAddr)}, which map never splits`,
            { va, level },
          );
        }
        written = true;
      } else {
        if ((lo & ctx.want) !== ctx.want) written = true;
        const child = op.fromPhys(pteAddr(lo, hi) as PhysAddr);
        if (precheck(ctx, child, (level - 1) as Level, va, end) && op.wouldMove?.(child) === true)
          written = true;
      }
    } else if (!ctx.unmapped) {
      ctx.tables += tablesBelow(level, va, end);
      written = true;
    }
    va = end;
  }
  if (written && op.wouldMove?.(table) === true) ctx.moves++;
  return written;
}

function apply<A>(ctx: MapCtx<A>, link: UpdateParent<A>, level: Level, vmin: number, vend: number): void {
  if (level === 1) {
    leaves(ctx, link, vmin, vend);
    return;
  }
  const op = ctx.op;
  const block = 2 ** levelShift(level);
  let va = vmin;
  while (va < vend) {
    const blockEnd = va - (va % block) + block;
    const end = Math.min(blockEnd, vend);
    const off = (Math.floor(va / block) % 512) * 8;
    op.readEntry(op.entryAddr(link.table, off), W);
    const lo = W[0]!;
    const hi = W[1]!;
    if ((lo & PTE_P) !== 0) {
      if (level <= 3 && (lo & PTE_PS) !== 0) {
        // Only an Unmapped range covering the whole large leaf gets here (precheck).
        writeEntryUpdating(op, link, off, 0, 0);
      } else {
        if ((lo & ctx.want) !== ctx.want) writeEntryUpdating(op, link, off, (lo | ctx.want) >>> 0, hi);
        const child = op.fromPhys(pteAddr(lo, hi) as PhysAddr);
        apply(ctx, link.forChildAtEntry(off, child), (level - 1) as Level, va, end);
      }
    } else if (!ctx.unmapped) {
      const child = op.allocTable();
      const pa = op.toPhys(child);
      writeEntryUpdating(op, link, off, tableEntryLo(pa), tableEntryHi(pa));
      apply(ctx, link.forChildAtEntry(off, child), (level - 1) as Level, va, end);
    }
    va = end;
  }
}

function leaves<A>(ctx: MapCtx<A>, link: UpdateParent<A>, vmin: number, vend: number): void {
  const op = ctx.op;
  const first = Math.floor(vmin / PAGE_SIZE_4K) % 512;
  const n = (vend - vmin) / PAGE_SIZE_4K;
  if (ctx.unmapped) {
    for (let i = 0; i < n; i++) {
      const off = (first + i) * 8;
      op.readEntry(op.entryAddr(link.table, off), W);
      if ((W[0]! | W[1]!) !== 0) writeEntryUpdating(op, link, off, 0, 0);
    }
    return;
  }
  const flagsLo = ctx.flagsLo;
  const flagsHi = ctx.flagsHi;
  let pa = ctx.physBase + (vmin - ctx.virtBase);
  for (let i = 0; i < n; i++) {
    const off = (first + i) * 8;
    const moved = op.writeEntry(
      op.entryAddr(link.table, off),
      (addrLo(pa) | flagsLo) >>> 0,
      (addrHi(pa) | flagsHi) >>> 0,
    );
    if (moved !== undefined) link.updateParent(op, moved as A);
    pa += PAGE_SIZE_4K;
  }
}
