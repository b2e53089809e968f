import assert from "node:assert/strict";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { JsonLogsSerializer, ProtobufLogsSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";
import { HttpError } from "../net/http_error.ts";
import {
  decodeOtlp,
  decodeOtlpJson,
  decodeOtlpJsonSliced,
  decodeOtlpProtobuf,
  encodeExportLogsResponse,
  type OtlpDecoded,
  otlpFormat,
  otlpResponse,
  RECORDS_PER_PAUSE,
} from "./otlp.ts";
import { ProtoReader } from "./protobuf.ts";
import { ProtoWriter as W } from "./_proto_writer.ts";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";

/** Log records as the OpenTelemetry JS logs SDK makes them. */
async function sdkRecords(): Promise<ReadableLogRecord[]> {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": "billing", "host.name": "vm1", shard: 3 }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger("checkout", "1.2.3");
  const spanContext = { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED };
  logger.emit({
    timestamp: new Date("2026-11-30T10:00:00.123Z"),
    severityNumber: 17,
    severityText: "ERROR",
    body: "payment failed",
    attributes: {
      "http.status": 502,
      retry: true,
      ratio: 0.5,
      delta: -5,
      tags: ["a", "b"],
      user: { id: "u1", plan: { tier: "gold" } },
      shard: 7,
    },
    context: trace.setSpanContext(context.active(), spanContext),
  });
  logger.emit({
    timestamp: new Date("2026-11-30T10:00:01Z"),
    severityText: "warning",
    body: { order: 42, items: ["x"] },
  });
  logger.emit({ timestamp: new Date("2026-11-30T10:00:02Z"), severityNumber: 9 });
  const records = exporter.getFinishedLogRecords();
  await provider.shutdown();
  return records;
}

function checkSdkSample(decoded: OtlpDecoded): void {
  assert.equal(decoded.rejected, 0);
  assert.equal(decoded.records.length, 3);
  const [first, second, third] = decoded.records;
  assert.equal(first.timeMs, Date.parse("2026-11-30T10:00:00.123Z"));
  assert.equal(first.level, "error");
  assert.equal(first.severityNumber, 17);
  assert.equal(first.severityText, "ERROR");
  assert.equal(first.message, "payment failed");
  assert.deepEqual(first.fields, {
    "service.name": "billing",
    "host.name": "vm1",
    shard: 7, // the record's attribute replaces the resource's
    "scope.name": "checkout",
    "scope.version": "1.2.3",
    "http.status": 502,
    retry: true,
    ratio: 0.5,
    delta: -5,
    tags: '["a","b"]',
    "user.id": "u1",
    "user.plan.tier": "gold",
    trace_id: TRACE_ID,
    span_id: SPAN_ID,
  });
  assert.equal(second.level, "warn", "from the severity text when there is no number");
  assert.equal(second.message, '{"order":42,"items":["x"]}');
  assert.equal(second.timeMs, Date.parse("2026-11-30T10:00:01Z"));
  assert.equal(third.level, "info");
  assert.equal(third.message, "", "no body");
}

Deno.test("OTLP protobuf from the OpenTelemetry JS serializer decodes with every field", async () => {
  const bytes = ProtobufLogsSerializer.serializeRequest(await sdkRecords())!;
  checkSdkSample(decodeOtlp(bytes, "protobuf"));
});

Deno.test("OTLP JSON from the OpenTelemetry JS serializer decodes with every field", async () => {
  const bytes = JsonLogsSerializer.serializeRequest(await sdkRecords())!;
  // The JS exporter writes intValue as a JSON number: the quirk this covers.
  assert.match(new TextDecoder().decode(bytes), /"intValue":502/);
  checkSdkSample(decodeOtlp(bytes, "json"));
});

Deno.test("OTLP JSON in the spec's mapping: int64 as strings, enum names, snake_case", () => {
  const decoded = decodeOtlpJson(JSON.stringify({
    resource_logs: [{
      resource: { attributes: [{ key: "big", value: { intValue: "9007199254740993" } }] },
      scope_logs: [{
        scope: { name: "s" },
        log_records: [{
          time_unix_nano: "1796054400000000000",
          severity_number: "SEVERITY_NUMBER_WARN2",
          body: { stringValue: "hi" },
          attributes: [
            { key: "n", value: { intValue: "-12" } },
            { key: "d", value: { doubleValue: "NaN" } },
            { key: "raw", value: { bytesValue: "AQID" } },
            { key: "empty", value: {} },
            { key: "obj", value: { kvlistValue: {} } },
          ],
          trace_id: "CvdlGRbNQ92ESOshHIAxnA==", // base64, as protojson writes bytes
        }, {
          observedTimeUnixNano: 1796054400500000000, // a number: loses digits, still ms
          body: { intValue: "12345678901234567890" },
          severityText: "Information",
        }],
      }],
    }],
  }));
  assert.equal(decoded.rejected, 0);
  const [a, b] = decoded.records;
  assert.equal(a.timeMs, 1796054400000);
  assert.equal(a.severityNumber, 14);
  assert.equal(a.level, "warn");
  assert.deepEqual(a.fields, {
    big: "9007199254740993",
    "scope.name": "s",
    n: -12,
    d: "NaN",
    raw: "AQID",
    obj: "{}",
    trace_id: TRACE_ID,
  });
  assert.equal(b.timeMs, 1796054400500);
  assert.equal(b.message, "12345678901234567890", "exact, not rounded to a double");
  assert.equal(b.level, "info");
});

function request(...records: W[]): Uint8Array {
  const scope = new W().len(1, new W().len(1, "scope"));
  for (const r of records) scope.len(2, r);
  const resource = new W().len(1, new W().len(1, new W().len(1, "k").len(2, new W().len(1, "v"))));
  return new W().len(1, resource.len(2, scope)).u8();
}

function nested(depth: number): W {
  let v = new W().len(1, "leaf");
  for (let i = 0; i < depth; i++) v = new W().len(5, new W().len(1, v));
  return v;
}

Deno.test("OTLP protobuf: 64-bit integers, exact times, fields before their resource", () => {
  const record = new W()
    .len(5, new W().tag(3, 0).varint(-(2n ** 63n)))
    .len(6, new W().len(1, "neg").len(2, new W().tag(3, 0).varint(-1)))
    .len(6, new W().len(1, "max").len(2, new W().tag(3, 0).varint(2n ** 63n - 1n)))
    .fixed64(1, 1796054400123999999n)
    .tag(2, 0).varint(24);
  // Scope logs before the resource: the resource's fields still apply.
  const resource = new W().len(1, new W().len(1, "r").len(2, new W().len(1, "x")));
  const body = new W().len(1, new W().len(2, new W().len(2, record)).len(1, resource)).u8();
  const [rec] = decodeOtlpProtobuf(body).records;
  assert.equal(rec.message, "-9223372036854775808");
  assert.deepEqual(rec.fields, { r: "x", neg: -1, max: "9223372036854775807" });
  assert.equal(rec.timeMs, 1796054400123, "nanoseconds floored to ms exactly");
  assert.equal(rec.level, "fatal");
});

Deno.test("OTLP: a record nested too deep is refused alone and counted for partialSuccess", () => {
  const ok = new W().len(5, new W().len(1, "fine"));
  const deep = new W().len(5, nested(40));
  const decoded = decodeOtlpProtobuf(request(ok, deep, ok));
  assert.equal(decoded.records.length, 2);
  assert.equal(decoded.rejected, 1);
  assert.match(decoded.errorMessage, /nested deeper than 32/);
  assert.equal(decoded.records[0].fields.k, "v");
  // Within the bound it is kept, as JSON.
  const kept = decodeOtlpProtobuf(request(new W().len(5, nested(30))));
  assert.equal(kept.rejected, 0);
  assert.equal(kept.records[0].message, "[".repeat(30) + '"leaf"' + "]".repeat(30));

  let json: unknown = { stringValue: "leaf" };
  for (let i = 0; i < 40; i++) json = { arrayValue: { values: [json] } };
  const fromJson = decodeOtlpJson(JSON.stringify({
    resourceLogs: [{
      scopeLogs: [{ logRecords: [{ body: json }, { body: { stringValue: "x" } }] }],
    }],
  }));
  assert.equal(fromJson.rejected, 1);
  assert.equal(fromJson.records.length, 1);
});

Deno.test("OTLP JSON: a record with wrong types is refused alone", () => {
  const decoded = decodeOtlpJson(JSON.stringify({
    resourceLogs: [{
      scopeLogs: [{
        logRecords: [
          { body: { intValue: "12x" } },
          { timeUnixNano: "soon" },
          { traceId: "xyz" },
          { body: { stringValue: "kept" } },
          7,
        ],
      }],
    }],
  }));
  assert.equal(decoded.rejected, 4);
  assert.deepEqual(decoded.records.map((r) => r.message), ["kept"]);
  assert.match(decoded.errorMessage, /intValue is not an integer/);
});

function assert400(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (err) => {
    assert.ok(err instanceof HttpError, `not an HttpError: ${err}`);
    assert.equal(err.status, 400);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("OTLP protobuf: malformed input is a clear 400", () => {
  assert400(() => decodeOtlpProtobuf(Uint8Array.of(0x0a, 0x80)), /Truncated varint/);
  assert400(() => decodeOtlpProtobuf(Uint8Array.of(0x0a, 0x05, 1, 2)), /Length 5 runs past/);
  assert400(
    () => decodeOtlpProtobuf(Uint8Array.of(0x08, ...new Array(11).fill(0xff))),
    /longer than 10 bytes/,
  );
  assert400(() => decodeOtlpProtobuf(Uint8Array.of(0x0b)), /Invalid field tag/);
  assert400(() => decodeOtlpProtobuf(Uint8Array.of(0x00)), /Invalid field tag/);
  const truncatedTime = new W().len(1, new W().len(2, new W().len(2, Uint8Array.of(0x09, 1, 2))));
  assert400(() => decodeOtlpProtobuf(truncatedTime.u8()), /Truncated 8-byte value/);
  // A length past the end of its enclosing message, though within the buffer.
  assert400(
    () => decodeOtlpProtobuf(Uint8Array.of(0x0a, 0x02, 0x12, 0x05, 0, 0, 0, 0, 0)),
    /runs past the end of its message/,
  );
  // A declared 2 GiB length allocates nothing: it is refused against the bytes that are there.
  assert400(() => decodeOtlpProtobuf(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x07)), /Length/);
  // Resource attributes nested too deep refuse the request.
  const deepResource = new W().len(
    1,
    new W().len(1, new W().len(1, new W().len(1, "k").len(2, nested(40)))),
  );
  assert400(() => decodeOtlpProtobuf(deepResource.u8()), /nested deeper/);
});

Deno.test("OTLP protobuf: every truncation and mutation of a real request is decoded or a 400", async () => {
  const bytes = ProtobufLogsSerializer.serializeRequest(await sdkRecords())!;
  let errors = 0;
  const check = (input: Uint8Array) => {
    try {
      decodeOtlpProtobuf(input);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status !== 400) throw err;
      errors++;
    }
  };
  for (let n = 0; n < bytes.length; n++) check(bytes.subarray(0, n));
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 3000; i++) {
    const copy = bytes.slice();
    for (let k = 0; k < 3; k++) {
      copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    }
    check(copy);
  }
  assert.ok(errors > 100, `some inputs must have been refused (${errors})`);
});

Deno.test("OTLP JSON: malformed input is a clear 400", () => {
  assert400(() => decodeOtlpJson("{"), /Malformed OTLP JSON/);
  assert400(() => decodeOtlpJson("[]"), /not an object/);
  assert400(() => decodeOtlpJson('{"resourceLogs":{}}'), /resourceLogs in request is not an array/);
  assert400(() => decodeOtlpJson('{"resourceLogs":[1]}'), /not an object/);
  assert400(
    () => decodeOtlpJson('{"resourceLogs":[{"resource":{"attributes":[{"key":1}]}}]}'),
    /resource.attributes/,
  );
  assert400(() => decodeOtlpJson(Uint8Array.of(0xff, 0xfe)), /Malformed OTLP JSON/);
});

Deno.test("OTLP answers: empty protobuf, {} in JSON, partialSuccess with the count", async () => {
  const empty = otlpResponse("protobuf");
  assert.equal(empty.status, 200);
  assert.equal(empty.headers.get("content-type"), "application/x-protobuf");
  assert.equal((await empty.bytes()).length, 0);
  assert.equal(await otlpResponse("json").text(), "{}");
  assert.deepEqual(await otlpResponse("json", 3, "too deep").json(), {
    partialSuccess: { rejectedLogRecords: "3", errorMessage: "too deep" },
  });
  // The protobuf partial success, read back field by field, and by the JS exporter's reader.
  const bytes = encodeExportLogsResponse(300, "too deep");
  const r = new ProtoReader(bytes);
  assert.equal(r.tag(), 0x0a);
  const outer = r.enter();
  assert.equal(r.tag(), 0x08);
  assert.equal(r.int64(), 300);
  assert.equal(r.tag(), 0x12);
  assert.equal(r.string(), "too deep");
  r.leave(outer);
  const seen = ProtobufLogsSerializer.deserializeResponse(bytes) as {
    partialSuccess?: { rejectedLogRecords?: unknown; errorMessage?: string };
  };
  assert.equal(Number(seen.partialSuccess?.rejectedLogRecords), 300);
  assert.equal(seen.partialSuccess?.errorMessage, "too deep");
});

Deno.test("OTLP content types", () => {
  assert.equal(otlpFormat("application/x-protobuf"), "protobuf");
  assert.equal(otlpFormat("application/protobuf"), "protobuf");
  assert.equal(otlpFormat("Application/JSON; charset=utf-8"), "json");
  assert.equal(otlpFormat("text/plain"), undefined);
  assert.equal(otlpFormat(null), undefined);
});

Deno.test("OTLP: more records than maxRecords is a 413, however small each is on the wire", () => {
  const empty = new W(); // an empty LogRecord: 2 bytes on the wire
  const body = request(...Array.from({ length: 101 }, () => empty));
  assert.equal(decodeOtlpProtobuf(body, { maxRecords: 101 }).records.length, 101);
  assert.throws(() => decodeOtlpProtobuf(body, { maxRecords: 100 }), (err) => {
    assert.ok(err instanceof HttpError && err.status === 413, String(err));
    assert.match(err.message, /more than 100 records/);
    return true;
  });
  const json = JSON.stringify({
    resourceLogs: [{ scopeLogs: [{ logRecords: Array.from({ length: 101 }, () => ({})) }] }],
  });
  assert.equal(decodeOtlpJson(json, { maxRecords: 101 }).records.length, 101);
  assert.throws(() => decodeOtlp(new TextEncoder().encode(json), "json", { maxRecords: 100 }), {
    status: 413,
  });
});

/** Counts pauses; every check says a pause is due. */
function countingTurns(): { due: () => boolean; pause: () => Promise<void>; pauses: number } {
  const turns = {
    pauses: 0,
    due: () => true,
    pause: () => Promise.resolve(void turns.pauses++),
  };
  return turns;
}

Deno.test("OTLP JSON sliced: a large export gives what decoding it in one go gives, with pauses", async () => {
  const records = Array.from({ length: 3000 }, (_, i) => ({
    timeUnixNano: String(1796054400_000_000_000 + i * 1_000_000),
    severityNumber: 9 + (i % 3) * 4,
    body: i % 7 === 0 ? { kvlistValue: { values: [{ key: "i", value: { intValue: i } }] } } : {
      stringValue: `request ${i} \u00e9 "done"\n`.repeat(1 + (i % 5)),
    },
    attributes: [{ key: "n", value: { intValue: String(i) } }],
  }));
  records.push({ body: { intValue: "bad" } } as never);
  const body = new TextEncoder().encode(JSON.stringify({
    resourceLogs: [
      { resource: { attributes: [{ key: "service.name", value: { stringValue: "a" } }] } },
      {
        scopeLogs: [{ scope: { name: "s" }, logRecords: records.slice(0, 1000) }],
        resource: { attributes: [{ key: "service.name", value: { stringValue: "b" } }] },
      },
      { scopeLogs: [{ logRecords: records.slice(1000) }] },
    ],
  }));
  assert.ok(body.length > 500_000);
  const turns = countingTurns();
  const sliced = await decodeOtlpJsonSliced(body, {}, turns);
  assert.deepEqual(sliced, decodeOtlpJson(body));
  assert.equal(sliced.records.length, 3000);
  assert.equal(sliced.rejected, 1);
  // Parsing steps, then one pause per RECORDS_PER_PAUSE records made.
  assert.ok(turns.pauses >= 3000 / RECORDS_PER_PAUSE + body.length / (64 * 1024) - 2);
  // Small bodies too, and the same refusals.
  assert.deepEqual(
    await decodeOtlpJsonSliced(new TextEncoder().encode('{"resourceLogs":[]}'), {}, turns),
    { records: [], rejected: 0, errorMessage: "" },
  );
  for (const bad of ["{", "[]", '{"resourceLogs":{}}', "{" + " ".repeat(100_000)]) {
    await assert.rejects(
      decodeOtlpJsonSliced(new TextEncoder().encode(bad), {}, turns),
      (err) =>
        err instanceof HttpError && err.status === 400 && /Malformed OTLP JSON/.test(err.message),
    );
  }
  await assert.rejects(
    decodeOtlpJsonSliced(body, { maxRecords: 2000 }, turns),
    (err) => err instanceof HttpError && err.status === 413,
  );
});
