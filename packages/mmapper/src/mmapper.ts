/**
 * MMTk's `Mmapper` trait as a TypeScript interface, and `Mmapper.fromShared` to attach to a mapper's
 * shared state from another worker thread.
 *
 * @module
 */
import type { VirtAddr } from '@vmkit/addr';
import { ByteMapMmapper } from './byte-map.js';
import { describeValue, mmapperFail } from './errors.js';
import type { MmapOs } from './os.js';
import {
  H_KIND,
  H_MAGIC,
  H_VERSION,
  HEADER_BYTES,
  KIND_BYTE_MAP,
  KIND_TWO_LEVEL,
  MAGIC,
  VERSION,
} from './shared-layout.js';
import type { MmapAnnotation, MmapStrategy } from './strategy.js';
import { TwoLevelMmapper } from './two-level.js';

/**
 * Chunk-granularity mmap state for a managed heap (MMTk's `Mmapper` trait): reserves, maps and protects
 * memory through an injected {@link MmapOs} in 4 MiB chunks, never repeating a call for a chunk already
 * in the wanted state. Every range is rounded out to whole chunks: from the chunk holding `start` to the
 * chunk boundary at or above its end.
 *
 * Implemented by {@link ByteMapMmapper} (a flat byte per chunk, for a small space) and
 * {@link TwoLevelMmapper} (the 48-bit space, slabs created on first use). Both keep their state in a
 * `SharedArrayBuffer` ({@link Mmapper.shared}) that other worker threads attach to with
 * {@link Mmapper.fromShared}: reads are lock-free, state changes are serialized by a lock in the buffer.
 *
 * Arguments are checked first: a bad one throws a typed error naming it and changes nothing. Addresses
 * are `VirtAddr`s (see `@vmkit/addr`); range starts must be 4 KiB-aligned; a range may not cross the
 * canonical hole or leave the mapper's space.
 */
export interface Mmapper {
  /**
   * Demand-zero maps every region of `spaceMap` that is not mapped yet (MMTk's
   * `eagerly_mmap_all_spaces`): `spaceMap` holds pairs `[start0, end0, start1, end1, …]` of 4 KiB-aligned
   * addresses, each `start ≤ end`. Each region is {@link Mmapper.ensureMapped} with `strategy`
   * (default `MmapStrategy.INTERNAL_MEMORY`) and `anno` (default `mmtk:misc:space-map`). The whole map is
   * checked before anything is mapped.
   *
   * @throws MmapperError `E_INVALID` for a map that is not an array of Numbers or has an odd length,
   *   `E_RANGE` for a start above its end, the range errors of `ensureMapped`, `E_OS` from the OS
   */
  eagerlyMmapAllSpaces(spaceMap: ArrayLike<number>, strategy?: MmapStrategy, anno?: MmapAnnotation): void;
  /**
   * Records the chunks of `[start, start + bytes)` as Mapped without any OS call (MMTk's
   * `mark_as_mapped`), for memory the VM mapped itself.
   *
   * @param start 4 KiB-aligned
   * @param bytes a non-negative integer
   */
  markAsMapped(start: VirtAddr, bytes: number): void;
  /**
   * Reserves the chunks of `[start, start + pages × 4 KiB)` (MMTk's `quarantine_address_range`):
   * each run of adjacent Unmapped chunks is reserved with **one** `mmapNoreserve` call (no access, no
   * swap reservation; `strategy.prot` is ignored); Quarantined and Mapped chunks are left as they are.
   *
   * @throws MmapperError `E_BAD_TRANSITION` if a chunk is Protected (MMTk panics), before any call;
   *   `E_OS` when a call fails (earlier runs stay Quarantined)
   */
  quarantineAddressRange(start: VirtAddr, pages: number, strategy: MmapStrategy, anno: MmapAnnotation): void;
  /**
   * Makes the chunks of `[start, start + pages × 4 KiB)` Mapped (MMTk's `ensure_mapped`), one chunk at a
   * time: Unmapped → `dzmmapNoreplace`, Quarantined → `dzmmap` (replacing the reservation), Protected →
   * `munprotect(strategy.prot)`; Mapped chunks cost one shared-memory read and no lock.
   *
   * @throws MmapperError `E_OS` when a call fails: the chunks before it stay Mapped, that one keeps its state
   */
  ensureMapped(start: VirtAddr, pages: number, strategy: MmapStrategy, anno: MmapAnnotation): void;
  /**
   * True when the chunk holding `addr` is Mapped (MMTk's `is_mapped_address`). Lock-free, never throws:
   * anything that is not a `VirtAddr` in the mapper's space (a non-Number, NaN, a fraction, negative,
   * too large) answers `false`.
   */
  isMappedAddress(addr: VirtAddr): boolean;
  /**
   * Makes the chunks of `[start, start + pages × 4 KiB)` inaccessible (MMTk's `protect`): each Mapped
   * chunk gets an `mprotect` call and becomes Protected; Protected chunks stay as they are.
   *
   * @throws MmapperError `E_BAD_TRANSITION` if a chunk is Unmapped or Quarantined (MMTk panics), before
   *   any call; `E_OS` when a call fails (earlier chunks stay Protected)
   */
  protect(start: VirtAddr, pages: number): void;
  /** The shared state: post it to a worker and attach there with {@link Mmapper.fromShared}. */
  readonly shared: SharedArrayBuffer;
}

/** {@link Mmapper} constructors that do not depend on the implementation. */
export const Mmapper = {
  /**
   * Attaches to the shared state of an existing mapper (its {@link Mmapper.shared}, e.g. received by a
   * worker thread through `postMessage`), with this thread's OS interface. The result is a
   * {@link ByteMapMmapper} or a {@link TwoLevelMmapper}, as the original was; both see the same chunk
   * states and share one transition lock.
   *
   * @throws MmapperError `E_BAD_SHARED_STATE` for a buffer that is not a mapper's shared state,
   *   `E_INVALID` for an OS interface that lacks one of the five methods
   */
  fromShared(buffer: SharedArrayBuffer, os: MmapOs): ByteMapMmapper | TwoLevelMmapper {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      mmapperFail('E_BAD_SHARED_STATE', `${describeValue(buffer)} is not a mapper's SharedArrayBuffer`, {
        buffer,
      });
    }
    const h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    if (h[H_MAGIC] !== MAGIC || h[H_VERSION] !== VERSION) {
      mmapperFail(
        'E_BAD_SHARED_STATE',
        'the SharedArrayBuffer does not hold a mapper state (bad magic or version)',
        {
          magic: h[H_MAGIC],
          version: h[H_VERSION],
        },
      );
    }
    const kind = h[H_KIND];
    if (kind === KIND_BYTE_MAP) return ByteMapMmapper.fromShared(buffer, os);
    if (kind === KIND_TWO_LEVEL) return TwoLevelMmapper.fromShared(buffer, os);
    return mmapperFail(
      'E_BAD_SHARED_STATE',
      `unknown mapper kind ${describeValue(kind)} in the shared state`,
      {
        kind,
      },
    );
  },
} as const;
