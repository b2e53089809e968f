import assert from "node:assert/strict";
import SnappyJS from "snappyjs";
import lokiProto from "winston-loki/src/proto/index.js";
import lokiHelpers from "winston-loki/src/proto/helpers.js";
import { HttpError } from "../net/http_error.ts";
import { ProtoWriter as W } from "./_proto_writer.ts";
import {
  decodeLoki,
  decodeLokiJson,
  decodeLokiJsonSliced,
  decodeLokiProtobuf,
  decodeLokiSliced,
  LOKI_SOURCE_LABELS,
  lokiFormat,
  lokiResponse,
  lokiSource,
  parseLabels,
  RECORDS_PER_PAUSE,
} from "./loki.ts";

const MB = 1 << 20;
const AT = Date.parse("2026-11-30T10:00:00.123Z");

Deno.test("Loki: winston-loki's own request, native snappy, no Content-Encoding, decodes", async () => {
  // Captured by testdata/capture_winston_loki.ts from the real transport.
  const body = await Deno.readFile(new URL("testdata/winston_loki.snappy", import.meta.url));
  const request = JSON.parse(
    await Deno.readTextFile(new URL("testdata/winston_loki.json", import.meta.url)),
  );
  assert.equal(request.headers["content-encoding"], undefined);
  for (const contentType of [request.headers["content-type"], null, "text/plain"]) {
    const records = decodeLoki(body, { contentType, maxBytes: MB });
    assert.deepEqual(records, [
      {
        timeMs: AT,
        message: 'order placed {"level":"info","orderId":7}',
        fields: { level: "info", app: "shop", env: "prod" },
        source: "shop",
        level: "info",
      },
      {
        timeMs: AT + 1,
        message: 'payment failed: \u00e9chec {"level":"error"}',
        fields: { level: "error", app: "shop", env: "prod" },
        source: "shop",
        level: "error",
      },
      {
        timeMs: AT + 2,
        message: 'second in the same stream {"level":"error"}',
        fields: { level: "error", app: "shop", env: "prod" },
        source: "shop",
        level: "error",
      },
    ]);
  }
});

/** A push encoded by winston-loki's own protobuf code (its unescaped labels included). */
function winstonProtobuf(labels: Record<string, string>, lines: [number, string][]): Uint8Array {
  const entry = lokiHelpers.createProtoTimestamps({
    labels: { ...labels },
    entries: lines.map(([ts, line]) => ({ ts, line })),
  });
  const batch = lokiHelpers.prepareProtoBatch({ streams: [entry] });
  const bytes = lokiProto.logproto.PushRequest.encode(
    lokiProto.logproto.PushRequest.create(batch),
  ).finish();
  return SnappyJS.compress(bytes);
}

Deno.test("Loki: winston-loki's encoder, with a quote it does not escape in a label", () => {
  const body = winstonProtobuf({ level: "warn", job: 'say "hi" now', service_name: "api" }, [
    [AT, "first"],
    [AT + 5, "second"],
  ]);
  const records = decodeLoki(body, { contentType: "application/x-protobuf", maxBytes: MB });
  assert.equal(records.length, 2);
  assert.deepEqual(records[0].fields, { level: "warn", job: 'say "hi" now', service_name: "api" });
  assert.equal(records[0].source, "api");
  assert.equal(records[0].level, "warn");
  assert.equal(records[1].timeMs, AT + 5);
  assert.equal(records[1].message, "second");
});

Deno.test("Loki JSON: values with structured metadata, as winston-loki's JSON mode builds them", () => {
  const batch = lokiHelpers.prepareJSONBatch({
    streams: [{
      labels: { level: "info", job: "worker" },
      entries: [
        { ts: AT, line: "done", rest: { traceId: "abc", attempt: 2, nested: { a: 1 } } },
        { ts: AT + 1, line: "no metadata" },
      ],
    }],
  });
  const body = new TextEncoder().encode(JSON.stringify(batch));
  const records = decodeLoki(body, { contentType: "application/json", maxBytes: MB });
  assert.deepEqual(records, [
    {
      timeMs: AT,
      message: "done",
      fields: { level: "info", job: "worker", traceId: "abc", attempt: "2", nested: '{"a":1}' },
      source: "worker",
      level: "info",
    },
    {
      timeMs: AT + 1,
      message: "no metadata",
      fields: { level: "info", job: "worker" },
      source: "worker",
      level: "info",
    },
  ]);
});

Deno.test("Loki JSON: pino-loki's shape, the old labels/entries form, metadata over labels", () => {
  // pino-loki: level and hostname labels, nanosecond text, the whole pino object as the line.
  const pino = {
    streams: [{
      stream: { level: "error", hostname: "vm1", application: "billing" },
      values: [[`${AT}000000`, '{"level":50,"msg":"boom"}', { level: "fatal" }]],
    }],
  };
  const [r] = decodeLokiJson(JSON.stringify(pino));
  assert.equal(r.source, "billing");
  assert.equal(r.level, "fatal", "structured metadata wins over the label");
  assert.equal(r.fields.level, "fatal");
  assert.equal(r.timeMs, AT);

  const old = {
    streams: [{
      labels: '{job="varlogs", filename="/var/log/x.log"}',
      entries: [{ ts: "2026-11-30T10:00:00.123Z", line: "old style" }],
    }],
  };
  assert.deepEqual(decodeLokiJson(JSON.stringify(old)), [{
    timeMs: AT,
    message: "old style",
    fields: { job: "varlogs", filename: "/var/log/x.log" },
    source: "varlogs",
    level: undefined,
  }]);
});

Deno.test("Loki protobuf: structured metadata, labels after entries, zero timestamps", () => {
  const entry = new W()
    .len(1, new W().tag(1, 0).varint(Math.floor(AT / 1000)).tag(2, 0).varint(123_456_789))
    .len(2, "line one")
    .len(3, new W().len(1, "trace_id").len(2, "t1"))
    .len(3, new W().len(1, "detected_level").len(2, "WARNING"));
  const bare = new W().len(2, "no time");
  const stream = new W().len(2, entry).len(2, bare).len(1, '{container="web"}').tag(3, 0).varint(
    99,
  );
  const records = decodeLokiProtobuf(new W().len(1, stream).u8());
  assert.deepEqual(records, [
    {
      timeMs: AT,
      message: "line one",
      fields: { container: "web", trace_id: "t1", detected_level: "WARNING" },
      source: "web",
      level: "warn",
    },
    {
      timeMs: undefined,
      message: "no time",
      fields: { container: "web" },
      source: "web",
      level: undefined,
    },
  ]);
});

Deno.test("Loki labels: escapes, quoted names, spaces, trailing comma", () => {
  assert.deepEqual(parseLabels("{}"), {});
  assert.deepEqual(parseLabels(' { a = "1" , b="x\\"y\\\\z\\n" , } '), { a: "1", b: 'x"y\\z\n' });
  assert.deepEqual(parseLabels('{"service.name"="api", path="C:\\temp\\q"}'), {
    "service.name": "api",
    path: "C:\temp\\q", // \t is an escape; \q is not and keeps its backslash
  });
  assert.deepEqual(parseLabels('{u="\\u00e9\\x41"}'), { u: "\u00e9A" });
  assert.deepEqual(parseLabels('{__proto__="p"}'), JSON.parse('{"__proto__":"p"}'));
  // The price of reading winston-loki's unescaped quotes: a missing comma joins two values.
  assert.deepEqual(parseLabels('{a="1" b="2"}'), { a: '1" b="2' });
  for (
    const [text, pattern] of [
      ["", /expected \{/],
      ["a=1", /expected \{/],
      ["{a}", /expected =/],
      ["{a=1}", /expected a quoted value/],
      ['{a="1"', /unterminated|expected \}/],
      ['{a="1"} x', /text after \}/],
      ['{="1"}', /expected a label name/],
    ] as [string, RegExp][]
  ) {
    assert.throws(() => parseLabels(text), (err) => {
      assert.ok(err instanceof HttpError && err.status === 400, `${text}: ${err}`);
      assert.match(err.message, pattern, text);
      return true;
    });
  }
});

Deno.test("Loki source: service_name, then Loki's discover_service_name order, else loki", () => {
  assert.equal(lokiSource({}), "loki");
  assert.equal(lokiSource({ job: "j", app: "a" }), "a");
  assert.equal(lokiSource({ job: "j", app: "a", service_name: "s" }), "s");
  assert.equal(lokiSource({ job: "j", container: "" }), "j", "empty labels are skipped");
  assert.equal(LOKI_SOURCE_LABELS[0], "service_name");
});

Deno.test("Loki format: by Content-Type, else by the first byte", () => {
  const json = new TextEncoder().encode(' \n{"streams":[]}');
  const snappy = SnappyJS.compress(new W().len(1, new W().len(1, "{}")).u8());
  assert.equal(lokiFormat("application/json; charset=utf-8", snappy), "json");
  assert.equal(lokiFormat("application/x-protobuf", json), "protobuf");
  assert.equal(lokiFormat(null, json), "json");
  assert.equal(lokiFormat("text/plain", json), "json");
  assert.equal(lokiFormat(undefined, snappy), "protobuf");
  assert.equal(lokiFormat(undefined, new Uint8Array(0)), "protobuf");
});

function refused(f: () => unknown, status: number, pattern: RegExp): void {
  assert.throws(f, (err) => {
    assert.ok(err instanceof HttpError, `not an HttpError: ${err}`);
    assert.equal(err.status, status);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("Loki: malformed pushes are a clear 400, an oversized one a 413", () => {
  const opts = { maxBytes: MB };
  refused(() => decodeLoki(new TextEncoder().encode("{"), opts), 400, /Malformed Loki JSON/);
  refused(() => decodeLokiJson("[]"), 400, /not an object/);
  refused(() => decodeLokiJson('{"streams":{}}'), 400, /streams is not an array/);
  refused(() => decodeLokiJson('{"streams":[{"stream":{}}]}'), 400, /no values array/);
  refused(() => decodeLokiJson('{"streams":[{"stream":{"a":{}},"values":[]}]}'), 400, /a is not/);
  refused(
    () => decodeLokiJson('{"streams":[{"stream":{},"values":[["soon","x"]]}]}'),
    400,
    /values\[0\]\[0\] is not a count of nanoseconds/,
  );
  refused(
    () => decodeLokiJson('{"streams":[{"stream":{},"values":[["1",2]]}]}'),
    400,
    /values\[0\]\[1\] is not a string/,
  );
  refused(() => decodeLokiJson('{"streams":[{"stream":{},"values":[["1"]]}]}'), 400, /is not \[/);
  refused(() => decodeLoki(Uint8Array.of(0x05, 0x00), opts), 400, /Malformed snappy/);
  refused(
    () => decodeLoki(SnappyJS.compress(Uint8Array.of(0x0a, 0x09, 0x0a)), opts),
    400,
    /Malformed Loki protobuf: Length 9 runs past/,
  );
  refused(
    () => decodeLokiProtobuf(new W().len(1, new W().len(1, "{a=1}")).u8()),
    400,
    /Malformed Loki labels/,
  );
  const negative = new W().len(1, new W().len(2, new W().len(1, new W().tag(1, 0).varint(-1))));
  refused(() => decodeLokiProtobuf(negative.u8()), 400, /Timestamp out of range/);
  const big = SnappyJS.compress(new Uint8Array(2 * MB));
  refused(() => decodeLoki(big, opts), 413, /over the limit/);
});

Deno.test("Loki: every truncation and mutation of winston-loki's request is decoded or refused", async () => {
  const body = await Deno.readFile(new URL("testdata/winston_loki.snappy", import.meta.url));
  const raw: Uint8Array = SnappyJS.uncompress(body);
  let errors = 0;
  const check = (input: Uint8Array, snappy: boolean) => {
    try {
      if (snappy) decodeLoki(input, { contentType: "application/x-protobuf", maxBytes: 4096 });
      else decodeLokiProtobuf(input);
    } catch (err) {
      if (!(err instanceof HttpError) || (err.status !== 400 && err.status !== 413)) throw err;
      errors++;
    }
  };
  for (let n = 0; n < body.length; n++) check(body.subarray(0, n), true);
  for (let n = 0; n < raw.length; n++) check(raw.subarray(0, n), false);
  let seed = 3;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 2000; i++) {
    for (const [input, snappy] of [[body, true], [raw, false]] as [Uint8Array, boolean][]) {
      const copy = input.slice();
      copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      check(copy, snappy);
    }
  }
  assert.ok(errors > body.length, `truncations are refused (${errors})`);
});

Deno.test("Loki answer: 204 with no body", async () => {
  const res = lokiResponse();
  assert.equal(res.status, 204);
  assert.equal(await res.text(), "");
});

Deno.test("Loki: more entries than maxRecords is a 413", () => {
  const stream = new W().len(1, "{}");
  for (let i = 0; i < 11; i++) stream.len(2, new W()); // empty entries: 2 bytes each
  const raw = new W().len(1, stream).u8();
  assert.equal(decodeLokiProtobuf(raw, 11).length, 11);
  refused(() => decodeLokiProtobuf(raw, 10), 413, /more than 10 records/);
  refused(
    () => decodeLoki(SnappyJS.compress(raw), { maxBytes: MB, maxRecords: 10 }),
    413,
    /more than 10/,
  );
  const json = JSON.stringify({
    streams: [{ stream: {}, values: Array.from({ length: 11 }, () => ["1", ""]) }],
  });
  assert.equal(decodeLokiJson(json, 11).length, 11);
  refused(() => decodeLokiJson(json, 10), 413, /more than 10/);
});

Deno.test("Loki: a 123-byte snappy push sent with no Content-Type, which starts with {", () => {
  const line = "x".repeat(123 - 10);
  const raw = new W().len(1, new W().len(1, "{}").len(2, new W().len(2, line))).u8();
  assert.equal(raw.length, 123);
  const body = SnappyJS.compress(raw);
  assert.equal(body[0], 0x7b, "its length varint is `{`");
  assert.equal(lokiFormat(null, body), "json");
  const [r] = decodeLoki(body, { contentType: null, maxBytes: MB });
  assert.equal(r.message, line);
  // Declared JSON stays JSON: the JSON error is what the client gets.
  refused(
    () => decodeLoki(body, { contentType: "application/json", maxBytes: MB }),
    400,
    /Malformed Loki JSON/,
  );
  refused(() => decodeLoki(new TextEncoder().encode("{nope"), { maxBytes: MB }), 400, /JSON/);
});

Deno.test("Loki sliced: a large JSON push gives what decoding it in one go gives, with pauses", async () => {
  const streams = Array.from({ length: 30 }, (_, s) => ({
    stream: { app: `a${s % 4}`, level: s % 2 ? "warn" : "info" },
    values: Array.from({ length: 100 + s }, (_, i) => {
      const value: unknown[] = [
        String(1796054400_000_000_000 + i),
        `line ${i} \u00e9 ${"x".repeat(2 * i)}`,
      ];
      if (i % 9 === 0) value.push({ trace_id: `t${i}`, level: "error" });
      return value;
    }),
  }));
  const body = new TextEncoder().encode(JSON.stringify({ streams }));
  assert.ok(body.length > 400_000);
  let pauses = 0;
  const turns = { due: () => true, pause: () => Promise.resolve(void pauses++) };
  const noProtobuf = () => Promise.reject(new Error("not protobuf"));
  const options = { contentType: "application/json", maxBytes: MB };
  const sliced = await decodeLokiSliced(body, options, turns, noProtobuf);
  assert.deepEqual(sliced, decodeLoki(body, options));
  assert.equal(sliced.length, 30 * 100 + 435);
  assert.ok(pauses >= sliced.length / RECORDS_PER_PAUSE, `${pauses} pauses`);
  await assert.rejects(
    decodeLokiJsonSliced(body, 1000, turns),
    (err) => err instanceof HttpError && err.status === 413,
  );
  await assert.rejects(
    decodeLokiJsonSliced(new TextEncoder().encode("{nope" + " ".repeat(100_000)), 10, turns),
    (err) =>
      err instanceof HttpError && err.status === 400 && /Malformed Loki JSON/.test(err.message),
  );
});

Deno.test("Loki sliced: snappy goes to the protobuf decoder, also when sniffed JSON does not parse", async () => {
  const turns = { due: () => false, pause: () => Promise.resolve() };
  const line = "x".repeat(123 - 10);
  const raw = new W().len(1, new W().len(1, "{}").len(2, new W().len(2, line))).u8();
  const body = SnappyJS.compress(raw);
  const protobuf = (b: Uint8Array) =>
    Promise.resolve(decodeLoki(b, { contentType: "application/x-protobuf", maxBytes: MB }));
  const [r] = await decodeLokiSliced(body, { contentType: null, maxBytes: MB }, turns, protobuf);
  assert.equal(r.message, line);
  await assert.rejects(
    decodeLokiSliced(body, { contentType: "application/json", maxBytes: MB }, turns, protobuf),
    /Malformed Loki JSON/,
  );
  // Neither JSON nor snappy: the JSON error.
  await assert.rejects(
    decodeLokiSliced(new TextEncoder().encode("{nope"), { maxBytes: MB }, turns, protobuf),
    /Malformed Loki JSON/,
  );
});
