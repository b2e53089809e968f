/**
 * The agent loses nothing silently: files rotated several times while the server is down (by
 * rename and by copytruncate, to names the glob does not match, more generations than
 * `max_rotated_open`) are all shipped once it returns; what truly cannot be shipped (deleted or
 * truncated before it was read) is named in a warning with its bytes and counted in a metric; and
 * matches it cannot read or follow are each named once.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, startServer } from "./_server.ts";
import { until } from "./_http.ts";
import {
  agentMetric,
  appendLines as append,
  AS_A_USER,
  countLines,
  line,
  SERVER_PERMISSIONS,
  startAgent,
  storedLines,
  writeConfig,
} from "./_agent.ts";

/** As logrotate's `copytruncate` does: copy the file, then truncate it in place. */
async function copyTruncate(path: string, copy: string): Promise<void> {
  await Deno.copyFile(path, copy);
  await Deno.truncate(path, 0);
}

interface Rig {
  dir: string;
  path: string;
  metricsPort: number;
  out: string;
  metric(name: string): Promise<number>;
  /** Waits until counter `name` is at least `value`. */
  atLeast(name: string, value: number, why: () => string): Promise<void>;
}

/** A server on a fixed port (so it can come back) and an agent following `<dir>/app.log`. */
async function rig(serverDir: string, httpPort: number): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-rotation-" });
  const metricsPort = freePort();
  const path = join(dir, "app.log");
  await writeConfig(join(dir, "agent.json"), {
    servers: [`http://127.0.0.1:${httpPort}`],
    state_dir: "state",
    // Only the live name: every rotated name below is outside the glob.
    inputs: [{ source: "app", paths: [path], max_bytes: "256KiB" }],
    batch: { max_bytes: "64KiB", max_wait: "50ms" },
    retry: { initial: "50ms", max: "300ms" },
    scan_interval: "200ms",
    rotate_wait: "300ms",
    max_rotated_open: 2,
    report_interval: "300ms",
    metrics: `127.0.0.1:${metricsPort}`,
  });
  const metric = (name: string) => agentMetric(metricsPort, `logboom_agent_${name}`);
  return {
    dir,
    path,
    metricsPort,
    out: join(serverDir, "out"),
    metric,
    async atLeast(name, value, why) {
      await until(async () => (await metric(name)) >= value, () => `${name} < ${value}: ${why()}`);
    },
  };
}

function startOn(dir: string, httpPort: number) {
  return startServer(["-http", `127.0.0.1:${httpPort}`, "-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
    dir,
  });
}

Deno.test("agent ships every generation rotated while the server was down, once", async () => {
  const serverDir = await Deno.makeTempDir({ prefix: "logboom-rotation-server-" });
  const httpPort = freePort();
  let server = await startOn(serverDir, httpPort);
  const r = await rig(serverDir, httpPort);
  const agent = await startAgent("agent.json", { cwd: r.dir });
  const log = () => agent.stderr();
  try {
    await append(r.path, 1, 0, 1000);
    await until(async () => (await storedLines(r.out)).length >= 1000, log);
    await server.stop();
    // The server is down. Each step waits until the agent saw the step before: rotations faster
    // than its scans are a different matter.
    await append(r.path, 1, 1000, 4000);
    await Deno.rename(r.path, `${r.path}.1`);
    await append(r.path, 1, 4000, 6000);
    await r.atLeast("rotations_total", 1, log);
    await r.atLeast("files_found_total", 2, log);
    await Deno.rename(r.path, join(r.dir, "app.log-20260102"));
    await append(r.path, 1, 6000, 8000);
    await r.atLeast("rotations_total", 2, log);
    await r.atLeast("files_found_total", 3, log);
    // Copytruncate to a name unlike the file's, then the next generation in the same inode.
    await copyTruncate(r.path, join(r.dir, "old-copy.txt"));
    await r.atLeast("truncations_total", 1, log);
    await append(r.path, 1, 8000, 10_000);
    await r.atLeast("files_found_total", 4, log);
    await Deno.rename(r.path, join(r.dir, "archive.3"));
    await append(r.path, 1, 10_000, 12_000);
    await r.atLeast("rotations_total", 3, log);
    await r.atLeast("files_found_total", 5, log);
    await copyTruncate(r.path, `${r.path}.5`);
    await r.atLeast("truncations_total", 2, log);
    await append(r.path, 1, 12_000, 13_000);
    await r.atLeast("files_found_total", 6, log);
    // Three renamed generations with unshipped lines, over the cap of two held open.
    await r.atLeast("files_given_up_total", 1, log);
    server = await startOn(serverDir, httpPort);
    await until(async () => (await storedLines(r.out)).length >= 13_000, log, 60_000);
    // Settled: nothing owed, every rotated file let go.
    await until(
      async () => (await r.metric("lag_bytes")) === 0 && (await r.metric("files_open")) === 1,
      log,
    );
    assert.equal(await r.metric("bytes_lost_total"), 0);
    await agent.stop();
    const count = countLines(await storedLines(r.out), new Map([[1, 13_000]]));
    assert.deepEqual(
      { missing: count.missing, duplicated: count.duplicated, torn: count.torn },
      { missing: 0, duplicated: 0, torn: 0 },
      count.examples.join("; ") + "\n" + log(),
    );
    assert.doesNotMatch(log(), /they are lost/);
  } finally {
    await agent[Symbol.asyncDispose]();
    await server[Symbol.asyncDispose]();
    await Deno.remove(r.dir, { recursive: true });
    await Deno.remove(serverDir, { recursive: true });
  }
});

Deno.test("agent names what it could not ship, with its bytes, and counts it", async () => {
  const serverDir = await Deno.makeTempDir({ prefix: "logboom-rotation-server-" });
  const httpPort = freePort();
  let server = await startOn(serverDir, httpPort);
  const r = await rig(serverDir, httpPort);
  const agent = await startAgent("agent.json", { cwd: r.dir });
  const log = () => agent.stderr();
  try {
    await append(r.path, 2, 0, 1000);
    await until(async () => (await storedLines(r.out)).length >= 1000, log);
    await until(async () => (await r.metric("lag_bytes")) === 0, log);
    await server.stop();
    // Generation 1 is rotated, then given up over the cap, then deleted before it was shipped.
    await append(r.path, 2, 1000, 4000);
    await Deno.rename(r.path, `${r.path}.1`);
    await append(r.path, 2, 4000, 5000);
    await r.atLeast("files_found_total", 2, log);
    for (let g = 2; g <= 3; g++) {
      await Deno.rename(r.path, `${r.path}.${g}`);
      await append(r.path, 2, 4000 + (g - 1) * 1000, 4000 + g * 1000);
      await r.atLeast("files_found_total", g + 1, log);
    }
    await r.atLeast("files_given_up_total", 1, log);
    await Deno.remove(`${r.path}.1`);
    // The live file grows past what the agent holds while the server is down (256 KiB), and the
    // agent sees it (lag with it whole: 100 KB of each of generations 2 and 3, 1.1 MB of it; at
    // most 900 KB before). Then it is truncated without a copy, and written again: what was not
    // read of it is gone too. (A batch of it may be in flight then: the truncation is settled
    // once that batch is answered, so the server comes back before it is counted.)
    await append(r.path, 2, 7000, 17000);
    await until(async () => (await r.metric("lag_bytes")) >= 1_300_000, log);
    await Deno.truncate(r.path, 0);
    await append(r.path, 2, 17000, 17500);
    server = await startOn(serverDir, httpPort);
    await r.atLeast("truncations_total", 1, log);
    await r.atLeast("files_found_total", 5, log);
    await r.atLeast("bytes_lost_total", 1, log);
    await until(
      async () => (await r.metric("lag_bytes")) === 0 && (await r.metric("files_open")) === 1,
      log,
      60_000,
    );
    const lostBytes = await r.metric("bytes_lost_total");
    await agent.stop();
    const count = countLines(await storedLines(r.out), new Map([[2, 17500]]));
    assert.deepEqual({ duplicated: count.duplicated, torn: count.torn }, {
      duplicated: 0,
      torn: 0,
    });
    // Exactly the lines the warnings name are missing: lines of the deleted generation and of
    // the truncated one.
    assert.equal(count.missing * 100, lostBytes, log());
    const warned = [...log().matchAll(/\[WRN\].*they are lost$/gm)].map((m) => m[0]);
    assert.equal(warned.length, 2, log());
    assert.ok(warned.some((w) => w.includes(`${r.path}.1 is gone before`)), log());
    assert.ok(warned.some((w) => w.includes(`${r.path} was truncated before`)), log());
    const named = warned.reduce((sum, w) => sum + Number(/(\d+) bytes/.exec(w)![1]), 0);
    assert.equal(named, lostBytes, log());
  } finally {
    await agent[Symbol.asyncDispose]();
    await server[Symbol.asyncDispose]();
    await Deno.remove(r.dir, { recursive: true });
    await Deno.remove(serverDir, { recursive: true });
  }
});

Deno.test("agent says once which matches it cannot read or follow, and reads them once it can", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-rotation-" });
  await using server = await startServer(["-logFile", "out/{source}.log"], {
    permissions: SERVER_PERMISSIONS,
  });
  const out = join(server.dir, "out");
  const logs = join(dir, "logs");
  const locked = join(dir, "locked");
  await Deno.mkdir(logs);
  await Deno.mkdir(join(logs, "sub.log"));
  await Deno.mkdir(locked, { mode: 0o000 });
  await Deno.writeTextFile(join(logs, "secret.log"), line(4, 0), { mode: 0o000 });
  await Deno.chmod(join(logs, "secret.log"), 0o000);
  const fifo = await new Deno.Command("mkfifo", { args: [join(logs, "fifo.log")] }).output();
  assert.equal(fifo.code, 0);
  await Deno.symlink("/dev/null", join(logs, "null.log"));
  const metricsPort = freePort();
  await writeConfig(join(dir, "agent.json"), {
    servers: [server.url],
    state_dir: "state",
    inputs: [{ source: "app", paths: [join(logs, "*.log"), join(locked, "*.log")] }],
    batch: { max_wait: "50ms" },
    scan_interval: "100ms",
    metrics: `127.0.0.1:${metricsPort}`,
  });
  const agent = await startAgent("agent.json", { cwd: dir, wrapper: AS_A_USER });
  const log = () => agent.stderr();
  const stored = async (prefix: string) =>
    (await storedLines(out)).some((l) => l.startsWith(prefix));
  try {
    // Each new file is found by a scan of its own: the problems were seen at several scans.
    for (let i = 0; i < 3; i++) {
      await Deno.writeTextFile(join(logs, `ok${i}.log`), line(5, i));
      await until(() => stored(`c5 ${i} `), log);
    }
    const warnings = log().split("\n").filter((l) => l.includes("[WRN]"));
    const once = (pattern: RegExp) =>
      assert.equal(warnings.filter((w) => pattern.test(w)).length, 1, log());
    once(/Cannot read .*\/logs\/secret\.log, matched by input app: .*[Pp]ermission denied/);
    once(/Skipping .*\/logs\/fifo\.log \(a FIFO\)/);
    once(/Skipping .*\/logs\/sub\.log \(a folder\)/);
    once(/Skipping .*\/logs\/null\.log \(a device\)/);
    once(/Cannot list .*\/locked, a folder of input app's globs: .*[Pp]ermission denied/);
    assert.equal(warnings.length, 5, log());
    assert.equal(await agentMetric(metricsPort, "logboom_agent_files_unreadable"), 1);
    assert.equal(await agentMetric(metricsPort, "logboom_agent_files_skipped"), 3);
    // Readable now: its line is shipped.
    await Deno.chmod(join(logs, "secret.log"), 0o644);
    await until(() => stored("c4 0 "), log);
    await until(
      async () => (await agentMetric(metricsPort, "logboom_agent_files_unreadable")) === 0,
      log,
    );
  } finally {
    await agent.stop();
    await Deno.chmod(locked, 0o755);
    await Deno.remove(dir, { recursive: true });
  }
});
