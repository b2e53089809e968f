/**
 * Captures what winston-loki (6.1.7, its default protobuf mode, compressed by the native `snappy`
 * package it loads) puts on the wire, into `winston_loki.snappy` and `winston_loki.json` (the
 * request's headers) beside this file, for `loki_test.ts`. Run by hand; the native addon needs
 * FFI, which the test task does not grant (without it winston-loki silently falls back to JSON):
 *
 *   deno run -A src/protocols/testdata/capture_winston_loki.ts
 *
 * @module
 */

import LokiTransport from "winston-loki";

const here = new URL(".", import.meta.url);
let resolveCaptured: () => void;
const captured = new Promise<void>((resolve) => resolveCaptured = resolve);
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
  const body = new Uint8Array(await req.arrayBuffer());
  await Deno.writeFile(new URL("winston_loki.snappy", here), body);
  const headers = Object.fromEntries(req.headers);
  delete headers.host;
  await Deno.writeTextFile(
    new URL("winston_loki.json", here),
    JSON.stringify({ method: req.method, path: new URL(req.url).pathname, headers }, null, 2) +
      "\n",
  );
  resolveCaptured();
  return new Response(null, { status: 204 });
});

const transport = new LokiTransport({
  host: `http://127.0.0.1:${server.addr.port}`,
  labels: { app: "shop", env: "prod" },
  gracefulShutdown: false,
  replaceTimestamp: false,
  interval: 3600,
});
const level = Symbol.for("level");
const at = Date.parse("2026-11-30T10:00:00.123Z");
const entries = [
  { level: "info", message: "order placed", timestamp: new Date(at).toISOString(), orderId: 7 },
  {
    level: "error",
    message: "payment failed: \u00e9chec",
    timestamp: new Date(at + 1).toISOString(),
  },
  {
    level: "error",
    message: "second in the same stream",
    timestamp: new Date(at + 2).toISOString(),
  },
];
for (const e of entries) transport.log!({ ...e, [level]: e.level }, () => {});
await transport.close();
await captured;
await server.shutdown();
