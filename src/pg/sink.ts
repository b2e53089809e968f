/**
 * The PostgreSQL sink: batches queued as COPY rows (bounded in bytes), written by one connection
 * in transactions of up to `transactionRows` rows with `COPY ... FROM STDIN`, each transaction
 * recorded with a sequence of its own so that a retry after a connection lost during `COMMIT`
 * stores nothing twice; `flush` resolves once the rows are committed. A lost or refused
 * connection is retried with backoff while the queue holds the batches (and pushes back on the
 * inputs when full); `problems()` says why meanwhile, which `/readyz` shows.
 *
 * For the storage workers (`logboom store`), {@linkcode PgSink.writeSequenced} stores messages of
 * a stream exactly once: their rows and their stream sequences in one transaction, a sequence
 * already stored (a redelivery) skipped.
 *
 * Daily partitions are created ahead (today and the next two days, at start and every hour) and
 * when rows of another day come; with `maxAgeMs`, partitions whose whole day is older are dropped.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { copyRows, endClient, openClient, type PgClient, type QueryResult } from "./client.ts";
import { describe } from "../_util.ts";
import type { Batch } from "../pipeline/batch.ts";
import type { Sink, SinkProblem } from "../pipeline/sink.ts";
import { Histogram } from "../pipeline/histogram.ts";
import { RetryPolicy } from "../retry.ts";
import { COPY_COLUMNS, encodeRows, type Rows } from "./rows.ts";
import { DAY_MS, dayStart, TableNames } from "./schema.ts";

const log = getLogger(["logboom", "postgres"]);

/** Default rows per transaction: 10,000 wrote 2x the rows/s of 1,000 here (FIELD_NOTES). */
export const DEFAULT_TRANSACTION_ROWS = 10_000;
/** Default bound of the queue, in bytes of COPY text. */
export const DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024;
/** How often partitions are created ahead and old ones dropped. */
export const MAINTENANCE_MS = 3_600_000;
/** Days of partitions created ahead of today. */
const DAYS_AHEAD = 2;
/** Sequences the sink records for its own transactions are under this consumer prefix. */
const OWN_CONSUMER = "logboom-sink:";
/**
 * A statement of the writer whose answer takes longer fails and the connection is opened again
 * (a server unreachable without a reset would hold it for ever; a transaction retried after a lost
 * answer stores nothing twice).
 */
const QUERY_TIMEOUT_MS = 120_000;
/** A sink deletes its own committed sequences every this many transactions. */
const OWN_FORGET_EVERY = 64;
/** Own sequences of a sink gone (crashed) are deleted after this long. */
const OWN_SEQUENCES_KEPT = "1 day";

/** Options of {@linkcode PgSink}. */
export interface PgSinkOptions {
  /** `postgres://user:password@host:port/database`, as libpq's URLs. */
  url: string;
  /** The table. Default `logs`. */
  table?: string;
  /** Most rows per transaction. Default {@linkcode DEFAULT_TRANSACTION_ROWS}. */
  transactionRows?: number;
  /** Bound of the queue in bytes. Default {@linkcode DEFAULT_QUEUE_BYTES}. */
  queueBytes?: number;
  /** Partitions whose day ended longer ago than this are dropped. Default: kept. */
  maxAgeMs?: number;
  /** Backoff between attempts. Default 250 ms doubling to 5 s (with jitter). */
  retry?: RetryPolicy;
  /** How long a connection attempt may take, in ms. Default 10,000. */
  connectTimeoutMs?: number;
  /** The clock for partitions and retention. Default `Date.now`. */
  now?: () => number;
  /** The name in logs and metrics. Default `postgres`. */
  name?: string;
}

/** One message of a stream for {@linkcode PgSink.writeSequenced}. */
export interface SequencedMessage {
  /** Its stream sequence (JetStream's `info.streamSequence`), above 0. */
  seq: number;
  /** Its lines. */
  batches: readonly Batch[];
}

/** What {@linkcode PgSink.writeSequenced} did. */
export interface SequencedResult {
  /** Sequences whose rows this call stored. */
  written: number[];
  /** Sequences already stored before (redeliveries): nothing written for them. */
  skipped: number[];
}

/** The sink's counters. */
export interface PgSinkStats {
  /** Rows committed. */
  rows: number;
  /** Bytes of COPY text committed. */
  bytes: number;
  /** Transactions committed. */
  transactions: number;
  /** Failed attempts (connections, statements). */
  errors: number;
  /** Bytes queued now. */
  queuedBytes: number;
  /** Partitions dropped by retention. */
  partitionsDropped: number;
  /** Seconds each committed transaction took, from BEGIN to COMMIT's answer. */
  transactionSeconds: Histogram;
}

interface PlainJob {
  kind: "plain";
  rows: Rows;
  id: number;
}

interface SequencedJob {
  kind: "sequenced";
  consumer: string;
  messages: { seq: number; rows: Rows[] }[];
  bytes: number;
  signal?: AbortSignal;
  resolve(result: SequencedResult): void;
  reject(err: unknown): void;
}

interface CallJob {
  kind: "call";
  run(client: PgClient): Promise<void>;
  reject(err: unknown): void;
}

type Job = PlainJob | SequencedJob | CallJob;

/** The transaction being tried: kept across retries, so a retry stores the same rows once. */
interface InFlight {
  jobs: PlainJob[];
  seq: number;
}

/** A URL without its password, for messages. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.href;
  } catch {
    return "postgres";
  }
}

/**
 * Why node-postgres cannot run in this process, or `undefined`: it reads libpq's environment
 * variables (PGUSER, PGSSLMODE...) for what a URL leaves out, and Deno refuses that without
 * `--allow-env=PG*`.
 */
export function envProblem(): string | undefined {
  // `pg` reads USER as it loads, and libpq's PG* variables: without them a terminal would be
  // asked, and a service refused, mid-run.
  const missing = ["PGUSER", "USER"].some((variable) =>
    Deno.permissions.querySync({ name: "env", variable }).state !== "granted"
  );
  if (missing) {
    return "PostgreSQL's client reads USER and libpq's PG* environment variables: run with " +
      "--allow-env=PG*,USER (besides the other variables allowed)";
  }
}

/** Checks a URL before connecting: the error's message, or `undefined`. */
export function checkUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL: write postgres://user:password@host:5432/database`;
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return `"${displayUrl(url)}" is not a postgres:// URL`;
  }
  if (parsed.hostname === "") return `"${displayUrl(url)}" names no host`;
}

/** Batches stored in a PostgreSQL table. See the module's doc. */
export class PgSink implements Sink {
  /** A short name for logs and metrics. */
  readonly name: string;
  /** The table's names. */
  readonly names: TableNames;
  /** The server, without password, for messages. */
  readonly where: string;
  /** Counters. */
  readonly stats: PgSinkStats = {
    rows: 0,
    bytes: 0,
    transactions: 0,
    errors: 0,
    queuedBytes: 0,
    partitionsDropped: 0,
    transactionSeconds: new Histogram(),
  };
  readonly #url: string;
  readonly #transactionRows: number;
  readonly #queueBytes: number;
  readonly #maxAgeMs: number | undefined;
  readonly #retry: RetryPolicy;
  readonly #connectTimeoutMs: number;
  readonly #now: () => number;
  /** This sink's consumer name for its own transactions' sequences. */
  readonly #own = OWN_CONSUMER + crypto.randomUUID();
  #ownSeq = 0;
  /** The last own sequence committed; those up to it are deleted now and then, and at close. */
  #ownDone = 0;
  #queue: Job[] = [];
  /** The sequenced job being written now. */
  #running: Job | undefined;
  #inFlight: InFlight | undefined;
  #lastId = 0;
  #committedId = 0;
  #flushWaiters: { id: number; resolve(): void; reject(err: unknown): void }[] = [];
  #roomWaiters: (() => void)[] = [];
  #wake: (() => void) | undefined;
  #client: PgClient | undefined;
  #schemaReady = false;
  /** Days (ms) whose partition is known to exist. */
  #partitions = new Set<number>();
  #maintenanceDue = true;
  #maintenanceTimer: ReturnType<typeof setInterval>;
  #problem: SinkProblem | undefined;
  #closing = false;
  /** Set when close gives up: the loop stops at once. */
  #stop = new AbortController();
  #loop: Promise<void>;

  /** Starts the writer; it connects at once and retries while the server cannot be reached. */
  constructor(options: PgSinkOptions) {
    const problem = checkUrl(options.url) ?? envProblem();
    if (problem !== undefined) throw new TypeError(problem);
    this.#url = options.url;
    this.names = new TableNames(options.table ?? "logs");
    this.where = `${displayUrl(options.url)} (table ${this.names.table})`;
    this.name = options.name ?? "postgres";
    this.#transactionRows = Math.max(1, options.transactionRows ?? DEFAULT_TRANSACTION_ROWS);
    this.#queueBytes = options.queueBytes ?? DEFAULT_QUEUE_BYTES;
    this.#maxAgeMs = options.maxAgeMs;
    this.#retry = options.retry ?? new RetryPolicy({ initialMs: 250, maxMs: 5_000 });
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#maintenanceTimer = setInterval(() => {
      this.#maintenanceDue = true;
      this.#wake?.();
    }, MAINTENANCE_MS);
    Deno.unrefTimer(this.#maintenanceTimer);
    this.#loop = this.#run();
  }

  /** Whether the queue is at its byte bound. */
  get full(): boolean {
    return this.stats.queuedBytes >= this.#queueBytes;
  }

  /** Queues the batch's rows (encoded now: its bytes are borrowed). */
  write(batch: Batch): boolean {
    if (this.#closing) throw new Error(`The PostgreSQL sink "${this.name}" is closed`);
    if (batch.lines === 0) return !this.full;
    const rows = encodeRows(batch);
    this.#queue.push({ kind: "plain", rows, id: ++this.#lastId });
    this.stats.queuedBytes += rows.data.length;
    this.#wake?.();
    return !this.full;
  }

  /** Resolves once the queue is under its bound. */
  writable(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Resolves once every batch written before the call is committed. */
  flush(): Promise<void> {
    const id = this.#lastId;
    if (this.#committedId >= id) return Promise.resolve();
    return new Promise((resolve, reject) => this.#flushWaiters.push({ id, resolve, reject }));
  }

  /**
   * Whether the server keeps failing now: HTTP ingest then answers 503 with `Retry-After` at
   * once rather than hold requests until it is back (what is queued stays queued).
   */
  blocked(): boolean {
    return this.#problem !== undefined;
  }

  /** Why rows cannot be stored now: the server unreachable or refusing. */
  problems(): readonly SinkProblem[] {
    return this.#problem === undefined ? [] : [this.#problem];
  }

  /**
   * Stores the rows of stream messages exactly once, in one transaction: each message's sequence
   * is recorded for `consumer` along with its rows, a sequence recorded before (a redelivery) is
   * skipped, and the consumer's highest sequence is kept (see {@linkcode PgSink.lastSequence}).
   * Resolves once committed, retrying while the server cannot be reached; rejects when `signal`
   * aborts first or the sink closes. Sequences are kept per message, not as a high-water mark
   * only, so workers sharing one consumer, which commit out of order, lose nothing.
   *
   * @example
   * ```ts
   * const { written, skipped } = await sink.writeSequenced("worker-a", [
   *   { seq: m.info.streamSequence, batches: decode(m.data) },
   * ]);
   * await m.ackAck(); // then
   * sink.acked("worker-a", [m.info.streamSequence]);
   * ```
   */
  writeSequenced(
    consumer: string,
    messages: readonly SequencedMessage[],
    signal?: AbortSignal,
  ): Promise<SequencedResult> {
    if (this.#closing) {
      return Promise.reject(new Error(`The PostgreSQL sink "${this.name}" is closed`));
    }
    for (const { seq } of messages) {
      if (!Number.isSafeInteger(seq) || seq < 1) {
        return Promise.reject(new RangeError(`A stream sequence must be a whole number >= 1`));
      }
    }
    let bytes = 0;
    const encoded = messages.map(({ seq, batches }) => {
      const rows = batches.filter((b) => b.lines > 0).map(encodeRows);
      for (const r of rows) bytes += r.data.length;
      return { seq, rows };
    });
    return new Promise((resolve, reject) => {
      // Given up while waiting its turn (the server down, say): out of the queue at once.
      const onAbort = () => {
        const at = this.#queue.indexOf(job);
        if (at === -1 || this.#running === job) return;
        this.#queue.splice(at, 1);
        this.#release(bytes);
        reject(signal!.reason);
      };
      const job: SequencedJob = {
        kind: "sequenced",
        consumer,
        messages: encoded,
        bytes,
        signal,
        resolve(result) {
          signal?.removeEventListener("abort", onAbort);
          resolve(result);
        },
        reject(err) {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(job);
      this.stats.queuedBytes += bytes;
      this.#wake?.();
    });
  }

  /**
   * Forgets the recorded sequences of messages JetStream confirmed acknowledged (`ackAck`):
   * they are never delivered again. Deleted by the consumer's next transaction; until then, or
   * when never called, they only take room.
   */
  acked(consumer: string, seqs: readonly number[]): void {
    const pending = this.#acked.get(consumer) ?? [];
    pending.push(...seqs.filter((s) => Number.isSafeInteger(s)));
    this.#acked.set(consumer, pending);
  }
  #acked = new Map<string, number[]>();

  /** The highest sequence stored for `consumer`, 0 when none. */
  lastSequence(consumer: string, signal?: AbortSignal): Promise<number> {
    return this.#call(async (client) => {
      const res = await client.query(
        `SELECT last_seq FROM ${this.names.consumers} WHERE consumer = $1`,
        [consumer],
      );
      return res.rows.length === 0 ? 0 : Number(res.rows[0].last_seq);
    }, signal);
  }

  /**
   * Creates the partitions ahead and drops those past `maxAgeMs` now (it runs every hour on its
   * own). Resolves with the partitions dropped.
   */
  maintain(signal?: AbortSignal): Promise<string[]> {
    return this.#call((client) => this.#maintain(client), signal);
  }

  /** Writes what is queued, then closes the connection; see {@linkcode Sink.close}. */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    this.#closing = true;
    clearInterval(this.#maintenanceTimer);
    this.#wake?.();
    const giveUp = () => this.#stop.abort(new Error("Closing gave up"));
    if (signal?.aborted) giveUp();
    signal?.addEventListener("abort", giveUp, { once: true });
    try {
      await this.#loop;
      const client = this.#client;
      if (client !== undefined && this.#ownDone > 0 && this.#queue.length === 0) {
        await client.query(
          `DELETE FROM ${this.names.sequences} WHERE consumer = ${client.escapeLiteral(this.#own)}`,
        ).catch(() => {});
      }
    } finally {
      signal?.removeEventListener("abort", giveUp);
      await this.#disconnect();
    }
    const left = this.#queue.length + (this.#inFlight?.jobs.length ?? 0);
    if (left > 0) {
      let rows = 0;
      for (const job of [...this.#inFlight?.jobs ?? [], ...this.#queue]) {
        if (job.kind === "plain") rows += job.rows.rows;
        else if (job.kind === "sequenced") {
          for (const m of job.messages) for (const r of m.rows) rows += r.rows;
        }
      }
      const err = new Error(
        `Cannot write ${rows} rows to ${this.where}: ${this.#problem?.error ?? "closing gave up"}`,
      );
      this.#failAll(err);
      throw err;
    }
  }

  #call<T>(run: (client: PgClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#closing) {
      return Promise.reject(new Error(`The PostgreSQL sink "${this.name}" is closed`));
    }
    return new Promise<T>((resolve, reject) => {
      const job: CallJob = {
        kind: "call",
        run: async (client) => {
          signal?.throwIfAborted();
          resolve(await run(client));
        },
        reject,
      };
      this.#queue.push(job);
      this.#wake?.();
    });
  }

  /** Whether the loop has something to do now. */
  #hasWork(): boolean {
    return this.#queue.length > 0 || this.#inFlight !== undefined ||
      (!this.#closing && (this.#client === undefined || this.#maintenanceDue));
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      if (!this.#hasWork()) {
        if (this.#closing) break;
        await new Promise<void>((resolve) => this.#wake = resolve);
        this.#wake = undefined;
        continue;
      }
      try {
        const client = await this.#connect();
        if (this.#maintenanceDue && !this.#closing) {
          this.#maintenanceDue = false;
          await this.#maintain(client);
        }
        await this.#step(client);
        attempt = 0;
        this.#recovered();
      } catch (err) {
        this.stats.errors++;
        const error = describe(err);
        if (this.#problem === undefined) {
          log.warn("Cannot write to {where}, retrying: {error}", { where: this.where, error });
          this.#problem = { path: this.where, error, since: this.#now() };
        } else {
          this.#problem = { ...this.#problem, error };
        }
        // A day's partition dropped by another worker's retention: made again on the retry.
        this.#partitions.clear();
        await this.#disconnect();
        await sleep(this.#retry.delayMs(attempt++), this.#stop.signal);
      }
    }
  }

  async #connect(): Promise<PgClient> {
    if (this.#client !== undefined) return this.#client;
    const client = await openClient(this.#url, this.#connectTimeoutMs, "logboom", QUERY_TIMEOUT_MS);
    const lost = (err?: unknown) => {
      if (this.#client !== client) return;
      this.#client = undefined;
      if (this.#problem === undefined && !this.#closing) {
        const error = err === undefined ? "the connection was closed" : describe(err);
        log.warn("Lost the connection to {where}: {error}", { where: this.where, error });
        this.#problem = { path: this.where, error, since: this.#now() };
      }
      this.#wake?.();
    };
    client.on("error", lost);
    client.on("end", () => lost());
    try {
      await client.connect();
    } catch (err) {
      void endClient(client);
      throw err;
    }
    this.#client = client;
    if (!this.#schemaReady) {
      await client.query(this.names.create());
      this.#schemaReady = true;
    }
    return client;
  }

  async #disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) await endClient(client);
  }

  /** One transaction (or call) from the head of the queue. */
  async #step(client: PgClient): Promise<void> {
    if (this.#inFlight === undefined) {
      const head = this.#queue[0];
      if (head === undefined) return;
      if (head.kind === "call") {
        try {
          await head.run(client);
        } catch (err) {
          if (client !== this.#client) throw err; // the connection failed: tried again
          head.reject(err);
        }
        this.#queue.shift();
        return;
      }
      if (head.kind === "sequenced") {
        if (head.signal?.aborted) {
          this.#queue.shift();
          this.#release(head.bytes);
          head.reject(head.signal.reason);
          return;
        }
        this.#running = head;
        let result: SequencedResult;
        try {
          result = await this.#writeSequenced(client, head);
        } finally {
          this.#running = undefined;
        }
        this.#queue.shift();
        this.#release(head.bytes);
        head.resolve(result);
        return;
      }
      const jobs: PlainJob[] = [];
      let rows = 0;
      while (this.#queue[0]?.kind === "plain") {
        const job = this.#queue[0] as PlainJob;
        if (jobs.length > 0 && rows + job.rows.rows > this.#transactionRows) break;
        this.#queue.shift();
        jobs.push(job);
        rows += job.rows.rows;
      }
      this.#inFlight = { jobs, seq: ++this.#ownSeq };
    }
    const { jobs, seq } = this.#inFlight;
    const rows = jobs.map((job) => job.rows);
    // Own sequences committed are deleted every few transactions, not each (less churn).
    const forget = seq % OWN_FORGET_EVERY === 0 ? this.#ownDone : 0;
    const stored = await this.#transaction(client, this.#own, [{ seq, rows }], forget);
    this.#inFlight = undefined;
    this.#ownDone = seq;
    if (stored.length > 0) {
      this.stats.transactions++;
      for (const r of rows) {
        this.stats.rows += r.rows;
        this.stats.bytes += r.data.length;
      }
    }
    this.#recovered();
    let bytes = 0;
    for (const job of jobs) bytes += job.rows.data.length;
    this.#committedId = jobs[jobs.length - 1].id;
    this.#release(bytes);
    const waiters = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const waiter of waiters) {
      if (waiter.id <= this.#committedId) waiter.resolve();
      else this.#flushWaiters.push(waiter);
    }
  }

  async #writeSequenced(client: PgClient, job: SequencedJob): Promise<SequencedResult> {
    const acked = this.#acked.get(job.consumer) ?? [];
    this.#acked.delete(job.consumer);
    try {
      const stored = await this.#transaction(client, job.consumer, job.messages, 0, acked);
      const written = new Set(stored);
      const result: SequencedResult = { written: [], skipped: [] };
      for (const { seq, rows } of job.messages) {
        if (written.has(seq)) {
          result.written.push(seq);
          for (const r of rows) {
            this.stats.rows += r.rows;
            this.stats.bytes += r.data.length;
          }
        } else result.skipped.push(seq);
      }
      if (stored.length > 0) this.stats.transactions++;
      return result;
    } catch (err) {
      this.acked(job.consumer, acked);
      throw err;
    }
  }

  /**
   * One transaction: records the messages' sequences for `consumer`, copies the rows of those
   * not recorded before, keeps the consumer's highest sequence, forgets its sequences up to
   * `forgetThrough` and those in `forget`; returns the sequences stored.
   */
  async #transaction(
    client: PgClient,
    consumer: string,
    messages: readonly { seq: number; rows: readonly Rows[] }[],
    forgetThrough: number,
    forget: readonly number[] = [],
  ): Promise<number[]> {
    const days = new Set<number>();
    for (const { rows } of messages) for (const r of rows) days.add(dayStart(r.receivedAt));
    const missing = [...days].filter((day) => !this.#partitions.has(day));
    if (missing.length > 0) {
      await client.query(this.names.createPartitions(missing));
      for (const day of missing) this.#partitions.add(day);
    }
    const started = performance.now();
    const name = client.escapeLiteral(consumer);
    const seqs = messages.map((m) => m.seq).join(",");
    const statements = [
      "BEGIN",
      `INSERT INTO ${this.names.sequences} (consumer, seq) SELECT ${name}, unnest(ARRAY[${seqs}]::bigint[]) ON CONFLICT DO NOTHING RETURNING seq`,
    ];
    if (forgetThrough > 0) {
      statements.push(
        `DELETE FROM ${this.names.sequences} WHERE consumer = ${name} AND seq <= ${forgetThrough}`,
      );
    }
    if (forget.length > 0) {
      statements.push(
        `DELETE FROM ${this.names.sequences} WHERE consumer = ${name} AND seq = ANY(ARRAY[${
          forget.join(",")
        }]::bigint[])`,
      );
    }
    const results = await client.query(statements.join(";\n")) as unknown as QueryResult[];
    const stored = results[1].rows.map((row) => Number(row.seq));
    if (stored.length === 0) {
      // All stored before (a redelivery): nothing to copy; the sequences forgotten stay so.
      await client.query("COMMIT");
      return [];
    }
    try {
      const fresh = new Set(stored);
      await copyRows(
        client,
        `COPY ${this.names.table} (${COPY_COLUMNS.join(", ")}) FROM STDIN`,
        messages.filter((m) => fresh.has(m.seq)).flatMap((m) => m.rows),
      );
      const tail = [];
      if (!consumer.startsWith(OWN_CONSUMER)) {
        tail.push(
          `INSERT INTO ${this.names.consumers} (consumer, last_seq) VALUES (${name}, ${
            Math.max(...stored)
          }) ON CONFLICT (consumer) DO UPDATE SET last_seq = GREATEST(${this.names.consumers}.last_seq, EXCLUDED.last_seq), updated_at = now()`,
        );
      }
      tail.push("COMMIT");
      await client.query(tail.join(";\n"));
      this.stats.transactionSeconds.observe((performance.now() - started) / 1000);
    } catch (err) {
      // The connection is closed and opened again, which rolls back.
      throw err;
    }
    return stored;
  }

  /** Creates today's partition and the next days', drops those past `maxAgeMs`. */
  async #maintain(client: PgClient): Promise<string[]> {
    const today = dayStart(this.#now());
    const days = [];
    for (let i = 0; i <= DAYS_AHEAD; i++) days.push(today + i * DAY_MS);
    await client.query(this.names.createPartitions(days));
    for (const day of days) this.#partitions.add(day);
    await client.query(
      `DELETE FROM ${this.names.sequences} WHERE consumer LIKE '${OWN_CONSUMER}%' ` +
        `AND consumer <> ${client.escapeLiteral(this.#own)} ` +
        `AND stored_at < now() - interval '${OWN_SEQUENCES_KEPT}'`,
    );
    if (this.#maxAgeMs === undefined) return [];
    // A stream's sequences stored longer ago than the retention: a redelivery that old would
    // land in a partition dropped as it comes (the acked ones are deleted as they are acked).
    await client.query(
      `DELETE FROM ${this.names.sequences} WHERE stored_at < now() - ` +
        `${Math.round(this.#maxAgeMs)} * interval '1 millisecond'`,
    );
    const oldest = this.#now() - this.#maxAgeMs;
    const res = await client.query(this.names.listPartitions());
    const old: string[] = [];
    for (const { name } of res.rows as { name: string }[]) {
      const day = this.names.dayOf(name);
      if (day !== undefined && day + DAY_MS <= oldest) old.push(name);
    }
    if (old.length === 0) return [];
    await client.query(this.names.dropPartitions(old));
    for (const name of old) this.#partitions.delete(this.names.dayOf(name)!);
    this.stats.partitionsDropped += old.length;
    log.info("Dropped {count} partitions of {table} older than the retention: {partitions}", {
      count: old.length,
      table: this.names.table,
      partitions: old.join(", "),
    });
    return old;
  }

  /** A transaction went through: no problem now. */
  #recovered(): void {
    if (this.#problem === undefined) return;
    log.info("Writing to {where} again", { where: this.where });
    this.#problem = undefined;
  }

  #release(bytes: number): void {
    this.stats.queuedBytes -= bytes;
    if (this.full) return;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #failAll(err: Error): void {
    for (const waiter of this.#flushWaiters) waiter.reject(err);
    this.#flushWaiters = [];
    for (const job of this.#queue) if (job.kind !== "plain") job.reject(err);
    this.#queue = [];
    this.#inFlight = undefined;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
