/**
 * `@vmkit/memory-set`: ordered, non-overlapping memory areas with pluggable mapping backends; map, unmap
 * and protect with splitting, transactional (ArceOS `memory_set` / `ax-memory-set` in TypeScript).
 *
 * @packageDocumentation
 */
export { MemoryArea } from './area.js';
export type { AreaIndex, AreaIndexFactory, Span } from './area-index.js';
export type { MappingBackend } from './backend.js';
export {
  isMappingError,
  MappingError,
  MappingErrorCode,
  type MappingErrorKind,
  MappingFailure,
} from './errors.js';
export { flagsEqual } from './flags.js';
export { BlockIndex } from './indexes/block-index.js';
export { BTreeIndex } from './indexes/btree-index.js';
export { SortedArrayIndex } from './indexes/sorted-array-index.js';
export { MemorySet, type MemorySetOptions, type RangeResult } from './set.js';
