import assert from "node:assert/strict";
import SnappyJS from "snappyjs";
import type { Batch } from "../pipeline/batch.ts";
import { levelOfCode } from "../pipeline/record.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import { ProtoWriter as W } from "../protocols/_proto_writer.ts";
import { IngestGate } from "./ingest_gate.ts";
import { ProtocolIngest, type ProtocolRoute, protocolRoute } from "./protocol_ingest.ts";
import { messageLine, RecordGroups, writeRecordBatches } from "./record_batches.ts";

const decoder = new TextDecoder();
const peer = { hostname: "10.1.2.3" };
const AT = Date.parse("2026-11-30T10:00:00.123Z");

interface Stored {
  source: string;
  host: string;
  input: string;
  line: string;
  time?: string;
  level?: string;
  fields?: Record<string, unknown>;
}

/** Keeps each line with its columns; `flush` waits for `release()` when held. */
class RecordSink extends TestSink {
  readonly name = "records";
  readonly stored: Stored[] = [];
  readonly batches: Batch[] = [];
  flushed: Batch[] = [];
  #held: Promise<void> | undefined;
  #release: () => void = () => {};
  write(batch: Batch): boolean {
    this.batches.push(batch);
    const lines = decoder.decode(batch.data).split("\n").slice(0, -1);
    assert.equal(lines.length, batch.lines);
    lines.forEach((line, i) => {
      const { source, host, input } = batch.meta;
      const out: Stored = { source, host, input, line };
      const time = batch.times?.[i];
      if (time !== undefined && !Number.isNaN(time)) out.time = new Date(time).toISOString();
      const level = batch.levels === undefined ? undefined : levelOfCode(batch.levels[i]);
      if (level !== undefined) out.level = level;
      const fields = batch.fields?.[i];
      if (fields !== undefined) out.fields = { ...fields };
      this.stored.push(out);
    });
    return true;
  }
  hold(): void {
    this.#held = new Promise((resolve) => this.#release = resolve);
  }
  release(): void {
    this.#release();
  }
  override async flush(batches?: readonly Batch[]): Promise<void> {
    await this.#held;
    this.flushed = [...batches ?? []];
  }
}

function setup(options: { maxLine?: number; maxBody?: number } = {}) {
  const sink = new RecordSink();
  const gate = new IngestGate(sink, { maxBody: options.maxBody });
  const ingest = new ProtocolIngest(gate, { maxLine: options.maxLine });
  const send = (req: Request) => {
    const route = protocolRoute(req, new URL(req.url).pathname);
    assert.ok(route !== undefined, `no protocol route for ${req.url}`);
    return ingest.handle(req, route as ProtocolRoute, peer);
  };
  return { sink, gate, send };
}

function post(path: string, body: BodyInit, headers: Record<string, string> = {}): Request {
  return new Request(`http://localhost${path}`, { method: "POST", body, headers });
}

/** An OTLP JSON export as the JS exporter sends it. */
function otlpJson(
  resources: { attrs: Record<string, string>; records: Record<string, unknown>[] }[],
): string {
  return JSON.stringify({
    resourceLogs: resources.map(({ attrs, records }) => ({
      resource: {
        attributes: Object.entries(attrs).map(([key, v]) => ({
          key,
          value: { stringValue: v },
        })),
      },
      scopeLogs: [{ scope: { name: "app" }, logRecords: records }],
    })),
  });
}

Deno.test("OTLP JSON: one line per record, by service and host, with time, level and fields, acknowledged after the flush", async () => {
  const { sink, send } = setup();
  sink.hold();
  const body = otlpJson([
    {
      attrs: { "service.name": "checkout", "host.name": "web-3" },
      records: [
        {
          timeUnixNano: String(AT * 1e6),
          severityNumber: 17,
          body: { stringValue: "payment failed\n  at pay (pay.js:3)\r\n  at main\n" },
          attributes: [{ key: "order", value: { intValue: 7 } }],
        },
        { timeUnixNano: String((AT + 1) * 1e6), severityText: "info", body: { stringValue: "" } },
      ],
    },
    { attrs: {}, records: [{ body: { stringValue: "no service" } }] },
  ]);
  const pending = send(post("/v1/logs", body, { "content-type": "application/json" }));
  let answered = false;
  pending.then(() => answered = true);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(answered, false, "answered before the sink acknowledged");
  assert.equal(sink.stored.length, 3, "written before the acknowledgement");
  sink.release();
  const res = await pending;
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  assert.deepEqual(sink.stored, [
    {
      source: "checkout",
      host: "web-3",
      input: "otlp",
      line: "payment failed\\n  at pay (pay.js:3)\\n  at main",
      time: "2026-11-30T10:00:00.123Z",
      level: "error",
      fields: {
        "service.name": "checkout",
        "host.name": "web-3",
        "scope.name": "app",
        order: 7,
      },
    },
    {
      source: "checkout",
      host: "web-3",
      input: "otlp",
      line: "-",
      time: "2026-11-30T10:00:00.124Z",
      level: "info",
      fields: { "service.name": "checkout", "host.name": "web-3", "scope.name": "app" },
    },
    // No service.name: source otlp; no host.name: the peer's address; no time, no level.
    {
      source: "otlp",
      host: "10.1.2.3",
      input: "otlp",
      line: "no service",
      fields: { "scope.name": "app" },
    },
  ]);
  // Exactly the batches written are flushed.
  assert.deepEqual(sink.flushed, sink.batches);
  assert.equal(sink.batches.length, 2);
  assert.equal(sink.batches[1].times, undefined, "no column without a value");
  assert.equal(sink.batches[1].levels, undefined);
});

Deno.test("OTLP protobuf: gzip, partialSuccess for refused records, Status errors in the request's encoding", async () => {
  const { sink, send } = setup();
  const anyString = (text: string) => new W().len(1, text);
  const record = (text: string) =>
    new W().fixed64(1, BigInt(AT) * 1000000n).len(5, anyString(text));
  // A body nested deeper than the decoder follows: that record alone is refused.
  let deep = anyString("leaf");
  for (let i = 0; i < 40; i++) deep = new W().len(5, new W().len(1, deep));
  const scope = new W().len(2, record("kept")).len(2, new W().len(5, deep));
  const request = Uint8Array.from(new W().len(1, new W().len(2, scope)).bytes);
  const gz = new Uint8Array(
    await new Response(
      new Blob([request]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const res = await send(post("/v1/logs", gz, {
    "content-type": "application/x-protobuf",
    "content-encoding": "gzip",
  }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/x-protobuf");
  const answer = new Uint8Array(await res.arrayBuffer());
  assert.ok(answer.length > 0, "partialSuccess expected");
  assert.equal(answer[0], 0x0a); // field 1: partial_success
  assert.deepEqual(sink.stored.map((s) => s.line), ["kept"]);

  const bad = await send(post("/v1/logs", new Uint8Array([0x0a, 0x7f]), {
    "content-type": "application/x-protobuf",
  }));
  assert.equal(bad.status, 400);
  const status = new Uint8Array(await bad.arrayBuffer());
  assert.deepEqual([...status.subarray(0, 2)], [0x08, 3], "google.rpc.Status INVALID_ARGUMENT");
  assert.match(decoder.decode(status), /\S/);

  const badJson = await send(post("/v1/logs", "{", { "content-type": "application/json" }));
  assert.equal(badJson.status, 400);
  const json = await badJson.json();
  assert.equal(json.code, 3);
  assert.match(json.message, /./);

  const unknown = await send(post("/v1/logs", "x", { "content-type": "text/plain" }));
  assert.equal(unknown.status, 415);
  await unknown.body?.cancel();
  assert.equal(sink.stored.length, 1, "nothing more stored");
});

Deno.test("Loki: JSON and snappy protobuf without Content-Type or Content-Encoding; labels as fields, source and host", async () => {
  const { sink, send } = setup();
  const json = JSON.stringify({
    streams: [{
      stream: { app: "shop", host: "node-1", level: "warn" },
      values: [[String(AT * 1e6), "low stock\n"], [String((AT + 1) * 1e6), "b", {
        trace_id: "t1",
      }]],
    }],
  });
  const res = await send(post("/loki/api/v1/push", json, { "content-type": "application/json" }));
  assert.equal(res.status, 204);
  const timestamp = new W().tag(1, 0).varint(Math.floor(AT / 1000)).tag(2, 0).varint(5e6);
  const entry = new W().len(1, timestamp).len(2, "from proto");
  const stream = new W().len(1, '{job="batch", level="error"}').len(2, entry);
  const snappy = SnappyJS.compress(new W().len(1, stream).u8());
  const res2 = await send(post("/loki/api/v1/push", snappy));
  assert.equal(res2.status, 204);
  assert.deepEqual(sink.stored, [
    {
      source: "shop",
      host: "node-1",
      input: "loki",
      line: "low stock",
      time: "2026-11-30T10:00:00.123Z",
      level: "warn",
      fields: { app: "shop", host: "node-1", level: "warn" },
    },
    {
      source: "shop",
      host: "node-1",
      input: "loki",
      line: "b",
      time: "2026-11-30T10:00:00.124Z",
      level: "warn",
      fields: { app: "shop", host: "node-1", level: "warn", trace_id: "t1" },
    },
    {
      source: "batch",
      host: "10.1.2.3",
      input: "loki",
      line: "from proto",
      time: "2026-11-30T10:00:00.005Z",
      level: "error",
      fields: { job: "batch", level: "error" },
    },
  ]);
  const bad = await send(post("/loki/api/v1/push", '{"streams": 3}', {
    "content-type": "application/json",
  }));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /./);
});

Deno.test("Elasticsearch: probes, bulk with per-item errors, index as source", async () => {
  const { sink, send } = setup();
  const root = await send(new Request("http://localhost/", { headers: { accept: "*/*" } }));
  assert.equal(root.status, 200);
  assert.equal(root.headers.get("x-elastic-product"), "Elasticsearch");
  assert.match((await root.json()).version.number, /^8\./);
  assert.equal(
    protocolRoute(new Request("http://localhost/", { headers: { accept: "text/html" } }), "/"),
    undefined,
    "a browser's GET / is the web page's",
  );
  const license = await send(new Request("http://localhost/_license"));
  assert.equal((await license.json()).license.status, "active");
  const body = [
    '{"index":{"_index":"app-logs"}}',
    JSON.stringify({
      "@timestamp": new Date(AT).toISOString(),
      level: 50,
      msg: "boom",
      hostname: "h9",
      req: { id: 4 },
    }),
    '{"delete":{"_index":"app-logs","_id":"1"}}',
    '{"create":{}}',
    "not json",
    '{"create":{}}',
    '{"message":"to the URL index"}',
    "",
  ].join("\n");
  const res = await send(post("/web/_bulk", body, { "content-type": "application/x-ndjson" }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-elastic-product"), "Elasticsearch");
  const answer = await res.json();
  assert.equal(answer.errors, true);
  assert.deepEqual(
    answer.items.map((i: Record<string, { status: number }>) => Object.values(i)[0].status),
    [201, 400, 400, 201],
  );
  assert.deepEqual(sink.stored, [
    {
      source: "app-logs",
      host: "h9",
      input: "elasticsearch",
      line: "boom",
      time: "2026-11-30T10:00:00.123Z",
      level: "error",
      fields: { "@timestamp": "2026-11-30T10:00:00.123Z", level: 50, hostname: "h9", "req.id": 4 },
    },
    { source: "web", host: "10.1.2.3", input: "elasticsearch", line: "to the URL index" },
  ]);
  const malformed = await send(post("/_bulk", "{nope\n{}\n"));
  assert.equal(malformed.status, 400);
  const error = await malformed.json();
  assert.equal(error.status, 400);
  assert.match(error.error.reason, /Malformed action/);
});

Deno.test("Every protocol route answers 503 with Retry-After when the queue is full, and stores nothing", async () => {
  const { sink, send } = setup();
  sink.full = true;
  const requests = [
    post("/v1/logs", otlpJson([{ attrs: {}, records: [{ body: { stringValue: "x" } }] }]), {
      "content-type": "application/json",
    }),
    post("/loki/api/v1/push", '{"streams":[]}', { "content-type": "application/json" }),
    post("/_bulk", '{"index":{"_index":"a"}}\n{"msg":"x"}\n'),
  ];
  for (const req of requests) {
    const res = await send(req);
    assert.equal(res.status, 503, req.url);
    assert.equal(res.headers.get("retry-after"), "1", req.url);
    await res.body?.cancel();
  }
  assert.equal(sink.stored.length, 0);
});

Deno.test("Protocol routes bound the body, compressed or not (413)", async () => {
  const { sink, send } = setup({ maxBody: 1024 });
  const big = JSON.stringify({
    streams: [{ stream: { a: "b" }, values: [["1", "x".repeat(2000)]] }],
  });
  const res = await send(post("/loki/api/v1/push", big, { "content-type": "application/json" }));
  assert.equal(res.status, 413);
  await res.body?.cancel();
  const gz = new Uint8Array(
    await new Response(
      new Blob([big]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  assert.ok(gz.length < 1024);
  const res2 = await send(post("/loki/api/v1/push", gz, {
    "content-type": "application/json",
    "content-encoding": "gzip",
  }));
  assert.equal(res2.status, 413);
  await res2.body?.cancel();
  assert.equal(sink.stored.length, 0);
});

Deno.test("messageLine: one record, one line", () => {
  assert.equal(messageLine("plain"), "plain");
  assert.equal(messageLine("a\nb\r\nc\n\n"), "a\\nb\\nc");
  assert.equal(messageLine("keeps a lone \r inside"), "keeps a lone \r inside");
  assert.equal(messageLine(""), "-");
  assert.equal(messageLine(" \t\n"), "-");
});

Deno.test("writeRecordBatches: a line over maxLine is stored in pieces, each with the record's columns; batches stay near their size", async () => {
  const groups = new RecordGroups("test");
  const fields = { k: "v" };
  groups.add("s", "h", { timeMs: AT, level: "warn", message: "é".repeat(5), fields });
  for (let i = 0; i < 50; i++) {
    groups.add("s", "h", { timeMs: undefined, level: undefined, message: `line ${i}`, fields: {} });
  }
  const written: {
    data: string;
    lines: number;
    times?: number[];
    levels?: number[];
    fields?: unknown[];
  }[] = [];
  let pauses = 0;
  const { batches, lines } = await writeRecordBatches(groups, (b) =>
    written.push({
      data: decoder.decode(b.data),
      lines: b.lines,
      times: b.times && [...b.times],
      levels: b.levels && [...b.levels],
      fields: b.fields && [...b.fields],
    }), {
    maxLine: 4,
    receivedAt: AT,
    batchBytes: 64,
    turns: { due: () => true, pause: () => (pauses++, Promise.resolve()) },
  });
  // 10 bytes of é in pieces of 4 bytes (a piece may cut a character, as framing does).
  assert.equal(
    written[0].data.split("\n").slice(0, 3).map((l) => new TextEncoder().encode(l).length).join(),
    "4,4,2",
  );
  assert.deepEqual(written[0].times!.slice(0, 3), [AT, AT, AT]);
  assert.deepEqual(written[0].levels!.slice(0, 4), [4, 4, 4, 0]);
  assert.deepEqual(written[0].fields!.slice(0, 4), [fields, fields, fields, undefined]);
  assert.equal(lines, 3 + 50 * 2, "`line N` is 6-7 bytes: two pieces each");
  assert.equal(batches.length, written.length);
  assert.ok(written.length > 3, "batches of about 64 bytes");
  assert.ok(pauses >= written.length, "a pause after each group and between batches");
  // A batch of the plain records has no columns at all.
  assert.equal(written.at(-1)!.times, undefined);
  assert.equal(written.at(-1)!.levels, undefined);
  assert.equal(written.at(-1)!.fields, undefined);
});

Deno.test("writeRecordBatches: short and split lines interleaved keep their columns in line order", async () => {
  const groups = new RecordGroups("test");
  const messages = ["a", "b".repeat(40), "c", "é".repeat(9)];
  messages.forEach((message, i) =>
    groups.add("s", "h", { timeMs: AT + i, level: undefined, message, fields: {} })
  );
  const written: { data: string; times: number[] }[] = [];
  await writeRecordBatches(
    groups,
    (b) => written.push({ data: decoder.decode(b.data), times: [...b.times!] }),
    { maxLine: 30, receivedAt: AT, turns: { due: () => false, pause: () => Promise.resolve() } },
  );
  assert.deepEqual(written, [{
    data: `a\n${"b".repeat(30)}\n${"b".repeat(10)}\nc\n${"é".repeat(9)}\n`,
    times: [AT, AT + 1, AT + 1, AT + 2, AT + 3],
  }]);
});

Deno.test("OTLP protobuf is decoded a piece at a time, with turns between pieces; the record bound holds over the request", async () => {
  const record = (i: number) =>
    new W().fixed64(1, BigInt(AT) * 1000000n).len(5, new W().len(1, `record ${i}`));
  const scope = new W();
  for (let i = 0; i < 5000; i++) scope.len(2, record(i));
  const body = Uint8Array.from(new W().len(1, new W().len(2, scope)).bytes);
  const sink = new RecordSink();
  // How many lines were written at each turn: turns before any is written are the decoder's.
  const pauses: number[] = [];
  const turns = {
    due: () => true,
    pause: () => (pauses.push(sink.stored.length), Promise.resolve()),
  };
  const gate = new IngestGate(sink, { turns });
  const headers = { "content-type": "application/x-protobuf" };
  const ok = await new ProtocolIngest(gate).handle(
    post("/v1/logs", body, headers),
    "/v1/logs",
    peer,
  );
  assert.equal(ok.status, 200);
  assert.equal(sink.stored.length, 5000);
  assert.deepEqual(sink.stored.map((s) => s.line).slice(0, 2), ["record 0", "record 1"]);
  assert.equal(sink.stored[4999].line, "record 4999");
  // Before anything is written: turns while the request is split, after each of the five pieces
  // decoded (1,024 records at most), every 1,024 records grouped (4), then every 256 records
  // while the lines are gathered (19).
  assert.ok(pauses.filter((written) => written === 0).length >= 5 + 4 + 19);
  const bounded = new ProtocolIngest(new IngestGate(new RecordSink()), { maxRecords: 2500 });
  const refused = await bounded.handle(post("/v1/logs", body, headers), "/v1/logs", peer);
  assert.equal(refused.status, 413);
  assert.match(new TextDecoder().decode(await refused.arrayBuffer()), /more than 2500 records/);
});
