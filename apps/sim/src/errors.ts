import { VmkitError } from '@vmkit/addr';

/**
 * Error codes of `@vmkit/sim` (thrown to the *user of the simulator* for bad configuration, bad
 * programs or scripts; a simulated process gets Linux error numbers instead, never an exception).
 * Codes are stable.
 */
export const SimErrorCode = {
  /** A configuration value (RAM size, CPU count, time slice, …) is out of its domain. */
  E_CONFIG: 'E_CONFIG',
  /** A script line cannot be parsed (the message names the line). */
  E_SCRIPT: 'E_SCRIPT',
  /** A program handed the CPU an operation that is not well formed. */
  E_PROGRAM: 'E_PROGRAM',
  /** An unknown personality, program or workload name. */
  E_UNKNOWN: 'E_UNKNOWN',
  /** The simulation cannot go on (every process blocked and nothing scheduled). */
  E_DEADLOCK: 'E_DEADLOCK',
} as const;

/** One of {@link SimErrorCode}. */
export type SimErrorCode = (typeof SimErrorCode)[keyof typeof SimErrorCode];

/** The error class of the simulator (a `VmkitError` with a {@link SimErrorCode}). */
export class SimError extends VmkitError<SimErrorCode> {
  constructor(code: SimErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details);
    this.name = 'SimError';
  }
}

/** Throws a {@link SimError}. */
export function simFail(code: SimErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new SimError(code, message, details);
}
