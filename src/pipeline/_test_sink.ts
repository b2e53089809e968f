/**
 * A base for sinks in tests: never full, writable and flushed at once, nothing to close;
 * a subclass says what `write` keeps (and may hold `flush` back).
 *
 * @module
 */

import type { Batch } from "./batch.ts";
import type { Sink } from "./sink.ts";

/** A sink whose only work is what a subclass's `write` does. */
export abstract class TestSink implements Sink {
  /** A short name for the sink. */
  abstract readonly name: string;
  /** Whether producers should wait; `false` unless a test sets it. */
  full = false;
  /** Keeps what the test needs of `batch`; returns whether there is room. */
  abstract write(batch: Batch): boolean;
  /** Room at once. */
  writable(): Promise<void> {
    return Promise.resolve();
  }
  /** Stored at once. */
  flush(): Promise<void> {
    return Promise.resolve();
  }
  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
