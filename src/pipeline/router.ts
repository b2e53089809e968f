/**
 * Hands every batch to every sink: the one point where inputs meet storage and the live hub.
 *
 * @module
 */

import type { Batch } from "./batch.ts";
import { untilAborted } from "./input.ts";
import type { Sink, SinkProblem } from "./sink.ts";

/**
 * Fans batches out to sinks. It is itself a {@linkcode Sink}, so an input never knows how many
 * destinations there are: it writes, and waits on `writable()` when told to.
 *
 * A reload swaps sinks while inputs write ({@linkcode Router.swap}): batches written from then on
 * go to the new set; a sink that left drains in the background, and until it has closed, every
 * acknowledgement (`flush`) waits for it as well, so a batch it took is never acknowledged before
 * it is stored.
 *
 * @example
 * ```ts
 * const router = new Router([fileSink, hub]);
 * if (!router.write(batch)) await router.writable(batch);
 * ```
 */
export class Router implements Sink {
  /** Always `router`. */
  readonly name = "router";
  #sinks: readonly Sink[];
  /** Sinks swapped out and draining, with their close. */
  readonly #leaving = new Map<Sink, Promise<void>>();

  /** @param sinks where every batch goes, in this order. */
  constructor(sinks: readonly Sink[]) {
    if (sinks.length === 0) throw new TypeError("Router needs at least one sink");
    this.#sinks = sinks;
  }

  /** The sinks batches go to now. */
  get sinks(): readonly Sink[] {
    return this.#sinks;
  }

  /**
   * From now on, batches go to `sinks`. Each sink of the old set that is not in the new one is
   * closed (it stores what it took) in the background; the returned promise settles with those
   * closes (a rejection names what one of them could not store). Until a leaving sink has closed,
   * `flush` waits for it too, `full` and `writable` count its queue, and `problems` lists its own.
   */
  swap(sinks: readonly Sink[]): Promise<void> {
    if (sinks.length === 0) throw new TypeError("Router needs at least one sink");
    const leaving = this.#sinks.filter((sink) => !sinks.includes(sink));
    this.#sinks = sinks;
    const closes = leaving.map((sink) => {
      const closed = sink.close().finally(() => this.#leaving.delete(sink));
      // Awaited by the caller and by flushes; a close that fails rejects those, not the process.
      closed.catch(() => {});
      this.#leaving.set(sink, closed);
      return closed;
    });
    return Promise.all(closes).then(() => {});
  }

  /** Writes to every sink; `false` when any of them asks the producer to wait. */
  write(batch: Batch): boolean {
    let room = true;
    for (const sink of this.#sinks) room = sink.write(batch) && room;
    // A leaving sink whose queue is still at its bound holds producers back as well: memory stays
    // within the bounds of both until it has drained.
    if (room && this.#leaving.size > 0) {
      for (const sink of this.#leaving.keys()) room &&= !sink.full;
    }
    return room;
  }

  /** Whether any sink's queue is at its bound, a leaving sink's included. */
  get full(): boolean {
    return this.#sinks.some((sink) => sink.full) ||
      [...this.#leaving.keys()].some((sink) => sink.full);
  }

  /** Resolves when every sink has room (for `batch`'s destination, when given). */
  async writable(batch?: Batch): Promise<void> {
    await Promise.all([
      ...this.#sinks.map((sink) => sink.writable(batch)),
      ...[...this.#leaving.keys()].map((sink) => sink.writable()),
    ]);
  }

  /**
   * Resolves when every sink stored what was queued before the call (for `batches`, if given),
   * and every sink swapped out before the call has closed: a batch one of them took is stored.
   */
  async flush(batches?: readonly Batch[]): Promise<void> {
    await Promise.all([
      ...this.#sinks.map((sink) => sink.flush(batches)),
      ...this.#leaving.values(),
    ]);
  }

  /** Whether any sink's destination for lines from `origin` keeps failing and holds its share. */
  blocked(origin: Pick<Batch, "meta" | "receivedAt">): boolean {
    return this.#sinks.some((sink) => sink.blocked?.(origin) ?? false);
  }

  /** What any sink cannot store now, a leaving sink's included. */
  problems(): SinkProblem[] {
    return [...this.#sinks, ...this.#leaving.keys()].flatMap((sink) => sink.problems?.() ?? []);
  }

  /**
   * Closes every sink, each after writing what it holds, and waits for the sinks swapped out to
   * finish theirs. When `signal` aborts first, it stops waiting and rejects.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    const leaving = [...this.#leaving.values()].map((closed) =>
      untilAborted(closed, options.signal)
    );
    await Promise.all([...this.#sinks.map((sink) => sink.close(options)), ...leaving]);
  }
}
