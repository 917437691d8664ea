import { describe, expect, it } from 'vitest';
import {
  addressToChunksDown,
  addressToChunksUp,
  BYTES_IN_CHUNK,
  bytesToChunksUp,
  chunkAlignDown,
  chunkAlignUp,
  chunkRangeOf,
  chunksToAddress,
  isChunkAligned,
  PAGES_IN_CHUNK,
  pagesToBytes,
  pagesToChunksUp,
} from './constants.js';

describe('constants', () => {
  it('are 4 KiB pages and 4 MiB chunks of 1,024 pages', () => {
    expect(BYTES_IN_CHUNK).toBe(4 * 1024 * 1024);
    expect(PAGES_IN_CHUNK).toBe(1024);
    expect(pagesToBytes(3)).toBe(3 * 4096);
  });
});

describe('chunk rounding (MMTk byte_map_mmapper::address_to_mmap_chunks, translated)', () => {
  it('for 0..10 chunks: start, start + 8 and the end of each chunk', () => {
    const CHUNK_SIZE = 1 << 22;
    for (let i = 0; i < 10; i++) {
      const start = CHUNK_SIZE * i;
      expect(addressToChunksUp(start)).toBe(i);
      expect(addressToChunksDown(start)).toBe(i);
      const middle = start + 8;
      expect(addressToChunksUp(middle)).toBe(i + 1);
      expect(addressToChunksDown(middle)).toBe(i);
      const end = start + CHUNK_SIZE;
      expect(addressToChunksUp(end)).toBe(i + 1);
      expect(addressToChunksDown(end)).toBe(i + 1);
      expect(chunksToAddress(i)).toBe(start);
    }
  });

  it('aligns as MMTk conversions::test_chunk_align does', () => {
    expect(chunkAlignDown(0x2345_6789)).toBe(0x2340_0000);
    expect(chunkAlignUp(0x2345_6789)).toBe(0x2380_0000);
    expect(chunkAlignUp(0x2340_0000)).toBe(0x2340_0000);
    expect(isChunkAligned(0x2340_0000)).toBe(true);
    expect(isChunkAligned(0x2340_1000)).toBe(false);
  });

  it('is exact in the higher half (no 32-bit truncation)', () => {
    const top = 2 ** 48 - 0x1000;
    expect(addressToChunksDown(top)).toBe(2 ** 26 - 1);
    expect(addressToChunksUp(top)).toBe(2 ** 26);
    expect(chunkAlignDown(top)).toBe(2 ** 48 - BYTES_IN_CHUNK);
  });

  it('counts chunks of bytes and pages rounding up', () => {
    expect(bytesToChunksUp(0)).toBe(0);
    expect(bytesToChunksUp(1)).toBe(1);
    expect(bytesToChunksUp(BYTES_IN_CHUNK)).toBe(1);
    expect(bytesToChunksUp(BYTES_IN_CHUNK + 1)).toBe(2);
    expect(pagesToChunksUp(1)).toBe(1);
    expect(pagesToChunksUp(1024)).toBe(1);
    expect(pagesToChunksUp(1536)).toBe(2);
  });

  it('covers the chunks a range touches; zero pages at an unaligned start still covers its chunk', () => {
    expect(chunkRangeOf(0x40_0000, 0)).toEqual({ first: 1, end: 1 }); // aligned, empty: nothing
    expect(chunkRangeOf(0x40_1000, 0)).toEqual({ first: 1, end: 2 }); // unaligned, empty: its chunk
    expect(chunkRangeOf(0x40_0000, 0x1000)).toEqual({ first: 1, end: 2 }); // one page
    expect(chunkRangeOf(0x7f_f000, 0x2000)).toEqual({ first: 1, end: 3 }); // straddles a boundary
    expect(chunkRangeOf(0x40_0000, 1.5 * BYTES_IN_CHUNK)).toEqual({ first: 1, end: 3 }); // 1.5 chunks: two
  });
});
