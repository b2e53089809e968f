/**
 * Time the live hub may spend running subscribers' regex filters, shared evenly among them. The
 * hub filters on the ingestion path, on the event loop everything else runs on: a regex that
 * costs microseconds per character, over every line ingested, would slow ingestion for all.
 * With this budget, a subscriber whose filter costs more than its share simply has the lines it
 * could not look at counted as dropped (it is told how many), and ingestion goes on.
 *
 * Each share is a bucket of milliseconds: it refills at its part of the hub's rate, holds at most
 * a burst, and may go into debt by what one line overran; a share in debt filters nothing until
 * it has paid it back. So, on average, all filters together cost at most the hub's rate (10% of
 * one core by default), and one batch waits at most a burst plus one line for one subscriber.
 *
 * @module
 */

/** Options of {@linkcode FilterBudget}. */
export interface FilterBudgetOptions {
  /** Milliseconds of filtering per second for all shares together. Default 100. */
  msPerSecond?: number;
  /** Most milliseconds one share may spend at once, and what a new share starts with. Default 20. */
  burstMs?: number;
  /** The clock, in ms; swapped in tests. Default `performance.now`. */
  clock?: () => number;
}

/**
 * The hub's filtering time.
 *
 * @example
 * ```ts
 * const budget = new FilterBudget();
 * const share = budget.join();
 * let last = share.start();
 * for (const line of lines) {
 *   if (!share.allows()) { dropped++; continue; }
 *   const ok = re.test(line);
 *   last = share.charge(last);
 * }
 * share.leave(); // when the subscriber ends
 * ```
 */
export class FilterBudget {
  /** The clock the shares read. */
  readonly clock: () => number;
  readonly #msPerSecond: number;
  readonly #burstMs: number;
  #shares = 0;

  /** @param options see {@linkcode FilterBudgetOptions}. */
  constructor(options: FilterBudgetOptions = {}) {
    const { msPerSecond = 100, burstMs = 20, clock = () => performance.now() } = options;
    if (!(msPerSecond > 0) || !(burstMs > 0)) {
      throw new RangeError(
        `Filter budget must be above zero, got "${msPerSecond}" ms per second and "${burstMs}" ms of burst`,
      );
    }
    this.#msPerSecond = msPerSecond;
    this.#burstMs = burstMs;
    this.clock = clock;
  }

  /** Shares open now. */
  get shares(): number {
    return this.#shares;
  }

  /** A new share, starting with a full burst; call {@linkcode FilterShare.leave} when done. */
  join(): FilterShare {
    this.#shares++;
    let left = false;
    return new FilterShare({
      burstMs: this.#burstMs,
      clock: this.clock,
      rate: () => this.#msPerSecond / 1000 / Math.max(1, this.#shares),
      leave: () => {
        if (!left) this.#shares--;
        left = true;
      },
    });
  }
}

/** One subscriber's part of a {@linkcode FilterBudget}. */
export class FilterShare {
  readonly #burstMs: number;
  readonly #clock: () => number;
  /** Milliseconds earned per millisecond of wall time. */
  readonly #rate: () => number;
  readonly #leave: () => void;
  #balance: number;
  #at: number;

  /** Built by {@linkcode FilterBudget.join}. */
  constructor(options: {
    burstMs: number;
    clock: () => number;
    rate: () => number;
    leave: () => void;
  }) {
    this.#burstMs = options.burstMs;
    this.#clock = options.clock;
    this.#rate = options.rate;
    this.#leave = options.leave;
    this.#balance = options.burstMs;
    this.#at = this.#clock();
  }

  /** Milliseconds the share may still spend (negative while in debt). */
  get balance(): number {
    return this.#balance;
  }

  /** Adds what was earned since the last call and returns the clock: the start of the work. */
  start(): number {
    const now = this.#clock();
    this.#balance = Math.min(this.#burstMs, this.#balance + (now - this.#at) * this.#rate());
    this.#at = now;
    return now;
  }

  /** Whether the share may filter another line. */
  allows(): boolean {
    return this.#balance > 0;
  }

  /** Charges the time since `since` (a clock reading) and returns the clock. */
  charge(since: number): number {
    const now = this.#clock();
    this.#balance -= now - since;
    return now;
  }

  /** Gives the share back: the others' parts grow. */
  leave(): void {
    this.#leave();
  }
}
