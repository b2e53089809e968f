/**
 * Scale-out benchmark (`deno task bench -scenario nats`, or this file alone): a 3-node
 * nats-server cluster with JetStream on loopback, streams with 3 replicas, one `logboom store`
 * worker writing one file (fsync batch before each ack). The yardstick is a minimal publisher in
 * this process: the same batches (1,000 lines of 100 bytes a message, with logboom's headers and
 * a message id, 64 awaiting their acknowledgement at once, the client's own
 * `JetStreamClient.publish`). Each round runs, each pair in alternating order:
 *
 * - **publish alone**: TCP lines -> an ingest node (`serve`, a `nats` sink) -> JetStream R3
 *   (stream `ALONE`, which nothing consumes), and the minimal publisher to the same stream, each
 *   lines/s until JetStream stored the last message (the stream's `last_ts`). Bar: the ingest
 *   node at least 80% of the minimal publisher;
 * - **to files**: TCP lines -> `serve -nats` -> JetStream R3 -> worker -> file, lines/s until the
 *   worker stored the last line, and the minimal publisher's batches to the same stream and
 *   partition, stored by the same worker. Bar: at least 80% of it;
 * - for reference: the minimal publisher with a minimal consumer (pull, ack, append, fsync every
 *   256 messages), and the single-node path (TCP -> `serve -logFile`).
 *
 * Then publish-to-stored latency at a steady 20,000 lines/s: from the TCP write to the line's
 * arrival in the worker's file (read every 2 ms), p50 and p99. Skipped with one line when
 * nats-server is not installed.
 *
 * @module
 */

import { join } from "node:path";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import { median } from "./_median.ts";
import {
  natsServerPath,
  NODE_PERMISSIONS,
  startIngest,
  startNatsCluster,
  startStore,
} from "../tests/_nats.ts";
import { freePort, startServer } from "../tests/_server.ts";
import { metric, until } from "../tests/_http.ts";
import { ensureStream } from "../src/nats/connection.ts";
import { packMessage } from "../src/nats/message.ts";

const LINES = Number(Deno.env.get("BENCH_NATS_LINES") ?? 1_000_000);
const LINE = 100;
const PER_MESSAGE = 1000;
const BAR = 0.8;
const encoder = new TextEncoder();

/** 256 KiB of 100-byte lines, as a TCP sender writes them. */
function chunk(): Uint8Array {
  let text = "";
  for (let i = 0; text.length + LINE <= 256 * 1024; i++) {
    text += `bench ${i} `.padEnd(LINE - 1, "abcdefghijklmnopqrstuvwxyz") + "\n";
  }
  return encoder.encode(text);
}

/** Sends `lines` lines over TCP as fast as the server reads them. */
async function sendTcp(port: number, lines: number): Promise<void> {
  const data = chunk();
  const per = data.length / LINE;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  for (let sent = 0; sent < lines; sent += per) {
    const part = lines - sent >= per ? data : data.subarray(0, (lines - sent) * LINE);
    let at = 0;
    while (at < part.length) at += await conn.write(part.subarray(at));
  }
}

/**
 * The minimal publisher: `lines` lines to `subject`, 1,000 a message (logboom's message, so that
 * a worker can store it), 64 awaiting their acknowledgement; resolves once JetStream acknowledged
 * them all.
 */
async function publishMinimal(urls: string, subject: string, lines: number): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const nc = await connect({ servers: urls.split(",") });
  try {
    const js = jetstream(nc);
    const data = chunk().subarray(0, PER_MESSAGE * LINE);
    const meta = { source: "minimal", host: "bench", input: "bench" };
    const id = crypto.randomUUID();
    const messages = Math.ceil(lines / PER_MESSAGE);
    let next = 0;
    const worker = async () => {
      while (next < messages) {
        const n = next++;
        const m = packMessage(data, PER_MESSAGE, meta, Date.now(), "minimal", {});
        await js.publish(subject, m.payload, { msgID: `${id}:${n}`, headers: m.headers });
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
  } finally {
    await nc.close();
  }
}

/**
 * CPU seconds (user + system) process `pid` used so far, from `/proc` (Linux); `NaN` where that
 * cannot be read. Read by `cat`: Deno lets only `--allow-all` read `/proc/<pid>/` itself.
 */
function cpuSeconds(pid: number): number {
  try {
    const { stdout, success } = new Deno.Command("cat", { args: [`/proc/${pid}/stat`] })
      .outputSync();
    if (!success) return NaN;
    const stat = new TextDecoder().decode(stdout);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
/** `/proc`'s clock ticks per second (`getconf CLK_TCK`: 100 on Linux's usual builds). */
const CLOCK_TICKS = 100;

/** A run's lines/s and the CPU seconds of who published (this process, or the ingest node). */
interface AloneRun {
  rate: number;
  publisherCpu: number;
}

/**
 * Lines/s from `started` (`Date.now()`) until JetStream stored the last message of stream `ALONE`
 * (its `last_ts`, the same machine's clock): how long publishing took, however often (or late)
 * the caller looked.
 */
async function aloneRate(jsm: JetStreamManager, started: number, lines: number): Promise<number> {
  const { state } = await jsm.streams.info("ALONE");
  return lines / ((Date.parse(state.last_ts) - started) / 1000);
}

/** The minimal publisher to `alone.0` until JetStream acknowledged every line. */
async function runMinimal(jsm: JetStreamManager, urls: string, lines: number): Promise<AloneRun> {
  const cpu = cpuSeconds(Deno.pid);
  const started = Date.now();
  await publishMinimal(urls, "alone.0", lines);
  const publisherCpu = cpuSeconds(Deno.pid) - cpu;
  return { rate: await aloneRate(jsm, started, lines), publisherCpu };
}

/**
 * TCP lines through an ingest node to stream `ALONE` until JetStream acknowledged them. The node's
 * `/metrics` is read every 50 ms only (each read costs it about 0.6 ms of CPU, which the minimal
 * publisher does not pay); the time is JetStream's own.
 */
async function runIngestAlone(
  jsm: JetStreamManager,
  urls: string,
  lines: number,
): Promise<AloneRun> {
  const port = freePort();
  await using node = await startIngest(urls, { tcpPort: port, stream: "ALONE", subject: "alone" });
  const pid = node.process!.pid;
  const cpu = cpuSeconds(pid);
  const started = Date.now();
  await sendTcp(port, lines);
  const acked = () => metric(node.url, 'logboom_sink_lines_written_total{sink="nats"}');
  const deadline = Date.now() + 300_000;
  while (await acked() < lines) {
    if (Date.now() > deadline) throw new Error("JetStream did not acknowledge every line");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const publisherCpu = cpuSeconds(pid) - cpu;
  return { rate: await aloneRate(jsm, started, lines), publisherCpu };
}

/**
 * The yardstick of the bar: a minimal publisher of the same batches (1,000 lines a message, 64
 * awaiting their ack) to the same stream and partition, as logboom messages, so the same worker
 * stores them in the same file: lines/s until the worker stored the last line. Against it, the
 * nats path differs only by the ingest node (TCP, framing, packing, publishing).
 */
async function runMinimalStored(urls: string, storeUrl: string, lines: number): Promise<number> {
  const before = await metric(storeUrl, "logboom_store_lines_total");
  const started = performance.now();
  await publishMinimal(urls, "logboom.0", lines);
  await until(
    async () => await metric(storeUrl, "logboom_store_lines_total") - before >= lines,
    () => "the worker did not store the minimal publisher's lines",
    300_000,
  );
  return lines / ((performance.now() - started) / 1000);
}

/**
 * The minimal pipeline: the minimal publisher, and at the same time a minimal consumer (durable
 * pull, explicit ack, payloads appended to a file, fsync every 256 messages) of the same
 * messages: lines/s until the consumer has every line. What logboom does, with nothing else.
 */
async function runMinimalPipeline(urls: string, lines: number, dir: string): Promise<number> {
  const { connect } = await import("@nats-io/transport-node");
  const nc = await connect({ servers: urls.split(",") });
  const jsm = await jetstreamManager(nc);
  const name = `minimal-${crypto.randomUUID().slice(0, 8)}`;
  await jsm.consumers.add("LOGBOOM", {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    filter_subject: "logboom.minimal",
    deliver_policy: DeliverPolicy.New,
  });
  using file = await Deno.open(join(dir, `${name}.out`), { create: true, append: true });
  try {
    const consumer = await jetstream(nc).consumers.get("LOGBOOM", name);
    const messages = await consumer.consume({ max_messages: 512 });
    const wanted = Math.ceil(lines / PER_MESSAGE);
    const started = performance.now();
    const consuming = (async () => {
      let got = 0;
      for await (const m of messages) {
        let at = 0;
        while (at < m.data.length) at += await file.write(m.data.subarray(at));
        if (++got % 256 === 0 || got === wanted) await file.sync();
        m.ack();
        if (got === wanted) break;
      }
    })();
    await publishMinimal(urls, "logboom.minimal", lines);
    await consuming;
    return lines / ((performance.now() - started) / 1000);
  } finally {
    await jsm.consumers.delete("LOGBOOM", name).catch(() => {});
    await nc.close();
  }
}

/** Lines/s through serve -nats to the worker's file. */
async function runNats(urls: string, storeUrl: string, lines: number): Promise<number> {
  await using server = await startServer(["-nats", urls], { permissions: NODE_PERMISSIONS });
  const before = await metric(storeUrl, "logboom_store_lines_total");
  const started = performance.now();
  await sendTcp(server.port, lines);
  await until(
    async () => await metric(storeUrl, "logboom_store_lines_total") - before >= lines,
    () => "the worker did not store every line",
    300_000,
  );
  return lines / ((performance.now() - started) / 1000);
}

/** Lines/s of the single-node path: TCP -> serve -> file. */
async function runSingle(lines: number): Promise<number> {
  await using server = await startServer(["-logFile", "out.log"], {
    permissions: NODE_PERMISSIONS,
  });
  const started = performance.now();
  await sendTcp(server.port, lines);
  await until(
    async () => {
      try {
        return (await Deno.stat(join(server.dir, "out.log"))).size >= lines * LINE;
      } catch {
        return false;
      }
    },
    () => "serve did not store every line",
    300_000,
  );
  return lines / ((performance.now() - started) / 1000);
}

/** Publish-to-stored latency at a steady rate: ms of each line, from its write to the file. */
async function runLatency(urls: string, file: string, rate: number, seconds: number) {
  await using server = await startServer(["-nats", urls], { permissions: NODE_PERMISSIONS });
  using out = await Deno.open(file, { read: true });
  await out.seek(0, Deno.SeekMode.End);
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const latencies: number[] = [];
  const decoder = new TextDecoder();
  let rest = "";
  let sending = true;
  const reader = (async () => {
    const buf = new Uint8Array(1 << 20);
    const t0 = performance.timeOrigin;
    while (sending || latencies.length < rate * seconds) {
      const n = await out.read(buf);
      if (n === null || n === 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const now = t0 + performance.now();
      rest += decoder.decode(buf.subarray(0, n), { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const l of parts) {
        const m = /^lat (\d+(?:\.\d+)?) /.exec(l);
        if (m) latencies.push(now - Number(m[1]));
      }
    }
  })();
  const tick = 10;
  const per = Math.round(rate * tick / 1000);
  const start = performance.now();
  for (let t = 0; t < seconds * 1000 / tick; t++) {
    const sentAt = performance.timeOrigin + performance.now();
    let text = "";
    for (let i = 0; i < per; i++) {
      text += `lat ${sentAt.toFixed(1)} ${i}`.padEnd(LINE - 1, "x") + "\n";
    }
    const data = encoder.encode(text);
    let at = 0;
    while (at < data.length) at += await conn.write(data.subarray(at));
    const wait = start + (t + 1) * tick - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  sending = false;
  await Promise.race([reader, new Promise((r) => setTimeout(r, 30_000))]);
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { p50: q(0.5), p99: q(0.99), count: latencies.length };
}

/**
 * Waits until the servers are quiet, so that a run does not pay for the one before: the page
 * cache's dirty pages written (`sync`: each run writes 300 MB, three replicas of 100 MB, into
 * the servers' files) and every replica of `streams` current.
 */
async function quiet(jsm: JetStreamManager, streams: string[]): Promise<void> {
  await new Deno.Command("sync").output().catch(() => {});
  await until(
    async () => {
      for (const name of streams) {
        const { cluster } = await jsm.streams.info(name);
        if ((cluster?.replicas ?? []).some((r) => !r.current || (r.lag ?? 0) > 0)) return false;
      }
      return true;
    },
    () => "the streams' replicas did not catch up",
    60_000,
  );
}

/** Runs `a` then `b`, or `b` then `a` on odd rounds, so neither always runs on a warmer machine. */
async function pair<T>(round: number, a: () => Promise<T>, b: () => Promise<T>): Promise<[T, T]> {
  if (round % 2 === 0) {
    const x = await a();
    return [x, await b()];
  }
  const y = await b();
  return [await a(), y];
}

/** Runs the scenario; resolves with the bars missed. */
export async function benchNats(rounds: number): Promise<string[]> {
  if (natsServerPath() === undefined) {
    console.log("Skipped nats: nats-server is not installed (apt-get install nats-server)");
    return [];
  }
  await using cluster = await startNatsCluster(3);
  const storeDir = await Deno.makeTempDir({ prefix: "bench-nats-store-" });
  const httpPort = freePort();
  const storeUrl = `http://127.0.0.1:${httpPort}`;
  const nc = await cluster.client();
  const jsm = await jetstreamManager(nc);
  const stream = { replicas: 3, duplicateWindowMs: 600_000, maxBytes: 0 };
  await ensureStream(jsm, { name: "LOGBOOM", subject: "logboom", ...stream });
  await ensureStream(jsm, { name: "ALONE", subject: "alone", ...stream });
  const worker = await startStore([
    "-nats",
    cluster.urls,
    "-logFile",
    "logs/out.log",
    "-http",
    `127.0.0.1:${httpPort}`,
  ], storeDir);
  try {
    console.log(
      `nats-server 3 nodes, streams R3 (file storage); ${LINES} lines of ${LINE} B per run; ` +
        `worker fsync batch; ${rounds} rounds`,
    );
    const alone: number[] = [];
    /** CPU seconds per million lines of the ingest node, and of this process publishing. */
    const aloneCpu: number[] = [];
    const minimalCpu: number[] = [];
    const minimal: number[] = [];
    const stored: number[] = [];
    const minimalStored: number[] = [];
    const pipeline: number[] = [];
    const single: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const purgeAlone = async () => {
        await jsm.streams.purge("ALONE");
        await quiet(jsm, ["ALONE", "LOGBOOM"]);
      };
      const [a, m] = await pair(
        r,
        async () => (await purgeAlone(), await runIngestAlone(jsm, cluster.urls, LINES)),
        async () => (await purgeAlone(), await runMinimal(jsm, cluster.urls, LINES)),
      );
      alone.push(a.rate);
      minimal.push(m.rate);
      aloneCpu.push(a.publisherCpu * 1e6 / LINES);
      minimalCpu.push(m.publisherCpu * 1e6 / LINES);
      const purge = async () => {
        await jsm.streams.purge("LOGBOOM");
        await quiet(jsm, ["ALONE", "LOGBOOM"]);
      };
      const [n, ms] = await pair(
        r,
        async () => (await purge(), await runNats(cluster.urls, storeUrl, LINES)),
        async () => (await purge(), await runMinimalStored(cluster.urls, storeUrl, LINES)),
      );
      stored.push(n);
      minimalStored.push(ms);
      await jsm.streams.purge("LOGBOOM");
      await quiet(jsm, ["ALONE", "LOGBOOM"]);
      pipeline.push(await runMinimalPipeline(cluster.urls, LINES, storeDir));
      await quiet(jsm, ["ALONE", "LOGBOOM"]);
      single.push(await runSingle(LINES));
      await jsm.streams.purge("LOGBOOM");
      for await (const f of Deno.readDir(join(storeDir, "logs"))) {
        if (f.isFile) await Deno.truncate(join(storeDir, "logs", f.name), 0);
      }
      console.log(
        `  round ${r + 1}: publish alone: ingest node ${k(a.rate)}, minimal ${
          k(m.rate)
        }; to files: ` +
          `serve -nats ${k(n)}, minimal ${k(ms)}; minimal publisher + minimal consumer ${
            k(pipeline[r])
          }; single node ${k(single[r])} lines/s`,
      );
    }
    await jsm.streams.delete("ALONE");
    const aloneRatios = alone.map((x, i) => x / minimal[i]);
    const storedRatios = stored.map((x, i) => x / minimalStored[i]);
    const aloneRatio = median(aloneRatios);
    const storedRatio = median(storedRatios);
    const lat = await runLatency(cluster.urls, join(storeDir, "logs/out.log"), 20_000, 5);
    const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
    console.log(
      `nats: publish alone (JetStream R3 acknowledged): ingest node ${k(median(alone))} vs ` +
        `minimal publisher ${k(median(minimal))} lines/s: ratio ${list(aloneRatios)} (median ${
          aloneRatio.toFixed(2)
        }, bar ${BAR}); CPU per million lines: ingest node ${
          median(aloneCpu).toFixed(2)
        } s, minimal publisher (in the sender, no TCP) ${
          median(minimalCpu).toFixed(2)
        } s. To files (through the worker): serve -nats ${k(median(stored))} vs ` +
        `the minimal publisher's batches ${k(median(minimalStored))}: ratio ${
          list(storedRatios)
        } (median ${storedRatio.toFixed(2)}, bar ${BAR}). To files against publishing alone ${
          median(stored.map((x, i) => x / minimal[i])).toFixed(2)
        }; a minimal publisher + consumer ${k(median(pipeline))}; single node ${
          k(median(single))
        }. Publish-to-stored at 20,000 lines/s: p50 ${lat.p50.toFixed(1)} ms, p99 ${
          lat.p99.toFixed(1)
        } ms (${lat.count} lines)`,
    );
    const missed: string[] = [];
    if (aloneRatio < BAR) missed.push(`nats publish-alone ratio ${aloneRatio.toFixed(2)} < ${BAR}`);
    if (storedRatio < BAR) missed.push(`nats to-files ratio ${storedRatio.toFixed(2)} < ${BAR}`);
    return missed;
  } finally {
    await worker.process.stop();
    await Deno.remove(storeDir, { recursive: true }).catch(() => {});
  }
}

function k(n: number): string {
  return `${Math.round(n / 1000)}k`;
}

if (import.meta.main) {
  const missed = await benchNats(Number(Deno.args[0] ?? 1));
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
