/**
 * The agent's config end to end: a bad config at startup is one line naming the key and exit
 * code 2; edits and SIGHUP reload it, starting, stopping or restarting only the inputs that
 * changed; a bad edit is refused and the running config stays; multi-line events arrive whole.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, startServer } from "./_server.ts";
import { until } from "./_http.ts";
import {
  countLines,
  line,
  SERVER_PERMISSIONS,
  startAgent,
  storedLines,
  writeConfig,
} from "./_agent.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "logboom-agent-config-" });
}

Deno.test("agent refuses a bad config at startup with one line naming the key, exit 2", async () => {
  const dir = await tempDir();
  try {
    const cases: [string, string, RegExp][] = [
      [
        "agent.yaml",
        'servers: ["http://127.0.0.1:1"]\nstate_dir: s\ninputs:\n  - source: a\n    pahts: ["*.log"]\n',
        /^Bad config "agent\.yaml": inputs\[0\]\.pahts: unknown key/,
      ],
      [
        "agent.json",
        JSON.stringify({
          servers: ["http://127.0.0.1:1"],
          state_dir: "s",
          batch: { max_wait: "soon" },
        }),
        /^Bad config "agent\.json": batch\.max_wait: must be a duration/,
      ],
      ["bad.yaml", "servers: [\n", /^Bad config "bad\.yaml": not valid YAML/],
      [
        "glob.json",
        JSON.stringify({
          servers: ["http://127.0.0.1:1"],
          state_dir: "s",
          inputs: [{ source: "a", paths: ["/var/log/[ab.log"] }],
        }),
        /^Bad config "glob\.json": inputs\[0\]\.paths\[0\]: .*not closed/,
      ],
      ["missing.yaml", "", /^Bad config "missing\.yaml": cannot be read/],
    ];
    for (const [name, text, expected] of cases) {
      if (name !== "missing.yaml") await Deno.writeTextFile(join(dir, name), text);
      const agent = await startAgent(name, { cwd: dir, waitReady: false });
      const status = await agent.exited();
      const lines = agent.stderr().trim().split("\n");
      assert.equal(status.code, 2, agent.stderr());
      assert.equal(lines.length, 1, agent.stderr());
      assert.match(lines[0], expected);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent reloads its config: only changed inputs restart; a bad edit is refused", async () => {
  const dir = await tempDir();
  await using server = await startServer(["-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  const out = join(server.dir, "out");
  for (const sub of ["a", "b", "c"]) await Deno.mkdir(join(dir, sub));
  const input = (name: string) => ({ source: name, paths: [join(dir, name, "*.log")] });
  const config = (inputs: unknown[], extra: Record<string, unknown> = {}) => ({
    servers: [server.url],
    state_dir: "state",
    inputs,
    batch: { max_bytes: "64KiB", max_wait: "50ms" },
    scan_interval: "200ms",
    ...extra,
  });
  const configPath = join(dir, "agent.yaml");
  await writeConfig(configPath, config([input("a"), input("b")]));
  const agent = await startAgent("agent.yaml", { cwd: dir });
  // Input a is written to all along: a reload must not stop it, nor ship a line twice.
  let a = 0;
  let writing = true;
  const writer = (async () => {
    while (writing) {
      let text = "";
      for (let i = 0; i < 50; i++) text += line(1, a++);
      await Deno.writeTextFile(join(dir, "a", "a.log"), text, { append: true });
      await new Promise((resolve) => setTimeout(resolve, 10)); // the writer's pace
    }
  })();
  try {
    await Deno.writeTextFile(join(dir, "b", "b.log"), line(2, 0));
    await until(async () => (await storedLines(out)).some((l) => l.startsWith("c2 0 ")), () => "b");
    // Edit: add c, remove b; a is unchanged.
    await writeConfig(configPath, config([input("a"), input("c")]));
    await until(
      () => /Config reloaded \(file\): started c; stopped b; unchanged a/.test(agent.stderr()),
      () => agent.stderr(),
    );
    await Deno.writeTextFile(join(dir, "b", "b.log"), line(2, 1), { append: true });
    await Deno.writeTextFile(join(dir, "c", "c.log"), line(3, 0));
    await until(async () => (await storedLines(out)).some((l) => l.startsWith("c3 0 ")), () => "c");
    // A bad edit is refused; a keeps running on the old config.
    await Deno.writeTextFile(configPath, "servers: [\n");
    await until(
      () => /Config change refused, the running config stays: not valid YAML/.test(agent.stderr()),
      () => agent.stderr(),
    );
    const before = a;
    await until(
      async () => (await storedLines(out)).filter((l) => l.startsWith("c1 ")).length > before,
      () => "a stopped",
    );
    // SIGHUP reloads too: b comes back, with the line written while it was removed.
    await writeConfig(
      configPath,
      config([input("a"), input("b"), input("c")], { report_interval: "1s" }),
    );
    agent.child.kill("SIGHUP");
    await until(
      async () => (await storedLines(out)).some((l) => l.startsWith("c2 1 ")),
      () => agent.stderr(),
    );
    await until(
      () => /Config reloaded \((file|SIGHUP)\): started b; unchanged a, c/.test(agent.stderr()),
      () => agent.stderr(),
    );
    writing = false;
    await writer;
    await until(
      async () => (await storedLines(out)).filter((l) => l.startsWith("c1 ")).length >= a,
      () => "a",
    );
    const count = countLines(await storedLines(out), new Map([[1, a], [2, 2], [3, 1]]));
    assert.deepEqual({ missing: count.missing, duplicated: count.duplicated, torn: count.torn }, {
      missing: 0,
      duplicated: 0,
      torn: 0,
    }, count.examples.join("; "));
  } finally {
    writing = false;
    await writer;
    await agent.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent ships multi-line events whole", async () => {
  const dir = await tempDir();
  await using server = await startServer(["-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  try {
    const yaml = `servers: ["${server.url}"]
state_dir: state
inputs:
  - source: java
    paths: ["${join(dir, "*.log")}"]
    multiline: { start: '^\\d{4}-\\d{2}-\\d{2} ', timeout: 300ms }
batch: { max_wait: 50ms }
`;
    await Deno.writeTextFile(join(dir, "agent.yaml"), yaml);
    const agent = await startAgent("agent.yaml", { cwd: dir });
    try {
      await Deno.writeTextFile(
        join(dir, "app.log"),
        "2024-01-01 10:00:00 ERROR failed\njava.lang.IllegalStateException: x\n" +
          "\tat a.B.c(B.java:10)\n2024-01-01 10:00:01 INFO ok\n",
      );
      const file = join(server.dir, "out", "java.log");
      await until(
        async () => (await storedLines(file.replace(/java\.log$/, ""))).length >= 2,
        () => agent.stderr(),
      );
      assert.deepEqual((await Deno.readTextFile(file)).split("\n"), [
        "2024-01-01 10:00:00 ERROR failed\\njava.lang.IllegalStateException: x\\n\tat a.B.c(B.java:10)",
        "2024-01-01 10:00:01 INFO ok",
        "",
      ]);
    } finally {
      await agent.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent refuses a reload that cannot be applied whole, and changes nothing", async () => {
  const dir = await tempDir();
  await using server = await startServer(["-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  const out = join(server.dir, "out");
  for (const sub of ["a", "c"]) await Deno.mkdir(join(dir, sub));
  const input = (name: string) => ({ source: name, paths: [join(dir, name, "*.log")] });
  const metricsPort = freePort();
  const config = (inputs: unknown[], metrics: number) => ({
    servers: [server.url],
    state_dir: "state",
    inputs,
    batch: { max_wait: "50ms" },
    scan_interval: "200ms",
    metrics: `127.0.0.1:${metrics}`,
  });
  const configPath = join(dir, "agent.json");
  await writeConfig(configPath, config([input("a")], metricsPort));
  const agent = await startAgent("agent.json", { cwd: dir });
  // The new metrics address is taken: the whole change is refused.
  using taken = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
  try {
    // Written again until seen: an edit in the first milliseconds may come before the watch.
    const refused = /Config change refused, the running config stays: metrics: cannot listen/;
    for (let tries = 0; !refused.test(agent.stderr()); tries++) {
      assert.ok(tries < 20, agent.stderr());
      await writeConfig(configPath, config([input("a"), input("c")], taken.addr.port));
      await until(() => refused.test(agent.stderr()), () => agent.stderr(), 500).catch(() => {});
    }
    // The running config stays whole: its metrics still answer, input c was not started.
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200, agent.stderr());
    assert.match(await res.text(), /logboom_agent_files_open/);
    await Deno.writeTextFile(join(dir, "c", "c.log"), line(3, 0));
    // The same change, now possible, is applied as a change: c starts.
    await writeConfig(configPath, config([input("a"), input("c")], metricsPort));
    await until(
      () => /Config reloaded \(file\): started c; unchanged a/.test(agent.stderr()),
      () => agent.stderr(),
    );
    await until(async () => (await storedLines(out)).some((l) => l.startsWith("c3 0 ")), () => "c");
  } finally {
    await agent.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP while the agent starts and while it stops never ends it", async () => {
  const dir = await tempDir();
  // A server that takes connections and never answers: the batch stays in flight, so stopping
  // waits for it (up to 5 s) while SIGHUPs keep coming.
  const port = freePort();
  const silent = Deno.listen({ hostname: "127.0.0.1", port });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  await writeConfig(join(dir, "agent.json"), {
    servers: [`http://127.0.0.1:${port}`],
    state_dir: "state",
    inputs: [{ source: "app", paths: [join(dir, "*.log")] }],
    batch: { max_wait: "50ms" },
  });
  await Deno.writeTextFile(join(dir, "app.log"), line(1, 1) + "\n");
  const agent = await startAgent("agent.json", { cwd: dir });
  let ended: Deno.CommandStatus | undefined;
  agent.child.status.then((status) => ended = status);
  const hangups = () => {
    try {
      for (let i = 0; i < 20; i++) agent.child.kill("SIGHUP");
    } catch {
      // It exited between the check and the signal: the assertions below say how.
    }
  };
  hangups();
  await until(() => held.length > 0, () => `no batch was sent: ${agent.stderr()}`);
  agent.child.kill("SIGTERM");
  await until(() => ended !== undefined || /Stopping/.test(agent.stderr()), agent.stderr);
  // Until it has exited: SIGHUPs all through the wait for the batch in flight.
  await until(() => {
    if (ended === undefined) hangups();
    return ended !== undefined;
  }, agent.stderr);
  assert.equal(ended!.signal, null, agent.stderr());
  assert.equal(ended!.code, 0, agent.stderr());
  silent.close();
  await accepting.catch(() => {});
  for (const conn of held) conn.close();
  await Deno.remove(dir, { recursive: true });
});
