/**
 * `deno task bench`: end-to-end throughput of the TCP -> file path against a peer, with the shared
 * yardstick (`../shared/bench/run-peer.sh`: a Go load generator that times first byte sent to last
 * byte in the file, and a verifier of missing, duplicated and torn lines).
 *
 * The machine is shared and small, so absolute rates drift: logboom and the peer run alternately
 * in the same shell, and the bar is their ratio. Exits 1 when a bar is missed.
 *
 * ```sh
 * deno task bench                      # logboom vs rsyslog, 3 rounds, 8 x 500,000 x 100 B
 * deno task bench -peer goopt -rounds 5
 * ```
 *
 * Needs Go (`apt-get install golang-go`) and the peer (`apt-get install rsyslog`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const { values } = parseArgs({
  args: Deno.args.map((a) => a.replace(/^-(?=\w)/, "--")),
  options: {
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

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const rounds = Number(values.rounds);
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
    `ratio per round ${ratios.map((r) => r.toFixed(2)).join(" ")} (median ${ratio.toFixed(2)}x), ` +
    `peak RSS ${(rss / 1024).toFixed(0)} MB, missing+duplicated+torn ${lost}`,
);
const misses = [
  values.peer === "rsyslog" && ratio < MIN_RATIO && `ratio ${ratio.toFixed(2)} < ${MIN_RATIO}`,
  rss > MAX_RSS_KB && `peak RSS ${(rss / 1024).toFixed(0)} MB > 200 MB`,
  lost > 0 && `${lost} lines missing, duplicated or torn`,
].filter(Boolean);
if (misses.length > 0) {
  console.log(`Bar missed: ${misses.join("; ")}`);
  Deno.exit(1);
}
