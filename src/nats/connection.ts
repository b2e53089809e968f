/**
 * A connection to a NATS cluster that keeps trying (reconnects without end, also when no server
 * answers at startup), and the JetStream stream logboom publishes to, created when missing.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, type JetStreamManager, StorageType } from "@nats-io/jetstream";
import { describe } from "../_util.ts";

const log = getLogger(["logboom", "nats"]);

/** What {@linkcode ensureStream} creates. */
export interface StreamSpec {
  /** The stream's name. */
  name: string;
  /** The subject prefix: the stream takes `<subject>.>`. */
  subject: string;
  /** Copies in the cluster (1, 3 or 5). */
  replicas: number;
  /** How long a message id is remembered for de-duplication, in ms. */
  duplicateWindowMs: number;
  /** Most bytes the stream keeps; publishes are refused beyond (never old lines dropped). 0: no bound. */
  maxBytes: number;
}

/**
 * Connects to `servers` (`nats://host:port`, comma-separated lists split by the caller). Resolves
 * at once even when none answers yet: the client keeps trying in the background, and what needs
 * the connection waits or fails with a timeout.
 */
export async function connectNats(
  servers: readonly string[],
  name: string,
): Promise<NatsConnection> {
  const nc = await connect({
    servers: [...servers],
    name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5000,
    maxPingOut: 2,
  });
  watchStatus(nc, name);
  return nc;
}

/** Logs the connection's disconnects and reconnects. */
function watchStatus(nc: NatsConnection, name: string): void {
  (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        log.warn("NATS connection {name} lost ({server}); reconnecting", {
          name,
          server: "server" in status ? status.server : "",
        });
      } else if (status.type === "reconnect") {
        log.info("NATS connection {name} back ({server})", {
          name,
          server: "server" in status ? status.server : "",
        });
      }
    }
  })().catch((err) =>
    log.debug("NATS status of {name} ended: {error}", { name, error: describe(err) })
  );
}

/**
 * Makes sure the stream exists and takes `<subject>.>`: creates it (file storage, `replicas`
 * copies, the duplicate window, refusing new messages when full) when missing. An existing
 * stream is left as it is, unless it does not take the subject: then it throws, naming both.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec): Promise<void> {
  const subject = `${spec.subject}.>`;
  try {
    const info = await jsm.streams.info(spec.name);
    const subjects = info.config.subjects ?? [];
    if (!subjects.some((s) => s === subject || s === ">" || s === `${spec.subject}.*`)) {
      throw new Error(
        `stream ${spec.name} exists but does not take subject ${subject} (it takes ${
          subjects.join(", ") || "none"
        })`,
      );
    }
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await jsm.streams.add({
    name: spec.name,
    subjects: [subject],
    storage: StorageType.File,
    num_replicas: spec.replicas,
    duplicate_window: nanos(spec.duplicateWindowMs),
    discard: DiscardPolicy.New,
    max_bytes: spec.maxBytes > 0 ? spec.maxBytes : -1,
  });
  log.info("Created JetStream stream {stream} for {subject} with {replicas} replicas", {
    stream: spec.name,
    subject,
    replicas: spec.replicas,
  });
}

/** Whether a JetStream API error says the stream or consumer does not exist. */
export function isNotFound(err: unknown): boolean {
  const text = describe(err);
  return /not found/i.test(text) && !/no responders/i.test(text);
}
