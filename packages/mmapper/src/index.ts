/**
 * `@vmkit/mmapper`: chunk-granularity mmap state for a managed heap (MMTk's `Mmapper`) over an injected
 * OS interface, shareable between worker threads.
 *
 * @packageDocumentation
 */
export { BYTE_MAP_DEFAULT_LOG_MAPPABLE_BYTES, ByteMapMmapper, type ByteMapOptions } from './byte-map.js';
export { ChunkStateMmapper, type StateRun } from './chunk-state.js';
export {
  addressToChunksDown,
  addressToChunksUp,
  BYTES_IN_CHUNK,
  BYTES_IN_PAGE,
  bytesToChunksUp,
  chunkAlignDown,
  chunkAlignUp,
  chunkRangeOf,
  chunksToAddress,
  isChunkAligned,
  LOG_BYTES_IN_CHUNK,
  LOG_BYTES_IN_PAGE,
  PAGES_IN_CHUNK,
  pagesToBytes,
  pagesToChunksUp,
} from './constants.js';
export { isMmapperError, MmapperError, MmapperErrorCode } from './errors.js';
export { type MapOperation, MapState, mapStateName, TRANSITIONS, type Transition } from './map-state.js';
export { Mmapper } from './mmapper.js';
export type { MmapOs, MmapOsCallName, OsError, OsResult } from './os.js';
export {
  formatMmapAnnotation,
  HugePageSupport,
  MmapAnnotation,
  MmapProtection,
  MmapStrategy,
  protectionToNativeFlags,
} from './strategy.js';
export {
  chunkIndexToAddress,
  inSlabIndex,
  LOG_MAPPABLE_BYTES,
  LOG_MMAP_CHUNKS_PER_SLAB,
  LOG_MMAP_SLAB_BYTES,
  MAX_SLABS,
  MMAP_CHUNKS_PER_SLAB,
  MMAP_SLAB_BYTES,
  slabAlignDown,
  slabIndex,
  slabLimit,
  TwoLevelMmapper,
} from './two-level.js';
