/**
 * The `nats` sink: batches published to a JetStream stream, acknowledged to clients only once
 * JetStream acknowledged them (stored on a quorum of its replicas).
 *
 * - Batches of one origin are packed into messages of up to `maxLines` lines and `maxBytes`
 *   bytes (`packer.ts`); a message is sealed when full, after `lingerMs`, or at `flush()`.
 * - Each message has an id: a batch of an idempotent stream (HTTP `X-Stream-Id`, agents, `send`)
 *   gets one from its stream id, offset, part and piece, so a resend through any ingest node is
 *   stored once within the stream's duplicate window; other batches get the node's id (random
 *   per process) and the message's sequence.
 * - Messages are published with at most `maxInFlightBytes` awaiting their acknowledgement; a
 *   timeout or "no responders" (a leader election, no quorum) retries the same message with the
 *   same id after a backoff, so JetStream keeps one copy. A publish is a plain NATS publish with
 *   a reply subject under one inbox subscription of the sink's, its acknowledgement (JetStream's
 *   `PubAck`) matched by the reply subject's last token, and timeouts found by one timer: what
 *   `JetStreamClient.publish` does, without a request object, an error object (for its stack)
 *   and a timer per message.
 * - While publishes keep failing, `blocked()` is true (HTTP answers 503 + `Retry-After`),
 *   `problems()` says why (`/readyz`), and `write` asks streaming inputs to wait once the queue
 *   holds its share; nothing queued is dropped. Only a message stored ends it: an acknowledgement
 *   of a new message, or, with nothing under way, of an empty one that a probe publishes to
 *   `<subject>.probe` (a leader that has just lost its followers still lists them as current for
 *   seconds, and acknowledges duplicates without them).
 * - Subjects: `<subject>.<partition>`, the partition a hash of the batch's source and host, so
 *   that the lines of one origin stay in order in one partition and storage workers can share
 *   the partitions.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  createInbox,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe } from "../_util.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { Histogram } from "../pipeline/histogram.ts";
import type { Sink, SinkProblem } from "../pipeline/sink.ts";
import { ensureStream, isNotFound, type StreamSpec } from "./connection.ts";
import { type PackedMessage, packMessage, probeSubject } from "./message.ts";
import { type Packed, Packer } from "./packer.ts";

const log = getLogger(["logboom", "nats", "sink"]);
const decoder = new TextDecoder();

/** Options of {@linkcode NatsSink}. */
export interface NatsSinkOptions {
  /** The connection (the sink closes it). */
  nc: NatsConnection;
  /** The stream, created when missing. */
  stream: StreamSpec;
  /** Subject partitions: messages go to `<subject>.<0..partitions-1>`. Default 1. */
  partitions?: number;
  /** This node's id in message ids and the `Lb-Node` header; default random. */
  node?: string;
  /** Bound of the queue (packed, unacknowledged bytes), in bytes. Default 16 MiB. */
  queueBytes?: number;
  /** Most bytes awaiting JetStream's acknowledgement at once. Default 8 MiB. */
  maxInFlightBytes?: number;
  /** Most lines per message. Default 1000. */
  maxLines?: number;
  /** Most payload bytes per message (under the server's `max_payload`). Default 512 KiB. */
  maxBytes?: number;
  /** How long a message not yet full waits for more lines, in ms. Default 20. */
  lingerMs?: number;
  /** How long a publish waits for its acknowledgement before it is retried, in ms. Default 5000. */
  publishTimeoutMs?: number;
  /**
   * While nothing is being published, how often to ask JetStream for the stream's state, so that
   * `/readyz` says when it cannot be reached (or has no quorum) before a client finds out, in ms.
   * Default 5000.
   */
  probeEveryMs?: number;
}

/** One message, packed, until JetStream acknowledged it. */
interface Outgoing {
  readonly seq: number;
  readonly subject: string;
  readonly message: PackedMessage;
  readonly bytes: number;
  /** When it was sealed, for the publish latency. */
  readonly sealedAt: number;
  /** When it was last sent (`performance.now()`), for its timeout. */
  sentAt: number;
  /** Times it was sent. */
  sends: number;
}

/** Counters of the sink, for `/metrics`. */
export interface NatsSinkStats {
  /** Lines JetStream acknowledged. */
  linesWritten: number;
  /** Payload bytes JetStream acknowledged. */
  bytesWritten: number;
  /** Messages JetStream acknowledged. */
  messages: number;
  /** Messages JetStream said it already had (a resend within the duplicate window). */
  duplicates: number;
  /** Failed publish attempts (each retried). */
  errors: number;
  /** Seconds from sealing a message to JetStream's acknowledgement. */
  publishSeconds: Histogram;
}

const DEFAULT_QUEUE = 16 * 1024 * 1024;
const DEFAULT_IN_FLIGHT = 8 * 1024 * 1024;
/** While failing, a streaming input waits once the queue holds this much. */
const FAILING_SHARE = 4 * 1024 * 1024;
const MAX_BACKOFF_MS = 2000;
/** No acknowledgement for this long while publishes are in flight: blocked (503, TCP waits). */
const STALL_MS = 2000;

/** Publishes batches to JetStream; see the module's notes. */
export class NatsSink implements Sink {
  /** Always `nats`. */
  readonly name = "nats";
  /** This node's id. */
  readonly node: string;
  /** Counters (a live object). */
  readonly stats: NatsSinkStats = {
    linesWritten: 0,
    bytesWritten: 0,
    messages: 0,
    duplicates: 0,
    errors: 0,
    publishSeconds: new Histogram(),
  };
  readonly #nc: NatsConnection;
  /** Replies (acknowledgements) come to `<#inbox>.<attempt>`. */
  readonly #inbox: string;
  readonly #replies: Subscription;
  /** Messages sent and not acknowledged, by attempt (a retry is a new attempt), oldest first. */
  readonly #attempts = new Map<number, Outgoing>();
  #lastAttempt = 0;
  #timeoutTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #spec: StreamSpec;
  readonly #partitions: number;
  readonly #queueBytes: number;
  readonly #maxInFlight: number;
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #lingerMs: number;
  readonly #timeoutMs: number;
  readonly #packer: Packer;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Sealed messages not yet sent, in order. */
  #waiting: Outgoing[] = [];
  #inFlightBytes = 0;
  /** Bytes of sealed messages not acknowledged (waiting, in flight). */
  #queued = 0;
  #nextSeq = 1;
  /** Every message below this sequence is acknowledged. */
  #doneBelow = 1;
  readonly #doneAbove = new Set<number>();
  #flushWaiters: { seq: number; resolve: () => void }[] = [];
  #roomWaiters: (() => void)[] = [];
  #streamReady = false;
  #ensuring: Promise<void> | undefined;
  #failure: { error: string; since: number } | undefined;
  #backoffMs = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Since when the connection is lost, while it is. */
  #disconnected: number | undefined;
  /** What the last idle probe found wrong, while it is. */
  #probeFailure: { error: string; since: number } | undefined;
  #probing = false;
  /** When the last acknowledgement came, and since when publishes are in flight. */
  #lastAck = 0;
  #busySince = 0;
  readonly #probeTimer: ReturnType<typeof setInterval>;

  constructor(options: NatsSinkOptions) {
    const {
      nc,
      stream,
      partitions = 1,
      node = randomNode(),
      queueBytes = DEFAULT_QUEUE,
      maxInFlightBytes = DEFAULT_IN_FLIGHT,
      maxLines = 1000,
      maxBytes = 512 * 1024,
      lingerMs = 20,
      publishTimeoutMs = 5000,
      probeEveryMs = 5000,
    } = options;
    this.#nc = nc;
    this.#inbox = createInbox();
    this.#replies = nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (err === null) this.#reply(msg);
      },
    });
    this.#spec = stream;
    this.#partitions = partitions;
    this.node = node;
    this.#queueBytes = queueBytes;
    this.#maxInFlight = maxInFlightBytes;
    this.#maxLines = maxLines;
    this.#maxBytes = maxBytes;
    this.#lingerMs = lingerMs;
    this.#timeoutMs = publishTimeoutMs;
    this.#packer = new Packer({ maxLines, maxBytes }, (packed) => this.#seal(packed));
    this.#probeTimer = setInterval(() => this.#probe(), probeEveryMs);
    Deno.unrefTimer(this.#probeTimer);
    this.#watchConnection();
  }

  /** Notes when the connection is lost and back. */
  #watchConnection(): void {
    (async () => {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect") this.#disconnected ??= Date.now();
        else if (status.type === "reconnect") {
          this.#disconnected = undefined;
          // A server answers again, which says nothing of the stream's quorum (two of three
          // down, the one left takes the connection): blocked until a probe finds one.
          this.#probeFailure ??= {
            error: "reconnected; checking that the stream has a quorum",
            since: Date.now(),
          };
          this.#probe(true);
          // A publish failed while away is sent again now rather than after its backoff.
          if (this.#retryTimer !== undefined) {
            clearTimeout(this.#retryTimer);
            this.#retryTimer = undefined;
            this.#pump();
          }
        }
      }
    })().catch(() => {});
  }

  /**
   * While idle (or when `now`, after a reconnect): whether JetStream answers for the stream (a
   * leader, a quorum); while failing and idle, whether it stores.
   */
  #probe(now = false): void {
    if (this.#probing || this.#closed) return;
    if (!now && this.pendingAcks > 0) return;
    this.#probing = true;
    (async (): Promise<boolean> => {
      const jsm = await jetstreamManager(this.#nc, { timeout: this.#timeoutMs, checkAPI: false });
      const info = await jsm.streams.info(this.#spec.name);
      // A leader that lost its followers answers for a while still: count the replicas it hears.
      const replicas = info.config.num_replicas;
      if (replicas > 1) {
        const heard = (info.cluster?.replicas ?? []).filter((r) =>
          !r.offline && (r.current || r.active < 5e9)
        ).length;
        const quorum = Math.floor(replicas / 2) + 1;
        if (info.cluster?.leader === undefined || 1 + heard < quorum) {
          throw new Error(`no quorum: ${1 + heard} of ${replicas} replicas reachable`);
        }
      }
      // Publishes under way say themselves whether JetStream stores.
      if (this.pendingAcks > 0) return false;
      // Failing, what the leader lists proves nothing (it lists followers dead for seconds as
      // current): a message stored does.
      if (this.#failure !== undefined || this.#probeFailure !== undefined) {
        await jetstream(this.#nc).publish(probeSubject(this.#spec.subject), undefined, {
          timeout: this.#timeoutMs,
        }).catch((err) => {
          throw new Error(`a probe message was not stored: ${describe(err)}`);
        });
      }
      return true;
    })().then((stores) => {
      if (stores) this.#recovered();
    }, (err) => {
      // A stream not created yet is created by the first publish.
      if (isNotFound(err)) {
        if (this.pendingAcks === 0) this.#recovered();
      } else {
        this.#probeFailure = {
          error: describe(err),
          since: this.#probeFailure?.since ?? Date.now(),
        };
      }
    }).finally(() => this.#probing = false);
  }

  /** The connection, shared with the cluster tail. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  /** Bytes packed and not yet acknowledged. */
  get queuedBytes(): number {
    return this.#queued + this.#packer.bytes;
  }

  /** Messages awaiting JetStream's acknowledgement. */
  get pendingAcks(): number {
    return this.#attempts.size + this.#waiting.length;
  }

  /** Whether the queue is at its bound. */
  get full(): boolean {
    return this.queuedBytes >= this.#queueBytes;
  }

  /** Packs `batch` (copied); `false` asks the producer to wait for {@linkcode writable}. */
  write(batch: Batch): boolean {
    if (this.#closed) throw new Error("The NATS sink is closed");
    this.#packer.add(batch);
    this.#lingerLater();
    this.#pump();
    return this.#room();
  }

  /** Resolves once the queue has room again (and, while failing, holds less than its share). */
  writable(): Promise<void> {
    if (this.#room() || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Resolves once every batch written before the call is acknowledged by JetStream. */
  flush(): Promise<void> {
    this.#packer.sealAll();
    const seq = this.#nextSeq - 1;
    if (seq < this.#doneBelow) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push({ seq, resolve }));
  }

  /** While publishes keep failing: every origin waits (HTTP answers 503). */
  blocked(): boolean {
    return this.#failure !== undefined || this.#disconnected !== undefined ||
      this.#probeFailure !== undefined || this.#stalledSince() !== undefined;
  }

  /** Why nothing can be published now, when so. */
  problems(): SinkProblem[] {
    const path = `JetStream stream ${this.#spec.name}`;
    const failure = this.#failure ?? this.#probeFailure;
    if (failure !== undefined) return [{ path, ...failure }];
    if (this.#disconnected !== undefined) {
      return [{ path, error: "no NATS server reachable", since: this.#disconnected }];
    }
    const stalled = this.#stalledSince();
    if (stalled !== undefined) {
      return [{ path, error: "no acknowledgement from JetStream (election?)", since: stalled }];
    }
    return [];
  }

  /**
   * Since when publishes are awaiting acknowledgements and none came for {@linkcode STALL_MS}
   * (a leader election, a quorum lost: the publishes time out only later), if so.
   */
  #stalledSince(): number | undefined {
    if (this.#attempts.size === 0) return undefined;
    const since = Math.max(this.#lastAck, this.#busySince);
    return Date.now() - since > STALL_MS ? since : undefined;
  }

  /**
   * Publishes what is queued and waits for its acknowledgements, then closes the connection.
   * When `signal` aborts first, it rejects naming how many lines were not acknowledged.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closed) return;
    const done = this.flush();
    this.#closed = true;
    const { signal } = options;
    try {
      if (signal === undefined) await done;
      else {
        await new Promise<void>((resolve, reject) => {
          const abort = () =>
            reject(
              new Error(
                `${this.queuedBytes} bytes were not acknowledged by JetStream stream ${this.#spec.name}`,
              ),
            );
          if (signal.aborted) return abort();
          signal.addEventListener("abort", abort, { once: true });
          done.then(() => {
            signal.removeEventListener("abort", abort);
            resolve();
          });
        });
      }
    } finally {
      clearTimeout(this.#lingerTimer);
      clearInterval(this.#probeTimer);
      clearTimeout(this.#retryTimer);
      clearTimeout(this.#timeoutTimer);
      for (const resolve of this.#roomWaiters.splice(0)) resolve();
      if (!this.#nc.isClosed()) this.#replies.unsubscribe();
      await this.#nc.close().catch(() => {});
    }
  }

  #room(): boolean {
    const queued = this.queuedBytes;
    if (queued >= this.#queueBytes) return false;
    return !this.blocked() || queued < Math.min(FAILING_SHARE, this.#queueBytes);
  }

  #partition(meta: BatchMeta): number {
    if (this.#partitions === 1) return 0;
    return hash(meta.source + "\0" + meta.host) % this.#partitions;
  }

  /** Seals what is gathered after `lingerMs`, unless it fills first. */
  #lingerLater(): void {
    if (this.#packer.open === 0 || this.#lingerTimer !== undefined) return;
    this.#lingerTimer = setTimeout(() => {
      this.#lingerTimer = undefined;
      this.#packer.sealAll();
      this.#pump();
    }, this.#lingerMs);
  }

  /** A sealed message: queued to publish, with its id. */
  #seal(packed: Packed): void {
    const { meta, data, lines, receivedAt, extras, id } = packed;
    const seq = this.#nextSeq++;
    const message = packMessage(data, lines, meta, receivedAt, this.node, extras);
    message.headers.set("Nats-Msg-Id", id ?? `${this.node}:${seq}`);
    const out: Outgoing = {
      seq,
      subject: `${this.#spec.subject}.${this.#partition(meta)}`,
      message,
      bytes: message.payload.length,
      sealedAt: performance.now(),
      sentAt: 0,
      sends: 0,
    };
    // The packer's bytes were copied into the payload (with the lines' extras): free now.
    if (message.payload !== data) this.#packer.release(data);
    this.#queued += out.bytes;
    this.#waiting.push(out);
  }

  /** Sends waiting messages while the in-flight bound allows. */
  #pump(): void {
    if (this.#retryTimer !== undefined) return;
    if (!this.#streamReady) {
      if (this.#waiting.length > 0) this.#ensure();
      return;
    }
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0];
      if (this.#attempts.size > 0 && this.#inFlightBytes + next.bytes > this.#maxInFlight) break;
      this.#waiting.shift();
      this.#send(next);
    }
  }

  /** Makes sure the stream exists before the first publish (and after a failure to). */
  #ensure(): void {
    if (this.#ensuring !== undefined || this.#retryTimer !== undefined) return;
    this.#ensuring = (async () => {
      const jsm = await jetstreamManager(this.#nc, { timeout: this.#timeoutMs });
      await ensureStream(jsm, this.#spec);
    })().then(() => {
      this.#ensuring = undefined;
      this.#streamReady = true;
      this.#pump();
    }, (err) => {
      this.#ensuring = undefined;
      this.#fail(describe(err));
      this.#retryLater();
    });
  }

  #fail(error: string): void {
    this.stats.errors++;
    if (this.#failure === undefined) {
      this.#failure = { error, since: Date.now() };
      log.warn("Cannot publish to JetStream stream {stream}, retrying with the same ids: {error}", {
        stream: this.#spec.name,
        error,
      });
    } else this.#failure.error = error;
  }

  #send(out: Outgoing): void {
    if (this.#attempts.size === 0) this.#busySince = Date.now();
    const attempt = ++this.#lastAttempt;
    out.sentAt = performance.now();
    out.sends++;
    this.#attempts.set(attempt, out);
    this.#inFlightBytes += out.bytes;
    try {
      this.#nc.publish(out.subject, out.message.payload, {
        reply: `${this.#inbox}.${attempt}`,
        headers: out.message.headers,
      });
    } catch (err) {
      this.#failed(attempt, out, describe(err));
      return;
    }
    this.#timeoutLater();
  }

  /** JetStream's answer to an attempt: its `PubAck`, an API error, or "no responders". */
  #reply(msg: Msg): void {
    const attempt = Number(msg.subject.slice(this.#inbox.length + 1));
    const out = this.#attempts.get(attempt);
    // An answer after its attempt timed out: the retry (same message id) gets its own.
    if (out === undefined) return;
    if (msg.headers?.hasError) {
      const { code, description } = msg.headers;
      this.#failed(
        attempt,
        out,
        code === 503
          ? "no responders (no stream leader for the subject)"
          : `${code} ${description}`,
      );
      return;
    }
    let ack: {
      stream?: string;
      duplicate?: boolean;
      error?: { code?: number; description?: string };
    };
    try {
      ack = JSON.parse(decoder.decode(msg.data));
    } catch {
      this.#failed(attempt, out, "JetStream's acknowledgement is not JSON");
      return;
    }
    if (ack.error !== undefined) {
      this.#failed(
        attempt,
        out,
        `${ack.error.description ?? "JetStream error"} (${ack.error.code})`,
      );
    } else if (typeof ack.stream !== "string" || ack.stream === "") {
      this.#failed(attempt, out, "JetStream's acknowledgement names no stream");
    } else this.#acked(attempt, out, ack.duplicate === true);
  }

  /** Fails the attempts older than the publish timeout; again when the oldest left is due. */
  #timeoutLater(): void {
    if (this.#timeoutTimer !== undefined) return;
    const oldest = this.#attempts.values().next().value;
    if (oldest === undefined) return;
    const wait = Math.max(0, oldest.sentAt + this.#timeoutMs - performance.now());
    this.#timeoutTimer = setTimeout(() => {
      this.#timeoutTimer = undefined;
      const due = performance.now() - this.#timeoutMs;
      for (const [attempt, out] of this.#attempts) {
        if (out.sentAt > due) break;
        this.#failed(attempt, out, `no acknowledgement within ${this.#timeoutMs} ms`);
      }
      this.#timeoutLater();
    }, wait);
  }

  #acked(attempt: number, out: Outgoing, duplicate: boolean): void {
    this.#lastAck = Date.now();
    this.#attempts.delete(attempt);
    this.#inFlightBytes -= out.bytes;
    this.#queued -= out.bytes;
    // A message stored proves a quorum; "duplicate" only that the leader knew its id (it answers
    // so without its followers, while new messages time out).
    if (!duplicate) this.#recovered();
    else if (this.#failure !== undefined || this.#probeFailure !== undefined) {
      // The last under way was one it knew: a probe says at once whether it stores (idle only).
      queueMicrotask(() => this.#probe());
    }
    this.stats.messages++;
    if (duplicate) this.stats.duplicates++;
    this.stats.linesWritten += out.message.lines;
    this.stats.bytesWritten += out.bytes;
    this.stats.publishSeconds.observe((performance.now() - out.sealedAt) / 1000);
    this.#done(out.seq);
    // Sent once and acknowledged: the client wrote it out and holds it no more. (An attempt that
    // timed out may still sit in the client's buffer, waiting for a reconnect.)
    if (out.sends === 1) this.#packer.release(out.message.payload);
    this.#pump();
    this.#wakeRoom();
  }

  /**
   * JetStream stores again (a message of the queue's or a probe's was stored), or, idle, the
   * stream is yet to be made by the next publish: inputs go on.
   */
  #recovered(): void {
    if (this.#failure !== undefined) {
      log.info("Publishing to JetStream stream {stream} works again", { stream: this.#spec.name });
    }
    this.#failure = undefined;
    this.#probeFailure = undefined;
    this.#backoffMs = 0;
    this.#wakeRoom();
  }

  #failed(attempt: number, out: Outgoing, error: string): void {
    this.#attempts.delete(attempt);
    this.#inFlightBytes -= out.bytes;
    this.#fail(error);
    // No stream takes the subject (deleted since?): it is made again before the next try.
    if (/no responders|stream not found|jetstream is not enabled/i.test(error)) {
      this.#streamReady = false;
    }
    // Back at the front, in order; sent again after a pause, under the same message id.
    const at = this.#waiting.findIndex((w) => w.seq > out.seq);
    if (at < 0) this.#waiting.push(out);
    else this.#waiting.splice(at, 0, out);
    this.#retryLater();
  }

  #retryLater(): void {
    if (this.#retryTimer !== undefined || this.#closedForGood()) return;
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(100, this.#backoffMs * 2));
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pump();
    }, this.#backoffMs);
  }

  #closedForGood(): boolean {
    return this.#nc.isClosed();
  }

  #done(seq: number): void {
    if (seq === this.#doneBelow) {
      this.#doneBelow++;
      while (this.#doneAbove.delete(this.#doneBelow)) this.#doneBelow++;
    } else this.#doneAbove.add(seq);
    if (this.#flushWaiters.length === 0) return;
    const still: { seq: number; resolve: () => void }[] = [];
    for (const w of this.#flushWaiters) {
      if (w.seq < this.#doneBelow) w.resolve();
      else still.push(w);
    }
    this.#flushWaiters = still;
  }

  #wakeRoom(): void {
    if (this.#roomWaiters.length === 0 || !this.#room()) return;
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
  }
}

/** A random node id: 12 letters and digits. */
export function randomNode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/]/g, "x");
}

/** FNV-1a of a string's UTF-16 units. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
