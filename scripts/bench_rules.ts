/**
 * The rules benchmark (`deno task bench -scenario rules`): TCP -> file with transform rules
 * against TCP -> file without, on the same lines in the same run, rounds alternating which runs
 * first.
 *
 * C connections (default 8) each send N JSON lines of S bytes (`{"level":"info","msg":...}`, one
 * in five `debug`) from `scripts/rules_loadgen.go` (Go, standard library only, built once into
 * `$BENCH_BIN`, default `$TMPDIR/logbench-bin`) to logboom started from a JSON config: a tcp input
 * and a raw file sink, and for the rules run a `transforms` section with `parse: json`, `level`
 * and one `filter` (exclude debug). Timed from the first byte sent to the last byte stored; the
 * stored size is checked (every line, or every line but the debug ones). Rate: input lines per
 * second. Bar: the rules run's median rate at least 40% of the plain run's. The cost of each step
 * in ns per line comes from the server's own `/metrics` (`logboom_transform_seconds_total` over
 * `logboom_transform_lines_in_total`), server CPU seconds from /proc. Without Go it is skipped.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { median } from "./_median.ts";
import { BENCH_BIN, buildGo, cpuSeconds, drain, freePort, peakRssKb } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const loadgenSource = `${root}scripts/rules_loadgen.go`;
const loadgenExe = `${BENCH_BIN}/rules_loadgen`;
const decoder = new TextDecoder();

/** The workload: connections, lines per connection, bytes per line (LF included). */
export interface RulesLoad {
  c: number;
  n: number;
  s: number;
}

/** The bar: the rules run's rate over the plain run's. */
const MIN_RATIO = 0.4;

/** The steps measured, in the config's order. */
const STEPS = [
  { type: "parse", format: "json" },
  { type: "level", fields: ["level"] },
  { type: "filter", action: "exclude", level: "debug" },
];

interface Run {
  rate: number;
  cpu: number;
  rssKb: number;
  line: string;
  /** ns per line, by step type; rules runs only. */
  steps?: Record<string, number>;
}

async function goMissing(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("go", { args: ["version"], stdout: "null" }).output();
    return out.success ? undefined : "go version failed";
  } catch {
    return "Go is not installed (apt-get install golang-go)";
  }
}

/** One run of logboom under the load, with or without the rules. */
async function run(rules: boolean, load: RulesLoad): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-rules-" });
  try {
    const port = freePort();
    const http = freePort();
    const config = {
      log_level: "info",
      http: { address: `127.0.0.1:${http}` },
      inputs: { tcp: { type: "tcp", address: `127.0.0.1:${port}`, source: "app" } },
      sinks: { file: { type: "file", path: `${dir}/out.log` } },
      ...(rules ? { transforms: { app: { sources: ["app"], steps: STEPS } } } : {}),
    };
    await Deno.writeTextFile(`${dir}/logboom.json`, JSON.stringify(config));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-write",
        `--allow-read=${dir}`,
        `${root}main.ts`,
        "serve",
        "-config",
        `${dir}/logboom.json`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const err = drain(child.stderr, "Listening on");
    try {
      if (!await err.seen) throw new Error(`logboom did not start:\n${err.text()}`);
      const cpu0 = await cpuSeconds(child.pid);
      const out = await new Deno.Command(loadgenExe, {
        args: [
          ...["-addr", `127.0.0.1:${port}`, "-c", String(load.c), "-n", String(load.n)],
          ...["-s", String(load.s), "-sink", `${dir}/out.log`],
          ...(rules ? ["-filtered"] : []),
        ],
      }).output();
      const line = decoder.decode(out.stdout).trim();
      if (!out.success || !line.startsWith("ok ")) {
        throw new Error(`rules_loadgen failed: ${line} ${decoder.decode(out.stderr)}`);
      }
      const result: Run = {
        rate: Number(/rate=(\d+)/.exec(line)?.[1] ?? NaN),
        cpu: await cpuSeconds(child.pid) - cpu0,
        rssKb: await peakRssKb(child.pid),
        line,
      };
      if (rules) {
        const page = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
        result.steps = stepCosts(page);
      }
      return result;
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await err.done;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** ns per line of each step, from a /metrics page. */
function stepCosts(page: string): Record<string, number> {
  const read = (name: string, type: string) =>
    Number(
      new RegExp(`^${name}\\{pipeline="app",step="\\d+",type="${type}"\\} (\\S+)$`, "m")
        .exec(page)?.[1] ?? NaN,
    );
  return Object.fromEntries(STEPS.map(({ type }) => [
    type,
    read("logboom_transform_seconds_total", type) * 1e9 /
    read("logboom_transform_lines_in_total", type),
  ]));
}

/** The scenario: returns the bars missed. */
export async function benchRules(rounds: number, load: RulesLoad): Promise<string[]> {
  const missing = await goMissing();
  if (missing !== undefined) {
    console.log(`Skipped rules: it needs Go, and ${missing}`);
    return [];
  }
  await buildGo(loadgenSource, "rules_loadgen");
  console.log(
    `Rules (parse json + level + filter, 1 in 5 lines dropped) vs none, TCP -> file, ` +
      `${load.c} connections x ${load.n} lines x ${load.s} B, ${rounds} rounds`,
  );
  const plain: Run[] = [];
  const ruled: Run[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const rules of i % 2 === 0 ? [false, true] : [true, false]) {
      const result = await run(rules, load);
      (rules ? ruled : plain).push(result);
      const steps = result.steps === undefined
        ? ""
        : ` steps(ns/line): ${
          Object.entries(result.steps).map(([type, ns]) => `${type} ${ns.toFixed(0)}`).join(", ")
        }`;
      console.log(
        `  ${rules ? "rules" : "plain"}: ${result.line} cpu=${result.cpu.toFixed(2)}s ` +
          `peak_rss=${(result.rssKb / 1024).toFixed(0)}MB${steps}`,
      );
    }
  }
  const ratios = ruled.map((r, i) => r.rate / plain[i].rate);
  const ratio = median(ratios);
  const cost = (type: string) => median(ruled.map((r) => r.steps![type]));
  console.log(
    `plain median ${(median(plain.map((r) => r.rate)) / 1e6).toFixed(2)} M lines/s, rules ` +
      `median ${(median(ruled.map((r) => r.rate)) / 1e6).toFixed(2)} M lines/s, ratio per ` +
      `round ${ratios.map((r) => r.toFixed(2)).join(" ")} (median ${ratio.toFixed(2)}, bar ` +
      `${MIN_RATIO}); server CPU median plain ${median(plain.map((r) => r.cpu)).toFixed(2)} s, ` +
      `rules ${median(ruled.map((r) => r.cpu)).toFixed(2)} s; cost per step (median ns/line): ` +
      STEPS.map(({ type }) => `${type} ${cost(type).toFixed(0)}`).join(", "),
  );
  return ratio < MIN_RATIO ? [`rules ratio ${ratio.toFixed(2)} < ${MIN_RATIO}`] : [];
}
