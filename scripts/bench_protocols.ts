/**
 * The `protocols` benchmark scenario (`deno task bench -scenario protocols`): the same records
 * sent to one logboom server, in the same round, as
 *
 * - `text`: lines to `/api/v1/ingest` (plain, and gzip);
 * - `ndjson`: `{"line": ...}` records, gzip, to `/api/v1/ingest`, as Fluent Bit's `out_http`
 *   sends with `format json_lines`;
 * - `otlp`: OTLP/HTTP protobuf to `/v1/logs`, one resource and scope per request, each record
 *   with a time, severity, body and two attributes (as a collector batches them);
 * - `loki`: snappy protobuf pushes to `/loki/api/v1/push`, one stream per level (as Promtail).
 *
 * Each request carries 8,192 records (a collector's batch); 4 clients send at once, each request
 * answered once stored. Reported per kind: records/s, MB/s of the messages (the bytes stored),
 * MB/s on the wire, and the server's CPU seconds per GB of messages. Bar: NDJSON at least half of
 * text's MB/s, both gzip (median over rounds). The stored file's size is checked after every kind.
 *
 * `LOGBOOM_BENCH_PROFILE=DIR` runs the server with `--cpu-prof --cpu-prof-dir=DIR` (one profile
 * per round, written at its exit); `LOGBOOM_BENCH_KINDS=ndjson,text-gzip` runs only those kinds;
 * `LOGBOOM_BENCH_RECORDS=N` sets the records per kind (default 1,048,576).
 *
 * @module
 */

import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import SnappyJS from "snappyjs";
import { median } from "./_median.ts";
import { cpuSeconds, drain, freePort } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const encoder = new TextEncoder();
const PER_REQUEST = 8192;
const CLIENTS = 4;
const DISTINCT_BODIES = 8;
const MIN_NDJSON_RATIO = 0.5;
const AT_MS = Date.parse("2026-11-30T10:00:00.000Z");
const LEVELS = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"];
const SEVERITY: Record<string, number> = { DEBUG: 5, INFO: 9, WARN: 13, ERROR: 17 };

/** A kind of ingest: its route, headers and the bodies it cycles through. */
interface Kind {
  name: string;
  path: string;
  headers: Record<string, string>;
  bodies: Uint8Array<ArrayBuffer>[];
  /** Answers that mean stored. */
  ok: number;
}

interface Result {
  seconds: number;
  cpu: number;
  retries: number;
  wireBytes: number;
}

/** ~100-byte access-log-like messages of a body, unique per record. */
function messages(body: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < PER_REQUEST; i++) {
    const n = body * PER_REQUEST + i;
    const level = LEVELS[n % LEVELS.length];
    const head = `${level} GET /api/orders/${n} 200 ${n % 977}ms user=u${n % 100} ` +
      `req=${(n * 2654435761 >>> 0).toString(16)}`;
    out.push(head + " " + "x".repeat(Math.max(0, 99 - head.length)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A minimal protobuf writer for the requests.

class Pb {
  readonly bytes: number[] = [];
  varint(n: number): this {
    while (n >= 0x80) {
      this.bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.bytes.push(n);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  len(field: number, body: Pb | string): this {
    const b = typeof body === "string" ? encoder.encode(body) : body.bytes;
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  fixed64(field: number, n: bigint): this {
    this.tag(field, 1);
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((n >> (8n * i)) & 0xffn));
    return this;
  }
  u8(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.bytes);
  }
}

function otlpBody(lines: string[], body: number): Uint8Array<ArrayBuffer> {
  const str = (s: string) => new Pb().len(1, s);
  const kv = (key: string, value: Pb) => new Pb().len(1, key).len(2, value);
  const scope = new Pb().len(1, new Pb().len(1, "bench").len(2, "1.0.0"));
  lines.forEach((line, i) => {
    const n = body * PER_REQUEST + i;
    const level = line.slice(0, line.indexOf(" "));
    const ns = BigInt(AT_MS + n) * 1000000n;
    scope.len(
      2,
      new Pb().fixed64(1, ns).tag(2, 0).varint(SEVERITY[level]).len(3, level).len(5, str(line))
        .len(6, kv("user", str(`u${n % 100}`)))
        .len(6, kv("status", new Pb().tag(3, 0).varint(200)))
        .fixed64(11, ns),
    );
  });
  const resource = new Pb().len(1, kv("service.name", str("checkout")))
    .len(1, kv("host.name", str("web-3")));
  return new Pb().len(1, new Pb().len(1, resource).len(2, scope)).u8();
}

function lokiBody(lines: string[], body: number): Uint8Array<ArrayBuffer> {
  const streams = new Map<string, Pb>();
  lines.forEach((line, i) => {
    const n = body * PER_REQUEST + i;
    const level = line.slice(0, line.indexOf(" ")).toLowerCase();
    let stream = streams.get(level);
    if (stream === undefined) {
      stream = new Pb().len(1, `{app="shop", env="prod", level="${level}"}`);
      streams.set(level, stream);
    }
    const ms = AT_MS + n;
    const ts = new Pb().tag(1, 0).varint(Math.floor(ms / 1000)).tag(2, 0).varint((ms % 1000) * 1e6);
    stream.len(2, new Pb().len(1, ts).len(2, line));
  });
  const request = new Pb();
  for (const stream of streams.values()) request.len(1, stream);
  return new Uint8Array(SnappyJS.compress(request.u8()));
}

/** The kinds, each over the same messages. */
function kinds(only: Set<string> | undefined): { kinds: Kind[]; messageBytes: number } {
  const all = Array.from({ length: DISTINCT_BODIES }, (_, b) => messages(b));
  const text = all.map((lines) => encoder.encode(lines.join("\n") + "\n"));
  const ndjson = all.map((lines) =>
    encoder.encode(lines.map((line) => JSON.stringify({ line })).join("\n") + "\n")
  );
  const gz = (b: Uint8Array) => new Uint8Array(gzipSync(b, { level: 1 }));
  const list: Kind[] = [
    { name: "text", path: "/api/v1/ingest?source=bench", headers: {}, bodies: text, ok: 200 },
    {
      name: "text-gzip",
      path: "/api/v1/ingest?source=bench",
      headers: { "content-encoding": "gzip" },
      bodies: text.map(gz),
      ok: 200,
    },
    {
      name: "ndjson-gzip",
      path: "/api/v1/ingest?source=bench",
      headers: { "content-type": "application/x-ndjson", "content-encoding": "gzip" },
      bodies: ndjson.map(gz),
      ok: 200,
    },
    {
      name: "otlp-protobuf",
      path: "/v1/logs",
      headers: { "content-type": "application/x-protobuf" },
      bodies: all.map(otlpBody),
      ok: 200,
    },
    {
      name: "loki-protobuf",
      path: "/loki/api/v1/push",
      headers: { "content-type": "application/x-protobuf" },
      bodies: all.map(lokiBody),
      ok: 204,
    },
  ];
  return {
    kinds: list.filter((kind) => only === undefined || only.has(kind.name)),
    // Each body's messages with their newlines: what the file gains per request.
    messageBytes: text[0].length,
  };
}

interface BenchServer {
  url: string;
  pid: number;
  file: string;
  stop(): Promise<void>;
}

async function startServer(profileDir: string | undefined): Promise<BenchServer> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-protocols-" });
  const http = freePort();
  const file = `${dir}/out.log`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
      "--allow-net",
      "--allow-write",
      `--allow-read=${dir}`,
      `${root}main.ts`,
      "-port",
      String(freePort()),
      "-http",
      `127.0.0.1:${http}`,
      "-logFile",
      file,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = drain(child.stderr, "Listening on");
  if (!(await stderr.seen)) throw new Error(`Server did not start:\n${stderr.text()}`);
  return {
    url: `http://127.0.0.1:${http}`,
    pid: child.pid,
    file,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await stderr.done;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Sends `requests` bodies of `kind` from CLIENTS clients at once, each waiting for its answer. */
async function drive(server: BenchServer, kind: Kind, requests: number): Promise<Result> {
  let next = 0;
  let retries = 0;
  let wireBytes = 0;
  const cpuBefore = await cpuSeconds(server.pid);
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    for (let r = next++; r < requests; r = next++) {
      const body = kind.bodies[r % kind.bodies.length];
      for (;;) {
        const res = await fetch(server.url + kind.path, {
          method: "POST",
          body,
          headers: kind.headers,
        });
        const answer = await res.text();
        if (res.status === kind.ok) break;
        if (res.status !== 503) {
          throw new Error(`${kind.name}: ${res.status} ${answer.slice(0, 300)}`);
        }
        retries++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      wireBytes += body.length;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const cpu = await cpuSeconds(server.pid) - cpuBefore;
  return { seconds, cpu, retries, wireBytes };
}

/** Runs the scenario; returns the bars missed. */
export async function benchProtocols(rounds: number): Promise<string[]> {
  const only = Deno.env.get("LOGBOOM_BENCH_KINDS");
  const records = Number(Deno.env.get("LOGBOOM_BENCH_RECORDS") ?? 1 << 20);
  const requests = Math.max(1, Math.round(records / PER_REQUEST));
  const { kinds: list, messageBytes } = kinds(only ? new Set(only.split(",")) : undefined);
  const total = requests * PER_REQUEST;
  const totalBytes = requests * messageBytes;
  console.log(
    `Protocols: ${total} records (${(totalBytes / 1e6).toFixed(0)} MB of ~100-byte messages) ` +
      `per kind, ${PER_REQUEST} per request, ${CLIENTS} clients, ${rounds} rounds; ` +
      `kinds ${list.map((k) => k.name).join(", ")}`,
  );
  const rates = new Map<string, number[]>(list.map((k) => [k.name, []]));
  const profileDir = Deno.env.get("LOGBOOM_BENCH_PROFILE");
  for (let round = 0; round < rounds; round++) {
    const server = await startServer(profileDir);
    try {
      let stored = 0;
      for (const kind of list) {
        const r = await drive(server, kind, requests);
        stored += totalBytes;
        const size = (await Deno.stat(server.file)).size;
        if (size !== stored) throw new Error(`${kind.name}: stored ${size} of ${stored} bytes`);
        const mbs = totalBytes / 1e6 / r.seconds;
        rates.get(kind.name)!.push(mbs);
        console.log(
          `  ${kind.name.padEnd(14)} ${
            (total / r.seconds / 1e3).toFixed(0).padStart(5)
          }k records/s ` +
            `${mbs.toFixed(1).padStart(6)} MB/s of messages ` +
            `${(r.wireBytes / 1e6 / r.seconds).toFixed(1).padStart(6)} MB/s on the wire, ` +
            `server CPU ${(r.cpu / (totalBytes / 1e9)).toFixed(1)} s/GB` +
            (r.retries > 0 ? ` (${r.retries} 503s)` : ""),
        );
      }
    } finally {
      await server.stop();
    }
  }
  const summary = [...rates].map(([name, r]) => `${name} ${median(r).toFixed(1)}`).join(", ");
  console.log(`Medians, MB/s of messages: ${summary}`);
  const ndjson = rates.get("ndjson-gzip");
  const text = rates.get("text-gzip");
  if (ndjson === undefined || text === undefined) return [];
  const ratios = ndjson.map((r, i) => r / text[i]);
  const ratio = median(ratios);
  console.log(
    `NDJSON/text (both gzip) per round ${ratios.map((r) => r.toFixed(2)).join(" ")} ` +
      `(median ${ratio.toFixed(2)}, bar ${MIN_NDJSON_RATIO})`,
  );
  return ratio < MIN_NDJSON_RATIO
    ? [`NDJSON ingest ${ratio.toFixed(2)} of text's MB/s < ${MIN_NDJSON_RATIO}`]
    : [];
}

if (import.meta.main) {
  const missed = await benchProtocols(Number(Deno.args[0] ?? 1));
  if (missed.length > 0) console.log(`Bar missed: ${missed.join("; ")}`);
}
