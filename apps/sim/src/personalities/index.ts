import { simFail } from '../errors.js';
import type { Personality } from '../personality.js';
import { kcorePersonality } from './kcore.js';
import { memsetPersonality } from './memset.js';
import { scarletPersonality } from './scarlet.js';

const registry = new Map<string, Personality>([
  [memsetPersonality.name, memsetPersonality],
  [kcorePersonality.name, kcorePersonality],
  [scarletPersonality.name, scarletPersonality],
]);

/** Every registered personality, by name. */
export function personalities(): Personality[] {
  return [...registry.values()];
}

/** Adds a personality (a third design is one file plus this call). */
export function registerPersonality(p: Personality): void {
  registry.set(p.name, p);
}

/** The personality `name`. @throws SimError `E_UNKNOWN` listing the names */
export function personality(name: string): Personality {
  const p = registry.get(name);
  if (p === undefined)
    simFail('E_UNKNOWN', `no personality '${name}' (have: ${[...registry.keys()].join(', ')})`, { name });
  return p;
}
