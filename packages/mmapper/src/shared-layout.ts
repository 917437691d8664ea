/**
 * The layout of a mapper's shared state (a `SharedArrayBuffer`): a 64-byte header of 32-bit words, then
 * the implementation's chunk states. Internal; documented in the README.
 *
 * @module
 * @internal
 */

/** Header size in bytes (16 words). */
export const HEADER_BYTES = 64;
/** Word 0: {@link MAGIC}. */
export const H_MAGIC = 0;
/** Word 1: layout {@link VERSION}. */
export const H_VERSION = 1;
/** Word 2: implementation kind ({@link KIND_BYTE_MAP}, {@link KIND_TWO_LEVEL}). */
export const H_KIND = 2;
/** Word 3: the transition lock (0 free, 1 held, 2 held with waiters). */
export const H_LOCK = 3;
/** Word 4: log2 of the mappable bytes. */
export const H_LOG_MAPPABLE = 4;
/** Word 5: slabs allocated (two-level). */
export const H_SLABS = 5;
/** `'MMAP'` in ASCII. */
export const MAGIC = 0x4d4d_4150;
/** Layout version. */
export const VERSION = 1;
/** Kind of a flat byte map. */
export const KIND_BYTE_MAP = 1;
/** Kind of a two-level map. */
export const KIND_TWO_LEVEL = 2;
