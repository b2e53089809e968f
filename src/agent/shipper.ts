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
 * Two batches of a stream can be in flight at once: the later one carries `X-Stream-Start` (where
 * it begins), and a server that checks it stores it only right after the one before it, or
 * answers 409 and stores nothing; the batch then waits for the one before it to be acknowledged
 * and is sent again without the header, as a lone batch is. A server that has not shown it checks
 * `X-Stream-Start` (by an `X-Stream-Mark` in an answer) gets a stream's batches one at a time:
 * a server of an older version would store the later batch first, and then take the earlier one
 * for a duplicate.
 *
 * Every exchange is under `timeoutMs`, connect to answer ({@linkcode HttpClient}): a server that
 * accepts and then stops reading or answering (a half-open connection) costs a timeout and a
 * retry, never a stuck file. While a server fails, a warning says what is wrong and how many tries
 * failed, at most every `warnEveryMs` per server (not per retry), and an info line says when it
 * answers again.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe, sleep } from "../_util.ts";
import { retryAfterMs, RetryPolicy } from "../retry.ts";
import { unauthorizedHint } from "../token.ts";
import { isLoopback } from "../units.ts";
import type { RetryConfig } from "./config.ts";
import { type Connector, HttpClient, HttpRequestError } from "./http_client.ts";

/** One batch to ship. */
export interface ShipBatch {
  /** The source the server files the lines under. */
  source: string;
  /** `X-Stream-Id`. */
  stream: string;
  /** `X-Stream-Offset`: the stream offset at the end of the batch. */
  offset: number;
  /**
   * `X-Stream-Start`: where the batch begins, when it may be sent before the batch before it is
   * acknowledged (`send`'s `previous`); `undefined` to send it alone.
   */
  start?: number;
  /** The lines, compressed as `encoding` says. */
  body: Uint8Array;
  /** `Content-Encoding` of `body` (`gzip`); `undefined` for plain lines. */
  encoding?: string;
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
  /** A failing server is reported at most this often, in ms. Default 5000. */
  warnEveryMs?: number;
  /** The clock, in ms (tests). Default `Date.now`. */
  now?: () => number;
  /** Waits between tries (tests). Default a timer that rejects when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Opens connections (tests). */
  connect?: Connector;
  /** Told each problem as it is logged (a failing server, a failover), for the agent's reports. */
  onProblem?: (message: string) => void;
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
  /** Batches a server refused (409) for arriving before the batch before them; sent again. */
  outOfOrder: number;
}

type Outcome =
  | { kind: "ok"; duplicate: boolean; accepted: number }
  | { kind: "refused"; retryAfterMs: number; why: string }
  | { kind: "rejected"; why: string }
  | { kind: "out-of-order"; why: string }
  | { kind: "unanswered"; why: string };

/** A server's run of failed tries, for the warnings. */
interface Trouble {
  /** When the first try of the run failed. */
  since: number;
  /** Tries failed in the run. */
  failed: number;
  /** Tries failed when the last warning was logged. */
  warnedFailed: number;
  /** When the last warning was logged. */
  warnedAt: number;
  /** The last warning's reason. */
  warnedWhy: string;
}

const log = getLogger(["logboom", "agent", "shipper"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

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
    outOfOrder: 0,
  };
  #servers: readonly string[] = [];
  #allLoopback = false;
  #clients: HttpClient[] = [];
  #token = "";
  #retry!: RetryConfig;
  #policy!: RetryPolicy;
  readonly #maxConcurrent: number;
  readonly #warnEveryMs: number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #now: () => number;
  readonly #connect: Connector | undefined;
  readonly #onProblem: ((message: string) => void) | undefined;
  #down: number[] = [];
  #failures: number[] = [];
  #lastTry: number[] = [];
  #trouble: (Trouble | undefined)[] = [];
  /** Servers that showed they check `X-Stream-Start`. */
  #checksStart: boolean[] = [];
  #active = 0;
  #queue: (() => void)[] = [];

  /** @param options servers, token and retry policy. */
  constructor(options: ShipperOptions) {
    this.#maxConcurrent = options.maxConcurrent ?? 8;
    if (!Number.isSafeInteger(this.#maxConcurrent) || this.#maxConcurrent < 1) {
      throw new RangeError(
        `Concurrency must be a positive integer, got "${options.maxConcurrent}"`,
      );
    }
    this.#warnEveryMs = options.warnEveryMs ?? 5000;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? sleep;
    this.#connect = options.connect;
    this.#onProblem = options.onProblem;
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

  /** Whether every server is on this machine: `"auto"` compression then sends plain lines. */
  get allLoopback(): boolean {
    return this.#allLoopback;
  }

  /** The server the next batch goes to. */
  get preferred(): number {
    return this.#choose();
  }

  /**
   * The server batches go to now, the servers in failover order, and whether that one is in a
   * run of failed tries.
   */
  get failover(): { active: string; servers: string[]; failing: boolean } {
    const active = this.#choose();
    return {
      active: this.#servers[active],
      servers: [...this.#servers],
      failing: this.#trouble[active] !== undefined,
    };
  }

  /** Takes new servers, token or retry policy; batches under way use them from their next try. */
  update(options: ShipperOptions): void {
    if (options.servers.length === 0) throw new TypeError("Shipper needs at least one server");
    if (options.servers.join("\n") !== this.#servers.join("\n")) {
      for (const client of this.#clients) client.close();
      this.#servers = [...options.servers];
      this.#allLoopback = this.#servers.every((server) => isLoopback(new URL(server).hostname));
      this.#clients = this.#servers.map((server) =>
        new HttpClient(server, { maxIdle: this.#maxConcurrent, connect: this.#connect })
      );
      this.#down = this.#servers.map(() => 0);
      this.#failures = this.#servers.map(() => 0);
      this.#lastTry = this.#servers.map(() => 0);
      this.#trouble = this.#servers.map(() => undefined);
      this.#checksStart = this.#servers.map(() => false);
    }
    this.#token = options.token;
    this.#retry = options.retry;
    // Exponential backoff with equal jitter: half the delay fixed, half random.
    this.#policy = new RetryPolicy({
      initialMs: options.retry.initialMs,
      maxMs: options.retry.maxMs,
    });
  }

  /** Closes the kept-alive connections (requests under way finish first). */
  close(): void {
    for (const client of this.#clients) client.close();
  }

  /**
   * Sends `batch` until a server acknowledges it. `onTry` is told each server index before it is
   * tried, and the try waits for what it returns (the caller records the server durably first,
   * so a restart resends the batch to the server that may hold it).
   * With `batch.start`, `previous` resolves once the stream's batch before it is acknowledged:
   * the batch may go before that, and waits for it when a server cannot keep them in order.
   *
   * @throws the signal's reason once it aborts (or what `previous` or `onTry` rejects with);
   * nothing else.
   */
  async send(
    batch: ShipBatch,
    options: {
      signal: AbortSignal;
      onTry?: (server: number) => Promise<void> | void;
      previous?: Promise<unknown>;
    },
  ): Promise<ShipResult> {
    const { signal, onTry, previous } = options;
    let start = previous === undefined ? undefined : batch.start;
    let attempt = 0;
    let sticky = batch.server >= 0 && batch.server < this.#servers.length
      ? { server: batch.server, since: this.#now() }
      : undefined;
    for (;;) {
      signal.throwIfAborted();
      // A reload may have taken the server away.
      if (sticky !== undefined && sticky.server >= this.#servers.length) sticky = undefined;
      const index = sticky?.server ?? this.#choose();
      if (start !== undefined && !this.#checksStart[index]) {
        // Not known to keep a stream's batches in order: this one goes after the one before it.
        await previous;
        signal.throwIfAborted();
        start = undefined;
      }
      await onTry?.(index);
      signal.throwIfAborted();
      this.#lastTry[index] = this.#now();
      const outcome = await this.#limited(() => this.#post(index, batch, start, signal));
      if (outcome.kind === "ok") {
        this.#recovered(index);
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
      signal.throwIfAborted();
      if (outcome.kind === "out-of-order") {
        // Nothing was stored: once the batch before it is acknowledged, it goes alone.
        this.#stats.outOfOrder++;
        await previous;
        signal.throwIfAborted();
        start = undefined;
        continue;
      }
      this.#stats.retries++;
      this.#troubled(index, outcome);
      let delay = this.#policy.delayMs(attempt++);
      if (outcome.kind === "unanswered") sticky ??= { server: index, since: this.#now() };
      if (outcome.kind === "unanswered" || (outcome.kind === "refused" && sticky !== undefined)) {
        // Kept with the server that may have it for the resend window, refused or not.
        if (
          this.#now() - sticky!.since >= this.#retry.resendWindowMs && this.#servers.length > 1
        ) {
          this.#stats.possibleDuplicateBytes += batch.bytes;
          this.#giveUp(index, `no answer for ${this.#retry.resendWindowMs} ms (${outcome.why})`);
          log.warn(
            "A batch of {bytes} bytes of stream {stream} got no answer from {server}; sending it " +
              "to another server: its lines may be stored twice",
            { bytes: batch.bytes, stream: batch.stream, server: this.#servers[index] },
          );
          sticky = undefined;
          delay = 0;
        }
        if (outcome.kind === "refused") delay = Math.max(delay, outcome.retryAfterMs);
      } else if (outcome.kind === "refused") {
        const before = this.#choose();
        this.#failed(index, outcome.why);
        if (this.#choose() !== before) delay = 0;
        delay = Math.max(delay, outcome.retryAfterMs);
      } else {
        sticky = undefined;
        this.#failed(index, outcome.why);
        delay = this.#retry.maxMs;
      }
      if (delay > 0) await this.#sleep(delay, signal);
    }
  }

  /**
   * POSTs `body` as JSON to `path` on the preferred server, once, for reports. Resolves with
   * whether it was accepted.
   */
  async post(path: string, body: unknown, signal: AbortSignal): Promise<boolean> {
    const index = this.#choose();
    try {
      const answer = await this.#clients[index].request({
        method: "POST",
        path,
        headers: { "content-type": "application/json", ...this.#auth() },
        body: encoder.encode(JSON.stringify(body)),
        timeoutMs: this.#retry.timeoutMs,
        signal,
      });
      return answer.status >= 200 && answer.status < 300;
    } catch {
      return false;
    }
  }

  #auth(): Record<string, string> {
    return this.#token === "" ? {} : { authorization: `Bearer ${this.#token}` };
  }

  /** The first server not given up; when all are, the one tried longest ago. */
  #choose(): number {
    const now = this.#now();
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
    const now = this.#now();
    const wasUp = this.#down[index] <= now;
    this.#down[index] = now + this.#retry.failbackMs;
    if (wasUp && this.#servers.length > 1) {
      this.#stats.failovers++;
      log.warn(
        "Server {server} failed ({reason}); using the next one, back to it in {failbackMs} ms",
        { server: this.#servers[index], reason: why, failbackMs: this.#retry.failbackMs },
      );
      this.#onProblem?.(`Server ${this.#servers[index]} failed (${why}); using the next one`);
    }
  }

  /**
   * Counts a failed try of server `index`, and says what is wrong: at once for the first failure
   * of a run (or a new kind of rejection), then at most every `warnEveryMs`, with the tries that
   * failed since the last warning and since the run began. A rejection (400, 401, 413...) needs an
   * operator and is an error; the rest are warnings.
   */
  #troubled(index: number, outcome: Exclude<Outcome, { kind: "ok" }>): void {
    const now = this.#now();
    const trouble = this.#trouble[index] ??= {
      since: now,
      failed: 0,
      warnedFailed: 0,
      warnedAt: -Infinity,
      warnedWhy: "",
    };
    trouble.failed++;
    const rejected = outcome.kind === "rejected";
    const newRejection = rejected && outcome.why !== trouble.warnedWhy;
    if (now - trouble.warnedAt < this.#warnEveryMs && !newRejection) return;
    const properties = {
      server: this.#servers[index],
      problem: this.#problem(outcome),
      failed: trouble.failed - trouble.warnedFailed,
      total: trouble.failed,
      seconds: Math.round((now - trouble.since) / 1000),
    };
    if (rejected) {
      log.error(
        "Server {server} rejects batches: {problem}; {total} tries failed in {seconds} s " +
          "({failed} since the last report); lines wait in their files",
        properties,
      );
    } else {
      log.warn(
        "Cannot deliver to {server}: {problem}; {total} tries failed in {seconds} s ({failed} " +
          "since the last report); retrying, lines wait in their files",
        properties,
      );
    }
    this.#onProblem?.(
      rejected
        ? `Server ${properties.server} rejects batches: ${properties.problem}`
        : `Cannot deliver to ${properties.server}: ${properties.problem}`,
    );
    trouble.warnedAt = now;
    trouble.warnedFailed = trouble.failed;
    trouble.warnedWhy = outcome.why;
  }

  /** What went wrong, in words; a 401 says where the token should have come from. */
  #problem(outcome: Exclude<Outcome, { kind: "ok" }>): string {
    if (outcome.kind === "unanswered") return `no answer (${outcome.why})`;
    if (outcome.kind === "rejected" && outcome.why.startsWith("401 ")) {
      return `${outcome.why} (${
        unauthorizedHint(this.#token !== "", "token in the agent's config")
      })`;
    }
    return outcome.why;
  }

  /** Ends server `index`'s run of failures, saying so if it was reported. */
  #recovered(index: number): void {
    const trouble = this.#trouble[index];
    if (trouble === undefined) return;
    this.#trouble[index] = undefined;
    log.info("Server {server} takes batches again after {failed} failed tries in {seconds} s", {
      server: this.#servers[index],
      failed: trouble.failed,
      seconds: Math.round((this.#now() - trouble.since) / 1000),
    });
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

  async #post(
    index: number,
    batch: ShipBatch,
    start: number | undefined,
    signal: AbortSignal,
  ): Promise<Outcome> {
    this.#stats.wireBytes += batch.body.length;
    const headers: Record<string, string> = {
      "content-type": "text/plain; charset=utf-8",
      "x-stream-id": batch.stream,
      "x-stream-offset": String(batch.offset),
      ...this.#auth(),
    };
    if (start !== undefined) headers["x-stream-start"] = String(start);
    if (batch.encoding !== undefined) headers["content-encoding"] = batch.encoding;
    let answer;
    try {
      answer = await this.#clients[index].request({
        method: "POST",
        path: `/api/v1/ingest?source=${encodeURIComponent(batch.source)}`,
        headers,
        body: batch.body,
        timeoutMs: this.#retry.timeoutMs,
        signal,
      });
    } catch (err) {
      const why = describe(err);
      // No connection was made: the server never saw the batch.
      if (err instanceof HttpRequestError && err.phase === "connect") {
        return { kind: "refused", retryAfterMs: 0, why };
      }
      return { kind: "unanswered", why };
    }
    const text = decoder.decode(answer.body);
    if (answer.headers.has("x-stream-mark")) this.#checksStart[index] = true;
    if (answer.status === 409 && start !== undefined) {
      return { kind: "out-of-order", why: `409 ${errorText(text)}` };
    }
    if (answer.status === 200) {
      try {
        const parsed = JSON.parse(text) as { duplicate?: unknown; accepted?: unknown };
        return {
          kind: "ok",
          duplicate: parsed.duplicate === true,
          accepted: typeof parsed.accepted === "number" ? parsed.accepted : 0,
        };
      } catch {
        return { kind: "unanswered", why: `answer is not JSON: ${text.slice(0, 100)}` };
      }
    }
    const why = `${answer.status} ${errorText(text)}`;
    const status = answer.status;
    if (status === 503 || status === 429 || status === 502 || status === 504) {
      return {
        kind: "refused",
        retryAfterMs: retryAfterMs(answer.headers.get("retry-after"), {
          capMs: this.#policy.retryAfterCapMs,
        }),
        why,
      };
    }
    if (status >= 400 && status < 500) return { kind: "rejected", why };
    return { kind: "unanswered", why };
  }
}

/** The `error` of a JSON error answer, or the start of the text. */
function errorText(text: string): string {
  try {
    const { error } = JSON.parse(text);
    if (typeof error === "string") return error;
  } catch {
    // Not a JSON error: the text itself.
  }
  return text.trim().slice(0, 200);
}
