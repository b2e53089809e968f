/**
 * Agent benchmark (`deno task bench -scenario agent`): one agent ships one fast-growing file to
 * one server on loopback, end to end: timed from the first byte written to the file until the
 * server's file holds every byte. The writer (this script) appends unique 100-byte lines
 * (`c0 <seq> <filler>`, as the shared verifier expects) in 4 MiB writes, as fast as it can.
 *
 * The agent runs as the README says (`--v8-flags=--max-semi-space-size=2`), with 4 MiB batches.
 * `LOGBOOM_AGENT_BENCH_BYTES` sets the file's size (default 1 GB).
 *
 * Bars: at least 100 MB/s (median of the rounds), agent peak RSS under 100 MB, no line lost,
 * duplicated or torn. Reported too: the agent's CPU seconds per GB shipped (user + system, from
 * `/proc/<pid>/stat`, read through `cat` since Deno reads /proc only under --allow-all).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { median } from "./_median.ts";
import { cpuSeconds, freePort, peakRssKb } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const main = join(root, "main.ts");
const verifyGo = Deno.env.get("LOGBOOM_BENCH_DIR") ?? join(root, "../shared/bench");
const LINE = 100;
const CHUNK_LINES = 40 * 1024; // 4 MiB per write
const MIN_MBPS = 100;
const MAX_RSS_KB = 100 * 1024;
const decoder = new TextDecoder();

interface AgentRun {
  mbps: number;
  rssKb: number;
  cpuPerGb: number;
  serverCpuPerGb: number;
  lost: number;
  line: string;
}

/** Fills `buf` with lines `from`..`from + CHUNK_LINES - 1`: `c0 <10-digit seq> <filler>\n`. */
function fillChunk(buf: Uint8Array, from: number): void {
  for (let i = 0; i < CHUNK_LINES; i++) {
    let seq = from + i;
    const at = i * LINE + 3; // after "c0 "
    for (let d = 9; d >= 0; d--) {
      buf[at + d] = 48 + (seq % 10);
      seq = Math.floor(seq / 10);
    }
  }
}

function template(): Uint8Array {
  const buf = new Uint8Array(CHUNK_LINES * LINE);
  const filler = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (let i = 0; i < CHUNK_LINES; i++) {
    const line = `c0 0000000000 ${filler}${filler}`.slice(0, LINE - 1) + "\n";
    buf.set(new TextEncoder().encode(line), i * LINE);
  }
  return buf;
}

function spawn(args: string[], cwd: string): { child: Deno.ChildProcess; stderr: () => string } {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let text = "";
  (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk);
  })();
  return { child, stderr: () => text };
}

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function runOnce(bytes: number): Promise<AgentRun> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-agent-" });
  const chunks = Math.ceil(bytes / (CHUNK_LINES * LINE));
  const total = chunks * CHUNK_LINES * LINE;
  const http = freePort();
  const server = spawn([
    "run",
    "--allow-net",
    "--allow-write",
    "--allow-read",
    main,
    "-port",
    String(freePort()),
    "-http",
    `127.0.0.1:${http}`,
    "-logFile",
    "out/{source}.log",
  ], dir);
  let agent: ReturnType<typeof spawn> | undefined;
  try {
    await waitFor("the server", () => server.stderr().includes("Listening on"), 20_000);
    await Deno.mkdir(join(dir, "logs"));
    const path = join(dir, "logs", "app.log");
    await Deno.writeTextFile(path, "");
    await Deno.writeTextFile(
      join(dir, "agent.json"),
      JSON.stringify({
        servers: [`http://127.0.0.1:${http}`],
        state_dir: "state",
        inputs: [{ source: "bench", paths: [path] }],
        // Larger batches than the default 1 MiB: the server's cost per request is what limits a
        // single stream (one batch in flight per stream, as the server refuses batches out of order).
        batch: { max_bytes: "4MiB", max_wait: "50ms" },
      }),
    );
    agent = spawn([
      "run",
      // As the README runs the agent: a small young generation, so the few large buffers each
      // batch leaves behind are collected early (84 MB peak instead of 97 MB at the same speed).
      "--v8-flags=--max-semi-space-size=2",
      "--allow-read",
      `--allow-write=${join(dir, "state")}`,
      `--allow-net=127.0.0.1:${http}`,
      "--allow-env=LOGBOOM_TOKEN,LOG_TOKENS,LOG_STREAM",
      main,
      "agent",
      "-config",
      "agent.json",
    ], dir);
    const a = agent;
    await waitFor("the agent", () => /Agent \S+ started/.test(a.stderr()), 20_000);
    const serverCpu0 = await cpuSeconds(server.child.pid);
    const agentCpu0 = await cpuSeconds(agent.child.pid);
    const out = join(dir, "out", "bench.log");
    const buf = template();
    const started = performance.now();
    {
      using file = await Deno.open(path, { append: true });
      for (let c = 0; c < chunks; c++) {
        fillChunk(buf, c * CHUNK_LINES);
        let at = 0;
        while (at < buf.length) at += await file.write(buf.subarray(at));
      }
    }
    const written = performance.now();
    await waitFor("every byte stored", async () => {
      try {
        return (await Deno.stat(out)).size >= total;
      } catch {
        return false;
      }
    }, 300_000);
    const seconds = (performance.now() - started) / 1000;
    const gb = total / 1e9;
    const rssKb = await peakRssKb(agent.child.pid);
    const cpuPerGb = (await cpuSeconds(agent.child.pid) - agentCpu0) / gb;
    const serverCpuPerGb = (await cpuSeconds(server.child.pid) - serverCpu0) / gb;
    let lost = (await Deno.stat(out)).size - total;
    let verdict = "not verified (no Go)";
    try {
      const check = await new Deno.Command("go", {
        args: [
          "run",
          join(verifyGo, "verify.go"),
          "-c",
          "1",
          "-n",
          String(chunks * CHUNK_LINES),
          "-s",
          String(LINE),
          out,
        ],
        env: { GO111MODULE: "off" },
      }).output();
      verdict = decoder.decode(check.stdout).trim();
      if (!check.success) lost = Math.max(lost, 1);
    } catch {
      // Go is not installed: the byte count stands alone.
    }
    const mbps = total / 1e6 / seconds;
    return {
      mbps,
      rssKb,
      cpuPerGb,
      serverCpuPerGb,
      lost,
      line: `${(total / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s (written in ${
        ((written - started) / 1000).toFixed(2)
      } s): ${mbps.toFixed(0)} MB/s, agent peak RSS ${(rssKb / 1024).toFixed(0)} MB, agent CPU ${
        cpuPerGb.toFixed(2)
      } s/GB, server CPU ${serverCpuPerGb.toFixed(2)} s/GB; ${verdict}`,
    };
  } finally {
    for (const p of [agent, server]) {
      if (p === undefined) continue;
      try {
        p.child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await p.child.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the agent benchmark `rounds` times; returns the bars that were missed. */
export async function benchAgent(rounds: number): Promise<string[]> {
  const bytes = Number(Deno.env.get("LOGBOOM_AGENT_BENCH_BYTES") ?? 1e9);
  console.log(
    `Agent: one ${(bytes / 1e6).toFixed(0)} MB fast-growing file -> one server, ${rounds} rounds`,
  );
  const runs: AgentRun[] = [];
  for (let i = 0; i < rounds; i++) {
    runs.push(await runOnce(bytes));
    console.log(`  ${runs.at(-1)!.line}`);
  }
  const mbps = median(runs.map((r) => r.mbps));
  const rss = Math.max(...runs.map((r) => r.rssKb));
  const cpu = median(runs.map((r) => r.cpuPerGb));
  const lost = runs.reduce((sum, r) => sum + r.lost, 0);
  console.log(
    `agent median ${mbps.toFixed(0)} MB/s, peak RSS ${(rss / 1024).toFixed(0)} MB, ` +
      `CPU ${cpu.toFixed(2)} s per GB shipped (server ${
        median(runs.map((r) => r.serverCpuPerGb)).toFixed(2)
      } s/GB)`,
  );
  return [
    mbps < MIN_MBPS && `agent ${mbps.toFixed(0)} MB/s < ${MIN_MBPS} MB/s`,
    rss > MAX_RSS_KB && `agent peak RSS ${(rss / 1024).toFixed(0)} MB > 100 MB`,
    lost !== 0 && `agent run lost, duplicated or tore lines`,
  ].filter((m): m is string => typeof m === "string");
}

if (import.meta.main) {
  const missed = await benchAgent(Number(Deno.args[0] ?? 3));
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
