/**
 * The unit that moves through logboom: whole, newline-terminated lines as bytes.
 *
 * Lines are never decoded on the hot path; only filters and the live hub decode, and only what they
 * need.
 *
 * @module
 */

import type { Fields } from "./record.ts";

/** Where a batch came from. Shared by every batch of one connection, so it is built once. */
export interface BatchMeta {
  /** The logical stream, e.g. `tcp` for raw TCP lines, or the `source` an HTTP client names. */
  readonly source: string;
  /** The sending host: the peer's IP address for network inputs. */
  readonly host: string;
  /** The name of the input that received the batch, e.g. `tcp`. */
  readonly input: string;
  /**
   * What an input parsed out of every line of the batch, e.g. syslog's `app`, `facility` and
   * `severity`, for path templates (`{app}`) and the JSON format. Built once per distinct set and
   * shared by every batch that has it, never per line; absent where an input parses nothing.
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Where a batch stands in an idempotent ingest stream (`X-Stream-Id` and `X-Stream-Offset`). HTTP
 * ingest sends one batch per (source, host) of a body, its parts; the file sink hands the mark to
 * the stream marks journal before it writes the bytes, so that a restart after `kill -9` knows
 * which parts were stored.
 */
export interface BatchMark {
  /** The stream's id. */
  readonly stream: string;
  /** The stream's offset at the end of the body. */
  readonly offset: number;
  /** Which part of the body this batch is, from 0. */
  readonly part: number;
  /** How many parts the body has. */
  readonly parts: number;
  /** Lines of this part in all. */
  readonly total: number;
  /**
   * Lines at the start of this part that an earlier run stored before it crashed; `data` holds the
   * rest. Usually 0.
   */
  readonly skipped: number;
}

/**
 * Newline-terminated lines in one byte array, with their count and origin.
 *
 * `data` is borrowed: it is valid during the synchronous `Sink.write` call only, because inputs
 * frame straight out of their reused read buffers. A sink that keeps bytes copies them (the file
 * sink copies into its recycled pages), so the hot path allocates nothing per read.
 */
export interface Batch {
  /** One or more lines, each ending with byte 10; no blank lines. */
  readonly data: Uint8Array;
  /** How many lines `data` holds. */
  readonly lines: number;
  /** Where the lines came from. */
  readonly meta: BatchMeta;
  /** When the input received the bytes, in milliseconds since the epoch. */
  readonly receivedAt: number;
  /** The batch's place in an idempotent stream, when it has one. */
  readonly mark?: BatchMark;
  /**
   * Each line's own time as its sender stated it, in milliseconds since the epoch, `NaN` where it
   * stated none; from inputs that parse one (syslog), and only when an output asked for it (the
   * JSON format). Borrowed like `data`: one entry per line, valid during `Sink.write` only.
   */
  readonly times?: Float64Array;
  /**
   * Each line's level as a code (`record.ts`: 0 none, 1 trace ... 6 fatal), from inputs whose
   * senders state one (OTLP, Loki, Elasticsearch, syslog) or rules that find one. Borrowed like
   * `data`: one entry per line, valid during `Sink.write` only.
   */
  readonly levels?: Uint8Array;
  /**
   * Each line's fields (`undefined` for a line without), from inputs whose senders send them or
   * rules that extract them. Borrowed like `data`: one entry per line; a sink that keeps them
   * keeps the objects, which are never changed once a batch is written.
   */
  readonly fields?: readonly (Readonly<Fields> | undefined)[];
  /**
   * Each line's end in `data` (the offset after its newline), from inputs that frame lines, when
   * a sink reads them (`BatchReads.lineEnds`: the nats sink cuts messages at line counts without
   * scanning). Borrowed like `data`. A batch made from another with other bytes leaves it out.
   */
  readonly ends?: Uint32Array;
}
