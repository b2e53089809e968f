/**
 * A byte bound shared by queues: producers take bytes before queueing, consumers give them back once
 * written. Taking never fails (nothing is dropped); it reports when the bound is exceeded so the
 * producer stops reading until {@linkcode ByteBudget.available} resolves. A waiter that gives up
 * (its signal aborts) is dropped at once, so producers that wait again and again during a long
 * outage, or that end while waiting, leave nothing behind.
 *
 * @module
 */

/**
 * Counts queued bytes against a limit and wakes waiting producers when room returns.
 *
 * @example
 * ```ts
 * const budget = new ByteBudget(64 * 1024 * 1024);
 * if (!budget.take(chunk.length)) await budget.available();
 * // ... later, once the consumer wrote the chunk:
 * budget.release(chunk.length);
 * ```
 */
export class ByteBudget {
  /** The bound, in bytes. */
  readonly limit: number;
  #used = 0;
  readonly #waiters = new Set<() => void>();

  /** @param limit the bound in bytes; a positive integer. */
  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new RangeError(`Byte budget must be a positive integer, got "${limit}"`);
    }
    this.limit = limit;
  }

  /** Bytes taken and not yet released. */
  get used(): number {
    return this.#used;
  }

  /** Whether the bound is reached: producers should wait before taking more. */
  get full(): boolean {
    return this.#used >= this.limit;
  }

  /** Takes `n` bytes. Returns `false` when the budget is now full and the caller should wait. */
  take(n: number): boolean {
    this.#used += n;
    return this.#used < this.limit;
  }

  /** Waits under way: callers of {@linkcode available} not yet woken nor aborted. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Gives back `n` bytes and wakes the waiters when there is room again. */
  release(n: number): void {
    this.#used -= n;
    if (this.#used < this.limit && this.#waiters.size > 0) {
      const waiters = [...this.#waiters];
      this.#waiters.clear();
      for (const wake of waiters) wake();
    }
  }

  /**
   * Resolves once the budget has room (at once when it has now), or once `signal` aborts: the
   * wait is then dropped, and the caller looks at its signal.
   */
  available(signal?: AbortSignal): Promise<void> {
    if (this.#used < this.limit || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      this.#waiters.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }
}
