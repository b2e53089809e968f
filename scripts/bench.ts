/**
 * `deno task bench`: logboom's benchmarks, each against a peer run in the same shell, since
 * absolute rates drift on a shared machine and the bars are ratios. Exits 1 when a bar is missed.
 *
 * - `tcp`: end-to-end throughput of the TCP -> file path against rsyslog (or `-peer goopt`), with
 *   the shared yardstick (`../shared/bench/run-peer.sh`: a Go load generator that times first
 *   byte sent to last byte in the file, and a verifier of missing, duplicated and torn lines).
 * - `store`: the file sink in-process: 100 sources through a template, rotation, fsync batch
 *   (`scripts/bench_store.ts`).
 * - `rotate`: TCP -> file rotating every 10 MB with gzip, end to end (`scripts/bench_rotation.ts`).
 * - `agent`: one agent shipping one fast-growing file to one server over HTTP, end to end
 *   (`scripts/bench_agent.ts`).
 * - `http`, `sse`, `latency`: HTTP ingest against TCP, TCP ingest with 100 live SSE subscribers,
 *   TCP-to-SSE latency at 100,000 lines/s (`scripts/bench_live.ts`); not in the default run.
 *
 * ```sh
 * deno task bench                          # every scenario, 3 rounds each
 * deno task bench -scenario tcp -rounds 5  # one scenario
 * deno task bench -scenario tcp -peer goopt
 * ```
 *
 * Needs Go (`apt-get install golang-go`) and the peer (`apt-get install rsyslog`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { benchRotation } from "./bench_rotation.ts";
import { benchStore } from "./bench_store.ts";
import { benchHttp, benchLatency, benchSse } from "./bench_live.ts";
import { median } from "./_median.ts";

const { values } = parseArgs({
  args: Deno.args.map((a) => a.replace(/^-(?=\w)/, "--")),
  options: {
    scenario: { type: "string", default: "tcp,store,rotate,agent" },
    peer: { type: "string", default: "rsyslog" },
    rounds: { type: "string", default: "3" },
    c: { type: "string", default: "8" },
    n: { type: "string", default: "500000" },
    s: { type: "string", default: "100" },
  },
});

const root = fileURLToPath(new URL("..", import.meta.url));
const runPeer = Deno.env.get("LOGBOOM_BENCH") ?? `${root}../shared/bench/run-peer.sh`;

/** Bars of the TCP -> file workload (issue 2). */
const MIN_RATIO = 3;
const MAX_RSS_KB = 200 * 1024;

interface Run {
  rate: number;
  mbps: number;
  missing: number;
  duplicated: number;
  torn: number;
  rssKb: number;
  line: string;
}

async function run(peer: string): Promise<Run> {
  const project = `${Deno.execPath()} run --allow-net --allow-write ${root}main.ts`;
  const out = await new Deno.Command("bash", {
    args: [runPeer, peer, values.c, values.n, values.s],
    cwd: root,
    env: { PROJECT_CMD: project },
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  const num = (re: RegExp) => Number(re.exec(line)?.[1] ?? NaN);
  const result = {
    rate: num(/rate=(\d+) lines\/s/),
    mbps: num(/([\d.]+) MB\/s/),
    missing: num(/missing=(\d+)/),
    duplicated: num(/duplicated=(\d+)/),
    torn: num(/torn=(\d+)/),
    rssKb: num(/peak_rss=(\d+)kB/),
    line,
  };
  if (!out.success || Number.isNaN(result.rate) || !line.includes(" ok ")) {
    throw new Error(`Run of "${peer}" failed: ${line || "no output"}`);
  }
  return result;
}

/** TCP -> file against the peer; returns the bars that were missed. */
async function benchTcp(rounds: number): Promise<string[]> {
  const ours: Run[] = [];
  const theirs: Run[] = [];
  console.log(
    `TCP -> file, ${values.c} connections x ${values.n} lines x ${values.s} B, ${rounds} rounds`,
  );
  for (let i = 0; i < rounds; i++) {
    ours.push(await run("project"));
    console.log(`  ${ours.at(-1)!.line}`);
    theirs.push(await run(values.peer));
    console.log(`  ${theirs.at(-1)!.line}`);
  }
  const ratios = ours.map((r, i) => r.rate / theirs[i].rate);
  const rss = Math.max(...ours.map((r) => r.rssKb));
  const lost = ours.reduce((sum, r) => sum + r.missing + r.duplicated + r.torn, 0);
  const ratio = median(ratios);
  console.log(
    `logboom median ${(median(ours.map((r) => r.rate)) / 1e6).toFixed(2)} M lines/s, ` +
      `${values.peer} median ${(median(theirs.map((r) => r.rate)) / 1e6).toFixed(2)} M lines/s, ` +
      `ratio per round ${ratios.map((r) => r.toFixed(2)).join(" ")} (median ${
        ratio.toFixed(2)
      }x), ` +
      `peak RSS ${(rss / 1024).toFixed(0)} MB, missing+duplicated+torn ${lost}`,
  );
  const misses = [
    values.peer === "rsyslog" && ratio < MIN_RATIO && `ratio ${ratio.toFixed(2)} < ${MIN_RATIO}`,
    rss > MAX_RSS_KB && `peak RSS ${(rss / 1024).toFixed(0)} MB > 200 MB`,
    lost > 0 && `${lost} lines missing, duplicated or torn`,
  ];
  return misses.filter((m): m is string => typeof m === "string");
}

const SCENARIOS: Record<string, (rounds: number) => Promise<string[]>> = {
  tcp: benchTcp,
  store: benchStore,
  rotate: benchRotation,
  agent: async (rounds) => await (await import("./bench_agent.ts")).benchAgent(rounds),
  http: benchHttp,
  sse: benchSse,
  latency: benchLatency,
};

const missed: string[] = [];
for (const name of values.scenario.split(",")) {
  const scenario = SCENARIOS[name];
  if (scenario === undefined) {
    console.error(`Unknown scenario "${name}": ${Object.keys(SCENARIOS).join(", ")}`);
    Deno.exit(2);
  }
  missed.push(...await scenario(Number(values.rounds)));
  console.log();
}
if (missed.length > 0) {
  console.log(`Bar missed: ${missed.join("; ")}`);
  Deno.exit(1);
}
