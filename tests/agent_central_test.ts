/**
 * Central agent configuration end to end, with a real server and real agents: a config PUT on
 * the server is taken by `logboom agent -server URL`, applied by hot reload and reported; a config
 * the agent refuses shows as refused with its reason while the old one keeps running; configs
 * survive a server restart; the token is needed; `/api/v1/status` answers.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bindFreePort, spawnMain, startServer, watchProcess } from "./_server.ts";
import { until } from "./_http.ts";
import { AGENT_PERMISSIONS, line, SERVER_PERMISSIONS, storedLines } from "./_agent.ts";

const TOKEN = "central-test-token";
const auth = { authorization: `Bearer ${TOKEN}` };

/** Runs `main.ts agent -server ...` in `cwd`; resolves once it started. */
async function startCentralAgent(cwd: string, args: string[]) {
  const child = spawnMain(AGENT_PERMISSIONS, ["agent", ...args, "-logLevel", "info"], cwd);
  const watched = await watchProcess(child, {
    ready: /Agent \S+ started/,
    notReady: "Agent exited before starting",
  });
  return { ...watched, [Symbol.asyncDispose]: watched.kill };
}

async function put(url: string, name: string, body: unknown): Promise<Response> {
  return await fetch(`${url}/api/v1/agent-configs/${name}`, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

interface Listed {
  id: string;
  config: { state: string; version?: number; reason?: string };
  errors: { message: string }[];
  failover: { active: string; servers: string[]; failing: boolean };
}

/** Whether agent `id` reports version `version` applied. */
async function applied(url: string, id: string, version: number): Promise<boolean> {
  const config = (await agentEntry(url, id))?.config;
  return config?.state === "applied" && config.version === version;
}

async function agentEntry(url: string, id: string): Promise<Listed | undefined> {
  const res = await fetch(`${url}/api/v1/agents`, { headers: auth });
  const { agents } = await res.json() as { agents: Listed[] };
  return agents.find((a) => a.id === id);
}

Deno.test("central config: the agent applies each version by hot reload, refuses a bad one and keeps the old", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-central-" });
  await using server = await startServer(["-logFile", "out/{source}.log", "-token", TOKEN], {
    permissions: SERVER_PERMISSIONS,
  });
  const out = join(server.dir, "out");
  for (const sub of ["a", "b"]) await Deno.mkdir(join(dir, sub));
  const config = (source: string, extra: Record<string, unknown> = {}) => ({
    inputs: [{ source, paths: [join(dir, source, "*.log")] }],
    batch: { max_wait: "50ms" },
    scan_interval: "200ms",
    report_interval: "1s",
    ...extra,
  });
  // Taken: a port the agent's metrics cannot listen on.
  using taken = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
  try {
    let res = await put(server.url, "group", { match: { hosts: ["*"] }, config: config("a") });
    assert.equal(res.status, 200, await res.clone().text());
    const v1 = (await res.json()).version;
    const agentArgs = [
      "-server",
      server.url,
      "-token",
      TOKEN,
      "-id",
      "edge-1",
      "-stateDir",
      "state",
      "-poll",
      "200ms",
    ];
    await using agent = await startCentralAgent(dir, agentArgs);
    await Deno.writeTextFile(join(dir, "a", "app.log"), line(1, 0));
    await until(
      async () => (await storedLines(out)).some((l) => l.startsWith("c1 0 ")),
      () => agent.stderr(),
    );
    await until(() => applied(server.url, "edge-1", v1), () => agent.stderr());
    assert.deepEqual((await agentEntry(server.url, "edge-1"))?.failover, {
      active: server.url,
      servers: [server.url],
      failing: false,
    });

    // A new version for this agent by id: it ships from the new file, and says so.
    res = await put(server.url, "edge", { match: { ids: ["edge-1"] }, config: config("b") });
    const v2 = (await res.json()).version;
    await until(() => applied(server.url, "edge-1", v2), () => agent.stderr());
    // Its report may reach the server before the test has read its log line.
    await until(
      () => /Central config edge version \d+ applied: started b; stopped a/.test(agent.stderr()),
      () => agent.stderr(),
    );
    await Deno.writeTextFile(join(dir, "b", "app.log"), line(2, 0));
    await until(
      async () => (await storedLines(out)).some((l) => l.startsWith("c2 0 ")),
      () => agent.stderr(),
    );

    // One the agent cannot apply (the server cannot know the port is taken): refused with its
    // reason, shown in the agents list; the old config keeps shipping.
    const port = (taken.addr as Deno.NetAddr).port;
    res = await put(server.url, "edge", {
      match: { ids: ["edge-1"] },
      config: config("b", { metrics: `127.0.0.1:${port}` }),
    });
    const v3 = (await res.json()).version;
    await until(
      async () => (await agentEntry(server.url, "edge-1"))?.config.state === "refused",
      () => agent.stderr(),
    );
    const refused = (await agentEntry(server.url, "edge-1"))!;
    assert.equal(refused.config.version, v3);
    assert.match(refused.config.reason ?? "", /^metrics: cannot listen/);
    assert.ok(
      refused.errors.some((e) => /version \d+ refused: metrics: cannot listen/.test(e.message)),
    );
    await Deno.writeTextFile(join(dir, "b", "app.log"), line(2, 1), { append: true });
    await until(
      async () => (await storedLines(out)).some((l) => l.startsWith("c2 1 ")),
      () => agent.stderr(),
    );
    // Refused once, not again at every poll.
    assert.equal(agent.stderr().match(/refused, the running config stays/g)?.length, 1);
    const stopped = await agent.stop();
    assert.equal(stopped.code, 0, agent.stderr());
    // Restarted, it runs the config it applied last from the first moment (the server may be
    // away), then asks for newer ones.
    await using again = await startCentralAgent(dir, agentArgs);
    assert.match(
      again.stderr(),
      new RegExp(`Running central config edge version ${v2} kept from the last run`),
    );
    assert.match(again.stderr(), /Agent edge-1 started: 1 inputs/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("central config: an agent without the token is told why, and a new agent waits for a config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-central-" });
  await using server = await startServer(["-logFile", "out.log", "-token", TOKEN], {
    permissions: SERVER_PERMISSIONS,
  });
  try {
    await using wrong = await startCentralAgent(dir, [
      "-server",
      server.url,
      "-token",
      "wrong",
      "-stateDir",
      "s1",
      "-poll",
      "200ms",
    ]);
    await until(
      () =>
        /Cannot fetch the central config from .*: 401 .*-token or LOGBOOM_TOKEN/.test(
          wrong.stderr(),
        ),
      () => wrong.stderr(),
    );
    await using waiting = await startCentralAgent(dir, [
      "-server",
      server.url,
      "-token",
      TOKEN,
      "-id",
      "new-1",
      "-stateDir",
      "s2",
      "-poll",
      "200ms",
    ]);
    await until(
      async () => (await agentEntry(server.url, "new-1"))?.config.state === "pending",
      () => waiting.stderr(),
    );
    // The server marks the agent pending as it answers; the agent says so once the answer is in.
    await until(
      () => /No central config matches agent new-1/.test(waiting.stderr()),
      () => waiting.stderr(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("central config: configs survive a server restart in its state folder; status answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-central-server-" });
  const args = ["-logFile", "logs/out.log", "-token", TOKEN];
  try {
    {
      await using server = await startServer(args, { dir, permissions: SERVER_PERMISSIONS });
      const res = await put(server.url, "all", { config: { inputs: [] } });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).version, 1);
      await server.stop();
    }
    await using server = await startServer(args, { dir, permissions: SERVER_PERMISSIONS });
    const listed = await (await fetch(`${server.url}/api/v1/agent-configs`, { headers: auth }))
      .json();
    assert.equal(listed.persistent, true);
    assert.deepEqual(
      listed.configs.map((c: { name: string; version: number }) => [
        c.name,
        c.version,
      ]),
      [["all", 1]],
    );
    const status = await (await fetch(`${server.url}/api/v1/status`, { headers: auth })).json();
    assert.match(status.version, /^\d+\.\d+\.\d+/);
    assert.ok(status.uptime_s >= 0);
    assert.equal(typeof status.open_files, "number");
    assert.equal(status.disk.path, join(dir, "logs"));
    // The test's server has no --allow-sys=statfs: the page is told why there is no figure.
    assert.deepEqual(status.disk, {
      path: join(dir, "logs"),
      available: false,
      reason: "reading disk space needs --allow-sys=statfs",
    });
    assert.equal(status.config.http.token, "***");
    assert.ok(!JSON.stringify(status).includes(TOKEN));
    assert.match(status.agent_configs, /agent-configs\.json$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("central config: a server that may not read its state folder keeps configs in memory and says so", async () => {
  // The design card's permissions: --allow-net --allow-write, no read.
  await using server = await startServer(["-token", TOKEN]);
  const res = await put(server.url, "all", { config: { inputs: [] } });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  const listed = await (await fetch(`${server.url}/api/v1/agent-configs`, { headers: auth }))
    .json();
  assert.equal(listed.persistent, false);
  assert.match(listed.memory_only, /agent-configs\.json needs --allow-read/);
  assert.match(server.stderr(), /Agent configs are kept in memory only \(lost at a restart\)/);
});
