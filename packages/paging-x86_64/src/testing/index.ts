/**
 * `@vmkit/paging-x86_64/testing`: helpers for users' own tests (kept out of the main entry point).
 *
 * @packageDocumentation
 */
export { FailingFrameAllocator, type FailurePolicy } from './failing-frame-allocator.js';
