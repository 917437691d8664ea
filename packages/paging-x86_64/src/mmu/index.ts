/**
 * The MMU side of `@vmkit/paging-x86_64`: control registers, the walk with architectural rights and
 * page-fault error codes, A/D bits, the TLB, the page mapper and the QEMU-style dumps.
 *
 * @module
 */
export * from './access.js';
export * from './control-registers.js';
export * from './dump.js';
export * from './errors.js';
export * from './fault.js';
export * from './leaves.js';
export * from './mapper.js';
export * from './mmu.js';
export * from './tlb.js';
