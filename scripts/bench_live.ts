/**
 * The benchmark scenarios of the HTTP API and the live tail
 * (`deno task bench -scenario http,sse,latency`):
 *
 * - `http`: 8 clients posting 1 MiB batches to `/api/v1/ingest` (each answered once stored),
 *   against the same volume over 8 raw TCP connections (the shared Go load generator). Reports
 *   MB/s of both and their ratio.
 * - `sse`: TCP ingest (Go load generator, 8 x 500,000 x 100 B) with 100 live SSE subscribers,
 *   reading as fast as they can, against none. Bar: at least 85% of the rate with none.
 * - `latency`: 100,000 lines/s over TCP for 10 s, one SSE subscriber; each line carries its send
 *   time. Bar: p99 from send to SSE delivery under 50 ms.
 * - `cost`: what the HTTP API costs the server's CPU for the same TCP lines (Go load generator,
 *   8 x 500,000 x 100 B): the default command line (API on, nobody tailing) and the same with one
 *   stalled SSE subscriber, each against `-http off`. Bars, on medians of server CPU seconds over
 *   the load: at most 5% more with the API on, at most 10% more with a stalled subscriber. Wall
 *   rates are reported too, but CPU is what is judged: wall time on a shared machine swings.
 *
 * Rounds alternate the compared runs in the same shell, as the machine is shared and small.
 * Needs Go for the load generator, like the `tcp` scenario.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { SseParser } from "../src/live/sse_decoder.ts";
import { median } from "./_median.ts";
import { buildGo, cpuSeconds, drain, freePort, peakRssKb } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const shared = `${root}../shared/bench`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A logboom server in a temporary folder, started with the design card's permissions. */
interface Server {
  tcp: number;
  http: number;
  dir: string;
  file: string;
  pid: number;
  stop(): Promise<void>;
}

async function startServer(extra: string[] = [], api = true): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-" });
  const tcp = freePort();
  const http = api ? freePort() : 0;
  const file = `${dir}/out.log`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-write",
      `--allow-read=${dir}`,
      `${root}main.ts`,
      "-port",
      String(tcp),
      "-http",
      api ? `127.0.0.1:${http}` : "off",
      "-logFile",
      file,
      ...extra,
      // Extra server flags for experiments, e.g. LOGBOOM_BENCH_FLAGS="-tailRate 50000".
      ...(Deno.env.get("LOGBOOM_BENCH_FLAGS") ?? "").split(" ").filter((f) => f !== ""),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = drain(child.stderr, "Listening on");
  if (!(await stderr.seen)) throw new Error(`Server did not start:\n${stderr.text()}`);
  return {
    tcp,
    http,
    dir,
    file,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await stderr.done;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function loadgen(server: Server, c: number, n: number, s: number): Promise<number> {
  const exe = await buildGo(`${shared}/loadgen.go`, "loadgen");
  const base = (await Deno.stat(server.file)).size;
  // The previous run's hundreds of megabytes are still being written back by the kernel, on the
  // same two cores: every run starts once they are on disk, not just the one that follows.
  await new Deno.Command("sync").output();
  const out = await new Deno.Command(exe, {
    args: [
      "-addr",
      `127.0.0.1:${server.tcp}`,
      ...["-c", String(c), "-n", String(n), "-s", String(s)],
      ...["-sink", server.file, "-base", String(base), "-timeout", "300s"],
    ],
  }).output();
  const line = decoder.decode(out.stdout).trim();
  const mbps = Number(/([\d.]+) MB\/s/.exec(line)?.[1]);
  if (!out.success || !line.startsWith("ok") || Number.isNaN(mbps)) {
    throw new Error(`loadgen failed: ${line} ${decoder.decode(out.stderr)}`);
  }
  return mbps;
}

/** HTTP ingest (8 clients, 1 MiB batches) against TCP; reports the ratio, has no bar. */
export async function benchHttp(rounds: number): Promise<string[]> {
  const clients = 8;
  const batches = 48; // per client: 8 x 48 x 1 MiB = 384 MiB
  const lineBytes = 100;
  const batchLines = Math.floor(1024 * 1024 / lineBytes);
  const bodies = Array.from({ length: clients }, (_, c) => {
    let text = "";
    for (let i = 0; i < batchLines; i++) {
      const head = `c${c} ${i} `;
      text += head + "x".repeat(lineBytes - head.length - 1) + "\n";
    }
    return encoder.encode(text);
  });
  const total = clients * batches * bodies[0].length;
  console.log(
    `HTTP ingest: ${clients} clients x ${batches} batches of 1 MiB (${
      (total / 1e6).toFixed(0)
    } MB) vs the same over ${clients} TCP connections, ${rounds} rounds`,
  );
  const httpRates: number[] = [];
  const tcpRates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let server = await startServer();
    try {
      const started = performance.now();
      let retries = 0;
      await Promise.all(bodies.map(async (body, c) => {
        for (let i = 0; i < batches; i++) {
          for (;;) {
            const res = await fetch(`http://127.0.0.1:${server.http}/api/v1/ingest?source=bench`, {
              method: "POST",
              body,
              headers: {
                "x-stream-id": `bench-${c}`,
                "x-stream-offset": String((i + 1) * body.length),
              },
            });
            const answer = await res.json();
            if (res.ok && answer.accepted === batchLines) break;
            if (res.status !== 503) throw new Error(`Ingest failed: ${JSON.stringify(answer)}`);
            retries++;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      const size = (await Deno.stat(server.file)).size;
      if (size !== total) throw new Error(`Stored ${size} of ${total} bytes`);
      httpRates.push(total / 1e6 / seconds);
      console.log(
        `  http: ${
          httpRates.at(-1)!.toFixed(0)
        } MB/s (every batch acknowledged; ${retries} 503s), ` +
          `peak RSS ${((await peakRssKb(server.pid)) / 1024).toFixed(0)} MB`,
      );
    } finally {
      await server.stop();
    }
    server = await startServer();
    try {
      tcpRates.push(await loadgen(server, clients, total / clients / lineBytes, lineBytes));
      console.log(
        `  tcp:  ${tcpRates.at(-1)!.toFixed(0)} MB/s, peak RSS ${
          ((await peakRssKb(server.pid)) / 1024).toFixed(0)
        } MB`,
      );
    } finally {
      await server.stop();
    }
  }
  const ratios = httpRates.map((r, i) => r / tcpRates[i]);
  console.log(
    `HTTP median ${median(httpRates).toFixed(0)} MB/s, TCP median ${
      median(tcpRates).toFixed(0)
    } MB/s, HTTP/TCP per round ${ratios.map((r) => r.toFixed(2)).join(" ")} (median ${
      median(ratios).toFixed(2)
    })`,
  );
  return [];
}

/** SSE subscribers that read and discard as fast as they can, counting bytes and dropped notices. */
class Subscribers {
  bytes = 0;
  readonly #abort = new AbortController();
  readonly #reading: Promise<void>[] = [];

  static async open(port: number, count: number): Promise<Subscribers> {
    const subs = new Subscribers();
    const responses = await Promise.all(
      Array.from(
        { length: count },
        () => fetch(`http://127.0.0.1:${port}/api/v1/tail`, { signal: subs.#abort.signal }),
      ),
    );
    for (const res of responses) {
      if (!res.ok) throw new Error(`Tail answered ${res.status}`);
      subs.#reading.push((async () => {
        try {
          for await (const chunk of res.body!) subs.bytes += chunk.length;
        } catch {
          // Aborted.
        }
      })());
    }
    return subs;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.all(this.#reading);
  }
}

/** TCP ingest with 100 live SSE subscribers against none; bar: at least 85%. */
export async function benchSse(rounds: number): Promise<string[]> {
  const [c, n, s] = [8, 500_000, 100];
  const subscribers = 100;
  console.log(
    `TCP ingest ${c} x ${n} x ${s} B with ${subscribers} live SSE subscribers vs none, ${rounds} rounds`,
  );
  const without: number[] = [];
  const withSubs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Which goes first alternates, so neither gains from the machine's state after the other.
    for (const count of round % 2 === 0 ? [0, subscribers] : [subscribers, 0]) {
      const server = await startServer();
      try {
        const subs = count > 0 ? await Subscribers.open(server.http, count) : undefined;
        const [serverCpu, ownCpu] = [await cpuSeconds(server.pid), await cpuSeconds(Deno.pid)];
        const mbps = await loadgen(server, c, n, s);
        const cpu = `server used ${(await cpuSeconds(server.pid) - serverCpu).toFixed(1)} s CPU` +
          (count > 0
            ? `, the subscribers ${(await cpuSeconds(Deno.pid) - ownCpu).toFixed(1)} s`
            : "");
        const delivered = subs?.bytes ?? 0;
        await subs?.close();
        const metrics = await (await fetch(`http://127.0.0.1:${server.http}/metrics`)).text();
        const dropped = Number(/^logboom_live_lines_dropped_total (\d+)/m.exec(metrics)?.[1]);
        const sent = Number(/^logboom_live_lines_delivered_total (\d+)/m.exec(metrics)?.[1]);
        (count === 0 ? without : withSubs).push(mbps);
        console.log(
          `  ${String(count).padStart(3)} subscribers: ${mbps.toFixed(0)} MB/s` +
            (count > 0
              ? `, ${
                (delivered / 1e6).toFixed(0)
              } MB of SSE read, ${sent} lines delivered and ${dropped} dropped over all subscribers`
              : "") +
            `, ${cpu}, peak RSS ${((await peakRssKb(server.pid)) / 1024).toFixed(0)} MB`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  const ratios = withSubs.map((r, i) => r / without[i]);
  const ratio = median(ratios);
  console.log(
    `median ${median(without).toFixed(0)} MB/s without, ${
      median(withSubs).toFixed(0)
    } MB/s with ${subscribers} subscribers: ${(ratio * 100).toFixed(0)}% (per round ${
      ratios.map((r) => (r * 100).toFixed(0) + "%").join(" ")
    })`,
  );
  return ratio < 0.85
    ? [`TCP ingest with ${subscribers} SSE subscribers at ${(ratio * 100).toFixed(0)}% < 85%`]
    : [];
}

/** p99 from TCP to SSE delivery at 100,000 lines/s; bar: under 50 ms, every line delivered. */
export async function benchLatency(_rounds: number): Promise<string[]> {
  const rate = 100_000;
  const seconds = 10;
  const server = await startServer();
  try {
    const abort = new AbortController();
    const res = await fetch(`http://127.0.0.1:${server.http}/api/v1/tail`, {
      signal: abort.signal,
    });
    const latencies: number[] = [];
    let dropped = 0;
    const reading = (async () => {
      const parser = new SseParser();
      try {
        for await (const chunk of res.body!) {
          const now = performance.now();
          for (const event of parser.push(decoder.decode(chunk, { stream: true }))) {
            if (event.event === "dropped") dropped += JSON.parse(event.data).count;
            if (event.event !== "message") continue;
            const { line } = JSON.parse(event.data);
            latencies.push(now - Number(line.slice(0, line.indexOf(" "))));
          }
        }
      } catch {
        // Aborted.
      }
    })();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.tcp });
    const filler = "x".repeat(80);
    const started = performance.now();
    let sent = 0;
    while (sent < rate * seconds) {
      const due = Math.min(rate * seconds, Math.floor((performance.now() - started) / 1000 * rate));
      if (due > sent) {
        const now = performance.now().toFixed(3);
        let text = "";
        for (; sent < due; sent++) text += `${now} ${sent} ${filler}\n`;
        const bytes = encoder.encode(text);
        let off = 0;
        while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const deadline = performance.now() + 5000;
    while (latencies.length + dropped < sent && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    conn.close();
    abort.abort();
    await reading;
    const sorted = latencies.sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    const p99 = at(0.99);
    console.log(
      `Latency, TCP send to SSE delivery at ${rate} lines/s for ${seconds} s: ` +
        `${latencies.length} lines received, ${dropped} dropped; p50 ${at(0.5).toFixed(1)} ms, ` +
        `p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`,
    );
    const misses: string[] = [];
    if (!(p99 < 50)) misses.push(`TCP-to-SSE p99 ${p99.toFixed(1)} ms >= 50 ms`);
    if (latencies.length < sent) misses.push(`${sent - latencies.length} lines not delivered`);
    return misses;
  } finally {
    await server.stop();
  }
}

/**
 * An SSE tail that never reads: the request goes out on a raw connection and nothing is read
 * back, so the server's writes fill the socket and its hub queue stays full.
 */
async function stalledTail(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = `GET /api/v1/tail HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    "Accept: text/event-stream\r\n\r\n";
  const bytes = encoder.encode(request);
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
  // Once the hub counts it, it is subscribed.
  for (let i = 0; i < 500; i++) {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (/^logboom_live_subscribers 1$/m.test(metrics)) return conn;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("The stalled tail did not subscribe");
}

/**
 * Server CPU for the same TCP lines with the HTTP API off, on (the default, nobody tailing), and
 * on with one stalled SSE subscriber; bars: at most 5% and 10% more than off, on medians.
 */
export async function benchCost(rounds: number): Promise<string[]> {
  const [c, n, s] = [8, 500_000, 100];
  type Config = "off" | "on" | "stalled";
  const configs: Config[] = ["off", "on", "stalled"];
  console.log(
    `Server CPU for TCP ${c} x ${n} x ${s} B: -http off, the default (API on, nobody tailing), ` +
      `and one stalled SSE subscriber; ${rounds} rounds, order rotating`,
  );
  const cpu: Record<Config, number[]> = { off: [], on: [], stalled: [] };
  const rate: Record<Config, number[]> = { off: [], on: [], stalled: [] };
  for (let round = 0; round < rounds; round++) {
    // Which goes first rotates, so none gains from the machine's state after another.
    const order = configs.map((_, i) => configs[(i + round) % configs.length]);
    for (const config of order) {
      const server = await startServer([], config !== "off");
      let stalled: Deno.Conn | undefined;
      try {
        if (config === "stalled") stalled = await stalledTail(server.http);
        const before = await cpuSeconds(server.pid);
        const mbps = await loadgen(server, c, n, s);
        const used = await cpuSeconds(server.pid) - before;
        cpu[config].push(used);
        rate[config].push(mbps);
        let sent = "";
        if (config === "stalled") {
          const metrics = await (await fetch(`http://127.0.0.1:${server.http}/metrics`)).text();
          const delivered = /^logboom_live_lines_delivered_total (\d+)/m.exec(metrics)?.[1];
          sent = `, ${delivered} lines sent to the tail before it filled`;
        }
        console.log(
          `  ${config.padEnd(7)} ${used.toFixed(2)} s CPU, ${mbps.toFixed(0)} MB/s, ` +
            `peak RSS ${((await peakRssKb(server.pid)) / 1024).toFixed(0)} MB${sent}`,
        );
      } finally {
        stalled?.close();
        await server.stop();
      }
    }
  }
  const off = median(cpu.off);
  const ratio = (config: Config) => median(cpu[config]) / off;
  const wall = (config: Config) => median(rate[config]) / median(rate.off);
  console.log(
    `median CPU: off ${off.toFixed(2)} s, on ${median(cpu.on).toFixed(2)} s (${
      ratio("on").toFixed(3)
    }x), stalled subscriber ${median(cpu.stalled).toFixed(2)} s (${
      ratio("stalled").toFixed(3)
    }x); median wall rate ${median(rate.off).toFixed(0)} MB/s off, on ${
      wall("on").toFixed(2)
    }x, stalled ${wall("stalled").toFixed(2)}x`,
  );
  const misses: string[] = [];
  if (ratio("on") > 1.05) misses.push(`HTTP API on costs ${ratio("on").toFixed(3)}x CPU > 1.05`);
  if (ratio("stalled") > 1.10) {
    misses.push(`a stalled subscriber costs ${ratio("stalled").toFixed(3)}x CPU > 1.10`);
  }
  return misses;
}
