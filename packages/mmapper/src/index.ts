/**
 * `@vmkit/mmapper`: chunk-granularity mmap state for a managed heap (MMTk's `Mmapper`) over an injected
 * OS interface, shareable between worker threads.
 *
 * @packageDocumentation
 */
export { BYTE_MAP_DEFAULT_LOG_MAPPABLE_BYTES, ByteMapMmapper, type ByteMapOptions } from './byte-map.js';
export { ChunkStateMmapper, type StateRun } from './chunk-state.js';
export * from './constants.js';
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
export * from './two-level.js';
