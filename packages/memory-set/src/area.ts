import { AddrRange, EXACT_LIMIT, formatHex, type VirtAddr } from '@vmkit/addr';
import type { MappingBackend } from './backend.js';
import { mappingFail } from './errors.js';

/**
 * A contiguous range of addresses `[start, end)` with one set of flags and one {@link MappingBackend}
 * (the crate's `MemoryArea`). The physical frames behind it are the backend's business and need not be
 * contiguous.
 *
 * Immutable: the {@link MemorySet} replaces an area by new ones when it splits, shrinks or re-flags it.
 *
 * @typeParam F flags type; @typeParam PT page table type; @typeParam A address type (default `VirtAddr`);
 * @typeParam B the backend type
 */
export class MemoryArea<
  F,
  PT,
  A extends number = VirtAddr,
  B extends MappingBackend<F, PT, A> = MappingBackend<F, PT, A>,
> {
  /** First address of the area. */
  readonly start: A;
  /** One past the last address of the area (exclusive). */
  readonly end: A;
  /** The flags (e.g. permission bits) the area is mapped with. */
  readonly flags: F;
  /** The backend that maps this area. */
  readonly backend: B;

  /**
   * Creates the area `[start, start + size)`.
   *
   * @param start an integer address in `[0, 2^53)`
   * @param size bytes, an integer ≥ 0 (an empty area can be built but not mapped)
   * @throws MappingFailure `InvalidParam` (`E_INVALID_PARAM`) if `start` or `size` is not a non-negative
   *   integer, or `start + size` overflows (reaches 2^53, where Numbers stop being exact)
   */
  constructor(start: A, size: number, flags: F, backend: B) {
    if (!Number.isInteger(start) || start < 0 || start >= EXACT_LIMIT) {
      mappingFail('InvalidParam', `area start ${String(start)} is not an integer in [0, 2^53)`, { start });
    }
    if (!Number.isInteger(size) || size < 0) {
      mappingFail('InvalidParam', `area size ${String(size)} is not a non-negative integer`, { size });
    }
    const end = start + size;
    if (end >= EXACT_LIMIT) {
      mappingFail('InvalidParam', `area ${formatHex(start)} + ${formatHex(size)} overflows 2^53`, {
        start,
        size,
      });
    }
    this.start = start;
    this.end = end as A;
    this.flags = flags;
    this.backend = backend;
  }

  /** Size of the area in bytes (`end - start`). */
  get size(): number {
    return this.end - this.start;
  }

  /** The area's range `[start, end)` as an {@link AddrRange}. */
  get vaRange(): AddrRange<A> {
    return AddrRange.of(this.start, this.end) as unknown as AddrRange<A>;
  }

  /** `MemoryArea([0x1000, 0x2000), flags: 1)`: the range in hex and the flags as `String(flags)` or JSON. */
  toString(): string {
    const f =
      typeof this.flags === 'object' && this.flags !== null ? JSON.stringify(this.flags) : String(this.flags);
    return `MemoryArea([${formatHex(this.start)}, ${formatHex(this.end)}), flags: ${f})`;
  }
}
