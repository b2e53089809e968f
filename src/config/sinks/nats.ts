/**
 * The `nats` sink (`nats/nats_sink.ts`): batches published to a JetStream stream, each client
 * acknowledged once JetStream acknowledged its lines; with the HTTP API on, a live tail on this
 * node also sees the lines other ingest nodes published (`nats/cluster_tail.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../../_util.ts";
import type { ClusterTail } from "../../nats/cluster_tail.ts";
import type { NatsSink } from "../../nats/nats_sink.ts";
import { BuildError, defineSink } from "../component.ts";
import type { KeyTable, Values } from "../keys.ts";

const log = getLogger(["logboom", "nats"]);
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SUBJECT = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** The keys of a `nats` sink. */
export const NATS_KEYS = {
  servers: {
    type: "list",
    required: true,
    minItems: 1,
    flag: "nats",
    doc: "NATS servers of the cluster, e.g. nats://10.0.0.1:4222; the client fails over " +
      "between them and reconnects without end",
    check: (item) => checkServer(item),
  },
  stream: {
    type: "string",
    default: "LOGBOOM",
    flag: "natsStream",
    doc: "JetStream stream the batches are published to; created when missing (file storage)",
    check: (v) => NAME.test(v) ? undefined : "letters, digits, _ and - only, at most 64",
  },
  subject: {
    type: "string",
    default: "logboom",
    doc: "Subject prefix: messages go to SUBJECT.<partition>, the stream takes SUBJECT.>",
    check: (v) => SUBJECT.test(v) ? undefined : "dot-separated tokens of letters, digits, _, -",
  },
  partitions: {
    type: "count",
    default: 1,
    min: 1,
    max: 1024,
    doc: "Subject partitions, by a hash of source and host; storage workers share them " +
      "(logboom store -partitions); every ingest node must use the same number",
  },
  replicas: {
    type: "count",
    default: 3,
    min: 1,
    max: 5,
    doc: "Copies of the stream in the cluster when it is created (3 survives one node down)",
  },
  duplicate_window: {
    type: "duration",
    default: "10m",
    doc: "How long JetStream remembers message ids: a batch resent within it is stored once",
  },
  max_bytes: {
    type: "size",
    doc: "Most bytes the stream keeps when it is created; beyond, publishes are refused " +
      "(and clients pushed back), never old lines dropped. Default: no bound",
  },
  queue_bytes: {
    type: "size",
    default: "16MiB",
    doc: "Bound of the lines not yet acknowledged by JetStream; when full, inputs push back. " +
      "Twice the bytes in flight: more holds lines that JetStream takes no sooner, and costs " +
      "the ingest node CPU (fresh memory, collections)",
  },
  in_flight_bytes: {
    type: "size",
    default: "8MiB",
    doc: "Most bytes published and awaiting JetStream's acknowledgement at once",
  },
  batch_lines: {
    type: "count",
    default: 1000,
    min: 1,
    max: 100000,
    doc: "Most lines per message",
  },
  message_bytes: {
    type: "size",
    default: "512KiB",
    min: 1024,
    max: 1000 * 1024,
    doc: "Most payload bytes per message, under the servers' max_payload (1 MB by default)",
  },
  linger: {
    type: "duration",
    default: "20ms",
    doc:
      "How long a message that is not full waits for more lines (an acknowledgement never waits)",
  },
  publish_timeout: {
    type: "duration",
    default: "5s",
    doc: "How long a publish waits for JetStream's acknowledgement before it is sent again " +
      "with the same message id",
  },
  tail: {
    type: "bool",
    default: true,
    doc: "With the HTTP API on, live tails here also see the lines of every other ingest node",
  },
} as const satisfies KeyTable;

/** The values of a `nats` sink. */
export type NatsValues = Values<typeof NATS_KEYS>;

/** The `nats` sink component. */
export const natsSink = defineSink({
  type: "nats",
  service: "NATS JetStream",
  doc: "Batches published to a NATS JetStream stream (replicated); storage workers " +
    "(logboom store) write them to files",
  keys: NATS_KEYS,
  async build(name, values) {
    // Loaded when a nats sink is built: the NATS client takes 60-100 ms to load, which a
    // server without one would pay at every start.
    const [{ connectNats }, { NatsSink }, { ClusterTail }] = await Promise.all([
      import("../../nats/connection.ts"),
      import("../../nats/nats_sink.ts"),
      import("../../nats/cluster_tail.ts"),
    ]);
    const servers = values.servers.map(serverUrl);
    let nc;
    try {
      nc = await connectNats(servers, `logboom ${name}`);
    } catch (err) {
      throw new BuildError("Cannot connect to the NATS servers {servers}: {error}", {
        servers: servers.join(","),
        error: describe(err),
      }, { cause: err });
    }
    const sink = new NatsSink({
      nc,
      stream: {
        name: values.stream,
        subject: values.subject,
        replicas: values.replicas,
        duplicateWindowMs: values.duplicate_window,
        maxBytes: values.max_bytes ?? 0,
      },
      partitions: values.partitions,
      queueBytes: values.queue_bytes,
      maxInFlightBytes: values.in_flight_bytes,
      maxLines: values.batch_lines,
      maxBytes: values.message_bytes,
      lingerMs: values.linger,
      publishTimeoutMs: values.publish_timeout,
    });
    log.info("Publishing to JetStream stream {stream} ({subject}.>) on {servers}", {
      stream: values.stream,
      subject: values.subject,
      servers: servers.join(","),
    });
    let tail: ClusterTail | undefined;
    return {
      sink: values.tail ? withTail(sink, () => tail) : sink,
      metrics: () => ({
        name,
        linesWritten: sink.stats.linesWritten,
        bytesWritten: sink.stats.bytesWritten,
        queuedBytes: sink.queuedBytes,
        errors: sink.stats.errors,
        writeSeconds: sink.stats.publishSeconds,
        pendingAcks: sink.pendingAcks,
      }),
      queueBytes: values.queue_bytes,
      // Stores what the storage workers' templates may read: every label, level, time, field;
      // cuts batches into messages at line counts, where the lines' ends save a scan.
      reads: {
        labels: new Set(["host", "app", "facility", "severity"]),
        times: true,
        levels: true,
        fields: true,
        lineEnds: true,
      },
      outputs: [],
      attachLive: values.tail
        ? (live) => {
          tail?.close();
          tail = new ClusterTail({
            nc,
            stream: values.stream,
            subject: values.subject,
            node: sink.node,
            hub: live.hub,
          });
        }
        : undefined,
    };
  },
});

/** The sink, closing the cluster tail before it closes the connection they share. */
function withTail(sink: NatsSink, tail: () => ClusterTail | undefined): NatsSink {
  const close = sink.close.bind(sink);
  sink.close = async (options) => {
    await tail()?.close();
    await close(options);
  };
  return sink;
}

/** `host:port` or a `nats://` URL. */
function checkServer(item: string): string | undefined {
  try {
    const url = new URL(serverUrl(item));
    if (!["nats:", "tls:"].includes(url.protocol)) return "a nats:// or tls:// URL, or host:port";
    if (url.hostname === "") return "needs a host";
  } catch {
    return "a nats:// URL or host:port, e.g. nats://10.0.0.1:4222";
  }
}

function serverUrl(item: string): string {
  return item.includes("://") ? item : `nats://${item}`;
}
