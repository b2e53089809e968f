/**
 * Ships gzip batches to the servers over HTTP: `POST /api/v1/ingest` with `X-Stream-Id` and
 * `X-Stream-Offset`, retried with exponential backoff and jitter until a server acknowledges,
 * failing over to the next server and coming back to the first later. A batch is never dropped:
 * `send` resolves only with an acknowledgement (or a duplicate answer) and rejects only when its
 * signal aborts.
 *
 * Failures are of three kinds, and only one of them may have stored the batch:
 * - refused (503, 429, or no connection at all): not stored; another server may take it at once;
 * - rejected (400, 401, 413...): not stored, and retrying will not help until an operator fixes
 *   the config; retried at the longest delay, with an error logged;
 * - unanswered (timeout, connection cut mid-request, 500): maybe stored. The batch then goes to the
 *   same server again for `resendWindowMs`, where the server's stream marks refuse it if it was
 *   stored; only after that window does it go to another server, with a warning that its lines may
 *   be stored twice (counted in `possibleDuplicateBytes`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe, sleep } from "../_util.ts";
import type { RetryConfig } from "./config.ts";

/** One batch to ship. */
export interface ShipBatch {
  /** The source the server files the lines under. */
  source: string;
  /** `X-Stream-Id`. */
  stream: string;
  /** `X-Stream-Offset`: the stream offset at the end of the batch. */
  offset: number;
  /** The gzip-compressed lines. */
  body: Uint8Array;
  /** Lines in the batch. */
  lines: number;
  /** Uncompressed bytes. */
  bytes: number;
  /**
   * The server an earlier try went to without an answer (after a restart: the planned server),
   * or -1: the batch is first retried there.
   */
  server: number;
}

/** What a server answered. */
export interface ShipResult {
  /** Index of the server that acknowledged. */
  server: number;
  /** Whether the server already had the batch. */
  duplicate: boolean;
  /** Lines the server stored (0 for a duplicate). */
  accepted: number;
}

/** Settings of {@linkcode Shipper}; {@linkcode Shipper.update} changes them live. */
export interface ShipperOptions {
  /** Server base URLs in failover order. */
  servers: readonly string[];
  /** Bearer token; `""` for none. */
  token: string;
  /** Backoff, timeouts and failover. */
  retry: RetryConfig;
  /** Requests in flight at once, over all streams. Default 8. */
  maxConcurrent?: number;
}

/** Counters of the shipper. */
export interface ShipperStats {
  /** Batches acknowledged (duplicates included). */
  batches: number;
  /** Batches the server already had. */
  duplicates: number;
  /** Lines acknowledged as stored. */
  lines: number;
  /** Uncompressed bytes acknowledged. */
  bytes: number;
  /** Compressed bytes sent, retries included. */
  wireBytes: number;
  /** Tries that failed. */
  retries: number;
  /** Times a server was given up for the next. */
  failovers: number;
  /** Bytes of unanswered batches sent on to another server (they may be stored twice). */
  possibleDuplicateBytes: number;
}

type Outcome =
  | { kind: "ok"; duplicate: boolean; accepted: number }
  | { kind: "refused"; retryAfterMs: number; why: string }
  | { kind: "rejected"; why: string }
  | { kind: "unanswered"; why: string };

const log = getLogger(["logboom", "agent", "shipper"]);

/**
 * Sends batches with retries and failover.
 *
 * @example
 * ```ts
 * const shipper = new Shipper({ servers: ["http://127.0.0.1:8081"], token: "", retry });
 * const { duplicate } = await shipper.send(batch, { signal });
 * ```
 */
export class Shipper {
  readonly #stats: ShipperStats = {
    batches: 0,
    duplicates: 0,
    lines: 0,
    bytes: 0,
    wireBytes: 0,
    retries: 0,
    failovers: 0,
    possibleDuplicateBytes: 0,
  };
  #servers: readonly string[] = [];
  #token = "";
  #retry!: RetryConfig;
  #maxConcurrent: number;
  #down: number[] = [];
  #failures: number[] = [];
  #lastTry: number[] = [];
  #active = 0;
  #queue: (() => void)[] = [];
  #lastRejection = "";

  /** @param options servers, token and retry policy. */
  constructor(options: ShipperOptions) {
    this.#maxConcurrent = options.maxConcurrent ?? 8;
    if (!Number.isSafeInteger(this.#maxConcurrent) || this.#maxConcurrent < 1) {
      throw new RangeError(
        `Concurrency must be a positive integer, got "${options.maxConcurrent}"`,
      );
    }
    this.update(options);
  }

  /** Counters (a live object). */
  get stats(): Readonly<ShipperStats> {
    return this.#stats;
  }

  /** The servers, in failover order. */
  get servers(): readonly string[] {
    return this.#servers;
  }

  /** The server the next batch goes to. */
  get preferred(): number {
    return this.#choose();
  }

  /** Takes new servers, token or retry policy; batches under way use them from their next try. */
  update(options: ShipperOptions): void {
    if (options.servers.length === 0) throw new TypeError("Shipper needs at least one server");
    if (options.servers.join("\n") !== this.#servers.join("\n")) {
      this.#servers = [...options.servers];
      this.#down = this.#servers.map(() => 0);
      this.#failures = this.#servers.map(() => 0);
      this.#lastTry = this.#servers.map(() => 0);
    }
    this.#token = options.token;
    this.#retry = options.retry;
  }

  /**
   * Sends `batch` until a server acknowledges it. `onTry` is told each server index as it is
   * tried (the caller records it, so a restart resends an unanswered batch to the same server).
   *
   * @throws the signal's reason once it aborts; nothing else.
   */
  async send(
    batch: ShipBatch,
    options: { signal: AbortSignal; onTry?: (server: number) => void },
  ): Promise<ShipResult> {
    const { signal, onTry } = options;
    let attempt = 0;
    let sticky = batch.server >= 0 && batch.server < this.#servers.length
      ? { server: batch.server, since: Date.now() }
      : undefined;
    for (;;) {
      signal.throwIfAborted();
      const index = sticky?.server ?? this.#choose();
      onTry?.(index);
      this.#lastTry[index] = Date.now();
      const outcome = await this.#limited(() => this.#post(index, batch, signal));
      if (outcome.kind === "ok") {
        this.#failures[index] = 0;
        this.#down[index] = 0;
        this.#stats.batches++;
        if (outcome.duplicate) this.#stats.duplicates++;
        else {
          this.#stats.lines += batch.lines;
        }
        this.#stats.bytes += batch.bytes;
        return { server: index, duplicate: outcome.duplicate, accepted: outcome.accepted };
      }
      this.#stats.retries++;
      signal.throwIfAborted();
      let delay = this.#backoff(attempt++);
      if (outcome.kind === "unanswered") {
        sticky ??= { server: index, since: Date.now() };
        log.debug(`No answer from ${this.#servers[index]} for ${batch.stream}: ${outcome.why}`);
        if (Date.now() - sticky.since >= this.#retry.resendWindowMs && this.#servers.length > 1) {
          this.#stats.possibleDuplicateBytes += batch.bytes;
          this.#giveUp(index, `no answer for ${this.#retry.resendWindowMs} ms (${outcome.why})`);
          log.warn(
            `A batch of ${batch.bytes} bytes of stream "${batch.stream}" got no answer from ` +
              `${
                this.#servers[index]
              }; sending it to another server: its lines may be stored twice`,
          );
          sticky = undefined;
          delay = 0;
        }
      } else if (outcome.kind === "refused") {
        // While an earlier try is unanswered, the batch stays with that server (it may have it).
        if (sticky === undefined) {
          const before = this.#choose();
          this.#failed(index, outcome.why);
          if (this.#choose() !== before) delay = 0;
        }
        delay = Math.max(delay, outcome.retryAfterMs);
      } else {
        if (outcome.why !== this.#lastRejection) {
          log.error(`${this.#servers[index]} rejected a batch: ${outcome.why}`);
          this.#lastRejection = outcome.why;
        }
        sticky = undefined;
        this.#failed(index, outcome.why);
        delay = this.#retry.maxMs;
      }
      if (delay > 0) await sleep(delay, signal);
    }
  }

  /**
   * POSTs `body` as JSON to `path` on the preferred server, once, for reports. Resolves with
   * whether it was accepted.
   */
  async post(path: string, body: unknown, signal: AbortSignal): Promise<boolean> {
    const index = this.#choose();
    try {
      const res = await fetch(this.#servers[index] + path, {
        method: "POST",
        headers: { "content-type": "application/json", ...this.#auth() },
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#retry.timeoutMs)]),
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  #auth(): Record<string, string> {
    return this.#token === "" ? {} : { authorization: `Bearer ${this.#token}` };
  }

  /** The first server not given up; when all are, the one tried longest ago. */
  #choose(): number {
    const now = Date.now();
    for (let i = 0; i < this.#servers.length; i++) if (this.#down[i] <= now) return i;
    let best = 0;
    for (let i = 1; i < this.#servers.length; i++) {
      if (this.#lastTry[i] < this.#lastTry[best]) best = i;
    }
    return best;
  }

  #failed(index: number, why: string): void {
    if (++this.#failures[index] >= this.#retry.failoverAfter) this.#giveUp(index, why);
  }

  #giveUp(index: number, why: string): void {
    this.#failures[index] = 0;
    const wasUp = this.#down[index] <= Date.now();
    this.#down[index] = Date.now() + this.#retry.failbackMs;
    if (wasUp && this.#servers.length > 1) {
      this.#stats.failovers++;
      log.warn(
        `Server ${this.#servers[index]} failed (${why}); using the next one, back to it in ` +
          `${this.#retry.failbackMs} ms`,
      );
    }
  }

  /** Exponential backoff with "equal jitter": half the delay fixed, half random. */
  #backoff(attempt: number): number {
    const { initialMs, maxMs } = this.#retry;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }

  async #limited<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#maxConcurrent) {
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    this.#active++;
    try {
      return await task();
    } finally {
      this.#active--;
      this.#queue.shift()?.();
    }
  }

  async #post(index: number, batch: ShipBatch, signal: AbortSignal): Promise<Outcome> {
    const url = `${this.#servers[index]}/api/v1/ingest?source=${encodeURIComponent(batch.source)}`;
    this.#stats.wireBytes += batch.body.length;
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "content-encoding": "gzip",
          "x-stream-id": batch.stream,
          "x-stream-offset": String(batch.offset),
          ...this.#auth(),
        },
        body: batch.body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#retry.timeoutMs)]),
      });
    } catch (err) {
      const why = describe(err) +
        ((err as Error)?.cause ? `: ${describe((err as Error).cause)}` : "");
      // No connection was made: the server never saw the batch.
      if (/\(Connect\)|connection refused|dns error/i.test(why)) {
        return { kind: "refused", retryAfterMs: 0, why };
      }
      return { kind: "unanswered", why };
    }
    let text = "";
    try {
      text = await res.text();
    } catch (err) {
      return { kind: "unanswered", why: `answer cut: ${describe(err)}` };
    }
    if (res.status === 200) {
      try {
        const answer = JSON.parse(text) as { duplicate?: unknown; accepted?: unknown };
        return {
          kind: "ok",
          duplicate: answer.duplicate === true,
          accepted: typeof answer.accepted === "number" ? answer.accepted : 0,
        };
      } catch {
        return { kind: "unanswered", why: `answer is not JSON: ${text.slice(0, 100)}` };
      }
    }
    const why = `${res.status} ${text.trim().slice(0, 200)}`;
    if (res.status === 503 || res.status === 429 || res.status === 502 || res.status === 504) {
      const seconds = Number(res.headers.get("retry-after"));
      return {
        kind: "refused",
        retryAfterMs: Number.isFinite(seconds) && seconds > 0
          ? Math.min(seconds * 1000, 60_000)
          : 0,
        why,
      };
    }
    if (res.status >= 400 && res.status < 500) return { kind: "rejected", why };
    return { kind: "unanswered", why };
  }
}
