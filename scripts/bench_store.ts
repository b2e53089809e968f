/**
 * Storage benchmark (`deno task bench -scenario store`): the file sink fed in-process with batches
 * shaped like TCP reads (256 KiB of 100-byte lines), so the figures isolate what storage costs:
 *
 * - 100 sources through a `{source}` template, against one file (bar: at least 70%);
 * - rotation every 10 MB with compression on, against one file (bar: at least 80%); the rate is
 *   ingestion's (every line written), while compression, paced, may finish later: its own time is
 *   reported too;
 * - `-fsync batch`, reported.
 *
 * Runs alternate with the single-file baseline, and each bar is the median of the per-round ratios.
 *
 * @module
 */

import { FileSink, type FileSinkConfig } from "../src/store/file_sink.ts";
import { median } from "./_median.ts";

const MB = 1e6;
const TOTAL = 400 * MB;
const LINE = 100;
const BATCH = 256 * 1024 - (256 * 1024) % LINE;

function batches(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const encoder = new TextEncoder();
  for (let b = 0; b < 16; b++) {
    const data = new Uint8Array(BATCH);
    for (let i = 0; i < BATCH / LINE; i++) {
      const line = `c${b} ${i} `.padEnd(LINE - 1, "abcdefghijklmnopqrstuvwxyz") + "\n";
      data.set(encoder.encode(line), i * LINE);
    }
    out.push(data);
  }
  return out;
}

const DATA = batches();

interface Scenario {
  name: string;
  config: Omit<FileSinkConfig, "path">;
  /** The sink's path (a template for many sources), inside a fresh temporary folder. */
  path: string;
  sources: number;
}

async function run({ name, config, path, sources }: Scenario) {
  const dir = await Deno.makeTempDir({ prefix: `bench-store-${name}-` });
  try {
    const sink = await FileSink.open({ ...config, path: `${dir}/${path}` });
    const started = performance.now();
    let sent = 0;
    for (let i = 0; sent < TOTAL; i++) {
      const data = DATA[i % DATA.length];
      const room = sink.write({
        data,
        lines: BATCH / LINE,
        meta: { source: `s${i % sources}`, host: "127.0.0.1", input: "bench" },
        receivedAt: Date.now(),
      });
      sent += data.length;
      if (!room) await sink.writable();
    }
    await sink.flush();
    const seconds = (performance.now() - started) / 1000;
    const tidyStart = performance.now();
    await sink.tidied();
    const tidySeconds = (performance.now() - tidyStart) / 1000;
    await sink.close();
    return { mbps: sent / MB / seconds, tidySeconds };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the storage scenarios for `rounds` rounds; returns the bars that were missed. */
export async function benchStore(rounds: number): Promise<string[]> {
  const scenarios = [
    { name: "100 sources", config: {}, path: "{source}.log", sources: 100, bar: 0.7 },
    {
      name: "rotate 10 MB + gzip",
      config: { rotateBytes: 10 * MB, compress: true },
      path: "app.log",
      sources: 1,
      bar: 0.8,
    },
    {
      name: "fsync batch",
      config: { fsync: "batch" as const },
      path: "app.log",
      sources: 1,
      bar: 0,
    },
  ];
  const ratios = scenarios.map(() => [] as number[]);
  console.log(
    `Storage, in-process, ${TOTAL / MB} MB per run in ${BATCH} B batches, ${rounds} rounds; ` +
      "each scenario right after a single-file run",
  );
  for (let r = 0; r < rounds; r++) {
    const parts: string[] = [];
    for (const [i, scenario] of scenarios.entries()) {
      // Disk writeback of one run slows the next: each scenario gets its own baseline just before.
      const single = await run({ name: "single", config: {}, path: "single.log", sources: 1 });
      const result = await run(scenario);
      ratios[i].push(result.mbps / single.mbps);
      const tidy = result.tidySeconds >= 0.05
        ? ` (gzip done ${result.tidySeconds.toFixed(1)} s later)`
        : "";
      parts.push(
        `${scenario.name} ${result.mbps.toFixed(0)} vs ${single.mbps.toFixed(0)} MB/s${tidy}`,
      );
    }
    console.log(`  ${parts.join(" | ")}`);
  }
  const missed: string[] = [];
  const summary = scenarios.map((scenario, i) => {
    const ratio = median(ratios[i]);
    if (ratio < scenario.bar) {
      missed.push(`${scenario.name} at ${(ratio * 100).toFixed(0)}% < ${scenario.bar * 100}%`);
    }
    const bar = scenario.bar > 0 ? ` (bar ${scenario.bar * 100}%)` : "";
    return `${scenario.name} ${(ratio * 100).toFixed(0)}% of one file${bar}`;
  });
  console.log(`Median ratios: ${summary.join("; ")}`);
  return missed;
}

if (import.meta.main) {
  const missed = await benchStore(Number(Deno.args[0] ?? 3));
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
