import { AddrRange, EXACT_LIMIT, formatHex, type VirtAddr } from '@vmkit/addr';
import type { MappingBackend } from './backend.js';
import { mappingFail } from './errors.js';
import { describe, formatRange } from './text.js';

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
   *   integer Number (a string, `NaN`, `1.5`, `-1`), `start + size` overflows (reaches 2^53, where
   *   Numbers stop being exact), or `backend` is not an object. The virtual-range rule (the canonical
   *   hole) is checked where the address type is known: by a virtual `MemorySet` and the x86-64 backends.
   */
  constructor(start: A, size: number, flags: F, backend: B) {
    if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 0) {
      mappingFail('InvalidParam', `area start ${describe(start)} is not an integer in [0, 2^53)`, { start });
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      mappingFail('InvalidParam', `area size ${describe(size)} is not a non-negative integer`, { size });
    }
    const end = start + size;
    if (end >= EXACT_LIMIT) {
      mappingFail('InvalidParam', `area ${formatHex(start)} + ${formatHex(size)} overflows 2^53`, {
        start,
        size,
      });
    }
    if (typeof backend !== 'object' || backend === null) {
      mappingFail('InvalidParam', `area backend ${describe(backend)} is not a MappingBackend`, { backend });
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

  /**
   * `MemoryArea([0x1000, 0x2000), flags: 1)`: the range and the flags as `String(flags)` or JSON.
   * Addresses print canonically (`0xffff800000000000`, as in `/proc/PID/maps` and QEMU) since areas hold
   * `VirtAddr`s by default; `virtual` `false` prints plain hex (for other address types; a
   * `MemorySet` passes its own {@link MemorySetOptions.virtual}). A number at or past 2^48 is never a
   * `VirtAddr` and prints in plain hex either way.
   */
  toString(virtual = true): string {
    const f =
      typeof this.flags === 'object' && this.flags !== null ? JSON.stringify(this.flags) : String(this.flags);
    return `MemoryArea(${formatRange(this.start, this.end, virtual)}, flags: ${f})`;
  }
}
