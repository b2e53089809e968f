/**
 * A small seeded generator for tests that make their cases at random (mulberry32), so that a
 * failing case repeats with its seed.
 *
 * @module
 */

/**
 * Numbers in [0, 1), the same sequence for the same seed.
 *
 * @example
 * ```ts
 * const next = seededRandom(7);
 * const size = Math.floor(next() * 100);
 * ```
 */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
