import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import { parseSendArgs } from "./send.ts";

Deno.test("send arguments: http URLs mean HTTP ingest, host:port means TCP", () => {
  const http = parseSendArgs(["-server", "http://127.0.0.1:8081", "a.log", "b.log"]).config;
  assert.deepEqual(http.target, {
    kind: "http",
    url: new URL("http://127.0.0.1:8081/api/v1/ingest"),
  });
  assert.deepEqual(http.files, ["a.log", "b.log"]);
  assert.equal(http.batchBytes, 1024 * 1024);
  assert.equal(http.retryForMs, 5 * 60 * 1000);
  const tcp = parseSendArgs(["-server", "127.0.0.1:8080"]).config;
  assert.deepEqual(tcp.target, { kind: "tcp", address: { hostname: "127.0.0.1", port: 8080 } });
  assert.throws(() => parseSendArgs(["-server", "nowhere"]), FlagError);
  assert.throws(() => parseSendArgs(["-retryFor", "5"]), FlagError);
});
