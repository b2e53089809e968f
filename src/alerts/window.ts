/**
 * A count over a sliding window of time, kept in buckets: memory is fixed by the number of
 * buckets, whatever the rate, and adding or reading costs O(1) (plus one step per bucket that time
 * moved past).
 *
 * @module
 */

/** Most buckets a window holds: longer windows get wider buckets. */
export const MAX_BUCKETS = 3600;

/** The bucket width for a window: 1 s, or `window / 3600` rounded up to whole seconds. */
export function bucketMsFor(windowMs: number): number {
  return Math.max(1000, Math.ceil(windowMs / MAX_BUCKETS / 1000) * 1000);
}

/**
 * Counts over the last `windowMs`, to a bucket's precision: what {@linkcode SlidingCount.total}
 * says at time `t` is what was added in the bucket holding `t` and the buckets before it that
 * the window spans (from `windowMs - bucketMs` to `windowMs` ago).
 *
 * @example
 * ```ts
 * const count = new SlidingCount(60_000);
 * count.add(0, 5);
 * count.total(59_999); // 5
 * count.total(60_000); // 0: the bucket of time 0 left the window
 * ```
 */
export class SlidingCount {
  /** The window, in ms. */
  readonly windowMs: number;
  /** A bucket's width, in ms. */
  readonly bucketMs: number;
  readonly #buckets: Float64Array;
  /** Index of the bucket of `#headStart`. */
  #head = 0;
  /** Start of the newest bucket, in ms since the epoch; `-Infinity` before the first add. */
  #headStart = -Infinity;
  #total = 0;

  /**
   * @param windowMs the window, at least one bucket.
   * @param bucketMs a bucket's width. Default {@linkcode bucketMsFor}.
   */
  constructor(windowMs: number, bucketMs = bucketMsFor(windowMs)) {
    if (!(bucketMs > 0) || !(windowMs >= bucketMs)) {
      throw new RangeError(`A window of ${windowMs} ms cannot have buckets of ${bucketMs} ms`);
    }
    this.windowMs = windowMs;
    this.bucketMs = bucketMs;
    this.#buckets = new Float64Array(Math.ceil(windowMs / bucketMs));
  }

  /** Adds `n` at time `now` (ms since the epoch). */
  add(now: number, n: number): void {
    this.#advance(now);
    this.#buckets[this.#head] += n;
    this.#total += n;
  }

  /** The count within the window at time `now`. */
  total(now: number): number {
    this.#advance(now);
    return this.#total;
  }

  /**
   * Moves the newest bucket to the one of `now`, emptying the buckets that left the window. Time
   * that goes backwards (a clock set back) adds to the newest bucket.
   */
  #advance(now: number): void {
    const start = Math.floor(now / this.bucketMs) * this.bucketMs;
    if (start <= this.#headStart) return;
    const buckets = this.#buckets;
    const steps = (start - this.#headStart) / this.bucketMs;
    if (steps >= buckets.length) {
      buckets.fill(0);
      this.#total = 0;
    } else {
      for (let k = 0; k < steps; k++) {
        this.#head = (this.#head + 1) % buckets.length;
        this.#total -= buckets[this.#head];
        buckets[this.#head] = 0;
      }
    }
    this.#headStart = start;
  }
}
