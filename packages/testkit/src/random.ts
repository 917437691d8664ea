/**
 * A small, fast, seeded pseudo-random generator (mulberry32) for benchmark inputs and test data: the
 * same seed gives the same sequence on every run and machine, so benchmark inputs never change.
 *
 * `seed` is any safe integer; it is reduced to 32 bits (`seed >>> 0`), so `-1` and `0xffffffff` give the
 * same sequence. Each call of the returned function gives a number in [0, 1), a multiple of 2^-32.
 * Not for cryptography. Throws a TypeError when `seed` is not a safe integer.
 */
export function seededRandom(seed: number): () => number {
  if (!Number.isSafeInteger(seed))
    throw new TypeError(`seededRandom: seed ${String(seed)} must be a safe integer`);
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
