/**
 * A fixed-bucket histogram, as Prometheus exposes one: cheap to observe on a hot path.
 *
 * @module
 */

/** Upper bounds of the default buckets, in seconds: 100 µs to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  10,
];

/**
 * Counts observations per bucket (`counts[i]` holds those `<= bounds[i]` and above the previous
 * bound; the last slot, those above every bound), with their sum.
 *
 * @example
 * ```ts
 * const h = new Histogram();
 * h.observe(0.003);
 * h.cumulative(); // [0, 0, 0, 0, 0, 1, 1, ...] as Prometheus' `le` buckets want
 * ```
 */
export class Histogram {
  /** The buckets' upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket, plus one slot for those above every bound. */
  readonly counts: number[];
  /** Sum of every observation. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** @param bounds ascending upper bounds. Default {@linkcode LATENCY_BUCKETS}. */
  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new RangeError("Histogram bounds must ascend");
    }
    this.bounds = bounds;
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  /** Records one value. */
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Counts of values `<=` each bound, then the total: Prometheus' cumulative `le` buckets. */
  cumulative(): number[] {
    let running = 0;
    return this.counts.map((c) => running += c);
  }
}
