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
