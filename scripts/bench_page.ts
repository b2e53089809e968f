/**
 * `deno task bench -scenario page` (or `deno run -A scripts/bench_page.ts [-seconds N]
 * [-rate N]`): the web page's live tail under load. A real server, headless Chromium
 * (`/usr/bin/chromium` or `LOGBOOM_CHROMIUM`, driven by npm `playwright-core`) on the live tail,
 * and TCP lines at 10,000 lines/s for 60 s, every one matching.
 *
 * Bars: no task longer than 100 ms in the page while lines arrive (PerformanceObserver
 * `longtask`), and a bounded JS heap: after a garbage collection, the heap at the end is at most
 * 1.5x (plus 4 MiB) the heap after the first 10 s. Also reported: the DOM nodes (bounded by the
 * 2,000-line window), the lines the page counted against those sent, and the frames per second.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, spawnMain, watchProcess } from "../tests/_server.ts";

/** Options of {@linkcode benchPage}. */
export interface PageBenchOptions {
  /** Seconds of load. Default 60. */
  seconds?: number;
  /** Lines per second. Default 10,000. */
  rate?: number;
}

const LONG_TASK_MS = 100;
const WARMUP_S = 10;

/** One sample of the page's state. */
interface Sample {
  t: number;
  heap: number;
  nodes: number;
}

/**
 * Runs the scenario `rounds` times in a child process (`deno run -A`: Playwright reads the home
 * folder and /proc, more than the bench task grants); returns the bars that were missed.
 */
export async function benchPage(rounds: number, options: PageBenchOptions = {}): Promise<string[]> {
  const { seconds = 60, rate = 10_000 } = options;
  const args = ["run", "-A", fileURLToPath(import.meta.url), "-rounds", String(rounds)];
  args.push("-seconds", String(seconds), "-rate", String(rate));
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  console.log(text.trimEnd());
  const missed = /^Bar missed: (.*)$/m.exec(text)?.[1];
  if (missed !== undefined) return [`page: ${missed}`];
  return out.success ? [] : [`page: the bench failed (exit code ${out.code})`];
}

/** The scenario in this process: needs every permission Playwright wants. */
async function benchPageHere(rounds: number, options: PageBenchOptions): Promise<string[]> {
  const { seconds = 60, rate = 10_000 } = options;
  const missed: string[] = [];
  console.log(`Page live tail: ${rate} lines/s over TCP for ${seconds} s, ${rounds} rounds`);
  for (let round = 0; round < rounds; round++) {
    const result = await oneRound(seconds, rate);
    console.log(`  ${result.line}`);
    missed.push(...result.missed);
  }
  return missed;
}

async function oneRound(
  seconds: number,
  rate: number,
): Promise<{ line: string; missed: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-page-" });
  const [port, httpPort] = [freePort(), freePort()];
  const child = spawnMain(["--allow-net", "--allow-write"], [
    "-port",
    String(port),
    "-http",
    `127.0.0.1:${httpPort}`,
    "-logFile",
    join(dir, "out.log"),
  ], dir);
  const server = await watchProcess(child, { ready: /Listening on/, notReady: "Server exited" });
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: Deno.env.get("LOGBOOM_CHROMIUM") ?? "/usr/bin/chromium",
    headless: true,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(e.message));
    // Long tasks and frames, observed from the page's start (init scripts bypass the CSP).
    await page.addInitScript(() => {
      const w = globalThis as unknown as Record<string, unknown>;
      const tasks: { start: number; duration: number }[] = [];
      w.__longTasks = tasks;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) tasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: "longtask", buffered: true });
      let frames = 0;
      w.__frames = () => frames;
      // Written for the page, where requestAnimationFrame exists (Deno's types lack it).
      const raf = (globalThis as unknown as { requestAnimationFrame(f: () => void): void })
        .requestAnimationFrame;
      const tick = () => {
        frames++;
        raf(tick);
      };
      raf(tick);
    });
    await page.goto(`http://127.0.0.1:${httpPort}/`);
    await page.waitForSelector(".state.st-live");
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    // The garbage collections the bench forces are long tasks of its own: left out.
    const forced: { from: number; to: number }[] = [];
    const now = () => page.evaluate(() => performance.now());
    const sample = async (t: number): Promise<Sample> => {
      const from = await now();
      await cdp.send("HeapProfiler.collectGarbage");
      forced.push({ from, to: await now() });
      const { metrics } = await cdp.send("Performance.getMetrics") as {
        metrics: { name: string; value: number }[];
      };
      const get = (name: string) => metrics.find((m) => m.name === name)?.value ?? NaN;
      return { t, heap: get("JSHeapUsedSize"), nodes: get("Nodes") };
    };
    const loadStart = await now();
    const framesBefore = await page.evaluate(() =>
      (globalThis as unknown as { __frames: () => number }).__frames()
    );

    const samples: Sample[] = [];
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const started = performance.now();
    let sent = 0;
    let nextSample = WARMUP_S;
    const encoder = new TextEncoder();
    const levels = ["INFO", "WARN", "ERROR", "DEBUG"];
    while (performance.now() - started < seconds * 1000) {
      const elapsed = (performance.now() - started) / 1000;
      const due = Math.min(Math.floor(elapsed * rate), seconds * rate) - sent;
      if (due > 0) {
        let text = "";
        for (let i = 0; i < due; i++) {
          const n = sent + i;
          text += `2026-11-30T12:00:00Z ${levels[n % 4]} request ${n} served in ${n % 997} ms ` +
            `path=/api/v1/items/${n % 101}\n`;
        }
        const data = encoder.encode(text);
        for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
        sent += due;
      }
      if (elapsed >= nextSample) {
        samples.push(await sample(Math.round(elapsed)));
        nextSample += 10;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const wall = (performance.now() - started) / 1000;
    conn.close();
    samples.push(await sample(Math.round(wall)));
    const longTasks = (await page.evaluate(() =>
      (globalThis as unknown as { __longTasks: { start: number; duration: number }[] })
        .__longTasks
    ))
      .filter((task) =>
        task.start >= loadStart &&
        !forced.some((f) =>
          task.start + task.duration >= f.from && task.start <= f.to
        )
      )
      .map((task) => task.duration);
    const frames = await page.evaluate(() =>
      (globalThis as unknown as { __frames: () => number }).__frames()
    ) - framesBefore;
    const counts = await page.textContent(".tailbar .counts") ?? "";
    await page.screenshot({ path: join(dir, "page.png") });

    const first = samples[0];
    const last = samples.at(-1)!;
    const maxTask = Math.max(0, ...longTasks);
    const over = longTasks.filter((d) => d > LONG_TASK_MS).length;
    const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
    const line =
      `sent ${sent} lines in ${wall.toFixed(1)} s; page: ${counts.replace(/\s+/g, " ")}; ` +
      `JS heap after GC ${samples.map((s) => `${s.t}s ${mib(s.heap)}`).join(", ")} MiB; ` +
      `DOM nodes ${samples.map((s) => s.nodes).join(", ")}; long tasks ${longTasks.length} ` +
      `(longest ${maxTask.toFixed(0)} ms, ${over} over ${LONG_TASK_MS} ms); ` +
      `${(frames / wall).toFixed(0)} frames/s; console errors ${errors.length}`;
    const missed = [
      over > 0 && `${over} long tasks over ${LONG_TASK_MS} ms (longest ${maxTask.toFixed(0)} ms)`,
      last.heap > first.heap * 1.5 + 4 * 1024 * 1024 &&
      `JS heap grew from ${mib(first.heap)} to ${mib(last.heap)} MiB`,
      errors.length > 0 && `console errors: ${errors.slice(0, 3).join("; ")}`,
    ].filter((m): m is string => typeof m === "string");
    return { line, missed };
  } finally {
    await browser.close();
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const arg = (name: string) => {
    const at = Deno.args.indexOf(`-${name}`);
    return at < 0 ? undefined : Number(Deno.args[at + 1]);
  };
  const rounds = arg("rounds") ?? 1;
  const missed = await benchPageHere(rounds, { seconds: arg("seconds"), rate: arg("rate") });
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
