/**
 * The contract every sink (file, live hub, later NATS or Postgres) fulfils, shaped like a Node
 * writable stream: `write` never blocks and never drops; its `false` asks the producer to wait.
 *
 * @module
 */

import type { Batch } from "./batch.ts";

/** Why a sink cannot store some of its batches now (what `/readyz` reports). */
export interface SinkProblem {
  /** What cannot be written, e.g. a file's path. */
  readonly path: string;
  /** The last error's message. */
  readonly error: string;
  /** Since when it keeps failing, in ms since the epoch. */
  readonly since: number;
}

/**
 * `/readyz`'s lines for outputs that cannot write, one each (at most 20, then how many more):
 * `not ready: cannot write "<path>" since <ISO time>: <error>`.
 */
export function notReadyLines(problems: readonly SinkProblem[]): string[] {
  const lines = problems.slice(0, 20).map(({ path, error, since }) =>
    `not ready: cannot write "${path}" since ${new Date(since).toISOString()}: ${error}\n`
  );
  if (problems.length > 20) {
    lines.push(`not ready: ${problems.length - 20} more outputs cannot write\n`);
  }
  return lines;
}

/** A destination for batches. */
export interface Sink {
  /** A short name for logs and metrics, e.g. `file`. */
  readonly name: string;
  /**
   * Queues a batch; never throws for lack of room (of queue, of open files). Returns `false` when
   * the producer should stop reading until {@linkcode Sink.writable} resolves: the sink's queue is
   * over its byte bound, or the batch's destination keeps failing and holds its share of it
   * (storage pushes back, never drops).
   */
  write(batch: Batch): boolean;
  /**
   * Whether the queue is at its byte bound now. Inputs that can refuse work (HTTP answers 503
   * with `Retry-After`) check it before writing; streaming inputs just wait on `writable()`.
   */
  readonly full: boolean;
  /**
   * Resolves once the sink's queue has room again; given the batch `write` refused, once its
   * destination takes more too, so a producer waits for what it feeds and nothing else.
   */
  writable(batch?: Batch): Promise<void>;
  /**
   * Resolves once every batch queued before the call is stored as the sink's durability policy
   * asks (written, and fsynced under `-fsync batch`). Given `batches` (written before the call),
   * it waits only for their destinations, so one that cannot be written holds up no other
   * acknowledgement. This is the acknowledgement HTTP ingest waits for.
   */
  flush(batches?: readonly Batch[]): Promise<void>;
  /**
   * Whether lines from `origin` would go to a destination that keeps failing and already holds
   * its share of the queue. Inputs that can refuse work (HTTP answers 503) ask before writing, so
   * a failing output neither fills the queue for everyone nor holds a request until it writes.
   * Default: never.
   */
  blocked?(origin: Pick<Batch, "meta" | "receivedAt">): boolean;
  /** What cannot be stored now and why; none when every destination writes. Default: none. */
  problems?(): readonly SinkProblem[];
  /**
   * Writes what is queued, then releases the sink's resources. When `signal` aborts first, it
   * stops waiting and rejects, naming what it could not write.
   */
  close(options?: { signal?: AbortSignal }): Promise<void>;
}
