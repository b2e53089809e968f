import assert from "node:assert/strict";
import { bindFreePort } from "../../tests/_server.ts";
import { until } from "../../tests/_http.ts";
import { TailRoute } from "../api/tail.ts";
import { LiveHub } from "../live/hub.ts";
import { FlagError } from "./flags.ts";
import { parseTailArgs, tail } from "./tail.ts";

Deno.test("tail arguments: a server URL, filters and backfill", () => {
  const { config } = parseTailArgs(["-server", "logs:9000", "-grep", "ERR", "-n", "0", "-json"]);
  assert.equal(config.server.href, "http://logs:9000/");
  assert.equal(config.grep, "ERR");
  assert.equal(config.n, 0);
  assert.equal(config.json, true);
  assert.equal(parseTailArgs([]).config.n, 10);
  assert.throws(() => parseTailArgs(["-n", "x"]), FlagError);
  assert.throws(() => parseTailArgs(["-regex", "("]), FlagError);
  assert.throws(() => parseTailArgs(["extra"]), FlagError);
});

Deno.test("tail arguments: -level and repeated -field", () => {
  const { config } = parseTailArgs(["-level", "WARN", "-field", "service=billing", "-field=a=b=c"]);
  assert.equal(config.level, "warn");
  assert.deepEqual(config.fields, [["service", "billing"], ["a", "b=c"]]);
  assert.equal(parseTailArgs([]).config.fields, undefined);
  assert.throws(() => parseTailArgs(["-level", "warning"]), /takes one of trace, debug/);
  assert.throws(() => parseTailArgs(["-field", "=x"]), /takes NAME=VALUE, got "=x"/);
  assert.throws(() => parseTailArgs(["-field", "novalue"]), FlagError);
  assert.throws(() => parseTailArgs(["-field", "a=1", "-field", "a=2"]), /names a field twice/);
});

Deno.test("tail -level -field: the server filters, and -json prints level and fields", async () => {
  const hub = new LiveHub();
  const route = new TailRoute(hub, { heartbeatMs: 60_000 });
  const server = bindFreePort((port) =>
    Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => route.handle(req))
  );
  const stop = new AbortController();
  let out = "";
  const { config } = parseTailArgs([
    "-server",
    `http://127.0.0.1:${server.addr.port}`,
    "-level",
    "warn",
    "-field",
    "service=billing",
    "-json",
    "-n",
    "0",
  ]);
  const done = tail(config, {
    signal: stop.signal,
    colour: false,
    write(text) {
      out += text;
      return Promise.resolve();
    },
    notice() {},
  });
  await until(() => hub.stats.subscribers === 1, () => "the tail subscribed");
  const lines: [string, number, Record<string, string> | undefined][] = [
    ["info billing", 3, { service: "billing" }],
    ["error auth", 5, { service: "auth" }],
    ["error billing", 5, { service: "billing" }],
  ];
  hub.write({
    data: new TextEncoder().encode(lines.map(([text]) => text + "\n").join("")),
    lines: lines.length,
    meta: { source: "api", host: "10.0.0.1", input: "test" },
    receivedAt: 1000,
    levels: new Uint8Array(lines.map(([, level]) => level)),
    fields: lines.map(([, , fields]) => fields),
  });
  await until(() => out.includes("\n"), () => `output so far: ${out}`);
  stop.abort();
  assert.equal(await done, 0);
  await route.close();
  await hub.close();
  await server.shutdown();
  assert.deepEqual(JSON.parse(out), {
    id: 3,
    source: "api",
    host: "10.0.0.1",
    ts: 1000,
    level: "error",
    line: "error billing",
    fields: { service: "billing" },
  });
});
