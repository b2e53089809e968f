import assert from "node:assert/strict";
import { Histogram } from "../pipeline/histogram.ts";
import { renderMetrics } from "./metrics.ts";

Deno.test("renderMetrics writes valid families with escaped labels and cumulative buckets", () => {
  const h = new Histogram([0.1, 1]);
  h.observe(0.05);
  h.observe(0.5);
  const text = renderMetrics({
    sources: [{ input: "http", source: 'we"b\\\n', lines: 3, bytes: 30, lastSeen: 0 }],
    sinks: [{
      name: "file",
      linesWritten: 3,
      bytesWritten: 30,
      queuedBytes: 0,
      errors: 1,
      writeSeconds: h,
    }],
    live: {
      subscribers: 2,
      linesDelivered: 5,
      linesDropped: 7,
      subscribersStalled: 0,
      ringLines: 3,
      ringBytes: 30,
      lastId: 3,
    },
    ingest: { batches: 1, lines: 3, duplicates: 4, refused: { 413: 1 } },
    requests: new Map([["/api/v1/ingest", new Map([[200, 1], [500, 2]])]]),
    streams: 1,
  });
  const lines = text.trim().split("\n");
  assert.ok(lines.includes('logboom_received_lines_total{input="http",source="we\\"b\\\\\\n"} 3'));
  assert.ok(lines.includes('logboom_sink_write_seconds_bucket{sink="file",le="0.1"} 1'));
  assert.ok(lines.includes('logboom_sink_write_seconds_bucket{sink="file",le="1"} 2'));
  assert.ok(lines.includes('logboom_sink_write_seconds_bucket{sink="file",le="+Inf"} 2'));
  assert.ok(lines.includes('logboom_sink_write_seconds_count{sink="file"} 2'));
  assert.ok(lines.includes('logboom_errors_total{component="http"} 2'));
  assert.ok(lines.includes("logboom_live_lines_dropped_total 7"));
  assert.ok(lines.includes("logboom_ingest_duplicates_total 4"));
  // Every sample belongs to the family declared above it.
  let family = "";
  for (const line of lines) {
    const declared = /^# TYPE (\w+) (counter|gauge|histogram)$/.exec(line);
    if (declared) family = declared[1];
    else if (!line.startsWith("#")) assert.ok(line.startsWith(family), line);
  }
});

Deno.test("renderMetrics shows each input's counters, by input, type and transport", () => {
  const text = renderMetrics({
    sources: [],
    sinks: [],
    live: {
      subscribers: 0,
      linesDelivered: 0,
      linesDropped: 0,
      subscribersStalled: 0,
      ringLines: 0,
      ringBytes: 0,
      lastId: 0,
    },
    ingest: { batches: 0, lines: 0, duplicates: 0, refused: {} },
    requests: new Map(),
    streams: 0,
    inputs: [
      { name: "udp", type: "udp", stats: { datagrams: 10, kernel_drops: 3, lines: 12 } },
      {
        name: "syslog",
        type: "syslog",
        stats: {
          "tcp.messages": 5,
          "udp.messages": 7,
          "tcp.connections": 2,
          "udp.kernel_drops": 1,
        },
      },
      { name: "odd", type: "x", stats: { "some-thing": 4, missing: NaN } },
    ],
  });
  const lines = text.trim().split("\n");
  for (
    const want of [
      'logboom_input_udp_dropped_total{input="udp",type="udp"} 3',
      'logboom_input_udp_dropped_total{input="syslog",type="syslog",transport="udp"} 1',
      'logboom_input_messages_total{input="syslog",type="syslog",transport="tcp"} 5',
      'logboom_input_messages_total{input="syslog",type="syslog",transport="udp"} 7',
      'logboom_input_connections{input="syslog",type="syslog",transport="tcp"} 2',
      'logboom_input_datagrams_total{input="udp",type="udp"} 10',
      'logboom_input_some_thing{input="odd",type="x"} 4',
      "# TYPE logboom_input_udp_dropped_total counter",
      "# TYPE logboom_input_connections gauge",
    ]
  ) assert.ok(lines.includes(want), want);
  // One family declaration each, its samples together.
  const types = lines.filter((l) => l.startsWith("# TYPE logboom_input_"));
  assert.equal(types.length, new Set(types).size);
  assert.ok(!text.includes("missing"));
});
