/**
 * The state of a chunk and MMTk's transition table: which OS call each operation issues from each state.
 *
 * @module
 */
import type { MmapOsCallName } from './os.js';

/**
 * The mmap state of a chunk (MMTk's `MapState`, same order as its `repr(u8)`); one byte per chunk in the
 * shared state.
 */
export const MapState = {
  /** Not mapped and not managed by the mapper. */
  Unmapped: 0,
  /** Reserved for later use: mapped with no access and no swap reservation. */
  Quarantined: 1,
  /** Mapped and usable. The only state in which `isMappedAddress` is true. */
  Mapped: 2,
  /** Mapped, then made inaccessible by `protect`. */
  Protected: 3,
} as const;
/** One of {@link MapState}. */
export type MapState = (typeof MapState)[keyof typeof MapState];

const NAMES = ['Unmapped', 'Quarantined', 'Mapped', 'Protected'] as const;

/** The name of a state: `'Unmapped'`, `'Quarantined'`, `'Mapped'` or `'Protected'`. */
export function mapStateName(state: MapState): (typeof NAMES)[number] {
  return NAMES[state] ?? 'Unmapped';
}

/** The operations that change chunk states. */
export type MapOperation = 'ensureMapped' | 'quarantine' | 'protect' | 'markAsMapped';

/**
 * What an operation does to a chunk in a given state: the OS call it issues (`undefined`: none) and the
 * state after (`undefined`: the operation is refused, MMTk panics there).
 */
export interface Transition {
  readonly call: MmapOsCallName | undefined;
  readonly next: MapState | undefined;
}

const t = (call: MmapOsCallName | undefined, next: MapState | undefined): Transition =>
  Object.freeze({ call, next });
const Q = MapState.Quarantined;
const M = MapState.Mapped;
const P = MapState.Protected;

/**
 * MMTk's transition table (mmtk-core 0.31, `MapState::transition_to_*`), indexed by operation then by
 * the chunk's current state:
 *
 * | from \ operation | ensureMapped | quarantine | protect | markAsMapped |
 * | --- | --- | --- | --- | --- |
 * | Unmapped | `dzmmapNoreplace` → Mapped | `mmapNoreserve` → Quarantined | refused | → Mapped |
 * | Quarantined | `dzmmap` (replace) → Mapped | no-op | refused | → Mapped |
 * | Mapped | no-op | no-op (stays Mapped) | `mprotect` → Protected | → Mapped |
 * | Protected | `munprotect(prot)` → Mapped | refused | no-op | → Mapped |
 */
export const TRANSITIONS: Readonly<
  Record<MapOperation, readonly [Transition, Transition, Transition, Transition]>
> = Object.freeze({
  ensureMapped: [t('dzmmapNoreplace', M), t('dzmmap', M), t(undefined, M), t('munprotect', M)],
  quarantine: [t('mmapNoreserve', Q), t(undefined, Q), t(undefined, M), t(undefined, undefined)],
  protect: [t(undefined, undefined), t(undefined, undefined), t('mprotect', P), t(undefined, P)],
  markAsMapped: [t(undefined, M), t(undefined, M), t(undefined, M), t(undefined, M)],
} as const);
