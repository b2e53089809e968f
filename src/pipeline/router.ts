/**
 * Hands every batch to every sink: the one point where inputs meet storage and the live hub.
 *
 * @module
 */

import type { Batch } from "./batch.ts";
import type { Sink } from "./sink.ts";

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

  /** Resolves when every sink has room. */
  async writable(): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.writable()));
  }

  /** Resolves when every sink stored what was queued before the call. */
  async flush(): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.flush()));
  }

  /** Closes every sink, each after writing what it holds. */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.close(options)));
  }
}
