/**
 * A budget of lines per second for live-tail delivery, shared evenly by the subscribers. Encoding
 * and sending a line to a subscriber costs several times what ingesting it does, on the same
 * event loop and the same cores; without a bound, a hundred subscribers reading as fast as they
 * can would take it all. A subscriber over its share simply reads later: its lines wait in its
 * bounded hub queue, where the hub drops what does not fit and tells it how many.
 *
 * Ingestion comes first: while lines arrive faster than a calm rate, the budget shrinks in
 * proportion, so a busy server spends less on tails exactly when it has less to spare, and an
 * idle one lets a single tail follow every line. The ingest rate is taken at once when it rises
 * and let go over about a second when it falls, so the tails' backlog does not rush out while the
 * storage is still catching up with a burst.
 *
 * @module
 */

/**
 * Lines a share over its budget waits to be allowed before it sends again: a poor share sends
 * a few dozen lines every so often rather than a line or two at every chance. Each send costs a
 * wake-up, a network write and the client's read, on the cores ingestion runs on. A share too
 * poor to earn them in {@linkcode MAX_REST_MS} rests that long and sends what it earned.
 */
export const REST_LINES = 64;

/**
 * The longest rest, in ms, for a share that earns at least a line in it: a tail resting for
 * long would show stale lines, and one whose queue stays full without reading is cut off as
 * stalled.
 */
export const MAX_REST_MS = 1000;

/**
 * How far ahead of its reader a tail's queue holds live lines, in ms of its share: beyond that
 * the oldest are dropped, so a tail under heavy ingestion shows lines seconds old, not minutes.
 */
export const KEEP_MS = 2000;

/** How slowly a falling ingest rate is believed, in ms (the time constant of its decay). */
const FALL_MS = 1000;

/** How often the ingest rate is measured, in ms. */
const SAMPLE_MS = 25;

/**
 * How soon a surge is measured, in ms: once more lines came than the calm rate brings in
 * {@linkcode SAMPLE_MS}. At 4 million lines/s, waiting the full 25 ms let a lone tail take the
 * whole budget for that long. Not sooner, so that one large batch (an HTTP ingest of 10,000
 * lines) is not taken for a rate of billions.
 */
const SURGE_MS = 5;

/**
 * A share that waited for lines this long, in ms, saved nothing meanwhile, and saves nothing for
 * as long again once lines come: what arrives after a lull may be a surge the budget has not
 * measured yet (it samples every 25 ms, and a hundred tails spending at once slow the very
 * ingestion it measures).
 */
const WATCH_MS = 100;

/** Options of {@linkcode DeliveryBudget}. */
export interface DeliveryBudgetOptions {
  /**
   * The longest burst a subscriber may save up, in ms of its share. Default 10: a hundred
   * tails each spending a long saved-up burst the moment ingestion surges cost it a sixth of
   * its rate at 50; and a lone tail that stopped reading was sent 8,000 lines of its 50 ms
   * burst (the whole budget's) in the first moments of a surge, before its socket filled,
   * most of the lines it ever cost.
   */
  burstMs?: number;
  /** The clock, in ms; swapped in tests. Default `performance.now`. */
  now?: () => number;
  /**
   * Lines ingested so far (a counter that only grows): lets the budget yield to ingestion.
   * Default: none, the budget stays whole.
   */
  ingested?: () => number;
  /**
   * Ingest rate, in lines per second, up to which the budget is whole; at twice this rate it is
   * half, and so on. Default 100,000.
   */
  calmRate?: number;
}

/**
 * Lines per second for all subscribers together; `Infinity` for no bound.
 *
 * @example
 * ```ts
 * const budget = new DeliveryBudget(200_000);
 * const share = budget.join();
 * // after sending an event of n lines:
 * const waitMs = share.spend(n);
 * if (waitMs > 0) await sleep(waitMs);
 * // when the subscriber leaves:
 * share.leave();
 * ```
 */
export class DeliveryBudget {
  /** Lines per second, for all subscribers together. */
  readonly linesPerSecond: number;
  /** The longest burst, in ms. */
  readonly burstMs: number;
  readonly now: () => number;
  readonly #ingested: (() => number) | undefined;
  readonly #calmRate: number;
  #members = 0;
  #sampledAt: number;
  #sampledCount: number;
  #ingestRate = 0;

  /**
   * @param linesPerSecond the bound, a positive number, or `Infinity`.
   * @param options see {@linkcode DeliveryBudgetOptions}.
   */
  constructor(linesPerSecond: number, options: DeliveryBudgetOptions = {}) {
    if (!(linesPerSecond > 0)) {
      throw new RangeError(`Delivery budget must be above zero, got "${linesPerSecond}"`);
    }
    const { burstMs = 10, now = () => performance.now(), ingested, calmRate = 100_000 } = options;
    this.linesPerSecond = linesPerSecond;
    this.burstMs = burstMs;
    this.now = now;
    this.#ingested = ingested;
    this.#calmRate = calmRate;
    this.#sampledAt = now();
    this.#sampledCount = ingested?.() ?? 0;
  }

  /** Subscribers sharing the budget now. */
  get members(): number {
    return this.#members;
  }

  /** Lines per second for all subscribers now: the whole budget, less under heavy ingestion. */
  current(): number {
    if (this.#ingested !== undefined) {
      const now = this.now();
      // Sampled every 25 ms (SAMPLE_MS), and sooner (from SURGE_MS on) once more lines came
      // than the calm rate brings in 25 ms: a surge is believed at once (the tails' saved-up
      // bursts shrink with it), a fall only over about a second (FALL_MS), so one quiet moment
      // does not swing it.
      const elapsed = now - this.#sampledAt;
      const count = elapsed >= SURGE_MS ? this.#ingested() : this.#sampledCount;
      if (
        elapsed >= SAMPLE_MS ||
        (elapsed >= SURGE_MS && count - this.#sampledCount > this.#calmRate * SAMPLE_MS / 1000)
      ) {
        const measured = (count - this.#sampledCount) / elapsed * 1000;
        const keep = Math.exp(-elapsed / FALL_MS);
        this.#ingestRate = measured >= this.#ingestRate
          ? measured
          : this.#ingestRate * keep + measured * (1 - keep);
        this.#sampledAt = now;
        this.#sampledCount = count;
      }
    }
    const load = this.#ingestRate > this.#calmRate ? this.#calmRate / this.#ingestRate : 1;
    return this.linesPerSecond * load;
  }

  /** Adds a subscriber; its share is the budget divided by the members at each spend. */
  join(): DeliveryShare {
    this.#members++;
    let left = false;
    return new DeliveryShare(this, () => {
      if (!left) this.#members--;
      left = true;
    });
  }
}

/** One subscriber's share of a {@linkcode DeliveryBudget}: a token bucket. */
export class DeliveryShare {
  readonly #budget: DeliveryBudget;
  readonly #leave: () => void;
  #tokens: number;
  #last: number;

  /**
   * @param budget the budget shared.
   * @param leave called once by {@linkcode DeliveryShare.leave}.
   */
  constructor(budget: DeliveryBudget, leave: () => void) {
    this.#budget = budget;
    this.#leave = leave;
    // Empty at first and, among others, watching as after a lull: a hundred tails connecting at
    // once, or just before a surge, must not spend a burst each.
    this.#last = budget.now() + (budget.members > 1 ? WATCH_MS : 0);
    this.#tokens = 0;
  }

  /**
   * Tells the share its subscriber waited for lines until now. When it shares the budget with
   * others, after a wait of {@linkcode WATCH_MS} or more it saved up nothing, and saves nothing
   * for as long again: a burst is for catching up, not a reward for quiet. When ingestion surges
   * after a lull, a hundred tails each spending a burst saved up at the calm rate would cost
   * ingestion much of its first second. Like TCP restarting its window after idle, a waking tail
   * starts small: one line at once, then what the measured rate allows. A short wait changes
   * nothing, so a tail that keeps up with steady traffic sends each batch as it comes; nor does
   * any wait change a tail alone, whose queue would overflow while it watched a surge, and whose
   * burst is bounded by the whole budget anyway.
   */
  resume(): void {
    const now = this.#budget.now();
    if (now - this.#last < WATCH_MS || this.#budget.members < 2) return;
    this.#tokens = Math.min(this.#tokens, 0);
    this.#last = now + WATCH_MS;
  }

  /**
   * Lines worth keeping queued for this share: what it may send in {@linkcode KEEP_MS}, and
   * never fewer than two rests' worth. `Infinity` without a bound.
   */
  keepLines(): number {
    const rate = this.#rate();
    if (rate === Infinity) return Infinity;
    return Math.floor(Math.max(2 * this.#restLines(rate), rate * KEEP_MS));
  }

  /** Lines this share may send now without waiting (at least 0). */
  available(): number {
    const rate = this.#rate();
    if (rate === Infinity) return Infinity;
    this.#refill(rate);
    return Math.max(0, this.#tokens);
  }

  /**
   * Records that `lines` were sent; returns how long to rest, in ms, before sending more: until
   * the share allows {@linkcode REST_LINES} lines again, or what it earns in
   * {@linkcode MAX_REST_MS} if that is fewer (at least one line). 0 when it may send now.
   */
  spend(lines: number): number {
    const rate = this.#rate();
    if (rate === Infinity) return 0;
    this.#refill(rate);
    this.#tokens -= lines;
    const watching = Math.max(0, this.#last - this.#budget.now());
    return watching + Math.max(0, (this.#restLines(rate) - this.#tokens) / rate);
  }

  #refill(rate: number): void {
    const now = this.#budget.now();
    // Before #last, the share is watching a surge after a lull: nothing accrues.
    if (now <= this.#last) return;
    this.#tokens = Math.min(this.#cap(rate), this.#tokens + (now - this.#last) * rate);
    this.#last = now;
  }

  /** The most a share saves up: its burst, and at least what it rests for. */
  #cap(rate: number): number {
    return Math.max(this.#restLines(rate), rate * this.#budget.burstMs);
  }

  /** What the share rests for at this rate (lines per ms). */
  #restLines(rate: number): number {
    return Math.min(REST_LINES, Math.max(1, rate * MAX_REST_MS));
  }

  /** Gives the share back to the others. */
  leave(): void {
    this.#leave();
  }

  /** Lines per ms for this subscriber now. */
  #rate(): number {
    return this.#budget.current() / 1000 / Math.max(1, this.#budget.members);
  }
}
