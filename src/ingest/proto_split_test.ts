import assert from "node:assert/strict";
import { ProtobufLogsSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";
import lokiProto from "winston-loki/src/proto/index.js";
import { decodeLokiProtobuf } from "../protocols/loki.ts";
import { decodeOtlpProtobuf } from "../protocols/otlp.ts";
import { splitRepeated } from "./proto_split.ts";

/** An export from the OpenTelemetry SDK's own serializer: two resources, three scopes. */
function otlpExport(): Uint8Array {
  const records = [];
  for (const [service, scopes] of [["checkout", ["http", "db"]], ["billing", ["jobs"]]] as const) {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ "service.name": service, "host.name": "web-3" }),
      processors: [new SimpleLogRecordProcessor({ exporter })],
    });
    for (const scope of scopes) {
      const logger = provider.getLogger(scope, "1.0.0");
      for (let i = 0; i < 700; i++) {
        logger.emit({
          severityNumber: 9 + (i % 3) * 4,
          body: `${service} ${scope} ${i}`,
          attributes: { i, scope },
        });
      }
    }
    records.push(...exporter.getFinishedLogRecords());
  }
  return ProtobufLogsSerializer.serializeRequest(records)!;
}

Deno.test("splitRepeated: an OTLP export in pieces decodes to the same records, in order, each with its resource and scope", () => {
  const body = otlpExport();
  const whole = decodeOtlpProtobuf(body);
  assert.equal(whole.records.length, 2100);
  const pieces = splitRepeated(body, [1, 2, 2], 256);
  assert.ok(pieces.length >= 9, `${pieces.length} pieces`);
  const records = pieces.flatMap((piece) => {
    const decoded = decodeOtlpProtobuf(piece);
    assert.ok(decoded.records.length <= 256);
    return decoded.records;
  });
  assert.deepEqual(records, whole.records);
  // Within the bound: the message itself.
  assert.deepEqual(splitRepeated(body, [1, 2, 2], 5000), [body]);
});

Deno.test("splitRepeated: a Loki push of many streams and entries in pieces decodes to the same entries", () => {
  const streams = Array.from({ length: 40 }, (_, s) => ({
    labels: `{app="a${s % 3}", level="info"}`,
    entries: Array.from({ length: s * 7 }, (_, i) => ({
      timestamp: { seconds: 1796054400 + i, nanos: 5 },
      line: `stream ${s} entry ${i}`,
    })),
  }));
  const body = lokiProto.logproto.PushRequest.encode(
    lokiProto.logproto.PushRequest.create({ streams }),
  ).finish();
  const whole = decodeLokiProtobuf(body);
  const pieces = splitRepeated(body, [1, 2], 100);
  assert.ok(pieces.length > 50);
  assert.deepEqual(pieces.flatMap((piece) => decodeLokiProtobuf(piece)), whole);
});

Deno.test("splitRepeated: bytes that are not well-formed are left whole for the decoder to refuse", () => {
  for (
    const bad of [
      Uint8Array.from([0x0a, 0x7f, 0x01]), // a length past the end
      Uint8Array.from([0x0b, 0x00]), // a group
      Uint8Array.from([0x0a, 0x02, 0x12, 0x05]), // an inner length past its message
      Uint8Array.from([0x80, 0x80, 0x80]), // a varint that does not end
    ]
  ) {
    assert.deepEqual(splitRepeated(bad, [1, 2, 2], 1), [bad]);
  }
});
