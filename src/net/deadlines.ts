/**
 * Read and write deadlines for many connections with one timer: each connection sets a plain
 * number before it waits on the network (no timer, no promise per read), and a sweep a few times
 * per timeout closes those past their deadline.
 *
 * @module
 */

/** One connection's deadline. */
export interface Deadline {
  /** When the current wait expires, in the clock's ms; `Infinity` while not waiting on the peer. */
  at: number;
  /** What the connection waits for, counted when it expires (`idle`, `header`, `body`, `send`). */
  phase: string;
}

/** Options of {@linkcode Deadlines}. */
export interface DeadlinesOptions {
  /** How often expired deadlines are looked for, in ms. Default 250. */
  sweepMs?: number;
  /** The clock. Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  deadline: Deadline;
  expire: (phase: string) => void;
}

/**
 * Watches deadlines and calls each one's `expire` once it passed. The timer runs only while
 * something is watched, and never keeps the process alive.
 *
 * @example
 * ```ts
 * const deadlines = new Deadlines();
 * const d = deadlines.watch((phase) => conn.close());
 * d.at = deadlines.now() + 30_000; // before a read
 * const n = await conn.read(buf);
 * d.at = Infinity;
 * deadlines.unwatch(d);
 * ```
 */
export class Deadlines {
  /** The clock, in ms. */
  readonly now: () => number;
  readonly #sweepMs: number;
  readonly #entries = new Map<Deadline, Entry>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param options sweep period and clock. */
  constructor(options: DeadlinesOptions = {}) {
    this.now = options.now ?? Date.now;
    this.#sweepMs = options.sweepMs ?? 250;
  }

  /** Watches a new deadline, not set yet (`at` is `Infinity`). */
  watch(expire: (phase: string) => void): Deadline {
    const deadline: Deadline = { at: Infinity, phase: "idle" };
    this.#entries.set(deadline, { deadline, expire });
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.sweep(), this.#sweepMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
    return deadline;
  }

  /** Stops watching `deadline`. */
  unwatch(deadline: Deadline): void {
    this.#entries.delete(deadline);
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Expires every deadline that passed (the timer calls it; tests call it with a fake clock). */
  sweep(): void {
    const now = this.now();
    for (const { deadline, expire } of [...this.#entries.values()]) {
      if (deadline.at > now) continue;
      const phase = deadline.phase;
      this.unwatch(deadline);
      expire(phase);
    }
  }

  /** Stops the timer and forgets every deadline. */
  close(): void {
    this.#entries.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
