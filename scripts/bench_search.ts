/**
 * Search benchmark (`deno task bench -scenario search`): 1 GB of stored plain logs, written
 * straight in the store's layout (`logs/{source}.log` and its rotations, each with its time
 * index), searched for a rare string through `GET /api/v1/search` end to end (a real `serve`,
 * the whole NDJSON answer read), against `grep -F -c` over the same files, alternating rounds,
 * medians. The bar: within 1.5x grep's time. Then a time range covering 1% of the stored span:
 * the share of the bytes it read (`scanned_bytes` over the total); the bar: at most 5%.
 *
 * Needs nothing but Deno and grep (no ../shared).
 *
 * @module
 */

import { join } from "node:path";
import { median } from "./_median.ts";
import { startServer } from "../tests/_server.ts";
import { indexLayout, sidecarOf, writeIndex } from "../src/store/file_index.ts";
import { rotatedName } from "../src/store/rotation.ts";

const TOTAL = Number(Deno.env.get("BENCH_SEARCH_BYTES") ?? 1024 ** 3);
const SOURCES = ["web", "api", "db", "auth"];
const FILES_PER_SOURCE = 4; // 3 rotations and the live file
const RARE = "Zq7RareNeedleXy";
const SPAN_MS = 10 * 86_400_000; // the stored lines span ten days
const START = Date.parse("2026-11-01T00:00:00Z");
const MARK_EVERY = 1024 * 1024; // as the writer marks under load: a page per mark
const MAX_RATIO = 1.5;
const MAX_RANGE_SHARE = 0.05;

const encoder = new TextEncoder();

/** Writes the store: returns its files (to grep) and their total bytes. */
async function writeStore(dir: string): Promise<{ files: string[]; bytes: number }> {
  const template = join(dir, "logs/{source}.log");
  const layout = indexLayout(template, join(dir, "logs/.logboom"));
  const perFile = Math.floor(TOTAL / (SOURCES.length * FILES_PER_SOURCE));
  const files: string[] = [];
  let bytes = 0;
  let rare = 0;
  for (const [s, source] of SOURCES.entries()) {
    const live = join(dir, "logs", `${source}.log`);
    for (let f = 0; f < FILES_PER_SOURCE; f++) {
      // Each file covers its quarter of the span; lines interleave by time across sources.
      const t0 = START + (f * SPAN_MS) / FILES_PER_SOURCE;
      const t1 = START + ((f + 1) * SPAN_MS) / FILES_PER_SOURCE;
      const path = f === FILES_PER_SOURCE - 1 ? live : rotatedName(live, t1);
      const marks: { time: number; offset: number }[] = [];
      const chunk = new Uint8Array(4 * 1024 * 1024);
      await Deno.mkdir(join(dir, "logs"), { recursive: true });
      using file = await Deno.open(path, { write: true, create: true, truncate: true });
      let written = 0;
      let i = 0;
      let nextMark = 0;
      while (written < perFile) {
        let at = 0;
        while (at < chunk.length - 300 && written + at < perFile) {
          const offset = written + at;
          const time = t0 + ((t1 - t0) * offset) / perFile;
          if (offset >= nextMark) {
            marks.push({ time, offset });
            nextMark = offset + MARK_EVERY;
          }
          const level = i % 97 === 0 ? "ERROR" : i % 13 === 0 ? "WARN" : "INFO";
          const special = i % 5_000_017 === 1234 + s * 7 + f ? ` ${RARE}` : "";
          if (special) rare++;
          const line = `${new Date(time).toISOString()} ${level} ${source}[${s}] request ` +
            `id=${i.toString(16)} path=/api/v1/items/${i % 1000} status=${
              i % 50 === 0 ? 500 : 200
            } ms=${i % 300}${special}\n`;
          at += encoder.encodeInto(line, chunk.subarray(at)).written;
          i++;
        }
        for (let w = 0; w < at;) w += await file.write(chunk.subarray(w, at));
        written += at;
      }
      const sidecar = sidecarOf(layout, path)!;
      await writeIndex(sidecar, {
        marks,
        members: [],
        end: path === live ? undefined : { time: t1, size: written },
      });
      if (path !== live) await Deno.chmod(path, 0o444);
      else await Deno.utime(path, t1 / 1000, t1 / 1000);
      files.push(path);
      bytes += written;
    }
  }
  console.log(
    `search: wrote ${(bytes / 1e9).toFixed(2)} GB in ${files.length} files, ` +
      `"${RARE}" on ${rare} lines`,
  );
  return { files, bytes };
}

async function timeGrep(files: string[]): Promise<{ ms: number; count: number }> {
  const started = performance.now();
  const out = await new Deno.Command("grep", { args: ["-F", "-c", RARE, ...files] }).output();
  const ms = performance.now() - started;
  const count = new TextDecoder().decode(out.stdout).trim().split("\n")
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(":") + 1)), 0);
  return { ms, count };
}

interface Done {
  matched: number;
  files: number;
  scanned_bytes: number;
  skipped_bytes: number;
  truncated: boolean;
  ms: number;
}

async function timeSearch(url: string, query: string): Promise<{ ms: number; done: Done }> {
  const started = performance.now();
  const res = await fetch(`${url}/api/v1/search?${query}`);
  const text = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`search answered ${res.status}: ${text}`);
  const last = text.trimEnd().split("\n").at(-1)!;
  return { ms, done: JSON.parse(last) };
}

/** Runs the scenario; returns the bars missed. */
export async function benchSearch(rounds: number): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-search-" });
  try {
    const { files, bytes } = await writeStore(dir);
    await using server = await startServer(
      ["-logFile", "logs/{source}.log"],
      { dir, permissions: ["--allow-net", "--allow-write", `--allow-read=${dir}`] },
    );
    const q = `q=${encodeURIComponent(RARE)}&limit=1000`;
    // Warm the page cache for both.
    await timeGrep(files);
    await timeSearch(server.url, q);
    const ours: number[] = [];
    const grep: number[] = [];
    let matched = 0;
    let expected = 0;
    for (let r = 0; r < Math.max(rounds, 5); r++) {
      const a = await timeSearch(server.url, q);
      const g = await timeGrep(files);
      ours.push(a.ms);
      grep.push(g.ms);
      matched = a.done.matched;
      expected = g.count;
    }
    const ratio = median(ours) / median(grep);
    console.log(
      `search: rare string in ${(bytes / 1e9).toFixed(2)} GB, API end to end median ${
        median(ours).toFixed(0)
      } ms (${(bytes / 1e6 / (median(ours) / 1000)).toFixed(0)} MB/s), grep -F -c median ${
        median(grep).toFixed(0)
      } ms: ${ratio.toFixed(2)}x grep; rounds ${ours.map((x) => x.toFixed(0)).join(" ")} vs ${
        grep.map((x) => x.toFixed(0)).join(" ")
      }; matched ${matched}, grep counted ${expected}`,
    );
    // 1% of the span, in the middle of the third quarter.
    const from = START + SPAN_MS * 0.6;
    const to = from + SPAN_MS * 0.01;
    const range = `from=${new Date(from).toISOString()}&to=${
      new Date(to).toISOString()
    }&q=status%3D500&limit=100000`;
    const ranged = await timeSearch(server.url, range);
    const share = ranged.done.scanned_bytes / bytes;
    console.log(
      `search: 1% of the span (${new Date(from).toISOString()} .. ${
        new Date(to).toISOString()
      }): read ${(ranged.done.scanned_bytes / 1e6).toFixed(1)} MB of ${
        (bytes / 1e6).toFixed(0)
      } MB (${(share * 100).toFixed(2)}%), skipped ${
        (ranged.done.skipped_bytes / 1e6).toFixed(0)
      } MB, ${ranged.done.matched} lines, ${ranged.ms.toFixed(0)} ms`,
    );
    const misses = [
      ratio > MAX_RATIO && `search ${ratio.toFixed(2)}x grep > ${MAX_RATIO}x`,
      matched !== expected && `search found ${matched} lines, grep ${expected}`,
      share > MAX_RANGE_SHARE && `a 1% time range read ${(share * 100).toFixed(1)}% of the bytes`,
    ];
    return misses.filter((m): m is string => typeof m === "string");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(async () => {
      await new Deno.Command("chmod", { args: ["-R", "u+w", dir] }).output();
      await Deno.remove(dir, { recursive: true });
    });
  }
}

if (import.meta.main) {
  const missed = await benchSearch(Number(Deno.args[0] ?? 5));
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
