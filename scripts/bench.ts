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
 * - `cost`: server CPU for the same TCP lines with the HTTP API off, on (the default) and with
 *   one stalled SSE subscriber; bars 1.05x and 1.10x (`scripts/bench_live.ts`).
 * - `syslog`: octet-counted RFC 5424 over TCP (`-c` x `-n` x `-s`) into a file, against rsyslog
 *   `imptcp`; bar 2x rsyslog's lines/s (`scripts/bench_syslog.ts`).
 * - `udp`: lines received versus sent over UDP (raw and syslog) at the highest rate where rsyslog
 *   `imudp` loses nothing, and at twice it (`scripts/bench_syslog.ts`).
 * - `postgres`: the PostgreSQL sink's rows/s by transaction size against a minimal COPY client
 *   (`scripts/bench_postgres.ts`); not in the default run.
 * - `nats`: TCP through an ingest node to JetStream R3, and on through `logboom store` to a file,
 *   each against a minimal publisher of the same batches; the single-node path, and
 *   publish-to-stored latency (`scripts/bench_nats.ts`); not in the default run.
 * - `page`: the web page's live tail in headless Chromium at 10,000 lines/s for 60 s: no long task
 *   over 100 ms, a bounded JS heap (`scripts/bench_page.ts`); not in the default run.
 *
 * ```sh
 * deno task bench                          # every scenario, 3 rounds each
 * deno task bench -scenario tcp -rounds 5  # one scenario
 * deno task bench -scenario tcp -peer goopt
 * deno task bench -scenario syslog,udp     # needs Go and rsyslog, not ../shared/bench
 * ```
 *
 * The peers and the Go load generator come from `../shared/bench` (or `LOGBOOM_BENCH_DIR`) and need
 * Go (`apt-get install golang-go`) and the peer (`apt-get install rsyslog`). Without them, from a
 * plain clone, `tcp` measures logboom alone with a load generator in this process, and the
 * scenarios built on the Go load generator are skipped, each with a line that says why. `syslog`
 * and `udp` bring their own load generator (`scripts/syslog_loadgen.go`) and need Go and rsyslog
 * (`RSYSLOGD`, the PATH, or `.tools/rsyslog` where `.ci/run` unpacks it); without them they are
 * skipped, saying which is missing.
 * `deno task bench -h` lists the flags and scenarios.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { benchRotation } from "./bench_rotation.ts";
import { benchStore } from "./bench_store.ts";
import { benchCost, benchHttp, benchLatency, benchSse } from "./bench_live.ts";
import { benchSyslog, benchUdp } from "./bench_syslog.ts";
import { benchProtocols } from "./bench_protocols.ts";
import { benchRules } from "./bench_rules.ts";
import { benchSearch } from "./bench_search.ts";
import { benchTcpAlone } from "./bench_tcp_alone.ts";
import { median } from "./_median.ts";
import { parseSize } from "../src/units.ts";
import {
  FlagError,
  type FlagSpecs,
  formatUsage,
  parseCount,
  parseFlags,
} from "../src/cli/flags.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const sharedDir = Deno.env.get("LOGBOOM_BENCH_DIR") ?? `${root}../shared/bench`;
const runPeer = Deno.env.get("LOGBOOM_BENCH") ?? `${sharedDir}/run-peer.sh`;

/**
 * Each scenario: what it measures, whether it needs the shared yardstick (Go and peers), and
 * anything else it needs (checked by the scenario itself).
 */
const SCENARIO_HELP: Record<string, { help: string; yardstick: boolean; needs?: string }> = {
  tcp: {
    help: "TCP -> file against -peer (logboom alone, no ratio, without ../shared/bench)",
    yardstick: false,
  },
  store: { help: "the file sink in-process: 100 sources, rotation, fsync batch", yardstick: false },
  rotate: { help: "TCP -> file rotating every 10 MB with gzip, end to end", yardstick: true },
  agent: {
    help: "one agent shipping a 1 GB file over HTTP (against socat if installed)",
    yardstick: false,
  },
  http: { help: "HTTP ingest against TCP (not in the default run)", yardstick: true },
  sse: {
    help: "TCP ingest with 100 live SSE subscribers (not in the default run)",
    yardstick: true,
  },
  latency: {
    help: "TCP-to-SSE latency at 100,000 lines/s (not in the default run)",
    yardstick: true,
  },
  cost: {
    help: "server CPU with the HTTP API off, on, and one stalled SSE subscriber (not in the " +
      "default run)",
    yardstick: true,
  },
  syslog: {
    help: "octet-counted RFC 5424 syslog over TCP -> file against rsyslog imptcp (-c, -n, -s)",
    yardstick: false,
    needs: "Go and rsyslog",
  },
  protocols: {
    help: "the same records as text, NDJSON (gzip), OTLP protobuf and Loki protobuf over HTTP; " +
      "bar: NDJSON at least half of text's MB/s",
    yardstick: false,
  },
  rules: {
    help: "TCP -> file with parse json + level + filter against none, same JSON lines (-c, -n, " +
      "-s); bar: 40% of the plain rate; cost per step in ns per line",
    yardstick: false,
    needs: "Go",
  },
  search: {
    help: "a rare string in 1 GB of stored plain logs through GET /api/v1/search against " +
      "grep -F -c (bar: 1.5x), and the bytes a 1% time range reads (bar: 5%) (not in the " +
      "default run)",
    yardstick: false,
  },
  udp: {
    help: "UDP (raw and syslog) received vs sent, at the highest rate where rsyslog imudp loses " +
      "nothing and at 2x",
    yardstick: false,
    needs: "Go and rsyslog",
  },
  postgres: {
    help: "the PostgreSQL sink's rows/s at 100, 1,000 and 10,000 rows per transaction against " +
      "a minimal COPY client, the exactly-once path, a one-row transaction's ms (bar: 70% at " +
      "10,000) (not in the default run)",
    yardstick: false,
    needs: "PostgreSQL",
  },
  nats: {
    help: "TCP -> serve -nats -> JetStream R3 (3 local servers), and on -> logboom store -> " +
      "file, each against a minimal publisher of the same batches (bars: 80%), the single-node " +
      "path, and publish-to-stored latency p50/p99 (not in the default run)",
    yardstick: false,
    needs: "nats-server",
  },
  page: {
    help: "the web page's live tail in headless Chromium at 10,000 lines/s for 60 s: long tasks " +
      "and JS heap (not in the default run)",
    yardstick: false,
    needs: "/usr/bin/chromium",
  },
};

const BENCH_FLAGS: FlagSpecs = {
  scenario: {
    type: "string",
    value: "NAMES",
    default: "tcp,store,rotate,agent,protocols,rules,syslog,udp",
    help: `Comma-separated scenarios: ${Object.keys(SCENARIO_HELP).join(", ")}`,
  },
  peer: {
    type: "string",
    value: "PEER",
    default: "rsyslog",
    help: "Peer of the tcp scenario: rsyslog, goopt, seedref or syslog-ng",
  },
  rounds: { type: "string", value: "N", default: "3", help: "Rounds of each scenario" },
  c: { type: "string", value: "N", default: "8", help: "Connections (tcp, syslog)" },
  n: { type: "string", value: "N", default: "500000", help: "Lines per connection (tcp, syslog)" },
  s: {
    type: "string",
    value: "BYTES",
    default: "100",
    help: "Bytes per line, newline included (tcp, syslog, udp; at least 100 for syslog and udp)",
  },
  rate: {
    type: "string",
    value: "N",
    help:
      "Datagrams per second of the udp scenario (default: stepped up until rsyslog loses >0.1%)",
  },
  seconds: {
    type: "string",
    value: "N",
    default: "3",
    help: "Seconds of sending per udp run",
  },
  udpBuffer: {
    type: "string",
    value: "BYTES",
    help: "Receive buffer of logboom's and rsyslog's UDP sockets, e.g. 8MiB (as ss -m shows it); " +
      "default the system's",
  },
};

const SYNOPSIS =
  "deno task bench [-scenario NAMES] [-rounds N] [-peer PEER] [-c N] [-n N] [-s BYTES] [-rate N]\n" +
  "       [-seconds N] [-udpBuffer BYTES]";

function usage(): string {
  const width = Math.max(...Object.keys(SCENARIO_HELP).map((name) => name.length));
  const scenarios = Object.entries(SCENARIO_HELP).map(([name, { help, yardstick, needs }]) =>
    `  ${name.padEnd(width)}  ${help}${yardstick ? " [needs ../shared/bench and Go]" : ""}` +
    (needs === undefined ? "" : ` [needs ${needs}]`)
  );
  return `${formatUsage(SYNOPSIS, BENCH_FLAGS)}\nScenarios:\n${scenarios.join("\n")}\n\n` +
    "Peers and the Go load generator come from ../shared/bench (or LOGBOOM_BENCH_DIR) when it is\n" +
    "there; without it, scenarios marked so are skipped and tcp measures logboom alone. syslog and\n" +
    "udp need Go and rsyslog (RSYSLOGD, the PATH, or .tools/rsyslog), not ../shared/bench.\n";
}

/** The command line's values, checked. */
function parseBenchArgs(
  args: readonly string[],
): { values: Record<string, string>; help: boolean } {
  const { values, positionals, help } = parseFlags(args, BENCH_FLAGS);
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  for (const name of String(values.scenario).split(",")) {
    if (!Object.hasOwn(SCENARIO_HELP, name)) {
      throw new FlagError(
        `Unknown scenario "${name}": ${Object.keys(SCENARIO_HELP).join(", ")}`,
      );
    }
  }
  parseCount("rounds", String(values.rounds), { min: 1 });
  parseCount("c", String(values.c), { min: 1 });
  parseCount("n", String(values.n), { min: 1 });
  parseCount("s", String(values.s), { min: 32 });
  if (values.rate !== undefined) parseCount("rate", String(values.rate), { min: 1 });
  parseCount("seconds", String(values.seconds), { min: 1 });
  if (values.udpBuffer !== undefined) {
    try {
      parseSize(String(values.udpBuffer));
    } catch (err) {
      throw new FlagError(`-udpBuffer: ${(err as Error).message}`);
    }
  }
  const syslogs = String(values.scenario).split(",").some((name) =>
    name === "syslog" || name === "udp"
  );
  if (syslogs && Number(values.s) < 100) {
    throw new FlagError(`-s must be at least 100 for syslog and udp: their messages have a header`);
  }
  return { values: values as Record<string, string>, help };
}

let parsed: ReturnType<typeof parseBenchArgs>;
try {
  parsed = parseBenchArgs(Deno.args);
} catch (err) {
  if (!(err instanceof FlagError)) throw err;
  console.error(`${err.message}\n\n${usage()}`);
  Deno.exit(2);
}
if (parsed.help) {
  console.log(usage());
  Deno.exit(0);
}
const { values } = parsed;

async function installed(command: string): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `command -v ${command}`],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Why the shared yardstick cannot run here, or `undefined` when it can. */
async function yardstickMissing(): Promise<string | undefined> {
  if (!await exists(runPeer)) return `${runPeer} not found (set LOGBOOM_BENCH_DIR)`;
  if (!await installed("go")) return "Go is not installed (apt-get install golang-go)";
}

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

const load = { c: Number(values.c), n: Number(values.n), s: Number(values.s) };
const missing = await yardstickMissing();

const SCENARIOS: Record<string, (rounds: number) => Promise<string[]>> = {
  tcp: (rounds) => missing ? benchTcpAlone(rounds, load) : benchTcp(rounds),
  store: benchStore,
  rotate: benchRotation,
  agent: async (rounds) => await (await import("./bench_agent.ts")).benchAgent(rounds),
  page: async (rounds) => await (await import("./bench_page.ts")).benchPage(rounds),
  postgres: async (rounds) => await (await import("./bench_postgres.ts")).benchPostgres(rounds),
  nats: async (rounds) => await (await import("./bench_nats.ts")).benchNats(rounds),
  http: benchHttp,
  protocols: benchProtocols,
  rules: (rounds) => benchRules(rounds, load),
  sse: benchSse,
  latency: benchLatency,
  cost: benchCost,
  syslog: (rounds) => benchSyslog(rounds, load),
  search: benchSearch,
  udp: (rounds) =>
    benchUdp(rounds, {
      s: load.s,
      rate: values.rate === undefined ? undefined : Number(values.rate),
      seconds: Number(values.seconds),
      buffer: values.udpBuffer === undefined ? undefined : parseSize(values.udpBuffer),
    }),
};

const missed: string[] = [];
for (const name of values.scenario.split(",")) {
  if (missing && SCENARIO_HELP[name].yardstick) {
    console.log(`Skipped ${name}: it needs the shared yardstick, and ${missing}\n`);
    continue;
  }
  missed.push(...await SCENARIOS[name](Number(values.rounds)));
  console.log();
}
if (missed.length > 0) {
  console.log(`Bar missed: ${missed.join("; ")}`);
  Deno.exit(1);
}
