/**
 * MMTk's page and chunk constants and the chunk rounding helpers (`conversions.rs` and the byte-map
 * mmapper's `address_to_mmap_chunks_*`), on Numbers.
 *
 * A chunk is 4 MiB (1,024 pages of 4 KiB): the granularity at which an {@link Mmapper} tracks state and
 * calls the operating system. Addresses are `VirtAddr` Numbers (the low 48 bits of a canonical address,
 * see `@vmkit/addr`), so every value here is an exact integer below 2^48; no BigInt.
 *
 * @module
 */

/** log2 of the page size: 12 (MMTk's `LOG_BYTES_IN_PAGE`). */
export const LOG_BYTES_IN_PAGE = 12;
/** 4 KiB: the page size ranges are counted in (MMTk's `BYTES_IN_PAGE`). */
export const BYTES_IN_PAGE = 0x1000;
/** log2 of the chunk size: 22 (MMTk's `LOG_BYTES_IN_CHUNK`, `LOG_MMAP_CHUNK_BYTES`). */
export const LOG_BYTES_IN_CHUNK = 22;
/** 4 MiB: the mmap chunk (MMTk's `BYTES_IN_CHUNK`, `MMAP_CHUNK_BYTES`). */
export const BYTES_IN_CHUNK = 0x40_0000;
/** 1,024: pages in a chunk. */
export const PAGES_IN_CHUNK = BYTES_IN_CHUNK / BYTES_IN_PAGE;

/**
 * Bytes in `pages` pages (MMTk's `pages_to_bytes`). No check: pass a non-negative integer whose product
 * stays below 2^53 (every public method of a mapper checks its `pages` before using this).
 */
export function pagesToBytes(pages: number): number {
  return pages * BYTES_IN_PAGE;
}

/** The start of the chunk holding `addr` (MMTk's `chunk_align_down`). */
export function chunkAlignDown(addr: number): number {
  return Math.floor(addr / BYTES_IN_CHUNK) * BYTES_IN_CHUNK;
}

/** `addr` rounded up to a chunk boundary (MMTk's `chunk_align_up`); a chunk start is its own result. */
export function chunkAlignUp(addr: number): number {
  return Math.ceil(addr / BYTES_IN_CHUNK) * BYTES_IN_CHUNK;
}

/** True when `addr` is a multiple of 4 MiB. */
export function isChunkAligned(addr: number): boolean {
  return chunkAlignDown(addr) === addr;
}

/**
 * The index of the chunk holding `addr`: `addr >> 22` (MMTk's `address_to_mmap_chunks_down`,
 * `address_to_chunk_index`). The start of a chunk is in that chunk; its end is in the next one.
 */
export function addressToChunksDown(addr: number): number {
  return Math.floor(addr / BYTES_IN_CHUNK);
}

/**
 * The number of chunks below `addr` rounded up: `(addr + 4 MiB - 1) >> 22` (MMTk's
 * `address_to_mmap_chunks_up`). Equal to {@link addressToChunksDown} at a chunk start, one more inside a
 * chunk: the exclusive end index of a range ending at `addr`.
 */
export function addressToChunksUp(addr: number): number {
  return Math.ceil(addr / BYTES_IN_CHUNK);
}

/** The address of chunk number `chunk`: `chunk << 22` (MMTk's `mmap_chunks_to_address`). */
export function chunksToAddress(chunk: number): number {
  return chunk * BYTES_IN_CHUNK;
}

/** Chunks needed to hold `bytes` bytes, rounded up (MMTk's `bytes_to_chunks_up`). */
export function bytesToChunksUp(bytes: number): number {
  return Math.ceil(bytes / BYTES_IN_CHUNK);
}

/** Chunks needed to hold `pages` pages, rounded up (MMTk's `pages_to_mmap_chunks_up`). */
export function pagesToChunksUp(pages: number): number {
  return Math.ceil(pages / PAGES_IN_CHUNK);
}

/**
 * The chunks a byte range touches, as chunk indexes `[first, end)`: from the chunk holding `start` to
 * the chunk boundary at or above `start + bytes` (MMTk's `ChunkRange::new_unaligned`). Every mapper
 * operation covers exactly these chunks. Edge behaviour, as in MMTk: zero bytes at a chunk-aligned start
 * cover nothing, but zero bytes at an unaligned start still cover the chunk holding it (the start is
 * rounded down, the end up). No check: the mapper validates its arguments first.
 */
export function chunkRangeOf(start: number, bytes: number): { first: number; end: number } {
  return { first: addressToChunksDown(start), end: addressToChunksUp(start + bytes) };
}
