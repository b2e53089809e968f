/**
 * Time as code that waits on it sees it: the wall clock in production, a test's clock in tests
 * (`_fake_clock.ts`), so a test moves time instead of sleeping through it.
 *
 * @module
 */

/** Reads the time and sets timers. */
export interface Clock {
  /** Milliseconds since the epoch, as `Date.now()`. */
  now(): number;
  /** Calls `fn` once `ms` have passed; the function returned cancels it. */
  timer(ms: number, fn: () => void): () => void;
}

/** The wall clock: `Date.now` and `setTimeout`. */
export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  timer(ms, fn) {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
  },
};

/**
 * Waits `ms` on `clock`, or less: resolves early, without an error, when `signal` aborts.
 *
 * @example
 * ```ts
 * await pause(SYSTEM_CLOCK, 250, signal);
 * if (signal.aborted) return;
 * ```
 */
export function pause(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const cancel = clock.timer(ms, done);
    signal?.addEventListener("abort", done, { once: true });
  });
}
