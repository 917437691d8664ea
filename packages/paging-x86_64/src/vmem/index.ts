/**
 * Seed 003 (Hyperlight `hyperlight_common::vmem`): table operations, `map`, `virtToPhys`, multi-space
 * walks, and the snapshot compaction built on them.
 *
 * @module
 */
export * from './constants.js';
export * from './cow-table-ops.js';
export * from './map.js';
export * from './mapping.js';
export * from './modify-ptes.js';
export * from './phys-table-ops.js';
export * from './snapshot.js';
export * from './table-buffer.js';
export * from './table-ops.js';
export * from './update-parent.js';
export * from './virt-to-phys.js';
export * from './walk.js';
