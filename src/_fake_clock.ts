/**
 * A clock for tests that time passes on only when the test says so (std's `FakeTime`, Vector's
 * `time::pause()`/`advance()`), so waits of minutes (rotate wait, close idle, scan periods) are
 * tested at their real values without sleeping.
 *
 * @module
 */

import type { Clock } from "./clock.ts";

interface Timer {
  at: number;
  fn: () => void;
}

/**
 * A {@linkcode Clock} moved by {@linkcode FakeClock.advance}.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * clock.timer(5000, () => console.log("fired"));
 * clock.advance(4999); // nothing
 * clock.advance(1); // "fired"
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();

  /** @param start the time it starts at, in ms since the epoch. */
  constructor(start = Date.UTC(2025, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  timer(ms: number, fn: () => void): () => void {
    const id = this.#seq++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return () => this.#timers.delete(id);
  }

  /** Timers set and neither fired nor cancelled: the tasks that wait on time. */
  get waiting(): number {
    return this.#timers.size;
  }

  /**
   * Moves the time `ms` forward, firing the timers due on the way in the order they are due,
   * each at its own time (a timer one fires is fired too when it falls due before the end).
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [number, Timer] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = end;
  }
}
