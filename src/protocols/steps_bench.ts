/**
 * The longest main-thread step of one protocol request, run by hand (not part of `deno test`):
 * `deno run --v8-flags=--expose-gc --allow-ffi --allow-read --allow-env
 * src/protocols/steps_bench.ts [KIND...]`.
 *
 * Each kind (OTLP protobuf and JSON, Loki snappy protobuf and JSON, Elasticsearch bulk, and one
 * 16 MiB record in OTLP JSON and in bulk) is a body of about 16 MiB, sent six times through
 * `ProtocolIngest` in this process, in 64 KiB chunks, to a sink that stores nothing. A
 * `setTimeout(0)` probe reads the main thread's CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`
 * through FFI) at every tick; the longest gap between two ticks while a request runs is its
 * longest step. Printed per kind: the first request (code not yet optimised), then the range of
 * requests 2-6, of the longest step of the whole request and of those that began once the body
 * was read (reading it into one buffer is `readWholeBody`'s work), and the median of their thread
 * CPU time per request. A second line gives the wall time of the ingest's turns (4 ms of work,
 * then a pause) once the body is read, GC pauses included.
 *
 * @module
 */

import SnappyJS from "snappyjs";
import { IngestGate } from "../ingest/ingest_gate.ts";
import { ProtocolIngest, type ProtocolRoute, protocolRoute } from "../ingest/protocol_ingest.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import type { Batch } from "../pipeline/batch.ts";
import { ProtoWriter as W } from "./_proto_writer.ts";

const MAX_BODY = 16 * 1024 * 1024;
const TARGET = MAX_BODY - 64 * 1024;
const AT_MS = Date.parse("2026-11-30T10:00:00.000Z");
const LEVELS = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"];
const CHUNK_BYTES = 64 * 1024;
const encoder = new TextEncoder();

/** ~200-byte access-log-like messages, unique per record. */
function message(n: number): string {
  const level = LEVELS[n % LEVELS.length];
  const head = `${level} GET /api/orders/${n} 200 ${n % 977}ms user=u${n % 100} ` +
    `req=${(n * 2654435761 >>> 0).toString(16)} "quoted \\ part"`;
  return head + " " + "x".repeat(Math.max(0, 199 - head.length));
}

/** Records of `per` bytes each until the body is near 16 MiB. */
function count(per: number): number {
  return Math.floor(TARGET / per);
}

function otlpJson(): Uint8Array {
  const one = (n: number) => ({
    timeUnixNano: String(BigInt(AT_MS + n) * 1000000n),
    observedTimeUnixNano: String(BigInt(AT_MS + n) * 1000000n),
    severityNumber: 9,
    severityText: LEVELS[n % LEVELS.length],
    body: { stringValue: message(n) },
    attributes: [
      { key: "user", value: { stringValue: `u${n % 100}` } },
      { key: "status", value: { intValue: 200 } },
    ],
    droppedAttributesCount: 0,
  });
  const per = JSON.stringify(one(99999)).length + 1;
  const records = Array.from({ length: count(per) }, (_, n) => one(n));
  return encoder.encode(JSON.stringify({
    resourceLogs: [{
      resource: {
        attributes: [
          { key: "service.name", value: { stringValue: "checkout" } },
          { key: "host.name", value: { stringValue: "web-3" } },
        ],
      },
      scopeLogs: [{ scope: { name: "bench", version: "1.0.0" }, logRecords: records }],
    }],
  }));
}

/** A length-delimited field `field` holding `parts`, as bytes. */
function lenField(field: number, parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const head = new W().tag(field, 2).varint(size).u8();
  const out = new Uint8Array(head.length + size);
  out.set(head);
  let at = head.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function otlpProtobuf(): Uint8Array {
  const str = (s: string) => new W().len(1, s);
  const kv = (key: string, value: W) => new W().len(1, key).len(2, value);
  const record = (n: number) => {
    const ns = BigInt(AT_MS + n) * 1000000n;
    return new W().fixed64(1, ns).tag(2, 0).varint(9).len(3, "INFO").len(5, str(message(n)))
      .len(6, kv("user", str(`u${n % 100}`)))
      .len(6, kv("status", new W().tag(3, 0).varint(200)))
      .fixed64(11, ns).u8();
  };
  const per = record(99999).length + 3;
  const scope = [new W().len(1, new W().len(1, "bench").len(2, "1.0.0")).u8()];
  const n = count(per);
  for (let i = 0; i < n; i++) scope.push(lenField(2, [record(i)]));
  const resource = new W().len(1, kv("service.name", str("checkout")))
    .len(1, kv("host.name", str("web-3"))).u8();
  return lenField(1, [lenField(1, [resource]), lenField(2, scope)]);
}

function lokiProtobuf(): Uint8Array {
  const entry = (n: number) => {
    const ms = AT_MS + n;
    const ts = new W().tag(1, 0).varint(Math.floor(ms / 1000)).tag(2, 0).varint((ms % 1000) * 1e6);
    return new W().len(1, ts).len(2, message(n)).u8();
  };
  const per = entry(99999).length + 3;
  const stream = [new W().len(1, `{app="shop", env="prod", level="info"}`).u8()];
  const n = count(per);
  for (let i = 0; i < n; i++) stream.push(lenField(2, [entry(i)]));
  return new Uint8Array(SnappyJS.compress(lenField(1, stream)));
}

function lokiJson(): Uint8Array {
  const value = (n: number) => [String(BigInt(AT_MS + n) * 1000000n), message(n)];
  const per = JSON.stringify(value(99999)).length + 1;
  const values = Array.from({ length: count(per) }, (_, n) => value(n));
  return encoder.encode(JSON.stringify({
    streams: [{ stream: { app: "shop", env: "prod", level: "info" }, values }],
  }));
}

function bulk(): Uint8Array {
  const pair = (n: number) =>
    '{"create":{"_index":"checkout"}}\n' + JSON.stringify({
      "@timestamp": new Date(AT_MS + n).toISOString(),
      level: "info",
      message: message(n),
      http: { method: "GET", status_code: 200 },
      user: { id: `u${n % 97}` },
    }) + "\n";
  const per = pair(99999).length;
  let text = "";
  const n = count(per);
  for (let i = 0; i < n; i++) text += pair(i);
  return encoder.encode(text);
}

/** One record whose message is nearly the whole body, with escapes and non-ASCII text. */
function hugeMessage(): string {
  const unit = 'GET /a?b=1 "q" \\ \u00e9t\u00e9\n\tnext ';
  const per = encoder.encode(JSON.stringify(unit)).length - 2;
  return unit.repeat(Math.floor((TARGET - 1024) / per));
}

function otlpJsonOne(): Uint8Array {
  return encoder.encode(JSON.stringify({
    resourceLogs: [{
      scopeLogs: [{ logRecords: [{ severityNumber: 9, body: { stringValue: hugeMessage() } }] }],
    }],
  }));
}

function bulkOne(): Uint8Array {
  return encoder.encode(
    '{"index":{"_index":"big"}}\n' + JSON.stringify({ message: hugeMessage(), n: 1 }) + "\n",
  );
}

const KINDS: Record<string, { path: string; type: string; body: () => Uint8Array }> = {
  "otlp-protobuf": { path: "/v1/logs", type: "application/x-protobuf", body: otlpProtobuf },
  "otlp-json": { path: "/v1/logs", type: "application/json", body: otlpJson },
  "loki-protobuf": {
    path: "/loki/api/v1/push",
    type: "application/x-protobuf",
    body: lokiProtobuf,
  },
  "loki-json": { path: "/loki/api/v1/push", type: "application/json", body: lokiJson },
  "bulk": { path: "/_bulk", type: "application/x-ndjson", body: bulk },
  "otlp-json-one": { path: "/v1/logs", type: "application/json", body: otlpJsonOne },
  "bulk-one": { path: "/_bulk", type: "application/x-ndjson", body: bulkOne },
};

class NullSink extends TestSink {
  readonly name = "null";
  lines = 0;
  write(batch: Batch): boolean {
    this.lines += batch.lines;
    return true;
  }
}

const libc = Deno.dlopen("libc.so.6", {
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
});
const CLOCK_THREAD_CPUTIME_ID = 3;
const timespec = new BigInt64Array(2);

/** The main thread's CPU time in nanoseconds. */
function threadCpuNs(): number {
  libc.symbols.clock_gettime(CLOCK_THREAD_CPUTIME_ID, timespec);
  return Number(timespec[0]) * 1e9 + Number(timespec[1]);
}

/** Sends `body` once; the longest gap between probe ticks and the request's thread CPU, in ms. */
async function once(
  ingest: ProtocolIngest,
  kind: { path: string; type: string },
  body: Uint8Array,
): Promise<{ step: number; afterRead: number; cpu: number; status: number }> {
  let running = true;
  let longest = 0;
  // Steps that began once the whole body was taken from the stream: decoding, storing, answering.
  let longestAfterRead = 0;
  let readAt = Infinity;
  let last = threadCpuNs();
  const tick = () => {
    const now = threadCpuNs();
    longest = Math.max(longest, now - last);
    if (last >= readAt) longestAfterRead = Math.max(longestAfterRead, now - last);
    last = now;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  const started = threadCpuNs();
  // The body comes in 64 KiB chunks, as from a socket.
  let at = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= body.length) {
        readAt = threadCpuNs();
        return controller.close();
      }
      controller.enqueue(body.slice(at, at + CHUNK_BYTES));
      at += CHUNK_BYTES;
    },
  });
  const req = new Request(`http://localhost${kind.path}`, {
    method: "POST",
    body: stream,
    headers: { "content-type": kind.type },
  });
  const route = protocolRoute(req, kind.path) as ProtocolRoute;
  const res = await ingest.handle(req, route, { hostname: "10.0.0.1" });
  // The answer is read as the server sends it, in chunks, without decoding it.
  if (res.status >= 300) console.log(`answer ${res.status}: ${(await res.text()).slice(0, 300)}`);
  else for await (const _ of res.body ?? []);
  const cpu = threadCpuNs() - started;
  running = false;
  await new Promise((resolve) => setTimeout(resolve, 5));
  return {
    step: longest / 1e6,
    afterRead: longestAfterRead / 1e6,
    cpu: cpu / 1e6,
    status: res.status,
  };
}

/**
 * The ingest gate's turns (a pause after 4 ms of work, a `setTimeout(0)` turn), measuring each
 * turn's wall time from the request's first look at the clock, once its body is read.
 */
class MeasuredTurns {
  #clock = -1;
  readonly #turns: number[] = [];

  /** A request starts: its first turn begins at its first look at the clock. */
  request(): void {
    this.#clock = -1;
  }

  due(): boolean {
    if (this.#clock < 0) this.#clock = performance.now();
    return performance.now() - this.#clock > 4;
  }

  async pause(): Promise<void> {
    this.#turns.push(performance.now() - this.#clock);
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#clock = performance.now();
  }

  /** How many turns, and their median, 90th and 99th percentiles and maximum. */
  summary(): string {
    const turns = this.#turns.toSorted((a, b) => a - b);
    const at = (q: number) => turns[Math.min(turns.length - 1, Math.floor(q * turns.length))];
    return `${turns.length}, median ${at(0.5).toFixed(1)}, p90 ${at(0.9).toFixed(1)}, ` +
      `p99 ${at(0.99).toFixed(1)}, max ${at(1).toFixed(1)} ms`;
  }
}

/** "first; min-max of the others" of a measure of the runs. */
function range(runs: { [key: string]: number }[], key: string): string {
  const rest = runs.slice(1).map((r) => r[key]).sort((a, b) => a - b);
  return `${runs[0][key].toFixed(1)}; ${rest[0].toFixed(1)}-${rest[rest.length - 1].toFixed(1)} ms`;
}

const names = Deno.args.length > 0 ? Deno.args : Object.keys(KINDS);
for (const name of names) {
  const kind = KINDS[name];
  const body = kind.body();
  // What making the body left behind is collected before the requests (with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const sink = new NullSink();
  const turns = new MeasuredTurns();
  const ingest = new ProtocolIngest(new IngestGate(sink, { maxBody: MAX_BODY, turns }));
  const runs = [];
  for (let i = 0; i < 6; i++) {
    turns.request();
    runs.push(await once(ingest, kind, body));
  }
  const cpus = runs.slice(1).map((r) => r.cpu).sort((a, b) => a - b);
  console.log(
    `${name}: ${(body.length / 1048576).toFixed(1)} MiB, ${sink.lines / 6} records, status ` +
      `${runs[0].status}; longest step ${range(runs, "step")}; once read ` +
      `${range(runs, "afterRead")}; CPU per request ${cpus[2].toFixed(0)} ms (median of 2-6)`,
  );
  console.log(`  turns (wall time, GC included): ${turns.summary()}`);
}
