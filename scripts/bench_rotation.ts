/**
 * Rotation benchmark (`deno task bench -scenario rotate`): end to end over TCP with the shared
 * Go load generator (8 connections x 500,000 lines x 100 B), logboom writing one plain file
 * against logboom rotating every 10 MB with compression on, alternately. The bar: at least 80% of
 * the plain rate.
 *
 * loadgen cannot tell when a rotated, gzipped output is complete, so this script watches the
 * folder itself: the live file, rotations not compressed yet, and each `.gz` by the uncompressed
 * size its gzip trailer records. Afterwards every line is checked with the shared verifier.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { median } from "./_median.ts";
import { buildGo, freePort, peakRssKb } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const benchDir = Deno.env.get("LOGBOOM_BENCH_DIR") ?? `${root}../shared/bench`;
const C = 8;
const N = 500_000;
const S = 100;
const WANT = C * N * S;
const ROTATED = /^app\.\d{4}-.*\.log(\.gz)?$/;

/** Bytes of lines stored in `dir`, counting a `.gz` by its trailer's uncompressed size. */
async function stored(dir: string): Promise<number> {
  const names = new Set<string>();
  for await (const entry of Deno.readDir(dir)) names.add(entry.name);
  let total = 0;
  for (const name of names) {
    const path = `${dir}/${name}`;
    if (
      name === "app.log" ||
      (ROTATED.test(name) && !name.endsWith(".gz") && !names.has(name + ".gz"))
    ) {
      total += (await Deno.stat(path).catch(() => ({ size: 0 }))).size;
    } else if (ROTATED.test(name) && name.endsWith(".gz")) {
      using file = await Deno.open(path);
      await file.seek(-4, Deno.SeekMode.End);
      const trailer = new Uint8Array(4);
      await file.read(trailer);
      total += new DataView(trailer.buffer).getUint32(0, true);
    }
  }
  return total;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function gunzipAll(dir: string): Promise<string[]> {
  const plain: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.name.endsWith(".gz")) {
      using input = await Deno.open(path);
      using output = await Deno.open(`${path}.plain`, { write: true, create: true });
      await input.readable.pipeThrough(new DecompressionStream("gzip")).pipeTo(output.writable);
      plain.push(`${path}.plain`);
    } else if (entry.name === "app.log" || ROTATED.test(entry.name)) {
      plain.push(path);
    }
  }
  return plain;
}

interface Run {
  rate: number;
  gzipSeconds: number;
  rssKb: number;
  verdict: string;
}

async function run(rotate: boolean, tools: { loadgen: string; verify: string }): Promise<Run> {
  const { loadgen, verify } = tools;
  const dir = await Deno.makeTempDir({ prefix: "bench-rotate-" });
  const port = freePort();
  const flags = rotate ? ["-rotateSize", "10MB", "-compress"] : [];
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-write",
      `--allow-read=${dir}`,
      `${root}main.ts`,
      "-port",
      String(port),
      "-logFile",
      `${dir}/app.log`,
      ...flags,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await until(async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return true;
      } catch {
        return false;
      }
    }, 10_000);
    // The previous run's files (and their gunzipped copies) are still being written back by the
    // kernel on the same two cores: every run starts once they are on disk.
    await new Deno.Command("sync").output();
    const started = performance.now();
    const load = await new Deno.Command(loadgen, {
      args: ["-addr", `127.0.0.1:${port}`, "-c", String(C), "-n", String(N), "-s", String(S)],
      stdout: "null",
    }).output();
    if (!load.success) throw new Error("loadgen failed");
    await until(async () => await stored(dir) >= WANT, 120_000);
    const seconds = (performance.now() - started) / 1000;
    const gzipStart = performance.now();
    if (rotate) {
      await until(async () => {
        for await (const e of Deno.readDir(dir)) {
          if (ROTATED.test(e.name) && !e.name.endsWith(".gz")) return false;
        }
        return true;
      }, 120_000);
    }
    const gzipSeconds = (performance.now() - gzipStart) / 1000;
    const rssKb = await peakRssKb(server.pid);
    server.kill("SIGTERM");
    await server.status;
    const files = await gunzipAll(dir);
    const checked = await new Deno.Command(verify, {
      args: ["-c", String(C), "-n", String(N), "-s", String(S), ...files],
    }).output();
    const verdict = new TextDecoder().decode(checked.stdout).trim();
    if (!checked.success) throw new Error(`Verification failed: ${verdict}`);
    return { rate: C * N / seconds, gzipSeconds, rssKb, verdict };
  } finally {
    try {
      server.kill("SIGKILL");
    } catch {
      // Already stopped.
    }
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs plain and rotating logboom alternately for `rounds` rounds; returns missed bars. */
export async function benchRotation(rounds: number): Promise<string[]> {
  const loadgen = await buildGo(`${benchDir}/loadgen.go`, "loadgen");
  const verify = await buildGo(`${benchDir}/verify.go`, "verify");
  console.log(`TCP -> file with -rotateSize 10MB -compress vs one file, ${C} x ${N} x ${S} B`);
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Which goes first alternates, so neither gains from the machine's state after the other.
    const first = await run(r % 2 === 1, { loadgen, verify });
    const second = await run(r % 2 === 0, { loadgen, verify });
    const [plain, rotating] = r % 2 === 0 ? [first, second] : [second, first];
    ratios.push(rotating.rate / plain.rate);
    console.log(
      `  one file ${(plain.rate / 1e6).toFixed(2)} M lines/s | rotating + gzip ` +
        `${(rotating.rate / 1e6).toFixed(2)} M lines/s (gzip done ${
          rotating.gzipSeconds.toFixed(1)
        } s later, peak RSS ${(rotating.rssKb / 1024).toFixed(0)} MB) | ${rotating.verdict}`,
    );
  }
  const ratio = median(ratios);
  console.log(
    `Rotation + compression: median ${(ratio * 100).toFixed(0)}% of one file (bar 80%), ` +
      `per round ${ratios.map((x) => (x * 100).toFixed(0) + "%").join(" ")}`,
  );
  return ratio < 0.8 ? [`rotation + compression at ${(ratio * 100).toFixed(0)}% < 80%`] : [];
}

if (import.meta.main) {
  const missed = await benchRotation(Number(Deno.args[0] ?? 3));
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
