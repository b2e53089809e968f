import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import { parseSendArgs, send } from "./send.ts";
import { FreezingProxy, until } from "../agent/_test_target.ts";
import { freePort } from "../../tests/_server.ts";

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

Deno.test("send -timeout 0 is refused (every request would time out at once), not retried for minutes", () => {
  assert.throws(
    () => parseSendArgs(["-server", "http://127.0.0.1:8081", "-timeout", "0"]),
    (err) => err instanceof FlagError && /Flag "-timeout" must be more than 0/.test(err.message),
  );
  // 0 keeps its documented meanings elsewhere: no linger, retry for ever.
  const config = parseSendArgs(["-linger", "0", "-retryFor", "0"]).config;
  assert.equal(config.lingerMs, 0);
  assert.equal(config.retryForMs, 0);
});

/** A send of `text` (as stdin) to `url` with test settings; `waits` records each pause. */
function sendText(url: string, text: string, options: { timeoutMs?: number } = {}) {
  const waits: number[] = [];
  const notices: string[] = [];
  const config = parseSendArgs(["-server", url]).config;
  config.timeoutMs = options.timeoutMs ?? config.timeoutMs;
  const sending = send(config, {
    signal: new AbortController().signal,
    notice: (line) => notices.push(line),
    open: () => Promise.resolve(new Blob([text]).stream()),
    retryMs: 1,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  });
  return { sending, waits, notices };
}

const accepted = () => Response.json({ accepted: 1, duplicate: false });

Deno.test("send waits a Retry-After of a day only a minute, then delivers", async () => {
  let n = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: freePort(), onListen() {} },
    async (req) => {
      await req.body?.cancel();
      return n++ === 0
        ? Response.json({ error: "busy" }, { status: 503, headers: { "retry-after": "86400" } })
        : accepted();
    },
  );
  try {
    const { sending, waits } = sendText(`http://127.0.0.1:${server.addr.port}`, "one\n");
    const report = await sending;
    assert.equal(report.delivered, true, "not given up within -retryFor (5m)");
    assert.deepEqual(waits, [60_000]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("send retries a request a server accepted and never answered (half-open)", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: freePort(), onListen() {} },
    async (req) => {
      await req.body?.cancel();
      return accepted();
    },
  );
  const proxy = new FreezingProxy(server.addr.port);
  try {
    const { sending, notices } = sendText(`http://127.0.0.1:${proxy.port}`, "one\n", {
      timeoutMs: 200,
    });
    await until(() => proxy.held >= 2, () => `held ${proxy.held}`);
    proxy.frozen = false;
    const report = await sending;
    assert.equal(report.delivered, true);
    assert.match(notices[0], /No answer within 200 ms/);
  } finally {
    await proxy.close();
    await server.shutdown();
  }
});
