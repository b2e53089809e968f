/**
 * Decoding speed of the protocol inputs on 1,000-record requests, run by hand (not part of
 * `deno test`): `deno bench --allow-read --allow-env src/protocols/decode_bench.ts`. Each
 * iteration decodes one request of 1,000 records, so records/s = 1,000 × iter/s. protobufjs
 * (reflection, as FIELD_NOTES measured it) decodes the same OTLP bytes in the same run.
 *
 * @module
 */

import { JsonLogsSerializer, ProtobufLogsSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";
import protobuf from "protobufjs";
import SnappyJS from "snappyjs";
import lokiProto from "winston-loki/src/proto/index.js";
import { decodeBulk } from "./es_bulk.ts";
import { decodeLoki } from "./loki.ts";
import { decodeOtlpJson, decodeOtlpProtobuf } from "./otlp.ts";

const COUNT = 1000;
const MB = 1 << 20;

const exporter = new InMemoryLogRecordExporter();
const provider = new LoggerProvider({
  resource: resourceFromAttributes({
    "service.name": "checkout",
    "service.version": "1.4.2",
    "host.name": "web-3",
    "deployment.environment": "prod",
    "process.pid": 4242,
  }),
  processors: [new SimpleLogRecordProcessor({ exporter })],
});
const logger = provider.getLogger("http", "1.0.0");
for (let i = 0; i < COUNT; i++) {
  logger.emit({
    severityNumber: 9,
    severityText: "INFO",
    body: `GET /api/v1/orders/${i} 200 12ms user=${i % 97} request handled by the checkout worker`,
    attributes: {
      "http.method": "GET",
      "http.route": "/api/v1/orders/:id",
      "http.status_code": 200,
      "user.id": `u${i % 97}`,
      duration_ms: 12.5,
    },
  });
}
const records = exporter.getFinishedLogRecords();
const otlpProto = ProtobufLogsSerializer.serializeRequest(records)!;
const otlpJson = JsonLogsSerializer.serializeRequest(records)!;

const OTLP_PROTO = `
syntax = "proto3";
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message LogRecord {
  fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11; int32 severity_number = 2;
  string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6;
  uint32 dropped_attributes_count = 7; fixed32 flags = 8; bytes trace_id = 9; bytes span_id = 10;
  string event_name = 12;
}
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
`;
const Request = protobuf.parse(OTLP_PROTO).root.lookupType("ExportLogsServiceRequest");

const lokiStream = {
  labels: '{app="checkout", env="prod", host="web-3", level="info"}',
  entries: Array.from({ length: COUNT }, (_, i) => ({
    timestamp: { seconds: 1796054400 + i, nanos: 123_000_000 },
    line: `GET /api/v1/orders/${i} 200 12ms user=${i % 97} request handled by the checkout worker`,
  })),
};
const lokiProtoBody = SnappyJS.compress(
  lokiProto.logproto.PushRequest.encode(
    lokiProto.logproto.PushRequest.create({ streams: [lokiStream] }),
  ).finish(),
);
const lokiJsonBody = new TextEncoder().encode(JSON.stringify({
  streams: [{
    stream: { app: "checkout", env: "prod", host: "web-3", level: "info" },
    values: lokiStream.entries.map((e, i) => [`${1796054400 + i}123000000`, e.line]),
  }],
}));

let bulk = "";
for (let i = 0; i < COUNT; i++) {
  bulk += '{"create":{"_index":"checkout"}}\n' + JSON.stringify({
    "@timestamp": new Date(1796054400000 + i).toISOString(),
    level: "info",
    message: `GET /api/v1/orders/${i} 200 12ms user=${
      i % 97
    } request handled by the checkout worker`,
    http: { method: "GET", status_code: 200 },
    user: { id: `u${i % 97}` },
  }) + "\n";
}
const bulkBody = new TextEncoder().encode(bulk);

const sizes = {
  otlpProto: otlpProto.length,
  otlpJson: otlpJson.length,
  lokiSnappy: lokiProtoBody.length,
  lokiJson: lokiJsonBody.length,
  bulk: bulkBody.length,
};
console.log("request bytes for 1,000 records:", sizes);

Deno.bench("OTLP protobuf, 1,000 records (logboom)", { group: "otlp", baseline: true }, () => {
  if (decodeOtlpProtobuf(otlpProto).records.length !== COUNT) throw new Error("count");
});
Deno.bench(
  "OTLP protobuf, 1,000 records (protobufjs decode, no mapping)",
  { group: "otlp" },
  () => {
    Request.decode(otlpProto);
  },
);
Deno.bench("OTLP JSON, 1,000 records", () => {
  if (decodeOtlpJson(otlpJson).records.length !== COUNT) throw new Error("count");
});
Deno.bench("Loki snappy protobuf, 1,000 entries", () => {
  if (
    decodeLoki(lokiProtoBody, { contentType: "application/x-protobuf", maxBytes: MB }).length !==
      COUNT
  ) {
    throw new Error("count");
  }
});
Deno.bench("Loki JSON, 1,000 entries", () => {
  if (
    decodeLoki(lokiJsonBody, { contentType: "application/json", maxBytes: MB }).length !== COUNT
  ) {
    throw new Error("count");
  }
});
Deno.bench("ES _bulk, 1,000 documents", () => {
  if (decodeBulk(bulkBody).records.length !== COUNT) throw new Error("count");
});
