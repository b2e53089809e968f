/**
 * What every HTTP ingest route shares (`/api/v1/ingest`, OTLP, Loki push, Elasticsearch bulk):
 * the limits on bodies and on the bytes being read at once, the 503 + `Retry-After` when the queue
 * is full, an output keeps failing or the server is closing, the write-then-flush step that is
 * the acknowledgement, the way long work shares the event loop, and the counters.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { HttpError } from "../net/http_error.ts";
import type { Turns } from "./json_record.ts";

/** Options of {@linkcode IngestGate}. */
export interface IngestGateOptions {
  /** Largest body, compressed and decompressed alike, in bytes. Default 16 MiB. */
  maxBody?: number;
  /**
   * Bytes of bodies being read at once, over all requests; past it, requests get 503 so that many
   * large uploads cannot exhaust memory. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** Seconds a client is asked to wait in `Retry-After` when the server is saturated. Default 1. */
  retryAfterSeconds?: number;
  /**
   * How work on a request shares the event loop. Default: a macrotask turn after every 4 ms of
   * work, counted per request. For tests.
   */
  turns?: Turns;
}

/** Counters of HTTP ingest (every route), for metrics. */
export interface IngestStats {
  /** Bodies acknowledged (not counting duplicates). */
  batches: number;
  /** Lines acknowledged. */
  lines: number;
  /** Batches answered `duplicate` and not written. */
  duplicates: number;
  /** Requests refused, by HTTP status. */
  refused: Record<number, number>;
}

/** Bytes one request holds against {@linkcode IngestGateOptions.maxBufferedBytes}. */
export interface Reservation {
  bytes: number;
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/** Work on one request runs at most this long before it lets others run. */
const SLICE_MS = 4;

/**
 * The limits and the sink shared by the ingest routes of one API.
 *
 * @example
 * ```ts
 * const gate = new IngestGate(router, { maxBody: 16 << 20 });
 * gate.checkRoom(); // 503 when full
 * const reservation = { bytes: 0 };
 * try {
 *   gate.reserve(reservation, body.length);
 *   // ... build batches, gate.checkBlocked(metas), write them with gate.sink.write ...
 *   await gate.acknowledge(batches, lines);
 * } finally {
 *   gate.release(reservation);
 * }
 * ```
 */
export class IngestGate {
  /** Where batches go: the router. */
  readonly sink: Sink;
  /** Counters for metrics (a live object: read, do not keep). */
  readonly stats: IngestStats = { batches: 0, lines: 0, duplicates: 0, refused: {} };
  /** The seconds of `Retry-After`, as text. */
  readonly retryAfter: string;
  #maxBody: number;
  #maxBuffered: number;
  readonly #turns: Turns | undefined;
  #buffered = 0;
  #closed = false;

  /**
   * @param sink where batches go: the router.
   * @param options limits; see {@linkcode IngestGateOptions} for defaults.
   */
  constructor(sink: Sink, options: IngestGateOptions = {}) {
    const {
      maxBody = DEFAULT_MAX_BODY,
      maxBufferedBytes = 64 * 1024 * 1024,
      retryAfterSeconds = 1,
      turns,
    } = options;
    this.sink = sink;
    this.#maxBody = positive("Body limit", maxBody);
    this.#maxBuffered = positive("Buffered byte limit", maxBufferedBytes);
    this.retryAfter = String(positive("Retry-After", retryAfterSeconds));
    this.#turns = turns;
  }

  /** The largest body, for requests starting now. */
  get maxBody(): number {
    return this.#maxBody;
  }

  /** The buffered byte limit, for requests starting now. */
  get maxBufferedBytes(): number {
    return this.#maxBuffered;
  }

  /** New limits (a config reload) for the checks made from now on. */
  setLimits(limits: Pick<IngestGateOptions, "maxBody" | "maxBufferedBytes">): void {
    const { maxBody = this.#maxBody, maxBufferedBytes = this.#maxBuffered } = limits;
    this.#maxBody = positive("Body limit", maxBody);
    this.#maxBuffered = positive("Buffered byte limit", maxBufferedBytes);
  }

  /** Refuses new requests from now on (503), for shutdown; requests under way complete. */
  close(): void {
    this.#closed = true;
  }

  /** A 503 asking the client to come back after `Retry-After`. */
  unavailable(message: string): HttpError {
    return new HttpError(503, message, { headers: { "retry-after": this.retryAfter } });
  }

  /** 413 when the request's `Content-Length` is over the body limit. */
  checkLength(req: Request): void {
    const length = req.headers.get("content-length");
    if (length !== null && Number(length) > this.#maxBody) {
      throw new HttpError(413, `Body of ${length} bytes is over the limit of ${this.#maxBody}`);
    }
  }

  /** 503 when the server is closing, the sink's queue is full or bodies fill the byte bound. */
  checkRoom(): void {
    if (this.#closed) throw this.unavailable("The server is shutting down");
    if (this.sink.full || this.#buffered >= this.#maxBuffered) {
      throw this.unavailable("The ingest queue is full");
    }
  }

  /** Counts `bytes` more for `reservation`; 503 when that takes the total past the bound. */
  reserve(reservation: Reservation, bytes: number): void {
    reservation.bytes += bytes;
    this.#buffered += bytes;
    if (this.#buffered > this.#maxBuffered) throw this.unavailable("The ingest queue is full");
  }

  /** Gives back what `reservation` holds. */
  release(reservation: Reservation): void {
    this.#buffered -= reservation.bytes;
    reservation.bytes = 0;
  }

  /**
   * 503 when lines of any of `metas` would go to a destination that keeps failing and holds its
   * share of the queue already: the body waits for nothing and takes no more of it, so other
   * outputs go on; the client retries.
   */
  checkBlocked(metas: Iterable<BatchMeta>): void {
    const now = Date.now();
    for (const meta of metas) {
      if (this.sink.blocked?.({ meta, receivedAt: now })) {
        throw this.unavailable(
          `Lines of source "${meta.source}" cannot be stored now: their output keeps failing`,
        );
      }
    }
  }

  /**
   * The acknowledgement: resolves once `batches` (written before) are stored, and fsynced under
   * `-fsync batch`, waiting only for the files they went to; then counts one body of `lines`.
   */
  async acknowledge(batches: readonly Batch[], lines: number): Promise<void> {
    await this.sink.flush(batches);
    this.stats.batches++;
    this.stats.lines += lines;
  }

  /** Counts a request refused with `status`. */
  refused(status: number): void {
    this.stats.refused[status] = (this.stats.refused[status] ?? 0) + 1;
  }

  /** How one request's work shares the event loop. */
  turns(): Turns {
    return this.#turns ?? clockTurns();
  }
}

/** Work that pauses for a macrotask turn after every {@linkcode SLICE_MS} of it. */
export function clockTurns(): Turns {
  let clock = performance.now();
  return {
    due: () => performance.now() - clock > SLICE_MS,
    pause: async () => {
      await nextTurn();
      clock = performance.now();
    },
  };
}

/** Lets timers and other requests run: a macrotask turn of the event loop. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** `value` when it is a positive safe integer; else a `RangeError` naming `what`. */
export function positive(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive integer, got "${value}"`);
  }
  return value;
}
