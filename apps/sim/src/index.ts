/**
 * `@vmkit/sim`: the vmkit simulated kernel.
 *
 * @packageDocumentation
 */
export * from './devices.js';
export * from './engine.js';
export * from './errno.js';
export * from './errors.js';
export * from './kernel.js';
export * from './machine.js';
export * from './managed.js';
export * from './maps.js';
export { personalities, personality, registerPersonality } from './personalities/index.js';
export { KcoreSpace, kcorePersonality, SimFileDevice } from './personalities/kcore.js';
export { MemsetSpace, memsetPersonality } from './personalities/memset.js';
export { RangeTags } from './personalities/ranges.js';
export { FileOwner, ScarletSpace, scarletPersonality } from './personalities/scarlet.js';
export * from './personality.js';
export * from './prng.js';
export * from './process.js';
export * from './program.js';
export * from './report.js';
export * from './run.js';
export * from './script.js';
export * from './workloads.js';
