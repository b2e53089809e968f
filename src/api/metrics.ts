/**
 * `GET /metrics`: counters and gauges in the Prometheus text format (version 0.0.4).
 *
 * @module
 */

import type { Histogram } from "../pipeline/histogram.ts";
import type { HttpIngestStats } from "../ingest/http_ingest.ts";
import type { LiveHubStats } from "../live/hub.ts";
import type { SourceCounters } from "./source_stats.ts";
import type { NetStats } from "../net/accept.ts";
import type { PgSinkStats } from "../pg/sink.ts";
import { PrometheusWriter } from "../prometheus.ts";

/** What one sink reports; fields it does not have are left out of the page. */
export interface SinkMetrics {
  /** The sink's name, e.g. `file` or `live`. */
  readonly name: string;
  /** Lines written (for the live hub: handed to subscribers). */
  readonly linesWritten: number;
  /** Bytes written. */
  readonly bytesWritten?: number;
  /** Bytes queued and not yet written. */
  readonly queuedBytes?: number;
  /** Failed writes and fsyncs. */
  readonly errors?: number;
  /** Seconds each write took. */
  readonly writeSeconds?: Histogram;
  /** Files open now (file sink). */
  readonly openFiles?: number;
  /** Files waiting for a place under the open-file cap (file sink). */
  readonly waitingFiles?: number;
  /** Outputs whose writes keep failing now (file sink). */
  readonly failingFiles?: number;
  /** Messages published and not yet acknowledged (NATS sink). */
  readonly pendingAcks?: number;
  /** Messages of the stream not yet stored (a storage worker's consumer). */
  readonly consumerLag?: number;
}

/** Everything the page shows, gathered at request time. */
export interface MetricsSnapshot {
  /** Per (input, source) counters. */
  readonly sources: readonly Readonly<SourceCounters>[];
  /** Per-sink counters. */
  readonly sinks: readonly SinkMetrics[];
  /** The live hub's counters. */
  readonly live: LiveHubStats;
  /** HTTP ingest's counters. */
  readonly ingest: Readonly<HttpIngestStats>;
  /** HTTP responses by route and status code. */
  readonly requests: ReadonlyMap<string, ReadonlyMap<number, number>>;
  /** Streams with a high-water mark. */
  readonly streams: number;
  /** Connection counters of the listeners. Default: not shown. */
  readonly net?: NetStats;
  /** Each input's own counters (`Input.stats()`). Default: not shown. */
  readonly inputs?: readonly InputMetrics[];
}

/**
 * What one input reports: its counters by name (see {@linkcode INPUT_FAMILIES}). A name may start
 * with a transport and a dot (`udp.messages`) for inputs with several listeners (syslog), which
 * becomes the `transport` label.
 */
export interface InputMetrics {
  /** The input's name in the config, e.g. `syslog`. */
  readonly name: string;
  /** Its component, e.g. `syslog`. */
  readonly type: string;
  /** Its counters of the moment. */
  readonly stats: Readonly<Record<string, number>>;
}

/**
 * The family of each input counter: name, type, help. A counter of another name is shown as a
 * gauge `logboom_input_<name>`.
 */
export const INPUT_FAMILIES: Readonly<
  Record<string, readonly [name: string, type: "counter" | "gauge", help: string]>
> = {
  connections: ["logboom_input_connections", "gauge", "Connections open, by input."],
  messages: [
    "logboom_input_messages_total",
    "counter",
    "Syslog messages stored, by input and transport (a message split in pieces counts each).",
  ],
  lines: ["logboom_input_lines_total", "counter", "Lines stored, by input."],
  bytes: [
    "logboom_input_bytes_total",
    "counter",
    "Bytes received, framing included, by input and transport.",
  ],
  datagrams: ["logboom_input_datagrams_total", "counter", "UDP datagrams received, by input."],
  empty_datagrams: [
    "logboom_input_empty_datagrams_total",
    "counter",
    "UDP datagrams that held no line (empty or blank), by input.",
  ],
  parse_failures: [
    "logboom_input_parse_failures_total",
    "counter",
    "Syslog messages that did not parse, stored whole with the receive time (counted when " +
    "an output asks for parsed parts).",
  ],
  framing_errors: [
    "logboom_input_framing_errors_total",
    "counter",
    "Octet-counted frames with a bad length or cut short by the connection's end, kept as lines.",
  ],
  split: [
    "logboom_input_split_total",
    "counter",
    "Messages or lines longer than the input's maximum, stored in pieces.",
  ],
  receive_errors: [
    "logboom_input_receive_errors_total",
    "counter",
    "Failed receives on a UDP socket.",
  ],
  kernel_drops: [
    "logboom_input_udp_dropped_total",
    "counter",
    "Datagrams the kernel dropped because the socket's receive buffer was full, since it was " +
    "opened (read with ss or from /proc/net/udp; absent when neither can be read).",
  ],
  queued_bytes: [
    "logboom_input_udp_queued_bytes",
    "gauge",
    "Bytes waiting in the UDP socket's receive buffer.",
  ],
  buffer_bytes: [
    "logboom_input_udp_buffer_bytes",
    "gauge",
    "Size of the UDP socket's receive buffer (receive_buffer, or net.core.rmem_default).",
  ],
  open_files: ["logboom_input_open_files", "gauge", "Files followed, by input."],
};

/** Renders the snapshot as a Prometheus text page. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const out = new PrometheusWriter();
  const { sources, sinks, live, ingest, requests } = snapshot;

  out.family("logboom_received_lines_total", "counter", "Lines received, by input and source.");
  for (const s of sources) out.sample({ input: s.input, source: s.source }, s.lines);
  out.family("logboom_received_bytes_total", "counter", "Bytes received, by input and source.");
  for (const s of sources) out.sample({ input: s.input, source: s.source }, s.bytes);

  let serverErrors = 0;
  for (const codes of requests.values()) {
    for (const [code, n] of codes) if (code >= 500 && code !== 503) serverErrors += n;
  }
  renderSinks(out, sinks, { http: serverErrors });

  out.family("logboom_live_subscribers", "gauge", "Live-tail subscribers connected.");
  out.sample({}, live.subscribers);
  out.family("logboom_live_lines_delivered_total", "counter", "Lines handed to subscribers.");
  out.sample({}, live.linesDelivered);
  out.family(
    "logboom_live_lines_dropped_total",
    "counter",
    "Lines subscribers missed because they fell behind.",
  );
  out.sample({}, live.linesDropped);
  out.family("logboom_live_subscribers_stalled_total", "counter", "Subscribers closed as stalled.");
  out.sample({}, live.subscribersStalled);
  out.family("logboom_live_ring_lines", "gauge", "Lines kept in memory for backfill.");
  out.sample({}, live.ringLines);

  out.family("logboom_ingest_batches_total", "counter", "HTTP ingest bodies acknowledged.");
  out.sample({}, ingest.batches);
  out.family("logboom_ingest_lines_total", "counter", "Lines acknowledged over HTTP.");
  out.sample({}, ingest.lines);
  out.family(
    "logboom_ingest_duplicates_total",
    "counter",
    "HTTP batches refused as duplicates of what a stream already stored.",
  );
  out.sample({}, ingest.duplicates);
  out.family("logboom_ingest_streams", "gauge", "Streams with a stored high-water mark.");
  out.sample({}, snapshot.streams);

  out.family("logboom_http_requests_total", "counter", "HTTP responses, by route and status.");
  for (const [route, codes] of requests) {
    for (const [code, n] of codes) out.sample({ route, code }, n);
  }
  if (snapshot.net !== undefined) renderNet(out, snapshot.net);
  if (snapshot.inputs !== undefined) renderInputs(out, snapshot.inputs);
  return out.text();
}

/**
 * The sinks' families (lines, bytes, queue, gauges, write times) and `logboom_errors_total` with
 * theirs and `otherErrors` by component: the server's page and a storage worker's.
 */
export function renderSinks(
  out: PrometheusWriter,
  sinks: readonly SinkMetrics[],
  otherErrors: Readonly<Record<string, number>> = {},
): void {
  out.family("logboom_sink_lines_written_total", "counter", "Lines written, by sink.");
  for (const sink of sinks) out.sample({ sink: sink.name }, sink.linesWritten);
  out.family("logboom_sink_bytes_written_total", "counter", "Bytes written, by sink.");
  for (const sink of sinks) {
    if (sink.bytesWritten !== undefined) out.sample({ sink: sink.name }, sink.bytesWritten);
  }
  out.family("logboom_sink_queue_bytes", "gauge", "Bytes queued in front of a sink.");
  for (const sink of sinks) {
    if (sink.queuedBytes !== undefined) out.sample({ sink: sink.name }, sink.queuedBytes);
  }
  const gauges = [
    ["logboom_sink_open_files", "Files open, by sink.", "openFiles"],
    [
      "logboom_sink_waiting_files",
      "Files waiting for a place under -maxOpenFiles.",
      "waitingFiles",
    ],
    ["logboom_sink_failing_outputs", "Outputs that cannot be written now.", "failingFiles"],
    ["logboom_sink_pending_acks", "Messages awaiting JetStream's acknowledgement.", "pendingAcks"],
    [
      "logboom_sink_consumer_lag",
      "Stream messages a storage worker has not stored.",
      "consumerLag",
    ],
  ] as const;
  for (const [name, help, key] of gauges) {
    out.family(name, "gauge", help);
    for (const sink of sinks) {
      if (sink[key] !== undefined) out.sample({ sink: sink.name }, sink[key]);
    }
  }
  out.family("logboom_sink_write_seconds", "histogram", "Time each write to a sink took.");
  for (const sink of sinks) {
    if (sink.writeSeconds !== undefined) out.histogram({ sink: sink.name }, sink.writeSeconds);
  }

  out.family("logboom_errors_total", "counter", "Errors: failed writes, HTTP 5xx answers.");
  for (const sink of sinks) {
    if (sink.errors !== undefined) out.sample({ component: sink.name }, sink.errors);
  }
  for (const [component, n] of Object.entries(otherErrors)) out.sample({ component }, n);
}

/** A PostgreSQL sink's counters as a sink's: rows written, transactions timed. */
export function pgSinkMetrics(name: string, stats: Readonly<PgSinkStats>): SinkMetrics {
  return {
    name,
    linesWritten: stats.rows,
    bytesWritten: stats.bytes,
    queuedBytes: stats.queuedBytes,
    errors: stats.errors,
    writeSeconds: stats.transactionSeconds,
  };
}

function renderInputs(out: PrometheusWriter, inputs: readonly InputMetrics[]): void {
  // Samples of a family are grouped: by counter name first, then input.
  const byName = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const input of inputs) {
    for (const [key, value] of Object.entries(input.stats)) {
      if (!Number.isFinite(value)) continue;
      const dot = key.indexOf(".");
      const name = dot === -1 ? key : key.slice(dot + 1);
      const labels: Record<string, string> = { input: input.name, type: input.type };
      if (dot !== -1) labels.transport = key.slice(0, dot);
      let samples = byName.get(name);
      if (samples === undefined) byName.set(name, samples = []);
      samples.push({ labels, value });
    }
  }
  for (const [name, samples] of byName) {
    const known = INPUT_FAMILIES[name];
    const [family, type, help] = known ??
      [`logboom_input_${name.replace(/[^a-zA-Z0-9_]/g, "_")}`, "gauge", `An input's ${name}.`];
    out.family(family, type, help);
    for (const { labels, value } of samples) out.sample(labels, value);
  }
}

function renderNet(out: PrometheusWriter, net: NetStats): void {
  out.family("logboom_connections_open", "gauge", "Connections open, by transport.");
  for (const [transport, n] of Object.entries(net.open)) out.sample({ transport }, n);
  out.family(
    "logboom_connections_accepted_total",
    "counter",
    "Connections accepted, by transport.",
  );
  for (const [transport, n] of Object.entries(net.accepted)) out.sample({ transport }, n);
  out.family(
    "logboom_connections_refused_total",
    "counter",
    "Connections closed at once because -maxConnections were open, by transport.",
  );
  for (const [transport, n] of Object.entries(net.refused)) out.sample({ transport }, n);
  out.family(
    "logboom_connections_timed_out_total",
    "counter",
    "Connections closed by a timeout, by phase: idle, header, body, send.",
  );
  for (const [phase, n] of Object.entries(net.timedOut)) out.sample({ phase }, n);
  out.family(
    "logboom_accept_errors_total",
    "counter",
    "Failed accepts, by error: EMFILE (out of file descriptors), ECONNABORTED (reset first), ...",
  );
  for (const [error, n] of Object.entries(net.acceptErrors)) out.sample({ error }, n);
}
