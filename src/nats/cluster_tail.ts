/**
 * The live tail across the cluster: while a tail is open on this ingest node, an ordered
 * consumer of the stream (new messages only) hands the lines other nodes published to the local
 * live hub, where the tails' filters, cursors and dropped notices apply to them as to local lines.
 * Lines this node published reach the hub directly and are skipped (`Lb-Node`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/transport-node";
import { type ConsumerMessages, DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { describe, sleep } from "../_util.ts";
import type { Sink } from "../pipeline/sink.ts";
import { H_NODE, probeSubject, unpackMessage } from "./message.ts";

const log = getLogger(["logboom", "nats", "tail"]);

/** The hub's parts the tail uses. */
export interface TailHub extends Pick<Sink, "write"> {
  /** Tails open now. */
  readonly subscriberCount: number;
}

/** Options of {@linkcode ClusterTail}. */
export interface ClusterTailOptions {
  nc: NatsConnection;
  stream: string;
  subject: string;
  /** This node's id: its own messages are skipped. */
  node: string;
  hub: TailHub;
  /** How often to look whether a tail is open, in ms. Default 250. */
  checkEveryMs?: number;
  /** How long the consumer runs on once no tail is open, in ms. Default 10 s. */
  idleMs?: number;
}

/** Counters of the cluster tail. */
export interface ClusterTailStats {
  /** Lines from other nodes handed to the hub. */
  lines: number;
  /** Messages that could not be read. */
  bad: number;
}

/** See the module's notes. */
export class ClusterTail {
  /** Counters (a live object). */
  readonly stats: ClusterTailStats = { lines: 0, bad: 0 };
  readonly #options: ClusterTailOptions;
  readonly #stop = new AbortController();
  #messages: ConsumerMessages | undefined;
  readonly #running: Promise<void>;

  constructor(options: ClusterTailOptions) {
    this.#options = options;
    this.#running = this.#run().catch((err) =>
      log.error("The cluster tail stopped: {error}", { error: describe(err) })
    );
  }

  /** Stops the consumer. */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#messages?.stop();
    await this.#running;
  }

  async #run(): Promise<void> {
    const { checkEveryMs = 250 } = this.#options;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (this.#options.hub.subscriberCount === 0) {
        await sleep(checkEveryMs, signal).catch(() => {});
        continue;
      }
      try {
        await this.#follow();
      } catch (err) {
        if (signal.aborted) return;
        log.warn("The cluster tail cannot read stream {stream}, retrying: {error}", {
          stream: this.#options.stream,
          error: describe(err),
        });
        await sleep(1000, signal).catch(() => {});
      }
    }
  }

  /** Runs an ordered consumer until no tail was open for `idleMs`. */
  async #follow(): Promise<void> {
    const { nc, stream, subject, node, hub, idleMs = 10_000, checkEveryMs = 250 } = this.#options;
    const js = jetstream(nc);
    const consumer = await js.consumers.get(stream, {
      deliver_policy: DeliverPolicy.New,
      filter_subjects: `${subject}.>`,
    });
    const messages = await consumer.consume({ max_messages: 64 });
    const probes = probeSubject(subject);
    this.#messages = messages;
    let idleSince = 0;
    const idle = setInterval(() => {
      if (hub.subscriberCount > 0) idleSince = 0;
      else if (idleSince === 0) idleSince = Date.now();
      else if (Date.now() - idleSince > idleMs) messages.stop();
    }, checkEveryMs);
    try {
      for await (const m of messages) {
        if (m.headers?.get(H_NODE) === node || m.subject === probes) continue;
        try {
          const batch = unpackMessage(m.data, m.headers);
          hub.write(batch);
          this.stats.lines += batch.lines;
        } catch (err) {
          if (this.stats.bad++ === 0) {
            log.warn("A message of stream {stream} is not a logboom batch: {error}", {
              stream,
              error: describe(err),
            });
          }
        }
      }
    } finally {
      clearInterval(idle);
      this.#messages = undefined;
    }
  }
}
