import { bits } from './constants.js';
import type { TableReadOps } from './table-ops.js';

/** A range of virtual addresses to handle within one table (seed `MapRequest`). */
export interface MapRequest<A, P> {
  /** The table whose entries cover the range. */
  readonly tableBase: A;
  /** First virtual address (48-bit value; need not be aligned). */
  readonly vmin: number;
  /** Bytes from `vmin`. */
  readonly len: number;
  /** The parent-update context handed down to each response. */
  readonly updateParent: P;
}

/** One entry to handle (seed `MapResponse`): its address and the part of the range it covers. */
export interface MapResponse<A, P> {
  readonly entryPtr: A;
  readonly vmin: number;
  readonly len: number;
  readonly updateParent: P;
}

/**
 * The entries of `request.tableBase` covering `[vmin, vmin + len)` at the level whose index is
 * virtual-address bits `highBit..lowBit` (seed `modify_ptes`; 47..39 for a PML4, 38..30 for a PDPT,
 * 29..21 for a PD, 20..12 for a PT). The first response starts at `vmin` and runs to the end of its
 * entry's block (or of the range); each later one starts at a block boundary. A zero `len` yields
 * nothing.
 *
 * This generator allocates a response per entry; it is the readable reference form of the walk and is
 * used by tests and tools. `map` and `virtToPhys` run the same iteration as plain loops.
 */
export function* modifyPtes<A, P>(
  op: Pick<TableReadOps<A>, 'entryAddr'>,
  request: MapRequest<A, P>,
  highBit: number,
  lowBit: number,
): Generator<MapResponse<A, P>> {
  const block = 2 ** lowBit;
  const end = request.vmin + request.len;
  const alignedMin = request.vmin - (request.vmin % block);
  for (let n = 0; ; n++) {
    const next = n === 0 ? request.vmin : alignedMin + n * block;
    if (next >= end) return;
    const index = bits(next, highBit, lowBit);
    const maxLen = block - (next % block);
    yield {
      entryPtr: op.entryAddr(request.tableBase, index * 8),
      vmin: next,
      len: Math.min(end - next, maxLen),
      updateParent: request.updateParent,
    };
  }
}
