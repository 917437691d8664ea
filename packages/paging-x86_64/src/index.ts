/**
 * `@vmkit/paging-x86_64`: simulated x86-64 paging hardware.
 *
 * @packageDocumentation
 */
export * from './bitmap-frame-allocator.js';
export * from './errors.js';
export * from './frame-allocator.js';
export * from './mmu/index.js';
export * from './physical-memory.js';
export * from './pte.js';
export * from './vmem/index.js';
