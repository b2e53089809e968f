/**
 * The agent end to end: delivery exactly once across kill -9 and rotations while stopped, failover
 * between two servers, bounded memory while no server answers, a server that stops answering
 * mid-request, a 401 that names the missing permission, and the agents report.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, startServer } from "./_server.ts";
import { FreezingProxy } from "../src/agent/_test_target.ts";
import { rssKb, until } from "./_http.ts";
import {
  appendLines as append,
  countLines,
  SERVER_PERMISSIONS,
  startAgent,
  storedLines,
  writeConfig,
} from "./_agent.ts";

function exactlyOnce(lines: string[], expected: Map<number, number>): void {
  const count = countLines(lines, expected);
  assert.deepEqual(
    { missing: count.missing, duplicated: count.duplicated, torn: count.torn },
    { missing: 0, duplicated: 0, torn: 0 },
    count.examples.join("; "),
  );
}

function agentConfig(servers: string[], paths: string[], extra: Record<string, unknown> = {}) {
  return {
    servers,
    state_dir: "state",
    inputs: [{ source: "app", paths, max_bytes: "1MiB" }],
    batch: { max_bytes: "64KiB", max_wait: "50ms" },
    retry: { initial: "50ms", max: "500ms", failback_after: "2s", resend_window: "10s" },
    scan_interval: "200ms",
    rotate_wait: "500ms",
    report_interval: "300ms",
    ...extra,
  };
}

Deno.test("agent resends from its checkpoint after kill -9, finds files rotated while it was down", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-agent-" });
  await using server = await startServer(["-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  try {
    const path = join(dir, "app.log");
    await writeConfig(join(dir, "agent.json"), agentConfig([server.url], [path]));
    const out = join(server.dir, "out");
    await append(path, 1, 0, 20_000);
    let agent = await startAgent("agent.json", { cwd: dir });
    // Killed while shipping: some batches acknowledged, some in flight.
    await until(async () => (await storedLines(out)).length > 5000, () => "nothing stored");
    await agent.stop("SIGKILL");
    // While it is down: more lines, a rename + create rotation (the old name leaves the glob).
    await append(path, 1, 20_000, 21_000);
    await Deno.rename(path, `${path}.1`);
    await append(path, 1, 21_000, 22_000);
    agent = await startAgent("agent.json", { cwd: dir });
    await until(async () => (await storedLines(out)).length >= 22_000, () => "not all stored");
    await agent.stop("SIGKILL");
    // Down again: a copytruncate rotation.
    await append(path, 1, 22_000, 23_000);
    await Deno.copyFile(path, `${path}.2`);
    await Deno.truncate(path, 0);
    await append(path, 1, 23_000, 24_000);
    agent = await startAgent("agent.json", { cwd: dir });
    await until(async () => (await storedLines(out)).length >= 24_000, () => "not all stored");
    await new Promise((resolve) => setTimeout(resolve, 500)); // a late duplicate would show now
    await agent.stop();
    exactlyOnce(await storedLines(out), new Map([[1, 24_000]]));
    assert.match(agent.stderr(), /is a copy of/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent fails over, keeps memory bounded while no server answers, and reports in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-agent-" });
  const ports = [freePort(), freePort()];
  const start = (i: number, serverDir?: string) =>
    startServer(["-http", `127.0.0.1:${ports[i]}`, "-logFile", "out/{source}.log"], {
      permissions: SERVER_PERMISSIONS,
      dir: serverDir,
    });
  const dirs = [join(dir, "s1"), join(dir, "s2")];
  for (const d of dirs) await Deno.mkdir(d);
  let first = await start(0, dirs[0]);
  let second = await start(1, dirs[1]);
  const metricsPort = freePort();
  const path = join(dir, "app.log");
  await writeConfig(
    join(dir, "agent.json"),
    agentConfig([first.url, second.url], [path], { metrics: `127.0.0.1:${metricsPort}` }),
  );
  const outs = dirs.map((d) => join(d, "out"));
  const stored = async () =>
    (await storedLines(outs[0])).length + (await storedLines(outs[1])).length;
  const agent = await startAgent("agent.json", { cwd: dir });
  const gauge = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  };
  try {
    await append(path, 2, 0, 2000);
    await until(async () => (await storedLines(outs[0])).length >= 2000, () => "first server");
    await first.stop();
    await append(path, 2, 2000, 4000);
    await until(async () => (await storedLines(outs[1])).length >= 2000, () => "no failover");
    await second.stop();
    // No server answers: 30 MB are written (and the file rotated); the file is the buffer.
    for (let i = 4000; i < 304_000; i += 50_000) await append(path, 2, i, i + 50_000);
    await Deno.rename(path, `${path}.1`);
    await append(path, 2, 304_000, 305_000);
    let seen = "";
    await until(async () => {
      seen = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return (await gauge("logboom_agent_lag_bytes")) > 25e6;
    }, () => `lag not seen: ${seen}\n${agent.stderr()}`);
    const inFlight = await gauge("logboom_agent_in_flight_bytes");
    assert.ok(inFlight <= 1024 * 1024 + 64 * 1024, `${inFlight} bytes in flight`);
    const rss = await rssKb(agent.child.pid);
    assert.ok(rss < 200 * 1024, `agent RSS ${rss} kB while 30 MB wait`);
    second = await start(1, dirs[1]);
    first = await start(0, dirs[0]);
    await until(async () => (await stored()) >= 305_000, () => "not all stored", 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // a late duplicate would show now
    exactlyOnce(
      [...await storedLines(outs[0]), ...await storedLines(outs[1])],
      new Map([[2, 305_000]]),
    );
    // The agents report: GET /api/v1/agents on either server lists the agent and its files.
    await until(async () => {
      const res = await fetch(`${first.url}/api/v1/agents`);
      const { agents } = await res.json();
      return agents.length === 1 && agents[0].files.length >= 1 && agents[0].lag === 0;
    }, () => "no report with lag 0");
    const { agents } = await (await fetch(`${first.url}/api/v1/agents`)).json();
    assert.equal(agents[0].version, "0.1.0");
    assert.ok(agents[0].files.some((f: { path: string }) => f.path === path));
    assert.ok(agents[0].stats.failovers >= 1);
    const metrics = await (await fetch(`${first.url}/metrics`)).text();
    assert.match(metrics, /logboom_agent_lag_bytes\{agent="[^"]+"\} 0/);
  } finally {
    await agent.stop();
    await first[Symbol.asyncDispose]();
    await second[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent: a server that accepts and never answers (half-open) times out, is reported, and shipping resumes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-agent-" });
  await using server = await startServer(["-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  const proxy = new FreezingProxy(server.httpPort);
  try {
    const path = join(dir, "app.log");
    await writeConfig(
      join(dir, "agent.json"),
      agentConfig([`http://127.0.0.1:${proxy.port}`], [path], {
        retry: { initial: "50ms", max: "200ms", timeout: "1s" },
      }),
    );
    const out = join(server.dir, "out");
    await using agent = await startAgent("agent.json", { cwd: dir });
    await append(path, 3, 0, 5000);
    // Every try is accepted and then frozen: each times out and is tried again.
    await until(() => proxy.held >= 3, () => `${proxy.held} frozen tries\n${agent.stderr()}`);
    await until(
      () => /Cannot deliver to .*No answer within 1000 ms.*tries failed/.test(agent.stderr()),
      () => agent.stderr(),
    );
    assert.equal((await storedLines(out)).length, 0);
    proxy.frozen = false;
    await append(path, 3, 5000, 6000);
    await until(async () => (await storedLines(out)).length >= 6000, () => agent.stderr());
    await until(() => /takes batches again/.test(agent.stderr()), () => agent.stderr());
    exactlyOnce(await storedLines(out), new Map([[3, 6000]]));
    await agent.stop();
  } finally {
    await proxy.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent: a 401 names --allow-env=LOGBOOM_TOKEN when the token in the env cannot be read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-agent-" });
  await using server = await startServer(["-token", "secret", "-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  try {
    const path = join(dir, "app.log");
    await append(path, 4, 0, 10);
    await writeConfig(join(dir, "agent.json"), agentConfig([server.url], [path]));
    // LOGBOOM_TOKEN is set, but the agent may not read it (a JSON config needs no other env).
    await using agent = await startAgent("agent.json", {
      cwd: dir,
      permissions: ["--allow-read", "--allow-write", "--allow-net=127.0.0.1"],
      env: { LOGBOOM_TOKEN: "secret" },
    });
    await until(
      () => /rejects batches: 401 .*run with --allow-env=LOGBOOM_TOKEN/.test(agent.stderr()),
      () => agent.stderr(),
    );
    await agent.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
