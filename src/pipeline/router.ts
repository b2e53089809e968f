/**
 * Hands every batch to every sink: the one point where inputs meet storage and the live hub.
 *
 * @module
 */

import type { Batch } from "./batch.ts";
import type { Sink, SinkProblem } from "./sink.ts";

/**
 * Fans batches out to sinks. It is itself a {@linkcode Sink}, so an input never knows how many
 * destinations there are: it writes, and waits on `writable()` when told to.
 *
 * @example
 * ```ts
 * const router = new Router([fileSink, hub]);
 * if (!router.write(batch)) await router.writable();
 * ```
 */
export class Router implements Sink {
  /** Always `router`. */
  readonly name = "router";
  readonly #sinks: readonly Sink[];

  /** @param sinks where every batch goes, in this order. */
  constructor(sinks: readonly Sink[]) {
    if (sinks.length === 0) throw new TypeError("Router needs at least one sink");
    this.#sinks = sinks;
  }

  /** Writes to every sink; `false` when any of them asks the producer to wait. */
  write(batch: Batch): boolean {
    let room = true;
    for (const sink of this.#sinks) room = sink.write(batch) && room;
    return room;
  }

  /** Whether any sink's queue is at its bound. */
  get full(): boolean {
    return this.#sinks.some((sink) => sink.full);
  }

  /** Resolves when every sink has room (for `batch`'s destination, when given). */
  async writable(batch?: Batch): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.writable(batch)));
  }

  /** Resolves when every sink stored what was queued before the call (for `batches`, if given). */
  async flush(batches?: readonly Batch[]): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.flush(batches)));
  }

  /** Whether any sink's destination for lines from `origin` keeps failing and holds its share. */
  blocked(origin: Pick<Batch, "meta" | "receivedAt">): boolean {
    return this.#sinks.some((sink) => sink.blocked?.(origin) ?? false);
  }

  /** What any sink cannot store now. */
  problems(): SinkProblem[] {
    return this.#sinks.flatMap((sink) => sink.problems?.() ?? []);
  }

  /** Closes every sink, each after writing what it holds. */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.close(options)));
  }
}
