/**
 * Agent benchmark (`deno task bench -scenario agent`): one file of unique 100-byte lines
 * (`c0 <seq> <filler>`, as the shared verifier expects; 1 GB, `LOGBOOM_AGENT_BENCH_BYTES` sets the
 * size) is pushed into one server on loopback twice in each round, in turns:
 *
 * - by `socat -u FILE TCP:127.0.0.1:PORT` into the server's TCP port (when socat is installed):
 *   the yardstick, what the same server takes when nothing but the bytes is asked of the sender;
 * - by the agent, with the config's defaults and the docs' command line (the narrow permissions
 *   and nothing else), over HTTP: acknowledged, checkpointed, exactly once.
 *
 * Each is timed from the moment the file is there (socat starts; the file is linked into the
 * folder the running agent watches) until the server's file holds every byte. Both read the file
 * from the page cache.
 *
 * `LOGBOOM_AGENT_BENCH_CONFIG` (JSON) adds keys to the agent's config and
 * `LOGBOOM_AGENT_BENCH_FLAGS` adds `deno run` flags, to try other settings than the defaults;
 * `LOGBOOM_AGENT_BENCH_SERVER_MAIN` and `LOGBOOM_AGENT_BENCH_AGENT_MAIN` run another version's
 * `main.ts` (e.g. from `git archive`) as the server or the agent, to compare versions.
 * Before each push the page cache is synced, so that the other push's writeback does not slow it.
 *
 * Bars: the agent at least 60% of socat's MB/s (median of the rounds' ratios; without socat, at
 * least 100 MB/s), agent peak RSS under 100 MB, no line lost, duplicated or torn (verified with
 * `../shared/bench/verify.go` when Go is installed, by byte count otherwise). Reported too: CPU
 * seconds per GB (user + system, from `/proc/<pid>/stat`) of the agent, of the server ingesting
 * over HTTP, and of the server ingesting the same bytes over TCP.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { median } from "./_median.ts";
import { cpuSeconds, freePort, peakRssKb } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const main = join(root, "main.ts");
/** Another version's `main.ts` for the server or the agent, to compare versions in one run. */
const serverMain = Deno.env.get("LOGBOOM_AGENT_BENCH_SERVER_MAIN") ?? main;
const agentMain = Deno.env.get("LOGBOOM_AGENT_BENCH_AGENT_MAIN") ?? main;
const verifyGo = Deno.env.get("LOGBOOM_BENCH_DIR") ?? join(root, "../shared/bench");
const LINE = 100;
const CHUNK_LINES = 40 * 1024; // 4 MiB per write
const MIN_RATIO = 0.6;
const MIN_MBPS = 100;
const MAX_RSS_KB = 100 * 1024;
const decoder = new TextDecoder();

/** One push of the file into the server. */
interface Push {
  mbps: number;
  seconds: number;
  /** CPU seconds per GB of the sender (the agent; socat's is not measured). */
  cpuPerGb: number;
  serverCpuPerGb: number;
  rssKb: number;
  /** Lines lost, duplicated or torn (or bytes missing, without Go). */
  lost: number;
  verdict: string;
}

interface Round {
  agent: Push;
  socat?: Push;
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
  const line = new TextEncoder().encode(
    `c0 0000000000 ${filler}${filler}`.slice(0, LINE - 1) + "\n",
  );
  for (let i = 0; i < CHUNK_LINES; i++) buf.set(line, i * LINE);
  return buf;
}

/** Writes the bench file: `chunks` x 4 MiB of lines. */
async function writeData(path: string, chunks: number): Promise<void> {
  const buf = template();
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let c = 0; c < chunks; c++) {
    fillChunk(buf, c * CHUNK_LINES);
    let at = 0;
    while (at < buf.length) at += await file.write(buf.subarray(at));
  }
}

function spawn(
  cmd: string,
  args: string[],
  cwd: string,
): { child: Deno.ChildProcess; stderr: () => string } {
  const child = new Deno.Command(cmd, {
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

async function size(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function installed(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Checks `out` with the shared verifier: lines lost, duplicated or torn. */
async function verify(out: string, lines: number, total: number): Promise<[number, string]> {
  let lost = Math.abs(await size(out) - total);
  const counted = lost === 0 ? "bytes all there" : `${lost} bytes off`;
  if (await size(join(verifyGo, "verify.go")) === 0) return [lost, `${counted} (no verifier)`];
  try {
    const check = await new Deno.Command("go", {
      args: ["run", join(verifyGo, "verify.go"), "-c", "1", "-n", String(lines), "-s", "100", out],
      env: { GO111MODULE: "off" },
    }).output();
    const verdict = decoder.decode(check.stdout).trim();
    if (!check.success) lost = Math.max(lost, 1);
    return [lost, verdict];
  } catch {
    return [lost, `${counted} (not verified: no Go)`];
  }
}

/** The agent as the docs run it: the narrow permissions, nothing else. */
function agentArgs(dir: string, http: number): string[] {
  const extra = (Deno.env.get("LOGBOOM_AGENT_BENCH_FLAGS") ?? "").split(" ").filter((f) => f);
  return [
    "run",
    ...extra,
    `--allow-read=${dir}`,
    `--allow-write=${join(dir, "state")}`,
    `--allow-net=127.0.0.1:${http}`,
    "--allow-env=LOGBOOM_TOKEN,LOG_TOKENS,LOG_STREAM",
    agentMain,
    "agent",
    "-config",
    "agent.json",
  ];
}

async function pushSocat(
  data: string,
  port: number,
  out: string,
  server: Deno.ChildProcess,
  total: number,
): Promise<Push> {
  const cpu0 = await cpuSeconds(server.pid);
  const started = performance.now();
  const socat = await new Deno.Command("socat", {
    args: ["-u", data, `TCP:127.0.0.1:${port}`],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!socat.success) throw new Error("socat failed");
  await waitFor("every byte stored (socat)", async () => await size(out) >= total, 300_000);
  const seconds = (performance.now() - started) / 1000;
  const serverCpuPerGb = (await cpuSeconds(server.pid) - cpu0) / (total / 1e9);
  const [lost, verdict] = await verify(out, total / LINE, total);
  return {
    mbps: total / 1e6 / seconds,
    seconds,
    cpuPerGb: NaN,
    serverCpuPerGb,
    rssKb: NaN,
    lost,
    verdict,
  };
}

async function pushAgent(
  dir: string,
  data: string,
  http: number,
  out: string,
  server: Deno.ChildProcess,
  total: number,
): Promise<Push> {
  const logs = join(dir, "logs");
  await Deno.mkdir(logs, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "agent.json"),
    JSON.stringify({
      servers: [`http://127.0.0.1:${http}`],
      state_dir: "state",
      inputs: [{ source: "bench", paths: [join(logs, "*.log")] }],
      ...JSON.parse(Deno.env.get("LOGBOOM_AGENT_BENCH_CONFIG") ?? "{}"),
    }),
  );
  const agent = spawn(Deno.execPath(), agentArgs(dir, http), dir);
  try {
    await waitFor("the agent", () => /Agent \S+ started/.test(agent.stderr()), 20_000);
    const agentCpu0 = await cpuSeconds(agent.child.pid);
    const serverCpu0 = await cpuSeconds(server.pid);
    const started = performance.now();
    await Deno.link(data, join(logs, "app.log"));
    await waitFor("every byte stored (agent)", async () => await size(out) >= total, 300_000);
    const seconds = (performance.now() - started) / 1000;
    const gb = total / 1e9;
    const cpuPerGb = (await cpuSeconds(agent.child.pid) - agentCpu0) / gb;
    const serverCpuPerGb = (await cpuSeconds(server.pid) - serverCpu0) / gb;
    const rssKb = await peakRssKb(agent.child.pid);
    const [lost, verdict] = await verify(out, total / LINE, total);
    return { mbps: total / 1e6 / seconds, seconds, cpuPerGb, serverCpuPerGb, rssKb, lost, verdict };
  } finally {
    try {
      agent.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await agent.child.status;
  }
}

async function runOnce(data: string, total: number, socat: boolean, socatFirst: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-agent-" });
  const tcp = freePort();
  const http = freePort();
  const server = spawn(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-write",
    "--allow-read",
    serverMain,
    "-port",
    String(tcp),
    "-http",
    `127.0.0.1:${http}`,
    "-logFile",
    "out/{source}.log",
  ], dir);
  try {
    await waitFor("the server", () => server.stderr().includes("Listening on"), 20_000);
    const round: Partial<Round> = {};
    const steps = [
      async () => {
        if (socat) {
          round.socat = await pushSocat(
            data,
            tcp,
            join(dir, "out", "tcp.log"),
            server.child,
            total,
          );
        }
      },
      async () => {
        round.agent = await pushAgent(
          dir,
          data,
          http,
          join(dir, "out", "bench.log"),
          server.child,
          total,
        );
      },
    ];
    if (!socatFirst) steps.reverse();
    for (const step of steps) {
      // The other push's output is on disk first: its writeback must not slow this one.
      await new Deno.Command("sync").output();
      await step();
    }
    return round as Round;
  } finally {
    try {
      server.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await server.child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

function describe(round: Round): string {
  const a = round.agent;
  const s = round.socat;
  const agent = `agent ${a.mbps.toFixed(0)} MB/s (${a.seconds.toFixed(2)} s), peak RSS ${
    (a.rssKb / 1024).toFixed(0)
  } MB, agent CPU ${a.cpuPerGb.toFixed(2)} s/GB, server CPU ${
    a.serverCpuPerGb.toFixed(2)
  } s/GB over HTTP; ${a.verdict}`;
  if (s === undefined) return agent;
  return `${agent}\n    socat ${s.mbps.toFixed(0)} MB/s (${s.seconds.toFixed(2)} s), server CPU ${
    s.serverCpuPerGb.toFixed(2)
  } s/GB over TCP; ${s.verdict}; agent/socat ${(a.mbps / s.mbps).toFixed(2)}`;
}

/** Runs the agent benchmark `rounds` times; returns the bars that were missed. */
export async function benchAgent(rounds: number): Promise<string[]> {
  const bytes = Number(Deno.env.get("LOGBOOM_AGENT_BENCH_BYTES") ?? 1e9);
  const chunks = Math.ceil(bytes / (CHUNK_LINES * LINE));
  const total = chunks * CHUNK_LINES * LINE;
  const socat = await installed("socat");
  console.log(
    `Agent: one ${(total / 1e6).toFixed(0)} MB file -> one server, agent (HTTP, defaults)` +
      `${socat ? " and socat (TCP)" : " (socat not installed)"}, ${rounds} rounds`,
  );
  const dataDir = await Deno.makeTempDir({ prefix: "logboom-bench-agent-data-" });
  const data = join(dataDir, "app.log");
  const runs: Round[] = [];
  try {
    await writeData(data, chunks);
    for (let i = 0; i < rounds; i++) {
      runs.push(await runOnce(data, total, socat, i % 2 === 1));
      console.log(`  ${describe(runs.at(-1)!)}`);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
  const agents = runs.map((r) => r.agent);
  const mbps = median(agents.map((r) => r.mbps));
  const rss = Math.max(...agents.map((r) => r.rssKb));
  const lost = runs.reduce((sum, r) => sum + r.agent.lost + (r.socat?.lost ?? 0), 0);
  let summary = `agent median ${mbps.toFixed(0)} MB/s, peak RSS ${(rss / 1024).toFixed(0)} MB, ` +
    `CPU ${median(agents.map((r) => r.cpuPerGb)).toFixed(2)} s/GB (server over HTTP ${
      median(agents.map((r) => r.serverCpuPerGb)).toFixed(2)
    } s/GB)`;
  let ratio = NaN;
  if (socat) {
    const socats = runs.map((r) => r.socat!);
    ratio = median(runs.map((r) => r.agent.mbps / r.socat!.mbps));
    summary += `; socat median ${median(socats.map((r) => r.mbps)).toFixed(0)} MB/s (server over ` +
      `TCP ${median(socats.map((r) => r.serverCpuPerGb)).toFixed(2)} s/GB); agent/socat median ${
        ratio.toFixed(2)
      }`;
  }
  console.log(summary);
  return [
    socat && ratio < MIN_RATIO && `agent/socat ${ratio.toFixed(2)} < ${MIN_RATIO}`,
    !socat && mbps < MIN_MBPS && `agent ${mbps.toFixed(0)} MB/s < ${MIN_MBPS} MB/s`,
    rss > MAX_RSS_KB && `agent peak RSS ${(rss / 1024).toFixed(0)} MB > 100 MB`,
    lost !== 0 && `lines lost, duplicated or torn`,
  ].filter((m): m is string => typeof m === "string");
}

if (import.meta.main) {
  const missed = await benchAgent(Number(Deno.args[0] ?? 3));
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
