/**
 * A storage worker: durable pull consumers of the stream (explicit ack) whose messages are
 * written to the file sink and/or PostgreSQL, and acknowledged to JetStream only once stored.
 *
 * **Exactly once.** JetStream delivers at least once: a message is delivered again when its ack
 * was lost, came after `ack_wait`, or the worker died between storing and acking. Each store
 * skips what it already has:
 *
 * - files: every message is a marked batch of its own stream id `nats:<stream>:<sequence>`, so
 *   the stream marks journal (`store/stream_marks.ts`, in the state folder) records an intent
 *   (file, offset, length, hash) *before* its bytes are written and a mark once they are. After
 *   `kill -9`, startup settles the intents: bytes written whole count as stored, a torn tail is
 *   cut back to where the message began. A redelivered message whose mark exists is acked and
 *   not written; one stored in part (a crash between two files of a rotation) writes the rest.
 *   With one id per message, a message stored after a later one never hides it (no high-water
 *   gaps). The last 100,000 messages are remembered: far more than can be unacknowledged at
 *   once (`max_ack_pending`, 1,024 per consumer).
 * - PostgreSQL: the rows and the consumer's sequences are committed in one transaction
 *   (`pg/sink.ts`, `writeSequenced`), so a redelivered sequence is skipped.
 *
 * **Sharing.** The stream's subjects are partitioned (`<subject>.<p>`, a hash of source and host
 * chosen by the ingest nodes). Each partition has one durable consumer, `<durable>-p<p>`, and
 * exactly one worker owns it (`-partition`): its redeliveries come back to the worker that holds
 * the journal saying what it stored. Two workers never write one file (give each its own folder):
 * a worker cuts back its own torn tails only. While a worker is down, its partitions wait in the
 * stream, nothing is lost, and it resumes where it acked.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { describe, sleep } from "../_util.ts";
import type { Batch } from "../pipeline/batch.ts";
import { Histogram } from "../pipeline/histogram.ts";
import type { Sink } from "../pipeline/sink.ts";
import type { StreamMarks } from "../store/stream_marks.ts";
import { isNotFound } from "./connection.ts";
import { MessageError, unpackMessage } from "./message.ts";

const log = getLogger(["logboom", "nats", "store"]);

/** The part of the PostgreSQL sink the worker uses (`pg/sink.ts`). */
export interface SequencedStore {
  writeSequenced(
    consumer: string,
    messages: readonly { seq: number; batches: readonly Batch[] }[],
    signal?: AbortSignal,
  ): Promise<{ written: number[]; skipped: number[] }>;
  acked(consumer: string, seqs: readonly number[]): void;
}

/** Options of {@linkcode StoreWorker}. */
export interface StoreWorkerOptions {
  nc: NatsConnection;
  /** The stream. */
  stream: string;
  /** Its subject prefix. */
  subject: string;
  /** The partitions this worker owns. */
  partitions: readonly number[];
  /** Consumer name prefix. Default `logboom-store`. */
  durable?: string;
  /** The file sink, with `marks` journaling its marked batches. */
  files?: Sink;
  /** The stream marks the file sink journals to (durable). */
  marks?: StreamMarks;
  /** PostgreSQL. */
  pg?: SequencedStore;
  /** Most messages stored per group (one flush, one fsync). Default 256. */
  groupMessages?: number;
  /** Most bytes of messages received and not stored. Default 32 MiB. */
  maxPendingBytes?: number;
  /** How long JetStream waits for an ack before it delivers again, in ms. Default 60 s. */
  ackWaitMs?: number;
  /** Most messages delivered and not acked, per consumer. Default 1024. */
  maxAckPending?: number;
  /** For tests: called once a group is stored, before its acks; throwing leaves it unacked. */
  beforeAck?(seqs: readonly number[]): void;
}

/** Counters of the worker. */
export interface StoreWorkerStats {
  /** Messages stored and acked. */
  messages: number;
  /** Lines stored (to the files, or else PostgreSQL). */
  lines: number;
  /** Messages delivered again and found stored already. */
  redelivered: number;
  /** Messages that are not logboom batches (terminated, never stored). */
  bad: number;
  /** Messages in the stream not yet delivered or not yet acked, at the last look. */
  lag: number;
  /** Seconds from a message's publish to its ack here. */
  storeSeconds: Histogram;
}

/** See the module's notes. */
export class StoreWorker {
  /** Counters (a live object). */
  readonly stats: StoreWorkerStats = {
    messages: 0,
    lines: 0,
    redelivered: 0,
    bad: 0,
    lag: 0,
    storeSeconds: new Histogram(),
  };
  readonly #o: StoreWorkerOptions;
  readonly #stop = new AbortController();
  readonly #consumers = new Set<ConsumerMessages>();
  /** Messages received and not yet acked, by stream sequence. */
  readonly #inProgress = new Map<number, JsMsg>();
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #failure: { error: string; since: number } | undefined;

  constructor(options: StoreWorkerOptions) {
    if (options.files === undefined && options.pg === undefined) {
      throw new TypeError("A storage worker needs files or PostgreSQL");
    }
    this.#o = options;
  }

  /** The consumer of partition `p`. */
  consumerName(p: number): string {
    return `${this.#o.durable ?? "logboom-store"}-p${p}`;
  }

  /**
   * Starts reading each owned partition, creating its durable consumer when missing; while the
   * stream does not exist yet (no ingest node published), it waits for it.
   */
  start(): void {
    // While stored (a disk that stalls, a file sink retrying), messages are not delivered again.
    const ackWait = this.#o.ackWaitMs ?? 60_000;
    this.#keepAlive = setInterval(() => {
      for (const m of this.#inProgress.values()) m.working();
    }, Math.max(500, ackWait / 3));
    this.#running = Promise.all([
      ...this.#o.partitions.map((p) => this.#partition(p)),
      this.#watchLag(),
    ]).then(() => {});
  }

  /** Creates the consumer of partition `p` unless it exists. */
  async #ensureConsumer(p: number): Promise<void> {
    const jsm = await jetstreamManager(this.#o.nc, { timeout: 10_000 });
    const name = this.consumerName(p);
    try {
      await jsm.consumers.info(this.#o.stream, name);
      return;
    } catch (err) {
      if (!isNotFound(err) || /stream not found/i.test(describe(err))) throw err;
    }
    await jsm.consumers.add(this.#o.stream, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${this.#o.subject}.${p}`,
      ack_wait: nanos(this.#o.ackWaitMs ?? 60_000),
      max_ack_pending: this.#o.maxAckPending ?? 1024,
    });
    log.info("Created consumer {consumer} of stream {stream} for {subject}", {
      consumer: name,
      stream: this.#o.stream,
      subject: `${this.#o.subject}.${p}`,
    });
  }

  /** Why nothing is stored now, when so. */
  problems(): { path: string; error: string; since: number }[] {
    if (this.#failure === undefined) return [];
    return [{ path: `JetStream stream ${this.#o.stream}`, ...this.#failure }];
  }

  /** Stops reading; what was received and stored is acked, the rest is delivered again later. */
  async close(): Promise<void> {
    this.#stop.abort();
    for (const messages of this.#consumers) messages.stop();
    await this.#running;
    clearInterval(this.#keepAlive);
  }

  async #watchLag(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let lag = 0;
      try {
        const jsm = await jetstreamManager(this.#o.nc, { timeout: 5000 });
        for (const p of this.#o.partitions) {
          const info = await jsm.consumers.info(this.#o.stream, this.consumerName(p));
          lag += info.num_pending + info.num_ack_pending;
        }
        this.stats.lag = lag;
      } catch {
        // Shown by the consumers' own errors.
      }
      await sleep(2000, signal).catch(() => {});
    }
  }

  /** Reads partition `p` until closed, again after each error. */
  async #partition(p: number): Promise<void> {
    const signal = this.#stop.signal;
    const js = jetstream(this.#o.nc);
    let reading = false;
    while (!signal.aborted) {
      try {
        await this.#ensureConsumer(p);
        // Before the first read: another worker's pull requests mean it reads this partition,
        // and a redelivery could reach the worker whose journal does not know it was stored.
        if (!reading) await this.#checkAlone(p);
        reading = true;
        const consumer = await js.consumers.get(this.#o.stream, this.consumerName(p));
        await this.#consume(consumer, p);
      } catch (err) {
        if (signal.aborted) return;
        this.#fail(err);
        await sleep(1000, signal).catch(() => {});
      }
    }
  }

  /** Throws while another client has pull requests waiting on partition `p`'s consumer. */
  async #checkAlone(p: number): Promise<void> {
    const jsm = await jetstreamManager(this.#o.nc, { timeout: 10_000 });
    const info = await jsm.consumers.info(this.#o.stream, this.consumerName(p));
    if (info.num_waiting > 0) {
      throw new Error(
        `partition ${p} is read by another worker (consumer ${info.name} has ` +
          `${info.num_waiting} pull requests waiting): each partition needs exactly one worker; ` +
          "waiting until they expire",
      );
    }
  }

  #fail(err: unknown): void {
    const error = describe(err);
    if (this.#failure === undefined) {
      this.#failure = { error, since: Date.now() };
      log.warn("Cannot read stream {stream}, retrying: {error}", {
        stream: this.#o.stream,
        error,
      });
    } else this.#failure.error = error;
  }

  /** Receives into a bounded queue; stores it a group at a time, then acks the group. */
  async #consume(consumer: Consumer, p: number): Promise<void> {
    const { groupMessages = 256, maxPendingBytes = 32 * 1024 * 1024 } = this.#o;
    // Pull requests expire after 10 s: a restarted worker waits at most that for its own.
    const messages = await consumer.consume({ max_messages: groupMessages * 2, expires: 10_000 });
    this.#consumers.add(messages);
    // Closed while the consumer was being made or checked: close() did not see this one to stop.
    if (this.#stop.signal.aborted) messages.stop();
    const pending: JsMsg[] = [];
    let pendingBytes = 0;
    let wake: (() => void) | undefined;
    let room: (() => void) | undefined;
    let ended = false;
    const name = this.consumerName(p);
    const writer = (async () => {
      while (!ended || pending.length > 0) {
        if (pending.length === 0) {
          await new Promise<void>((resolve) => wake = resolve);
          wake = undefined;
          continue;
        }
        const group = pending.splice(0, groupMessages);
        for (const m of group) pendingBytes -= m.data.length;
        room?.();
        await this.#storeUntilDone(name, group);
      }
    })();
    try {
      for await (const m of messages) {
        if (this.#failure !== undefined) {
          log.info("Reading stream {stream} again", { stream: this.#o.stream });
          this.#failure = undefined;
        }
        // Delivered again while its first delivery is being stored (a store slower than
        // ack_wait): that one's ack settles it.
        const seq = m.info.streamSequence;
        if (this.#inProgress.has(seq)) {
          this.stats.redelivered++;
          continue;
        }
        this.#inProgress.set(seq, m);
        pending.push(m);
        pendingBytes += m.data.length;
        wake?.();
        if (pendingBytes >= maxPendingBytes) {
          await new Promise<void>((resolve) => room = resolve);
          room = undefined;
        }
      }
    } finally {
      ended = true;
      wake?.();
      await writer;
      this.#consumers.delete(messages);
    }
  }

  /** Stores a group, trying again after an error until it is stored or the worker stops. */
  async #storeUntilDone(consumer: string, group: readonly JsMsg[]): Promise<void> {
    const signal = this.#stop.signal;
    try {
      for (;;) {
        try {
          await this.#store(consumer, group);
          return;
        } catch (err) {
          // Not acked: what was stored is skipped when the group is stored again.
          if (signal.aborted) return;
          this.#fail(err);
          await sleep(1000, signal).catch(() => {});
          if (signal.aborted) return;
        }
      }
    } finally {
      for (const m of group) this.#inProgress.delete(m.info.streamSequence);
    }
  }

  /** Stores a group of messages (skipping what is stored already), then acks each. */
  async #store(consumer: string, group: readonly JsMsg[]): Promise<void> {
    const { files, marks, pg, stream } = this.#o;
    const fileBatches: Batch[] = [];
    const marked: { id: string; seq: number }[] = [];
    const forPg: { seq: number; batches: Batch[] }[] = [];
    const good: JsMsg[] = [];
    let lines = 0;
    for (const m of group) {
      const seq = m.info.streamSequence;
      let batch: Batch;
      try {
        batch = unpackMessage(m.data, m.headers);
      } catch (err) {
        if (!(err instanceof MessageError)) throw err;
        this.stats.bad++;
        log.error("Message {seq} of stream {stream} is not a logboom batch, not stored: {error}", {
          seq,
          stream,
          error: err.message,
        });
        m.term();
        continue;
      }
      good.push(m);
      lines += batch.lines;
      if (pg !== undefined) forPg.push({ seq, batches: [batch] });
      if (files === undefined) continue;
      const id = `nats:${stream}:${seq}`;
      if (marks?.get(id) !== undefined) {
        this.stats.redelivered++;
        continue;
      }
      const stored = marks?.stored(id, seq)?.get(0) ?? 0;
      const rest = stored > 0 ? dropLines(batch, stored) : batch;
      if (rest === undefined) continue;
      const withMark: Batch = {
        ...rest,
        mark: { stream: id, offset: seq, part: 0, parts: 1, total: batch.lines, skipped: stored },
      };
      if (!files.write(withMark)) await files.writable(withMark);
      fileBatches.push(withMark);
      marked.push({ id, seq });
    }
    if (files !== undefined && fileBatches.length > 0) {
      await files.flush(fileBatches);
      for (const { id, seq } of marked) marks?.advance(id, seq);
    }
    if (pg !== undefined && forPg.length > 0) {
      const { skipped } = await pg.writeSequenced(consumer, forPg, this.#stop.signal);
      if (files === undefined) this.stats.redelivered += skipped.length;
    }
    this.#o.beforeAck?.(good.map((m) => m.info.streamSequence));
    const now = Date.now();
    for (const m of good) {
      const published = Number(m.info.timestampNanos) / 1e6;
      this.stats.storeSeconds.observe(Math.max(0, now - published) / 1000);
    }
    this.stats.messages += good.length;
    this.stats.lines += lines;
    if (pg === undefined) {
      // The journal knows what the files hold: a lost ack only brings a redelivery, skipped.
      for (const m of good) m.ack();
      return;
    }
    // PostgreSQL forgets a sequence once told it is acked: only after JetStream confirmed it.
    const acks = good.map(async (m) => {
      try {
        await m.ackAck();
        return m.info.streamSequence;
      } catch {
        // Delivered again later, and then skipped as stored.
        return undefined;
      }
    });
    const acked = (await Promise.all(acks)).filter((s): s is number => s !== undefined);
    pg.acked(consumer, acked);
  }
}

/** `batch` without its first `n` lines (and their extras); `undefined` when none is left. */
function dropLines(batch: Batch, n: number): Batch | undefined {
  if (n >= batch.lines) return undefined;
  let at = 0;
  for (let i = 0; i < n; i++) at = batch.data.indexOf(10, at) + 1;
  return {
    ...batch,
    data: batch.data.subarray(at),
    lines: batch.lines - n,
    levels: batch.levels?.subarray(n),
    times: batch.times?.subarray(n),
    fields: batch.fields?.slice(n),
    ends: undefined,
  };
}
