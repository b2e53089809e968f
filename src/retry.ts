/**
 * The one retry policy: exponential backoff with a cap and jitter, and one rule for a server's
 * `Retry-After` (delay-seconds or an HTTP date, capped). `send`, `tail` and the agent's shipper
 * use it with their own defaults; the file writer uses its backoff without jitter. Vector does
 * the same: one retry policy, each sink saying only what it retries.
 *
 * @module
 */

/**
 * The longest wait a `Retry-After` gets by default, in ms: a server (or a proxy in front of it)
 * asking for hours is waited on for a minute, then asked again.
 */
export const RETRY_AFTER_CAP_MS = 60_000;

/** Options of {@linkcode retryAfterMs}. */
export interface RetryAfterOptions {
  /** The longest wait, in ms. Default {@linkcode RETRY_AFTER_CAP_MS}. */
  capMs?: number;
  /** Now, in ms since the epoch, for an HTTP date. Default `Date.now()`. */
  now?: number;
}

/**
 * How long a `Retry-After` value asks to wait, in ms, at most `capMs`: delay-seconds or an HTTP
 * date; 0 when absent, in the past or not understood.
 *
 * @example
 * ```ts
 * retryAfterMs("2"); // 2000
 * retryAfterMs("86400"); // 60000, the cap
 * retryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT"); // 0, a date past
 * ```
 */
export function retryAfterMs(
  value: string | null | undefined,
  options: RetryAfterOptions = {},
): number {
  const { capMs = RETRY_AFTER_CAP_MS, now = Date.now() } = options;
  const text = (value ?? "").trim();
  if (text === "") return 0;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const date = Date.parse(text);
    if (Number.isNaN(date)) return 0;
    ms = date - now;
  }
  return Math.max(0, Math.min(ms, capMs));
}

/**
 * How a delay is spread: `equal` keeps half of it and draws the other half at random (clients
 * that failed together do not come back together); `none` waits exactly the backoff.
 */
export type Jitter = "equal" | "none";

/** Options of {@linkcode RetryPolicy}. */
export interface RetryPolicyOptions {
  /** The delay before the first retry, in ms (its ceiling, with jitter). */
  initialMs: number;
  /** The longest delay, in ms: doubling stops there. */
  maxMs: number;
  /** How delays are spread. Default `equal`. */
  jitter?: Jitter;
  /** The longest wait a `Retry-After` gets, in ms. Default {@linkcode RETRY_AFTER_CAP_MS}. */
  retryAfterCapMs?: number;
  /** Draws a number in [0, 1) for the jitter; swapped in tests. Default `Math.random`. */
  random?: () => number;
}

/**
 * When to try again: `initialMs` doubled per failed attempt up to `maxMs`, with jitter; after a
 * refusal that says `Retry-After`, the longer of that and the backoff.
 *
 * @example
 * ```ts
 * const policy = new RetryPolicy({ initialMs: 250, maxMs: 5000 });
 * for (let attempt = 0;; attempt++) {
 *   const res = await fetch(url, init);
 *   if (res.status !== 503) break;
 *   await sleep(policy.delayMs(attempt, res.headers.get("retry-after")), signal);
 * }
 * ```
 */
export class RetryPolicy {
  /** The delay before the first retry, in ms. */
  readonly initialMs: number;
  /** The longest delay, in ms. */
  readonly maxMs: number;
  /** How delays are spread. */
  readonly jitter: Jitter;
  /** The longest wait a `Retry-After` gets, in ms. */
  readonly retryAfterCapMs: number;
  readonly #random: () => number;

  /** @param options the delays; see {@linkcode RetryPolicyOptions}. */
  constructor(options: RetryPolicyOptions) {
    const { initialMs, maxMs, jitter = "equal", retryAfterCapMs = RETRY_AFTER_CAP_MS } = options;
    for (const [what, value] of [["First", initialMs], ["Longest", maxMs]] as const) {
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`${what} retry delay must be a number of ms >= 0, got "${value}"`);
      }
    }
    if (!(retryAfterCapMs >= 0)) {
      throw new RangeError(`Retry-After cap must be a number of ms >= 0, got "${retryAfterCapMs}"`);
    }
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.jitter = jitter;
    this.retryAfterCapMs = retryAfterCapMs;
    this.#random = options.random ?? Math.random;
  }

  /** The backoff's ceiling before retry `attempt` (0 for the first): no jitter. */
  ceilingMs(attempt: number): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
  }

  /**
   * The delay before retry `attempt` (0 for the first): the backoff with its jitter, or what a
   * `Retry-After` value asks (at most {@linkcode RetryPolicy.retryAfterCapMs}) when longer.
   */
  delayMs(attempt: number, retryAfter?: string | null, now?: number): number {
    const ceiling = this.ceilingMs(attempt);
    const backoff = this.jitter === "none" ? ceiling : ceiling / 2 + this.#random() * ceiling / 2;
    if (retryAfter === undefined || retryAfter === null) return backoff;
    return Math.max(backoff, retryAfterMs(retryAfter, { capMs: this.retryAfterCapMs, now }));
  }
}
