import {
  checkUint,
  checkVirtAddr,
  fail,
  PAGE_SIZE_4K,
  type PhysAddr,
  VIRT_SPACE_END,
  type VirtAddr,
} from '@vmkit/addr';
import { PTE_P, PTE_PS, PTE_US, pteAddr } from '../pte.js';
import { levelShift } from './constants.js';
import { decodeLeafKind, type Mapping } from './mapping.js';
import type { PteWords, TableReadOps } from './table-ops.js';

/** Table level: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT. */
export type TableLevel = 1 | 2 | 3 | 4;

/**
 * Checks a query range and returns `[vmin, vmax)`: `address` rounded down to 4 KiB and
 * `min(address + len, 2^48)` (the seed clips at the top of the 48-bit space).
 *
 * @throws VmkitError `E_INVALID`/`E_RANGE`/`E_OVERFLOW` unless `address` is an integer in `[0, 2^48)`
 *   and `len` a positive integer below 2^53
 */
export function queryRange(address: number, len: number): [number, number] {
  checkVirtAddr(address, 'address');
  checkUint(len, 'len');
  if (len === 0) fail('E_RANGE', 'length 0 is not positive', { len });
  const vmin = address - (address % PAGE_SIZE_4K);
  return [vmin, Math.min(address + len, VIRT_SPACE_END)];
}

/**
 * The mapping a present leaf entry describes (words `lo`, `hi`) at `level` (1 = 4 KiB, 2 = 2 MiB,
 * 3 = 1 GiB) for the page containing `va`: `virtBase`/`physBase` are the page's first bytes (the PAT
 * bit of a large leaf is not part of the address), `len` its size, kind and U/S from the leaf.
 */
export function leafMapping(lo: number, hi: number, level: TableLevel, va: number): Mapping {
  const size = 2 ** levelShift(level);
  const pa = pteAddr(lo, hi);
  return {
    physBase: (pa - (pa % size)) as PhysAddr,
    virtBase: (va - (va % size)) as VirtAddr,
    len: size,
    kind: decodeLeafKind(lo, hi),
    userAccessible: (lo & PTE_US) !== 0,
  };
}

/**
 * The physical pages behind `[address, address + len)` (seed `virt_to_phys`): one {@link Mapping} per
 * present leaf intersecting the range, in address order, lazily. The start is rounded down to its
 * 4 KiB page, so an unaligned start or a length that ends inside a page still yields every page
 * touched; the end is clipped at 2^48. A 4 KiB leaf yields a 4 KiB mapping; a 2 MiB or 1 GiB leaf
 * (`PS = 1`, as the MMU's mapper may create) yields one mapping of its size starting at its aligned
 * virtual address. `kind` and `userAccessible` are the leaf's bits: every leaf is readable, `Cow` when
 * the software bits 9..11 are exactly bit 9, else `Basic` with `writable` = R/W; executable = not XD.
 *
 * Virtual addresses are 48-bit `VirtAddr` values: a higher-half page is reported as
 * `0x8000_0000_0000…` (format it with `formatVirtAddr` to see `0xffff8000…`).
 *
 * @throws VmkitError as {@link queryRange}, before yielding anything
 */
export function virtToPhys<A>(op: TableReadOps<A>, address: number, len: number): IterableIterator<Mapping> {
  const [vmin, vmax] = queryRange(address, len);
  return walkLeaves(op, op.rootTable(), 4, vmin, vmax, new Uint32Array(2));
}

function* walkLeaves<A>(
  op: TableReadOps<A>,
  table: A,
  level: TableLevel,
  vmin: number,
  vmax: number,
  w: PteWords,
): Generator<Mapping, void, undefined> {
  const block = 2 ** levelShift(level);
  let va = vmin;
  while (va < vmax) {
    const blockEnd = va - (va % block) + block;
    const end = Math.min(blockEnd, vmax);
    op.readEntry(op.entryAddr(table, (Math.floor(va / block) % 512) * 8), w);
    const lo = w[0]!;
    const hi = w[1]!;
    if ((lo & PTE_P) !== 0) {
      if (level === 1 || (level <= 3 && (lo & PTE_PS) !== 0)) {
        yield leafMapping(lo, hi, level, va);
      } else {
        yield* walkLeaves(
          op,
          op.fromPhys(pteAddr(lo, hi) as PhysAddr),
          (level - 1) as TableLevel,
          va,
          end,
          w,
        );
      }
    }
    va = end;
  }
}
