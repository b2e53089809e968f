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
import { HttpError } from "../net/http_error.ts";
import { ProtobufError } from "../protocols/protobuf.ts";
import { splitRepeated, splitRepeatedSliced } from "./proto_split.ts";

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

Deno.test("splitRepeated: bytes that are not well-formed along the path are refused, as the decoder refuses them", () => {
  for (
    const bad of [
      Uint8Array.from([0x0a, 0x7f, 0x01]), // a length past the end
      Uint8Array.from([0x0b, 0x00]), // a group
      Uint8Array.from([0x0a, 0x02, 0x12, 0x05]), // an inner length past its message
      Uint8Array.from([0x80, 0x80, 0x80]), // a varint that does not end
    ]
  ) {
    assert.throws(() => splitRepeated(bad, [1, 2, 2], 1), ProtobufError);
    assert.throws(() => decodeOtlpProtobuf(bad), HttpError);
  }
});

/** The records of `body` decoded whole, or the fact that the decoder refused it. */
function outcome(decode: () => unknown): unknown {
  try {
    return decode();
  } catch (err) {
    if (err instanceof HttpError || err instanceof ProtobufError) return "refused";
    throw err;
  }
}

Deno.test("splitRepeated: damaged exports decode in pieces exactly as whole, or are refused as whole", () => {
  const body = otlpExport().subarray(0, 6000);
  let seed = 5;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let refused = 0;
  for (let i = 0; i < 1500; i++) {
    const copy = body.slice(0, Math.floor(random() * body.length) + 1);
    for (let k = 0; k < 2; k++) copy[Math.floor(random() * copy.length)] = random() * 256;
    const whole = outcome(() => decodeOtlpProtobuf(copy).records);
    const pieces = outcome(() =>
      splitRepeated(copy, [1, 2, 2], 7).flatMap((piece) => decodeOtlpProtobuf(piece).records)
    );
    assert.deepEqual(pieces, whole);
    if (whole === "refused") refused++;
  }
  assert.ok(refused > 100, `${refused} refused`);
});

Deno.test("splitRepeated: pieces stay within their bytes, and entries without records count", () => {
  const body = otlpExport();
  const pieces = splitRepeated(body, [1, 2, 2], 100_000, 4096);
  assert.ok(pieces.length > body.length / 4096);
  for (const piece of pieces) assert.ok(piece.length <= 4096 + 200, `${piece.length} bytes`);
  assert.deepEqual(
    pieces.flatMap((piece) => decodeOtlpProtobuf(piece).records),
    decodeOtlpProtobuf(body).records,
  );
  // 20,000 empty streams: no piece holds more than 100 of them.
  const empty = new Uint8Array(40_000).fill(0).map((_, i) => i % 2 === 0 ? 0x0a : 0);
  const emptyPieces = splitRepeated(empty, [1, 2], 100);
  assert.equal(emptyPieces.length, 200);
  assert.deepEqual(emptyPieces.flatMap((piece) => decodeLokiProtobuf(piece)), []);
});

Deno.test("splitRepeatedSliced: the same pieces, with pauses between steps of the walk", async () => {
  const body = otlpExport();
  let pauses = 0;
  const turns = { due: () => true, pause: () => Promise.resolve(void pauses++) };
  const pieces: Uint8Array[] = [];
  for await (const piece of splitRepeatedSliced(body, [1, 2, 2], 64, turns)) pieces.push(piece);
  assert.deepEqual(pieces, splitRepeated(body, [1, 2, 2], 64));
  assert.ok(pauses >= pieces.length - 1, `${pauses} pauses for ${pieces.length} pieces`);
});
