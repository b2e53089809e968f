/**
 * End-to-end tests of the protocol inputs with the sender libraries people run, from npm, against
 * the real program: the OpenTelemetry JS logs SDK with its OTLP/HTTP exporters (JSON and
 * protobuf), pino-loki, winston-loki (its default snappy protobuf, through the native `snappy`
 * addon: needs --allow-ffi) and pino-elasticsearch (needs --allow-sys=osRelease). pino itself reads
 * the host name when it loads (--allow-sys=hostname). `deno task test` grants all three.
 *
 * Every record must be stored once, with its time, level and fields (`-format json`).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { type Server, startServer } from "./_server.ts";
import { until } from "./_http.ts";

const TOKEN = "s3cret-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const COUNT = 300;

interface StoredLine {
  ts: string;
  level?: string;
  source: string;
  host: string;
  time?: string;
  line: string;
  fields?: Record<string, unknown>;
}

async function stored(server: Server): Promise<StoredLine[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(join(server.dir, "aggregated_logs.txt"));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  // Read while the server writes: a last line without its newline is not stored yet.
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** Waits until `count` lines are stored (senders that do not say when they are done). */
async function storedCount(server: Server, count: number): Promise<StoredLine[]> {
  let lines: StoredLine[] = [];
  await until(
    async () => (lines = await stored(server)).length >= count,
    () => `${lines.length} of ${count} lines stored; stderr:\n${server.stderr()}`,
    20_000,
  );
  return lines;
}

function requirePermission(descriptor: Deno.PermissionDescriptor, flag: string): void {
  assert.equal(
    Deno.permissions.querySync(descriptor).state,
    "granted",
    `this test needs ${flag} (deno task test grants it)`,
  );
}

function serve(): Promise<Server> {
  return startServer(["-format", "json", "-token", TOKEN]);
}

const LEVELS = ["debug", "info", "warn", "error"] as const;
const SEVERITY = { debug: 5, info: 9, warn: 13, error: 17 } as const;

/** Emits COUNT records through the OpenTelemetry SDK and the given exporter, then flushes. */
async function otlpSend(
  exporter: ConstructorParameters<typeof BatchLogRecordProcessor>[0]["exporter"],
) {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({
      "service.name": "checkout",
      "host.name": "web-3",
      "deployment.environment": "prod",
    }),
    processors: [
      new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 64, scheduledDelayMillis: 20 }),
    ],
  });
  const logger = provider.getLogger("orders", "1.2.0");
  const start = Date.parse("2026-11-30T10:00:00.000Z");
  for (let i = 0; i < COUNT; i++) {
    const level = LEVELS[i % 4];
    logger.emit({
      timestamp: start + i,
      severityNumber: SEVERITY[level],
      severityText: level.toUpperCase(),
      body: i === 7 ? `order ${i} failed\n  at pay (pay.js:3)\n` : `order ${i}`,
      attributes: { "order.id": i, user: `u${i % 10}`, ok: i % 2 === 0 },
    });
  }
  await provider.forceFlush();
  await provider.shutdown();
  return start;
}

function checkOtlp(lines: StoredLine[], start: number): void {
  assert.equal(lines.length, COUNT, "every record once");
  const seen = new Set<number>();
  for (const line of lines) {
    const i = Number(line.fields?.["order.id"]);
    assert.ok(!seen.has(i), `record ${i} twice`);
    seen.add(i);
    assert.equal(line.source, "checkout");
    assert.equal(line.host, "web-3");
    assert.equal(line.level, LEVELS[i % 4]);
    assert.equal(line.time, new Date(start + i).toISOString());
    assert.equal(
      line.line,
      i === 7 ? "order 7 failed\\n  at pay (pay.js:3)" : `order ${i}`,
    );
    assert.deepEqual(line.fields, {
      "service.name": "checkout",
      "host.name": "web-3",
      "deployment.environment": "prod",
      "scope.name": "orders",
      "scope.version": "1.2.0",
      "order.id": i,
      user: `u${i % 10}`,
      ok: i % 2 === 0,
    });
  }
  assert.equal(seen.size, COUNT);
}

Deno.test("OTLP: the OpenTelemetry logs SDK's HTTP/JSON exporter, every record once with time, level and fields", async () => {
  await using server = await serve();
  const { OTLPLogExporter } = await import("@opentelemetry/exporter-logs-otlp-http");
  const exporter = new OTLPLogExporter({ url: `${server.url}/v1/logs`, headers: AUTH });
  const start = await otlpSend(exporter);
  // The exporter's export resolved: acknowledged means stored, no waiting.
  checkOtlp(await stored(server), start);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("OTLP: the OpenTelemetry logs SDK's HTTP/protobuf exporter, gzip, every record once", async () => {
  await using server = await serve();
  const { OTLPLogExporter } = await import("@opentelemetry/exporter-logs-otlp-proto");
  const exporter = new OTLPLogExporter({
    url: `${server.url}/v1/logs`,
    headers: AUTH,
    // deno-lint-ignore no-explicit-any
    compression: "gzip" as any,
  });
  const start = await otlpSend(exporter);
  checkOtlp(await stored(server), start);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("Loki: pino-loki's JSON pushes, labels as fields, hostname as host, every record once", async () => {
  requirePermission({ name: "sys", kind: "hostname" }, "--allow-sys=hostname");
  await using server = await serve();
  const { default: pino } = await import("pino");
  const { pinoLoki } = await import("pino-loki");
  const transport = pinoLoki({
    host: server.url,
    headers: AUTH,
    labels: { app: "shop", env: "prod" },
    batching: { interval: 0.05 },
  });
  const logger = pino({ level: "debug", base: { hostname: "app-host-1" } }, transport);
  const levels = ["debug", "info", "warn", "error"] as const;
  for (let i = 0; i < COUNT; i++) {
    logger[levels[i % 4]]({ orderId: i, meta: { trace_id: `t${i}` } }, `order ${i}`);
  }
  const lines = await storedCount(server, COUNT);
  transport.end();
  assert.equal(lines.length, COUNT, "every record once");
  const seen = new Set<number>();
  for (const line of lines) {
    // pino-loki sends pino's JSON (without hostname) as the line.
    const record = JSON.parse(line.line);
    const i = record.orderId;
    assert.ok(!seen.has(i), `record ${i} twice`);
    seen.add(i);
    assert.equal(record.msg, `order ${i}`);
    assert.equal(line.source, "shop");
    assert.equal(line.host, "app-host-1");
    assert.equal(line.level, levels[i % 4]);
    assert.equal(line.time, new Date(record.time).toISOString());
    assert.deepEqual(line.fields, {
      level: { debug: "debug", info: "info", warn: "warning", error: "error" }[levels[i % 4]],
      hostname: "app-host-1",
      app: "shop",
      env: "prod",
      trace_id: `t${i}`,
    });
  }
  assert.equal((await server.stop()).code, 0);
});

Deno.test("Loki: winston-loki in its default snappy protobuf mode (no Content-Encoding), every record once", async () => {
  requirePermission({ name: "ffi" }, "--allow-ffi");
  await using server = await serve();
  const { default: winston } = await import("winston");
  const { default: LokiTransport } = await import("winston-loki");
  const transport = new LokiTransport({
    host: server.url,
    headers: AUTH,
    labels: { app: "billing", host: "node-7" },
    replaceTimestamp: false,
    gracefulShutdown: false,
    interval: 0.05,
  });
  // deno-lint-ignore no-explicit-any
  const contentType = (transport as any).batcher.contentType;
  assert.equal(contentType, "application/x-protobuf", "winston-loki fell back to JSON");
  const logger = winston.createLogger({ level: "debug", transports: [transport] });
  const start = Date.parse("2026-11-30T10:00:00.000Z");
  const levels = ["debug", "info", "warn", "error"] as const;
  for (let i = 0; i < COUNT; i++) {
    logger.log({
      level: levels[i % 4],
      message: `invoice ${i}`,
      timestamp: new Date(start + i).toISOString(),
      invoice: i,
    });
  }
  await transport.flush();
  // winston-loki's flush resolves once the push was answered: stored.
  const lines = await stored(server);
  await transport.close();
  assert.equal(lines.length, COUNT, "every record once");
  const seen = new Set<number>();
  for (const line of lines) {
    const i = Number(/^invoice (\d+) /.exec(line.line)![1]);
    assert.ok(!seen.has(i), `record ${i} twice`);
    seen.add(i);
    assert.equal(line.line, `invoice ${i} {"level":"${levels[i % 4]}","invoice":${i}}`);
    assert.equal(line.source, "billing");
    assert.equal(line.host, "node-7");
    assert.equal(line.level, levels[i % 4]);
    assert.equal(line.time, new Date(start + i).toISOString());
    assert.deepEqual(line.fields, { level: levels[i % 4], app: "billing", host: "node-7" });
  }
  assert.equal((await server.stop()).code, 0);
});

Deno.test("Loki: winston-loki and pino-loki with basic auth, the token as the password", async () => {
  requirePermission({ name: "ffi" }, "--allow-ffi");
  requirePermission({ name: "sys", kind: "hostname" }, "--allow-sys=hostname");
  await using server = await serve();
  const { default: winston } = await import("winston");
  const { default: LokiTransport } = await import("winston-loki");
  const transport = new LokiTransport({
    host: server.url,
    basicAuth: `promtail:${TOKEN}`,
    labels: { app: "billing" },
    gracefulShutdown: false,
    interval: 0.05,
  });
  const logger = winston.createLogger({ transports: [transport] });
  for (let i = 0; i < 20; i++) logger.info(`winston ${i}`);
  await transport.flush();
  await transport.close();
  const { default: pino } = await import("pino");
  const { pinoLoki } = await import("pino-loki");
  const pinoTransport = pinoLoki({
    host: server.url,
    basicAuth: { username: "tenant-1", password: TOKEN },
    labels: { app: "shop" },
    batching: { interval: 0.05 },
  });
  const pinoLogger = pino({ base: {} }, pinoTransport);
  for (let i = 0; i < 20; i++) pinoLogger.info(`pino ${i}`);
  const lines = await storedCount(server, 40);
  pinoTransport.end();
  assert.deepEqual(
    lines.filter((l) => l.source === "billing").map((l) => l.line.split(" ").slice(0, 2).join(" ")),
    Array.from({ length: 20 }, (_, i) => `winston ${i}`),
  );
  assert.deepEqual(
    lines.filter((l) => l.source === "shop").map((l) => JSON.parse(l.line).msg),
    Array.from({ length: 20 }, (_, i) => `pino ${i}`),
  );
  assert.equal((await server.stop()).code, 0);
});

Deno.test("Every route takes the token as Bearer, as Basic's password and as an ApiKey; anything else is a 401", async () => {
  await using server = await serve();
  const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  const accepted = [
    `Bearer ${TOKEN}`,
    `Basic ${b64(`any-user:${TOKEN}`)}`,
    `basic ${b64(`:${TOKEN}`)}`,
    `ApiKey ${TOKEN}`,
    `ApiKey ${b64(`filebeat-id:${TOKEN}`)}`,
  ];
  const refused = [
    `Bearer ${TOKEN}x`,
    `Basic ${b64(`${TOKEN}:`)}`,
    `Basic ${b64(TOKEN)}`,
    `Basic ${b64("user:wrong")}`,
    `Basic ${TOKEN}`,
    `ApiKey ${b64(TOKEN)}`,
    `ApiKey ${b64("id:wrong")}`,
    `Token ${TOKEN}`,
  ];
  const routes: [string, () => RequestInit][] = [
    ["/api/v1/ingest?source=auth", () => ({ method: "POST", body: "line\n" })],
    ["/loki/api/v1/push", () => ({
      method: "POST",
      body: '{"streams":[{"stream":{"app":"auth"},"values":[["1","x"]]}]}',
      headers: { "content-type": "application/json" },
    })],
    ["/_bulk", () => ({ method: "POST", body: '{"index":{"_index":"auth"}}\n{"msg":"x"}\n' })],
    ["/api/v1/agents", () => ({ method: "GET" })],
  ];
  for (const [path, init] of routes) {
    for (const authorization of [...accepted, ...refused]) {
      const request = init();
      const headers = { ...request.headers as Record<string, string>, authorization };
      const res = await fetch(`${server.url}${path}`, { ...request, headers });
      await res.body?.cancel();
      const want = accepted.includes(authorization) ? [200, 204] : [401];
      assert.ok(want.includes(res.status), `${path} with ${authorization}: ${res.status}`);
    }
  }
  // Each accepted header stored its line once on each ingest route.
  assert.equal((await stored(server)).length, accepted.length * 3);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("Protocol routes honour the token: 401 without it, nothing stored", async () => {
  await using server = await serve();
  const requests: [string, RequestInit][] = [
    ["/v1/logs", { method: "POST", body: "{}", headers: { "content-type": "application/json" } }],
    ["/loki/api/v1/push", {
      method: "POST",
      body: '{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}]}',
      headers: { "content-type": "application/json" },
    }],
    ["/_bulk", { method: "POST", body: '{"index":{"_index":"a"}}\n{"msg":"x"}\n' }],
    ["/", { method: "GET" }],
  ];
  for (const [path, init] of requests) {
    const res = await fetch(`${server.url}${path}`, init);
    assert.equal(res.status, 401, path);
    await res.body?.cancel();
  }
  assert.deepEqual(await stored(server), []);
  assert.equal((await server.stop()).code, 0);
});

// Last in the file, without the ops sanitizer: the Elasticsearch client's undici keeps a shared
// timer tick (its connect timeouts) running for up to a second after every socket is closed.
Deno.test({
  name:
    "Elasticsearch: pino-elasticsearch probes and bulk-indexes, the index as source, every record once",
  sanitizeOps: false,
}, async () => {
  requirePermission({ name: "sys", kind: "osRelease" }, "--allow-sys=osRelease");
  requirePermission({ name: "sys", kind: "hostname" }, "--allow-sys=hostname");
  await using server = await serve();
  const { default: pino } = await import("pino");
  const mod = await import("pino-elasticsearch");
  // deno-lint-ignore no-explicit-any
  const pinoElastic = (mod.default as any).default ?? mod.default;
  // pino-elasticsearch's own client, kept to be closed at the end (its sockets hold timers).
  const { Client, HttpConnection } = await import("@elastic/elasticsearch");
  const clients: InstanceType<typeof Client>[] = [];
  class ClosableClient extends Client {
    constructor(options: ConstructorParameters<typeof Client>[0]) {
      super(options);
      clients.push(this);
    }
  }
  const stream = pinoElastic({
    index: "app-logs",
    node: server.url,
    esVersion: 8,
    flushBytes: 4096,
    flushInterval: 50,
    auth: { bearer: TOKEN },
    // node:http rather than undici, whose shared timer tick outlives a closed client by a second.
    Connection: HttpConnection,
  }, { Client: ClosableClient });
  const errors: unknown[] = [];
  stream.on("insertError", (err: unknown) => errors.push(err));
  stream.on("error", (err: unknown) => errors.push(err));
  // Once the bulk helper finished: every bulk request answered (and the index refreshed).
  const inserted = new Promise<{ successful: number; failed: number }>((resolve) =>
    stream.on("insert", resolve)
  );
  const logger = pino({ level: "debug", base: { hostname: "api-2" } }, stream);
  const levels = ["debug", "info", "warn", "error"] as const;
  for (let i = 0; i < COUNT; i++) {
    logger[levels[i % 4]]({ req: { id: i, path: `/orders/${i}` } }, `request ${i}`);
  }
  stream.end();
  const stats = await inserted;
  await Promise.all(clients.map((client) => client.close()));
  assert.equal(stats.successful, COUNT);
  assert.equal(stats.failed, 0);
  const lines = await stored(server);
  assert.deepEqual(errors, []);
  assert.equal(lines.length, COUNT, "every record once");
  const seen = new Set<number>();
  for (const line of lines) {
    const i = Number(line.fields?.["req.id"]);
    assert.ok(!seen.has(i), `record ${i} twice`);
    seen.add(i);
    assert.equal(line.line, `request ${i}`);
    assert.equal(line.source, "app-logs");
    assert.equal(line.host, "api-2");
    assert.equal(line.level, levels[i % 4]);
    assert.ok(line.time !== undefined, "the document's time");
    assert.equal(line.fields?.["req.path"], `/orders/${i}`);
    assert.equal(line.fields?.hostname, "api-2");
  }
  assert.equal((await server.stop()).code, 0);
});

// Without the ops sanitizer, as the test above: the client's sockets hold timers for a while.
Deno.test({
  name:
    "Elasticsearch: the official client with an API key (as given, or id and key) or a user and password, the token as the secret",
  sanitizeOps: false,
}, async () => {
  requirePermission({ name: "sys", kind: "osRelease" }, "--allow-sys=osRelease");
  await using server = await serve();
  const { Client, HttpConnection } = await import("@elastic/elasticsearch");
  const auths = [
    { apiKey: TOKEN },
    { apiKey: { id: "filebeat", api_key: TOKEN } },
    { username: "elastic", password: TOKEN },
  ];
  for (const [n, auth] of auths.entries()) {
    const client = new Client({ node: server.url, auth, Connection: HttpConnection });
    try {
      const result = await client.bulk({
        operations: [{ create: { _index: `client-${n}` } }, { message: `sent with auth ${n}` }],
      });
      assert.equal(result.errors, false);
    } finally {
      await client.close();
    }
  }
  // An answer of more than 1,024 items streams (chunked): the client reads it whole.
  const many = new Client({ node: server.url, auth: auths[0], Connection: HttpConnection });
  try {
    const result = await many.bulk({
      operations: Array.from({ length: 1500 }, (_, i) => [{ create: { _index: "many" } }, {
        message: `doc ${i}`,
      }]).flat(),
    });
    assert.equal(result.errors, false);
    assert.equal(result.items.length, 1500);
    assert.equal(result.items[1499].create?.status, 201);
  } finally {
    await many.close();
  }
  const wrong = new Client({
    node: server.url,
    auth: { username: "elastic", password: "not-the-token" },
    Connection: HttpConnection,
  });
  try {
    await assert.rejects(
      wrong.bulk({ operations: [{ create: { _index: "refused" } }, { message: "no" }] }),
      (err: { meta?: { statusCode?: number } }) => err.meta?.statusCode === 401,
    );
  } finally {
    await wrong.close();
  }
  const lines = await stored(server);
  assert.deepEqual(
    lines.filter((l) => l.source !== "many").map((l) => [l.source, l.line]),
    auths.map((_, n) => [`client-${n}`, `sent with auth ${n}`]),
  );
  assert.equal(lines.filter((l) => l.source === "many").length, 1500);
  assert.equal((await server.stop()).code, 0);
});
