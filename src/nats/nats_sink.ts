/**
 * The `nats` sink: batches published to a JetStream stream, acknowledged to clients only once
 * JetStream acknowledged them (stored on a quorum of its replicas).
 *
 * - Batches of one origin are packed into messages of up to `maxLines` lines and `maxBytes`
 *   bytes (lines are never split, except one longer than a message, which is cut into pieces as
 *   `-maxLine` does); a message is sealed when full, after `lingerMs`, or at `flush()`.
 * - Each message has an id: a batch of an idempotent stream (HTTP `X-Stream-Id`, agents, `send`)
 *   gets one from its stream id, offset, part and piece, so a resend through any ingest node is
 *   stored once within the stream's duplicate window; other batches get the node's id (random
 *   per process) and the message's sequence.
 * - Messages are published with at most `maxInFlightBytes` awaiting their acknowledgement; a
 *   timeout or "no responders" (a leader election, no quorum) retries the same message with the
 *   same id after a backoff, so JetStream keeps one copy.
 * - While publishes keep failing, `blocked()` is true (HTTP answers 503 + `Retry-After`),
 *   `problems()` says why (`/readyz`), and `write` asks streaming inputs to wait once the queue
 *   holds its share; nothing queued is dropped.
 * - Subjects: `<subject>.<partition>`, the partition a hash of the batch's source and host, so
 *   that the lines of one origin stay in order in one partition and storage workers can share
 *   the partitions.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, jetstreamManager } from "@nats-io/jetstream";
import { describe } from "../_util.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { Histogram } from "../pipeline/histogram.ts";
import type { Fields } from "../pipeline/record.ts";
import type { Sink, SinkProblem } from "../pipeline/sink.ts";
import { ensureStream, isNotFound, type StreamSpec } from "./connection.ts";
import { type LineExtras, type PackedMessage, packMessage } from "./message.ts";

const log = getLogger(["logboom", "nats", "sink"]);

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
  /** Bound of the queue (packed, unacknowledged bytes), in bytes. Default 64 MiB. */
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
  readonly msgID: string;
  readonly message: PackedMessage;
  readonly bytes: number;
  /** When it was sealed, for the publish latency. */
  readonly sealedAt: number;
}

/** Lines of one origin being gathered into a message. */
interface Gathering {
  readonly meta: BatchMeta;
  readonly receivedAt: number;
  readonly parts: Uint8Array[];
  bytes: number;
  lines: number;
  extras: LineExtras;
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

const DEFAULT_QUEUE = 64 * 1024 * 1024;
const DEFAULT_IN_FLIGHT = 8 * 1024 * 1024;
/** While failing, a streaming input waits once the queue holds this much. */
const FAILING_SHARE = 4 * 1024 * 1024;
const MAX_BACKOFF_MS = 2000;
const MAX_GATHERING = 64;

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
  readonly #js: JetStreamClient;
  readonly #spec: StreamSpec;
  readonly #partitions: number;
  readonly #queueBytes: number;
  readonly #maxInFlight: number;
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #lingerMs: number;
  readonly #timeoutMs: number;
  readonly #gathering = new Map<string, Gathering>();
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Sealed messages not yet sent, in order. */
  #waiting: Outgoing[] = [];
  /** Messages sent and not acknowledged. */
  readonly #inFlight = new Set<Outgoing>();
  #inFlightBytes = 0;
  /** Bytes packed and not acknowledged (gathering, waiting, in flight). */
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
    this.#js = jetstream(nc);
    this.#spec = stream;
    this.#partitions = partitions;
    this.node = node;
    this.#queueBytes = queueBytes;
    this.#maxInFlight = maxInFlightBytes;
    this.#maxLines = maxLines;
    this.#maxBytes = maxBytes;
    this.#lingerMs = lingerMs;
    this.#timeoutMs = publishTimeoutMs;
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

  /** While idle: whether JetStream answers for the stream (a leader, a quorum). */
  #probe(): void {
    if (this.#probing || this.#closed || this.#inFlight.size > 0 || this.#waiting.length > 0) {
      return;
    }
    this.#probing = true;
    (async () => {
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
    })().then(() => this.#probeFailure = undefined, (err) => {
      // A stream not created yet is created by the first publish.
      if (isNotFound(err)) this.#probeFailure = undefined;
      else this.#probeFailure ??= { error: describe(err), since: Date.now() };
    }).finally(() => this.#probing = false);
  }

  /** The connection, shared with the cluster tail. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  /** Bytes packed and not yet acknowledged. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Messages awaiting JetStream's acknowledgement. */
  get pendingAcks(): number {
    return this.#inFlight.size + this.#waiting.length;
  }

  /** Whether the queue is at its bound. */
  get full(): boolean {
    return this.#queued >= this.#queueBytes;
  }

  /** Packs `batch` (copied); `false` asks the producer to wait for {@linkcode writable}. */
  write(batch: Batch): boolean {
    if (this.#closed) throw new Error("The NATS sink is closed");
    if (batch.mark !== undefined) this.#sealMarked(batch);
    else this.#gather(batch);
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
    this.#sealAll();
    const seq = this.#nextSeq - 1;
    if (seq < this.#doneBelow) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push({ seq, resolve }));
  }

  /** While publishes keep failing: every origin waits (HTTP answers 503). */
  blocked(): boolean {
    return this.#failure !== undefined || this.#disconnected !== undefined ||
      this.#probeFailure !== undefined;
  }

  /** Why nothing can be published now, when so. */
  problems(): SinkProblem[] {
    const path = `JetStream stream ${this.#spec.name}`;
    const failure = this.#failure ?? this.#probeFailure;
    if (failure !== undefined) return [{ path, ...failure }];
    if (this.#disconnected !== undefined) {
      return [{ path, error: "no NATS server reachable", since: this.#disconnected }];
    }
    return [];
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
                `${this.#queued} bytes were not acknowledged by JetStream stream ${this.#spec.name}`,
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
      for (const resolve of this.#roomWaiters.splice(0)) resolve();
      await this.#nc.close().catch(() => {});
    }
  }

  #room(): boolean {
    if (this.#queued >= this.#queueBytes) return false;
    return this.#failure === undefined || this.#queued < Math.min(FAILING_SHARE, this.#queueBytes);
  }

  #partition(meta: BatchMeta): number {
    if (this.#partitions === 1) return 0;
    return hash(meta.source + "\0" + meta.host) % this.#partitions;
  }

  /** A marked batch: messages of its own, with ids from its mark. */
  #sealMarked(batch: Batch): void {
    const mark = batch.mark!;
    const base = `${mark.stream}:${mark.offset}:${mark.part}:${mark.skipped}`;
    let piece = 0;
    this.#pieces(batch, (data, lines, extras) => {
      this.#seal(batch.meta, data, lines, batch.receivedAt, extras, `${base}:${piece++}`);
    });
  }

  /** Adds `batch`'s lines to the message of its origin, sealing it when full. */
  #gather(batch: Batch): void {
    this.#pieces(batch, (data, lines, extras) => {
      this.#fill(batch.meta, batch.receivedAt, data, lines, extras);
    }, true);
    if (this.#gathering.size > 0 && this.#lingerTimer === undefined) {
      this.#lingerTimer = setTimeout(() => {
        this.#lingerTimer = undefined;
        this.#sealAll();
        this.#pump();
      }, this.#lingerMs);
    }
  }

  /**
   * Adds whole lines of `data` (borrowed) to the message gathering for `meta`, filling it up to
   * `maxLines` and `maxBytes` and sealing it when full, so messages are as large as allowed.
   */
  #fill(
    meta: BatchMeta,
    receivedAt: number,
    data: Uint8Array,
    lines: number,
    extras: LineExtras,
  ): void {
    const id = keyOf(meta as unknown as object);
    let start = 0;
    let line = 0;
    while (line < lines) {
      const g = this.#gathering.get(id) ?? this.#open(id, meta, receivedAt);
      const roomLines = this.#maxLines - g.lines;
      const roomBytes = this.#maxBytes - g.bytes;
      let end = start;
      let k = 0;
      if (lines - line <= roomLines && data.length - start <= roomBytes) {
        end = data.length;
        k = lines - line;
      } else {
        while (k < roomLines && line + k < lines) {
          const next = data.indexOf(10, end) + 1;
          if (next - start > roomBytes) break;
          end = next;
          k++;
        }
      }
      if (k > 0) {
        const whole = k === lines && start === 0;
        addExtras(g.extras, g.lines, whole ? extras : sliceExtras(extras, line, k), k);
        g.parts.push(data.slice(start, end));
        g.bytes += end - start;
        g.lines += k;
        this.#queued += end - start;
        start = end;
        line += k;
      }
      // Full (or the next line does not fit): sealed, and the rest starts the next message.
      if (k === 0 || g.lines >= this.#maxLines || g.bytes >= this.#maxBytes) {
        this.#sealGathering(id, g);
      }
    }
  }

  #open(id: string, meta: BatchMeta, receivedAt: number): Gathering {
    if (this.#gathering.size >= MAX_GATHERING) {
      const [oldest, first] = this.#gathering.entries().next().value!;
      this.#sealGathering(oldest, first);
    }
    const g: Gathering = { meta, receivedAt, parts: [], bytes: 0, lines: 0, extras: {} };
    this.#gathering.set(id, g);
    return g;
  }

  /**
   * Cuts `batch` into pieces of at most `maxLines` lines and `maxBytes` bytes at line ends (a
   * longer line into pieces of `maxBytes`, each ended with a newline) and calls `take` for each,
   * with each piece's own extras. `borrowed`: the piece's bytes are copied by `take`.
   */
  #pieces(
    batch: Batch,
    take: (data: Uint8Array, lines: number, extras: LineExtras) => void,
    borrowed = false,
  ): void {
    const { data } = batch;
    if (batch.lines <= this.#maxLines && data.length <= this.#maxBytes) {
      take(borrowed ? data : data.slice(), batch.lines, extrasOf(batch, 0, batch.lines));
      return;
    }
    let start = 0;
    let line = 0;
    while (start < data.length) {
      let end = start;
      let lines = 0;
      while (end < data.length && lines < this.#maxLines) {
        const nl = data.indexOf(10, end);
        const next = nl + 1;
        if (next - start > this.#maxBytes) break;
        end = next;
        lines++;
      }
      if (lines === 0) {
        // One line longer than a message: a piece of it, ended with a newline.
        const piece = new Uint8Array(this.#maxBytes);
        piece.set(data.subarray(start, start + this.#maxBytes - 1));
        piece[this.#maxBytes - 1] = 10;
        take(piece, 1, extrasOf(batch, line, 1));
        start += this.#maxBytes - 1;
        continue;
      }
      const slice = data.subarray(start, end);
      take(borrowed ? slice : slice.slice(), lines, extrasOf(batch, line, lines));
      start = end;
      line += lines;
    }
  }

  #sealGathering(id: string, g: Gathering): void {
    this.#gathering.delete(id);
    const data = g.parts.length === 1 ? g.parts[0] : concat(g.parts, g.bytes);
    this.#queued -= g.bytes;
    this.#seal(g.meta, data, g.lines, g.receivedAt, g.extras, undefined);
  }

  #sealAll(): void {
    for (const [id, g] of [...this.#gathering]) this.#sealGathering(id, g);
  }

  #seal(
    meta: BatchMeta,
    data: Uint8Array,
    lines: number,
    receivedAt: number,
    extras: LineExtras,
    msgID: string | undefined,
  ): void {
    const seq = this.#nextSeq++;
    const message = packMessage(data, lines, meta, receivedAt, this.node, extras);
    const out: Outgoing = {
      seq,
      subject: `${this.#spec.subject}.${this.#partition(meta)}`,
      msgID: msgID ?? `${this.node}:${seq}`,
      message,
      bytes: message.payload.length,
      sealedAt: performance.now(),
    };
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
      if (this.#inFlight.size > 0 && this.#inFlightBytes + next.bytes > this.#maxInFlight) break;
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
    this.#inFlight.add(out);
    this.#inFlightBytes += out.bytes;
    this.#js.publish(out.subject, out.message.payload, {
      msgID: out.msgID,
      headers: out.message.headers,
      timeout: this.#timeoutMs,
    }).then(
      (ack) => this.#acked(out, ack.duplicate),
      (err) => this.#failed(out, err),
    );
  }

  #acked(out: Outgoing, duplicate: boolean): void {
    this.#inFlight.delete(out);
    this.#inFlightBytes -= out.bytes;
    this.#queued -= out.bytes;
    if (this.#failure !== undefined) {
      log.info("Publishing to JetStream stream {stream} works again", { stream: this.#spec.name });
    }
    this.#failure = undefined;
    this.#probeFailure = undefined;
    this.#backoffMs = 0;
    this.stats.messages++;
    if (duplicate) this.stats.duplicates++;
    this.stats.linesWritten += out.message.lines;
    this.stats.bytesWritten += out.bytes;
    this.stats.publishSeconds.observe((performance.now() - out.sealedAt) / 1000);
    this.#done(out.seq);
    this.#pump();
    this.#wakeRoom();
  }

  #failed(out: Outgoing, err: unknown): void {
    this.#inFlight.delete(out);
    this.#inFlightBytes -= out.bytes;
    const error = describe(err);
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

const keys = new WeakMap<object, string>();
let nextKey = 0;
function keyOf(o: object): string {
  let k = keys.get(o);
  if (k === undefined) keys.set(o, k = String(nextKey++));
  return k;
}

/** FNV-1a of a string's UTF-16 units. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The extras of `count` lines of `batch` from line `from`. */
function extrasOf(batch: Batch, from: number, count: number): LineExtras {
  const extras: LineExtras = {};
  if (batch.levels !== undefined) {
    extras.levels = Array.from(batch.levels.subarray(from, from + count));
  }
  if (batch.times !== undefined) {
    extras.times = Array.from(
      batch.times.subarray(from, from + count),
      (t) => Number.isNaN(t) ? null : t,
    );
  }
  if (batch.fields !== undefined) {
    extras.fields = batch.fields.slice(from, from + count).map((f) =>
      f ?? null
    ) as (Readonly<Fields> | null)[];
  }
  return extras;
}

/** Lines `from` to `from + count` of `extras`. */
function sliceExtras(extras: LineExtras, from: number, count: number): LineExtras {
  const out: LineExtras = {};
  if (extras.levels !== undefined) out.levels = extras.levels.slice(from, from + count);
  if (extras.times !== undefined) out.times = extras.times.slice(from, from + count);
  if (extras.fields !== undefined) out.fields = extras.fields.slice(from, from + count);
  return out;
}

/** Appends `more` (of `lines` lines) to `into` (of `have` lines), filling gaps with nothing. */
function addExtras(into: LineExtras, have: number, more: LineExtras, lines: number): void {
  if (more.levels !== undefined || into.levels !== undefined) {
    into.levels ??= new Array(have).fill(0);
    into.levels.push(...(more.levels ?? new Array(lines).fill(0)));
  }
  if (more.times !== undefined || into.times !== undefined) {
    into.times ??= new Array(have).fill(null);
    into.times.push(...(more.times ?? new Array(lines).fill(null)));
  }
  if (more.fields !== undefined || into.fields !== undefined) {
    into.fields ??= new Array(have).fill(null);
    into.fields.push(...(more.fields ?? new Array(lines).fill(null)));
  }
}
