/**
 * `@vmkit/kcore-vmspace/testing`: helpers for users' own tests (kept out of the main entry point).
 *
 * @packageDocumentation
 */
export { FailingDevice, type FailingDeviceOptions, type FailurePolicy } from './failing-device.js';
