import assert from "node:assert/strict";
import { join } from "node:path";
import { LiveHub } from "../live/hub.ts";
import { Router } from "../pipeline/router.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { AgentConfigStore } from "./agent_configs.ts";
import { Api } from "./server.ts";
import { SourceStats } from "./source_stats.ts";
import type { ServerFacts } from "./status.ts";

const peer = { hostname: "127.0.0.1" };

function setup(options: { token?: string; server?: ServerFacts } = {}) {
  const { token = "", server } = options;
  const hub = new LiveHub();
  const sources = new SourceStats();
  const router = new Router([hub, sources]);
  const api = new Api({ token, loopback: true }, {
    router,
    hub,
    sources,
    marks: StreamMarks.memory(),
    sinkMetrics: () => [{ name: "file", linesWritten: 0, queuedBytes: 10, openFiles: 3 }],
    server,
  });
  const headers: Record<string, string> = token === "" ? {} : { authorization: `Bearer ${token}` };
  const call = (path: string, init: RequestInit = {}) =>
    api.handle(
      new Request(`http://127.0.0.1:8081${path}`, {
        ...init,
        headers: { ...headers, ...init.headers as Record<string, string> },
      }),
      peer,
    );
  const put = (name: string, body: unknown) =>
    call(`/api/v1/agent-configs/${name}`, { method: "PUT", body: JSON.stringify(body) });
  return { api, call, put };
}

const CONFIG = { inputs: [{ source: "app", paths: ["/var/log/app/*.log"] }] };

Deno.test("agent configs: PUT checks the whole config and answers every problem at its key", async () => {
  const { call, put } = setup();
  const res = await put("web", {
    match: { hosts: ["web-*", 7] },
    config: {
      state_dir: "/x",
      token: "t",
      colour: "blue",
      inputs: [{ paths: [] }, { source: "b", paths: ["logs/*.log"] }],
      batch: { max_wait: "soon" },
    },
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.deepEqual(body.problems.map((p: { key: string }) => p.key), [
    "match.hosts[1]",
    "config.state_dir",
    "config.token",
    "config.inputs[1].paths[0]",
    "config.colour",
    "config.inputs[0].source",
    "config.inputs[0].paths",
    "config.batch.max_wait",
  ]);
  assert.match(body.error, /^8 problems: match\.hosts\[1\]: /);
  assert.match(body.problems[1].problem, /-stateDir/);
  // Nothing was stored.
  assert.deepEqual((await (await call("/api/v1/agent-configs")).json()).configs, []);
  const badName = await put("a/b", { config: CONFIG });
  assert.equal(badName.status, 400);
  assert.deepEqual((await badName.json()).problems.map((p: { key: string }) => p.key), ["name"]);
  const notJson = await call("/api/v1/agent-configs/web", { method: "PUT", body: "{" });
  assert.equal(notJson.status, 400);
  assert.match((await notJson.json()).error, /not JSON/);
});

Deno.test("agent configs: versions, matching by id, host glob or all, ETag and 304", async () => {
  const { call, put } = setup();
  assert.equal((await (await put("all", { match: {}, config: CONFIG })).json()).version, 1);
  assert.equal(
    (await (await put("web", { match: { hosts: ["web-*"] }, config: CONFIG })).json()).version,
    2,
  );
  const one = { match: { ids: ["a7"] }, config: { ...CONFIG, batch: { max_wait: "1s" } } };
  assert.equal((await (await put("one", one)).json()).version, 3);
  const poll = async (query: string, etag?: string) => {
    const res = await call(`/api/v1/agents/config?${query}`, {
      headers: etag === undefined ? {} : { "if-none-match": etag },
    });
    return { status: res.status, etag: res.headers.get("etag"), body: await res.text() };
  };
  let got = await poll("id=a7&host=web-1");
  assert.equal(got.status, 200);
  assert.equal(got.etag, '"3"');
  assert.deepEqual(JSON.parse(got.body), { name: "one", version: 3, config: one.config });
  got = await poll("id=a1&host=WEB-2");
  assert.equal(JSON.parse(got.body).name, "web");
  got = await poll("id=a1&host=db-1");
  assert.equal(JSON.parse(got.body).name, "all");
  assert.equal((await poll("id=a1&host=db-1", '"1"')).status, 304);
  assert.equal((await poll("id=a1&host=db-1", 'W/"0", 1')).status, 304);
  // A change gives a new version: the old ETag no longer matches.
  await put("all", { match: {}, config: { ...CONFIG, scan_interval: "2s" } });
  got = await poll("id=a1&host=db-1", '"1"');
  assert.equal(got.status, 200);
  assert.equal(got.etag, '"4"');
  // Without a matching config: 404.
  assert.equal(
    (await (await call("/api/v1/agent-configs/all", { method: "DELETE" })).json())
      .deleted,
    "all",
  );
  assert.equal((await poll("id=a1&host=db-1")).status, 404);
  assert.equal((await poll("host=db-1")).status, 400);
  const listed = await (await call("/api/v1/agent-configs")).json();
  assert.deepEqual(listed.configs.map((c: { name: string }) => c.name), ["one", "web"]);
  assert.equal(listed.persistent, false);
});

Deno.test("agent configs: a token is needed for every route", async () => {
  const { call } = setup({ token: "secret" });
  for (
    const [path, method] of [
      ["/api/v1/agent-configs", "GET"],
      ["/api/v1/agent-configs/web", "PUT"],
      ["/api/v1/agents/config?id=a", "GET"],
      ["/api/v1/status", "GET"],
    ]
  ) {
    const res = await call(path, {
      method,
      headers: { authorization: "Bearer wrong" },
      body: method === "PUT" ? "{}" : undefined,
    });
    assert.equal(res.status, 401, path);
    await res.body?.cancel();
  }
  const ok = await call("/api/v1/agent-configs");
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("agent configs: kept in the state folder across restarts, versions going on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = setup({ server: { stateDir: dir } });
    await first.put("web", { match: { hosts: ["web-*"] }, config: CONFIG });
    await first.put("web", { match: { hosts: ["web-*"] }, config: CONFIG });
    const second = setup({ server: { stateDir: dir } });
    const listed = await (await second.call("/api/v1/agent-configs")).json();
    assert.equal(listed.persistent, true);
    assert.deepEqual(listed.configs.map((c: { version: number }) => c.version), [2]);
    assert.equal((await (await second.put("db", { config: CONFIG })).json()).version, 3);
    // A file that cannot be understood is set aside, not overwritten.
    await Deno.writeTextFile(join(dir, "agent-configs.json"), "{nope");
    const store = await AgentConfigStore.open(dir);
    assert.deepEqual(store.list(), []);
    assert.equal(await Deno.readTextFile(join(dir, "agent-configs.json.unreadable")), "{nope");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agents list: the config an agent reports, pending when the server has a newer one", async () => {
  const { call, put } = setup();
  const report = (body: unknown) =>
    call("/api/v1/agents/report", { method: "POST", body: JSON.stringify(body) });
  await put("web", { match: { ids: ["a1", "a2", "a3"] }, config: CONFIG });
  await (await report({
    id: "a1",
    host: "web-1",
    server: "http://s1",
    failover: { active: "http://s2", servers: ["http://s1", "http://s2"], failing: true },
    errors: [{ time: "2026-11-30T18:00:00.000Z", message: "cannot deliver" }],
    config: { name: "web", version: 1, state: "applied" },
  })).body?.cancel();
  await (await report({
    id: "a2",
    config: { name: "web", version: 1, state: "refused", reason: "inputs[0]: no permission" },
  })).body?.cancel();
  await (await report({ id: "a3", config: { state: "local" } })).body?.cancel();
  let agents = (await (await call("/api/v1/agents")).json()).agents;
  assert.deepEqual(agents[0].failover, {
    active: "http://s2",
    servers: ["http://s1", "http://s2"],
    failing: true,
  });
  assert.deepEqual(agents[0].errors, [{
    time: "2026-11-30T18:00:00.000Z",
    message: "cannot deliver",
  }]);
  assert.deepEqual(agents.map((a: { config: unknown }) => a.config), [
    { name: "web", version: 1, state: "applied" },
    { name: "web", version: 1, state: "refused", reason: "inputs[0]: no permission" },
    { state: "local" },
  ]);
  await put("web", { match: { ids: ["a1", "a2", "a3"] }, config: CONFIG });
  agents = (await (await call("/api/v1/agents")).json()).agents;
  assert.deepEqual(agents.map((a: { config: unknown }) => a.config), [
    { name: "web", version: 2, state: "pending", running: 1 },
    { name: "web", version: 2, state: "pending" },
    { state: "local" },
  ]);
});

Deno.test("status: version, uptime, queues, open files, disk and the config with secrets masked", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { call } = setup({
      server: {
        stateDir: join(dir, ".logboom"),
        outputs: [join(dir, "logs/{source}/app.log")],
        queueLimitBytes: 1000,
        running: () => ({
          http: { token: "s3cret", address: { hostname: "127.0.0.1", port: 1 } },
          sinks: { hook: { url: "http://u:pw@example.com/x", pattern: /a+/ } },
        }),
      },
    });
    const status = await (await call("/api/v1/status")).json();
    assert.match(status.version, /^\d+\.\d+\.\d+/);
    assert.ok(status.uptime_s >= 0);
    assert.equal(status.open_files, 3);
    assert.deepEqual(status.queues.sinks, [{ name: "file", used_bytes: 10, limit_bytes: 1000 }]);
    assert.equal(status.disk.path, join(dir, "logs"));
    const granted = Deno.permissions.querySync({ name: "sys", kind: "statfs" }).state;
    if (granted === "granted") {
      assert.equal(status.disk.available, true);
      assert.ok(status.disk.total_bytes >= status.disk.free_bytes && status.disk.free_bytes > 0);
    } else assert.match(status.disk.reason, /--allow-sys=statfs/);
    assert.deepEqual(status.config, {
      http: { token: "***", address: { hostname: "127.0.0.1", port: 1 } },
      sinks: { hook: { url: "http://u:***@example.com/x", pattern: "a+" } },
    });
    assert.equal(status.rotation.pending_compress, 0);
    assert.match(JSON.stringify(status), /^(?!.*s3cret)(?!.*:pw@)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent configs: changes made at once each get their own version, none lost", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await AgentConfigStore.open(dir);
    const names = ["a", "b", "c", "d", "e"];
    const entries = await Promise.all(names.map((name) => store.put(name, { config: CONFIG })));
    assert.deepEqual(entries.map((e) => e.version), [1, 2, 3, 4, 5]);
    const again = await AgentConfigStore.open(dir);
    assert.deepEqual(again.list().map((e) => [e.name, e.version]), names.map((n, i) => [n, i + 1]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
