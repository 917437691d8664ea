import { simFail } from './errors.js';

/**
 * The simulator's one seeded pseudo-random generator: sfc32 (Chris Doty-Humphrey's Small Fast
 * Counter), seeded through splitmix32 from one integer. Every random choice of a run comes from the
 * kernel's instance, so a seed fixes the run.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * @param seed an integer in [0, 2^53) (its low 32 and high 21 bits both feed the state)
   * @throws SimError `E_CONFIG` for a seed that is not such an integer
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0)
      simFail('E_CONFIG', `seed ${String(seed)} is not an integer in [0, 2^53)`, { seed });
    let s = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniformly distributed integer in [0, 2^32). */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n) for 1 ≤ n ≤ 2^32. */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }
}
