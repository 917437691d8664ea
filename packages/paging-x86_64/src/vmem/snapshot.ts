import {
  checkAligned,
  checkUint,
  fail,
  formatHex,
  PAGE_SIZE_4K,
  PHYS_SPACE_END,
  type PhysAddr,
  VIRT_SPACE_END,
  type VirtAddr,
  VmkitError,
} from '@vmkit/addr';
import { PagingErrorCode } from '../errors.js';
import type { PhysicalMemory } from '../physical-memory.js';
import { map } from './map.js';
import { type Mapping, type MappingKind, sameKind } from './mapping.js';
import { PhysTableOps } from './phys-table-ops.js';
import { TableBuffer } from './table-buffer.js';
import { type SpaceId, spaceAwareMap, walkVaSpaces } from './walk.js';

/**
 * A compacted snapshot of one or more address spaces: a dense raw image holding every page reachable
 * from the roots exactly once, followed by freshly built page tables, meant to be loaded at physical
 * address `base`.
 */
export interface Snapshot {
  /** Physical address of `image[0]` (every address inside the image's tables assumes it). */
  readonly base: PhysAddr;
  /** `dataPages` pages of contents, then `tablePages` page tables; raw little-endian. */
  readonly image: Uint8Array;
  /** Number of 4 KiB data pages at the start of the image. */
  readonly dataPages: number;
  /** Number of page tables after the data pages. */
  readonly tablePages: number;
  /** The rebuilt root (CR3) of each space, in the order of the source roots. */
  readonly roots: readonly PhysAddr[];
  /** The source spaces' ids (source root addresses), in the same order. */
  readonly spaces: readonly SpaceId[];
}

/** Options of {@link compactSnapshot}. */
export interface CompactOptions {
  /** Physical address the image will be restored at (4 KiB aligned; default 0). */
  base?: number;
}

/** The kind a page gets in a snapshot: writable `Basic` becomes `Cow`; the rest stays as it is. */
export function snapshotKind(kind: MappingKind): MappingKind {
  if (kind.type === 'Basic' && kind.writable)
    return { type: 'Cow', readable: kind.readable, executable: kind.executable };
  return kind;
}

/**
 * Compacts the address spaces rooted at `roots` (CR3 values in `mem`) into a {@link Snapshot}, the
 * way Hyperlight's host uses `walkVaSpaces`/`spaceAwareMap`:
 *
 * 1. all roots are walked together over the whole 48-bit space;
 * 2. every physical page reachable through a present leaf is copied once into the dense data part,
 *    in walk order (a page mapped at several addresses or in several spaces is stored once; a 2 MiB or
 *    1 GiB leaf contributes its 4 KiB pages and is rebuilt as 4 KiB leaves);
 * 3. each space's tables are rebuilt after the data (root of space `i` = `roots[i]` of the result):
 *    leaves point at the compacted copies with the same permissions and U/S bit, except that writable
 *    pages become `Cow`; a subtree shared between spaces (or reached twice in one space) is rebuilt
 *    once, by its first owner, and linked from the others, so it stays shared.
 *
 * Nothing in `mem` is changed.
 *
 * @throws VmkitError `E_INVALID`/`E_UNALIGNED`/`E_RANGE` for bad roots or base (a root listed twice is
 *   `E_INVALID`); `E_BAD_SNAPSHOT` when a leaf points outside `mem` or the image would pass 2^52
 */
export function compactSnapshot(
  mem: PhysicalMemory,
  roots: readonly (PhysAddr | number)[],
  options: CompactOptions = {},
): Snapshot {
  const base = options.base ?? 0;
  checkUint(base, 'snapshot base');
  checkAligned(base, PAGE_SIZE_4K, 'snapshot base');
  if (roots.length === 0) fail('E_INVALID', 'no roots to snapshot', {});
  const src = new PhysTableOps(mem, { root: roots[0]! });
  for (const r of roots) src.setRoot(r);
  const walk = walkVaSpaces(src, roots as readonly PhysAddr[], 0, VIRT_SPACE_END);

  // Dense page assignment, each source page once.
  const slot = new Map<number, number>();
  const order: number[] = [];
  for (const space of walk) {
    for (const m of space.mappings) {
      if (m.type !== 'ThisSpace') continue;
      const { physBase, len, virtBase } = m.mapping;
      if (physBase + len > mem.size) {
        throw new VmkitError(
          PagingErrorCode.E_BAD_SNAPSHOT,
          `the leaf at ${formatHex(virtBase)} maps ${formatHex(physBase)}, outside memory`,
          {
            virtBase,
            physBase,
          },
        );
      }
      for (let off = 0; off < len; off += PAGE_SIZE_4K) {
        const pa = physBase + off;
        if (!slot.has(pa)) {
          slot.set(pa, order.length);
          order.push(pa);
        }
      }
    }
  }
  const dataPages = order.length;
  const tableBase = base + dataPages * PAGE_SIZE_4K;
  if (tableBase + (roots.length + 1) * PAGE_SIZE_4K > PHYS_SPACE_END) {
    throw new VmkitError(
      PagingErrorCode.E_BAD_SNAPSHOT,
      `a snapshot of ${dataPages} pages at ${formatHex(base)} passes 2^52`,
      { base, dataPages },
    );
  }

  // Rebuild the tables.
  const buf = new TableBuffer(tableBase);
  const builtRoots: PhysAddr[] = [buf.initialRoot()];
  for (let i = 1; i < walk.length; i++) builtRoots.push(buf.allocTable());
  const built = new Map<SpaceId, PhysAddr>();
  walk.forEach((space, i) => {
    buf.setRoot(builtRoots[i]!);
    built.set(space.space, builtRoots[i]!);
    let pending: { virt: number; phys: number; len: number; kind: MappingKind; user: boolean } | undefined;
    const flush = (): void => {
      if (pending === undefined) return;
      const m: Mapping = {
        physBase: pending.phys as PhysAddr,
        virtBase: pending.virt as VirtAddr,
        len: pending.len,
        kind: pending.kind,
        userAccessible: pending.user,
      };
      map(buf, m);
      pending = undefined;
    };
    for (const sm of space.mappings) {
      if (sm.type === 'AnotherSpace') {
        flush();
        spaceAwareMap(buf, sm.ref, built);
        continue;
      }
      const { physBase, virtBase, len, userAccessible } = sm.mapping;
      const kind = snapshotKind(sm.mapping.kind);
      for (let off = 0; off < len; off += PAGE_SIZE_4K) {
        const dst = base + slot.get(physBase + off)! * PAGE_SIZE_4K;
        const va = virtBase + off;
        if (
          pending !== undefined &&
          pending.virt + pending.len === va &&
          pending.phys + pending.len === dst &&
          pending.user === userAccessible &&
          sameKind(pending.kind, kind)
        ) {
          pending.len += PAGE_SIZE_4K;
        } else {
          flush();
          pending = { virt: va, phys: dst, len: PAGE_SIZE_4K, kind, user: userAccessible };
        }
      }
    }
    flush();
  });

  const tables = buf.toBytes();
  const image = new Uint8Array(dataPages * PAGE_SIZE_4K + tables.length);
  for (let i = 0; i < dataPages; i++) mem.readInto(order[i]!, image, i * PAGE_SIZE_4K, PAGE_SIZE_4K);
  image.set(tables, dataPages * PAGE_SIZE_4K);
  return {
    base: base as PhysAddr,
    image,
    dataPages,
    tablePages: buf.tableCount,
    roots: builtRoots,
    spaces: walk.map((w) => w.space),
  };
}

/**
 * Restores a snapshot: writes its image into `mem` at `snapshot.base` and returns the roots (CR3
 * values) of its spaces, `roots[0]` first. The rest of `mem` is untouched. To run on the restored
 * spaces without ever writing the snapshot, use a `CowSnapshotTableOps` over
 * `[snapshot.base, snapshot.base + snapshot.image.length)` with scratch frames outside it.
 *
 * @throws VmkitError `E_BAD_SNAPSHOT` when the snapshot is not well formed (sizes, roots outside its
 *   table part); `E_RANGE` when it does not fit in `mem` (nothing written)
 */
export function restoreSnapshot(mem: PhysicalMemory, snapshot: Snapshot): readonly PhysAddr[] {
  const { base, image, dataPages, tablePages, roots } = snapshot;
  const ok =
    Number.isInteger(dataPages) &&
    Number.isInteger(tablePages) &&
    dataPages >= 0 &&
    tablePages >= 1 &&
    image.length === (dataPages + tablePages) * PAGE_SIZE_4K &&
    roots.length >= 1 &&
    roots.every((r) => {
      const t = (r - base) / PAGE_SIZE_4K - dataPages;
      return Number.isInteger(t) && t >= 0 && t < tablePages;
    });
  if (!ok)
    throw new VmkitError(PagingErrorCode.E_BAD_SNAPSHOT, 'snapshot sizes or roots are inconsistent', {
      base,
      dataPages,
      tablePages,
    });
  mem.checkRange(base, image.length);
  mem.writeBytes(base, image);
  return roots;
}
