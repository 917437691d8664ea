import {
  checkVirtAddr,
  fail,
  formatHex,
  formatVirtAddr,
  type PhysAddr,
  type VirtAddr,
  VmkitError,
} from '@vmkit/addr';
import { PagingErrorCode } from '../errors.js';
import { PTE_P, PTE_PS, pteAddr } from '../pte.js';
import { levelShift } from './constants.js';
import type { Mapping } from './mapping.js';
import type { TableOps, TableReadOps } from './table-ops.js';
import {
  rootUpdateParent,
  tableEntryHi,
  tableEntryLo,
  type UpdateParent,
  writeEntryUpdating,
} from './update-parent.js';
import { leafMapping, queryRange, type TableLevel } from './virt-to-phys.js';

/**
 * Identifies an address space in a multi-space walk (seed `SpaceId`): the physical address of its
 * root table (`op.toPhys(root)`), unique per space.
 */
export type SpaceId = number;

/**
 * A reference from one space to an intermediate table that belongs to another (seed
 * `SpaceReferenceMapping`): the level-`depth` block of **our** space starting at `ourVa` is the same
 * table as the level-`depth` block of `space` starting at `theirVa`; everything below is shared.
 * `depth` counts from the root: 1 = a PDPT (512 GiB block), 2 = a PD (1 GiB), 3 = a PT (2 MiB).
 * `ourVa` and `theirVa` are block-aligned 48-bit `VirtAddr` values.
 */
export interface SpaceReferenceMapping {
  readonly depth: 1 | 2 | 3;
  readonly space: SpaceId;
  readonly ourVa: VirtAddr;
  readonly theirVa: VirtAddr;
}

/** A leaf of the current space, or a link to a table another space owns (seed `SpaceAwareMapping`). */
export type SpaceAwareMapping =
  | { readonly type: 'ThisSpace'; readonly mapping: Mapping }
  | { readonly type: 'AnotherSpace'; readonly ref: SpaceReferenceMapping };

/** One space's part of a {@link walkVaSpaces} result. */
export interface SpaceWalk {
  readonly space: SpaceId;
  readonly mappings: SpaceAwareMapping[];
}

/** Bytes covered by one table at `depth` below the root: 2^39 (PDPT), 2^30 (PD), 2^21 (PT). */
export function depthSpan(depth: 1 | 2 | 3): number {
  return 2 ** levelShift((5 - depth) as TableLevel);
}

/**
 * Walks several roots together (seed `walk_va_spaces`), in the order given (the order of primacy),
 * over `[address, address + len)` (rounded and clipped as in `virtToPhys`).
 *
 * For each root, present leaves come out as `ThisSpace` mappings (as `virtToPhys` reports them), in
 * address order. At every depth (PDPT, PD, PT) the first root to reach an intermediate table owns it
 * and is descended; a later root reaching the same table (same physical address at the same depth)
 * gets one `AnotherSpace { depth, space: owner, ourVa, theirVa }` for it instead and is not descended.
 * So the result is topologically ordered: every reference names a space listed earlier — or the same
 * space, when one space reaches a table twice at different addresses (the seed's i686 code skips such
 * a second path; we report it so that a rebuild keeps it).
 *
 * This is implemented for x86-64 at every depth as the seed documents it (upstream's x86-64 code
 * reports leaves only).
 *
 * @param roots root table addresses, each once
 * @throws VmkitError as `virtToPhys` for the range; `E_INVALID` when a root is listed twice
 */
export function walkVaSpaces<A>(
  op: TableReadOps<A>,
  roots: readonly A[],
  address: number,
  len: number,
): SpaceWalk[] {
  const [vmin, vmax] = queryRange(address, len);
  const ids = roots.map((r) => op.toPhys(r) as number);
  if (new Set(ids).size !== ids.length) fail('E_INVALID', 'a root is listed twice', { roots: ids });
  const seen = new Map<number, { owner: SpaceId; theirVa: number; depth: number }>();
  const w = new Uint32Array(2);
  const out: SpaceWalk[] = [];
  roots.forEach((root, i) => {
    const id = ids[i]!;
    const mappings: SpaceAwareMapping[] = [];
    const visit = (table: A, level: TableLevel, from: number, to: number): void => {
      const block = 2 ** levelShift(level);
      let va = from;
      while (va < to) {
        const blockStart = va - (va % block);
        const end = Math.min(blockStart + block, to);
        op.readEntry(op.entryAddr(table, (Math.floor(va / block) % 512) * 8), w);
        const lo = w[0]!;
        const hi = w[1]!;
        if ((lo & PTE_P) !== 0) {
          if (level === 1 || (level <= 3 && (lo & PTE_PS) !== 0)) {
            mappings.push({ type: 'ThisSpace', mapping: leafMapping(lo, hi, level, va) });
          } else {
            const pa = pteAddr(lo, hi);
            const depth = 5 - level;
            const s = seen.get(pa);
            if (s !== undefined && s.depth === depth) {
              mappings.push({
                type: 'AnotherSpace',
                ref: {
                  depth: depth as 1 | 2 | 3,
                  space: s.owner,
                  ourVa: blockStart as VirtAddr,
                  theirVa: s.theirVa as VirtAddr,
                },
              });
            } else {
              if (s === undefined) seen.set(pa, { owner: id, theirVa: blockStart, depth });
              visit(op.fromPhys(pa as PhysAddr), (level - 1) as TableLevel, va, end);
            }
          }
        }
        va = end;
      }
    };
    visit(root, 4, vmin, vmax);
    out.push({ space: id, mappings });
  });
  return out;
}

/**
 * Installs the link `refMap` describes in `op`'s current space (seed `space_aware_map`): finds the
 * table the owning space has at `refMap.theirVa` and depth `refMap.depth` — starting from
 * `builtRoots.get(refMap.space)` — and makes the entry of our space for `refMap.ourVa` at that depth
 * point to it, with the owner's entry flags. Tables on our path that are missing are allocated (entries
 * `P | R/W | U/S | A`). When the owner has no such table (nothing was mapped there), nothing is linked.
 * Checks everything before writing anything.
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE` for a malformed reference; `E_BAD_SNAPSHOT` when
 *   `builtRoots` has no root for `refMap.space` (upstream silently skips); `E_MAPPING_CONFLICT` when
 *   our path runs into a large leaf or our entry already points elsewhere; `E_NOMEM` when tables run out
 */
export function spaceAwareMap<A>(
  op: TableOps<A>,
  refMap: SpaceReferenceMapping,
  builtRoots: ReadonlyMap<SpaceId, A>,
): void {
  const { depth, ourVa, theirVa } = refMap;
  if (depth !== 1 && depth !== 2 && depth !== 3)
    fail('E_INVALID', `depth ${String(depth)} is not 1, 2 or 3`, { depth });
  for (const [name, v] of [
    ['ourVa', ourVa],
    ['theirVa', theirVa],
  ] as const) {
    checkVirtAddr(v, name);
  }
  const theirRoot = builtRoots.get(refMap.space);
  if (theirRoot === undefined) {
    throw new VmkitError(
      PagingErrorCode.E_BAD_SNAPSHOT,
      `no built root for space ${formatHex(refMap.space)}`,
      { space: refMap.space },
    );
  }
  const w = new Uint32Array(2);
  // The owner's entry pointing at the shared table: in the table at depth - 1 (level 5 - depth).
  const targetLevel = (5 - depth) as TableLevel;
  let table: A = theirRoot;
  for (let level: TableLevel = 4; ; level = (level - 1) as TableLevel) {
    op.readEntry(op.entryAddr(table, entryOffset(theirVa, level)), w);
    if ((w[0]! & PTE_P) === 0 || (w[0]! & PTE_PS) !== 0) return;
    if (level === targetLevel) break;
    table = op.fromPhys(pteAddr(w[0]!, w[1]!) as PhysAddr);
  }
  const linkLo = w[0]!;
  const linkHi = w[1]!;

  // Our side, checked first: count missing tables and tables that would move.
  let need = 0;
  let ours: A = op.rootTable();
  for (let level: TableLevel = 4; ; level = (level - 1) as TableLevel) {
    if (op.wouldMove?.(ours) === true) need++;
    op.readEntry(op.entryAddr(ours, entryOffset(ourVa, level)), w);
    const present = (w[0]! & PTE_P) !== 0;
    if (level === targetLevel) {
      if (present && (w[0]! !== linkLo || w[1]! !== linkHi)) {
        throw new VmkitError(
          PagingErrorCode.E_MAPPING_CONFLICT,
          `${formatVirtAddr(ourVa)} already has a table at depth ${depth} that is not the one to link`,
          { ourVa, depth },
        );
      }
      if (present) return;
      break;
    }
    if (present && (w[0]! & PTE_PS) !== 0 && level <= 3) {
      throw new VmkitError(
        PagingErrorCode.E_MAPPING_CONFLICT,
        `${formatVirtAddr(ourVa)} lies in a large leaf`,
        { ourVa },
      );
    }
    if (!present) {
      need += level - targetLevel;
      break;
    }
    ours = op.fromPhys(pteAddr(w[0]!, w[1]!) as PhysAddr);
  }
  if (need > 0 && op.canAllocTables !== undefined && !op.canAllocTables(need)) {
    throw new VmkitError(
      PagingErrorCode.E_NOMEM,
      `linking ${formatVirtAddr(ourVa)} needs ${need} tables, not available`,
      { need },
    );
  }

  let link: UpdateParent<A> = rootUpdateParent(op);
  for (let level: TableLevel = 4; level > targetLevel; level = (level - 1) as TableLevel) {
    const off = entryOffset(ourVa, level);
    op.readEntry(op.entryAddr(link.table, off), w);
    let child: A;
    if ((w[0]! & PTE_P) !== 0) {
      child = op.fromPhys(pteAddr(w[0]!, w[1]!) as PhysAddr);
    } else {
      child = op.allocTable();
      const pa = op.toPhys(child);
      writeEntryUpdating(op, link, off, tableEntryLo(pa), tableEntryHi(pa));
    }
    link = link.forChildAtEntry(off, child);
  }
  writeEntryUpdating(op, link, entryOffset(ourVa, targetLevel), (linkLo | PTE_P) >>> 0, linkHi);
}

function entryOffset(va: number, level: TableLevel): number {
  return (Math.floor(va / 2 ** levelShift(level)) % 512) * 8;
}
