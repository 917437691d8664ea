/**
 * Flags compared by value: what {@link MemorySet.protect} uses to decide that new flags change nothing,
 * and merging to decide that two neighbours carry the same flags.
 *
 * @module
 */

/**
 * True when `a` and `b` are the same flags by value: identical primitives (`Object.is`), or arrays /
 * plain objects whose own enumerable properties are equal by value, recursively. A property holding
 * `undefined` counts as absent (`{ global: undefined }` equals `{}`). Other objects (class instances,
 * dates, maps) are equal only when identical. Never throws on acyclic values.
 */
export function flagsEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const pa: unknown = Object.getPrototypeOf(a);
  const pb: unknown = Object.getPrototypeOf(b);
  if (pa !== pb) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!flagsEqual(a[i], bb[i])) return false;
    return true;
  }
  if (pa !== Object.prototype && pa !== null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of Object.keys(ra)) if (!flagsEqual(ra[k], rb[k])) return false;
  for (const k of Object.keys(rb)) if (!(k in ra) && rb[k] !== undefined) return false;
  return true;
}
