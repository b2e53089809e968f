/**
 * The contract every sink (file, live hub, later NATS or Postgres) fulfils, shaped like a Node
 * writable stream: `write` never blocks and never drops; its `false` asks the producer to wait.
 *
 * @module
 */

import type { Batch } from "./batch.ts";

/** A destination for batches. */
export interface Sink {
  /** A short name for logs and metrics, e.g. `file`. */
  readonly name: string;
  /**
   * Queues a batch. Returns `false` when the sink's queue is over its byte bound: the producer
   * should stop reading until {@linkcode Sink.writable} resolves (storage pushes back, never drops).
   */
  write(batch: Batch): boolean;
  /**
   * Whether the queue is at its byte bound now. Inputs that can refuse work (HTTP answers 503
   * with `Retry-After`) check it before writing; streaming inputs just wait on `writable()`.
   */
  readonly full: boolean;
  /** Resolves once the sink's queue has room again. */
  writable(): Promise<void>;
  /**
   * Resolves once every batch queued before the call is stored as the sink's durability policy
   * asks (written, and fsynced under `-fsync batch`). This is the acknowledgement HTTP ingest
   * waits for.
   */
  flush(): Promise<void>;
  /**
   * Writes what is queued, then releases the sink's resources. When `signal` aborts first, it
   * stops waiting and rejects, naming what it could not write.
   */
  close(options?: { signal?: AbortSignal }): Promise<void>;
}
