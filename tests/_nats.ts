/**
 * A NATS JetStream cluster for tests and benchmarks: 1 or 3 `nats-server` processes on free
 * loopback ports below 32768, each with its own store folder in a temporary folder, that a test
 * can kill (`SIGKILL`) and start again on the same ports and data.
 *
 * @example
 * ```ts
 * await using cluster = await startNatsCluster(3);
 * const leader = await cluster.streamLeader("LOGBOOM");
 * await cluster.kill(leader);
 * await cluster.start(leader);
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { freePort, spawnMain, type WatchedProcess, watchProcess } from "./_server.ts";
import { until } from "./_http.ts";

/** Where `nats-server` is, or `undefined` when it is not installed. */
export function natsServerPath(): string | undefined {
  for (
    const dir of [
      "/usr/sbin",
      "/usr/bin",
      "/usr/local/bin",
      ...(Deno.env.get("PATH") ?? "").split(":"),
    ]
  ) {
    const path = join(dir, "nats-server");
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

/** One server of the cluster. */
export interface NatsNode {
  /** Its name (`n1`...), as JetStream names a stream's leader. */
  name: string;
  /** Client port. */
  port: number;
  /** Route port. */
  clusterPort: number;
  /** Its config file. */
  config: string;
  /** The process, while running. */
  process?: WatchedProcess;
}

/** A running cluster. */
export interface NatsCluster {
  /** The nodes. */
  nodes: NatsNode[];
  /** Client URLs of every node, comma-separated, for `-nats`. */
  urls: string;
  /** Its folder. */
  dir: string;
  /** Kills a node with SIGKILL (by name). */
  kill(name: string): Promise<void>;
  /** Sends `signal` to a running node (SIGSTOP freezes it: connections stay open, unanswered). */
  signal(name: string, signal: Deno.Signal): void;
  /** Starts a node (again) on its ports and data. */
  start(name: string): Promise<void>;
  /** The name of the stream's leader now. */
  streamLeader(stream: string): Promise<string>;
  /** A client connection to the cluster (closed with the cluster). */
  client(): Promise<NatsConnection>;
  /** Waits until JetStream answers (a meta leader is elected). */
  ready(timeoutMs?: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `size` servers (1 or 3) with JetStream, clustered when more than one. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const binary = natsServerPath();
  if (binary === undefined) {
    throw new Error("nats-server is not installed (apt-get install nats-server)");
  }
  const dir = await Deno.makeTempDir({ prefix: "logboom-nats-" });
  const nodes: NatsNode[] = [];
  for (let i = 1; i <= size; i++) {
    nodes.push({ name: `n${i}`, port: freePort(), clusterPort: freePort(), config: "" });
  }
  for (const node of nodes) {
    const routes = nodes.filter((n) => n !== node).map((n) =>
      `nats-route://127.0.0.1:${n.clusterPort}`
    );
    const lines = [
      `server_name: ${node.name}`,
      `host: 127.0.0.1`,
      `port: ${node.port}`,
      `jetstream { store_dir: "${join(dir, node.name)}" }`,
    ];
    if (size > 1) {
      lines.push(
        `cluster { name: logboom; host: 127.0.0.1; port: ${node.clusterPort}; routes: [${
          routes.join(", ")
        }] }`,
      );
    }
    node.config = join(dir, `${node.name}.conf`);
    await Deno.writeTextFile(node.config, lines.join("\n") + "\n");
  }
  const clients: NatsConnection[] = [];
  const byName = (name: string) => {
    const node = nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`No node ${name}`);
    return node;
  };
  const start = async (name: string) => {
    const node = byName(name);
    const child = new Deno.Command(binary, {
      args: ["-c", node.config],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    node.process = await watchProcess(child, {
      ready: /Server is ready/,
      notReady: `nats-server ${name} exited before it was ready`,
    });
  };
  const urls = nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(",");
  const cluster: NatsCluster = {
    nodes,
    urls,
    dir,
    async kill(name) {
      const node = byName(name);
      await node.process?.kill();
      node.process = undefined;
    },
    signal(name, signal) {
      const { process } = byName(name);
      if (process === undefined) throw new Error(`Node ${name} is not running`);
      Deno.kill(process.pid, signal);
    },
    start,
    async client() {
      const nc = await connect({
        servers: urls.split(","),
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
      });
      clients.push(nc);
      return nc;
    },
    async streamLeader(stream) {
      const nc = await cluster.client();
      const jsm = await jetstreamManager(nc);
      let leader = "";
      await until(
        async () => {
          try {
            leader = (await jsm.streams.info(stream)).cluster?.leader ?? "";
          } catch {
            leader = "";
          }
          return leader !== "";
        },
        () => `stream ${stream} has no leader`,
        20_000,
      );
      return leader;
    },
    async ready(timeoutMs = 20_000) {
      const nc = await cluster.client();
      await until(
        async () => {
          try {
            const jsm = await jetstreamManager(nc, { timeout: 1000 });
            await jsm.getAccountInfo();
            return true;
          } catch {
            return false;
          }
        },
        () => "JetStream did not become ready",
        timeoutMs,
      );
    },
    async [Symbol.asyncDispose]() {
      await Promise.allSettled(clients.map((nc) => nc.close()));
      await Promise.allSettled(nodes.map((n) => n.process?.kill()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await Promise.all(nodes.map((n) => start(n.name)));
    await cluster.ready();
  } catch (err) {
    await cluster[Symbol.asyncDispose]();
    throw err;
  }
  return cluster;
}

/** Permissions of the `serve` and `store` subprocesses of the scale-out tests. */
export const NODE_PERMISSIONS = ["--allow-net", "--allow-write", "--allow-read"];

/** A running `logboom store`. */
export interface StoreProcess {
  /** Its working folder. */
  dir: string;
  /** The process. */
  process: WatchedProcess;
}

/**
 * Starts `logboom store` with `args` in `dir` and waits until it stores (its "Storing stream"
 * line).
 */
export async function startStore(
  args: string[],
  dir: string,
  permissions: string[] = [],
): Promise<StoreProcess> {
  const child = spawnMain([...NODE_PERMISSIONS, ...permissions], ["store", ...args], dir);
  const process = await watchProcess(child, {
    ready: /Storing stream/,
    notReady: "logboom store exited before it stored",
  });
  return { dir, process };
}

/**
 * Runs `count` workers' test: `start(i, args)` starts (or starts again) worker `i` in its own
 * temporary folder `dirs[i]`, with PostgreSQL's permissions when `args` has `-postgres`. Every
 * worker is killed and every folder removed at the end.
 */
export async function withWorkers(
  count: number,
  run: (
    dirs: string[],
    start: (i: number, args: string[]) => Promise<StoreProcess>,
  ) => Promise<void>,
): Promise<void> {
  const dirs: string[] = [];
  for (let i = 0; i < count; i++) dirs.push(await Deno.makeTempDir({ prefix: "logboom-store-" }));
  const running: StoreProcess[] = [];
  try {
    await run(dirs, async (i, args) => {
      // PostgreSQL's client reads libpq's PG* variables.
      const env = args.includes("-postgres") ? ["--allow-env=PG*,USER"] : [];
      const worker = await startStore(args, dirs[i], env);
      running.push(worker);
      return worker;
    });
  } finally {
    await Promise.allSettled(running.map((w) => w.process.kill()));
    await Promise.allSettled(dirs.map((d) => Deno.remove(d, { recursive: true })));
  }
}

/** An ingest node (`serve -config`, a nats sink) on a fixed HTTP port, to kill and start again. */
export interface IngestNode {
  /** Its HTTP API, e.g. `http://127.0.0.1:20123`. */
  url: string;
  /** Its working folder (holds `logboom.json`). */
  dir: string;
  /** The process, while running. */
  process?: WatchedProcess;
  /** Kills it with SIGKILL. */
  kill(): Promise<void>;
  /** Starts it (again) on the same port and config; resolves once it listens. */
  start(): Promise<void>;
  /** Kills it and removes its folder. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode startIngest}. */
export interface IngestOptions {
  /** Subject partitions. Default 1. */
  partitions?: number;
  /** A TCP input on this port; none by default (HTTP only). */
  tcpPort?: number;
  /** The stream and its subject prefix; default the sink's (`LOGBOOM`, `logboom`). */
  stream?: string;
  subject?: string;
}

/**
 * Starts an ingest node publishing to the cluster at `urls` (comma-separated) through a sink
 * named `nats`, with HTTP and, given `tcpPort`, TCP.
 */
export async function startIngest(urls: string, options: IngestOptions = {}): Promise<IngestNode> {
  const { partitions = 1, tcpPort, stream, subject } = options;
  const dir = await Deno.makeTempDir({ prefix: "logboom-ingest-" });
  const httpPort = freePort();
  const config = {
    http: { address: `127.0.0.1:${httpPort}` },
    inputs: tcpPort === undefined ? {} : { tcp: { type: "tcp", address: `127.0.0.1:${tcpPort}` } },
    sinks: { nats: { type: "nats", servers: urls.split(","), partitions, stream, subject } },
  };
  await Deno.writeTextFile(join(dir, "logboom.json"), JSON.stringify(config));
  const node: IngestNode = {
    url: `http://127.0.0.1:${httpPort}`,
    dir,
    async kill() {
      await node.process?.kill();
      node.process = undefined;
    },
    async start() {
      const child = spawnMain(NODE_PERMISSIONS, ["serve", "-config", "logboom.json"], dir);
      node.process = await watchProcess(child, { ready: /Listening on/, notReady: "serve exited" });
    },
    async [Symbol.asyncDispose]() {
      await node.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await node.start();
  } catch (err) {
    await node[Symbol.asyncDispose]();
    throw err;
  }
  return node;
}

const FILLER = "x".repeat(40);

/** Line `seq` of client `client` of the scale-out tests: `c<client> <seq> ` and 40 x. */
export function numberedLine(client: number, seq: number): string {
  return `c${client} ${seq} ${FILLER}\n`;
}

/** Lines `from` to `to - 1` of `client` ({@linkcode numberedLine}). */
export function numberedLines(client: number, from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += numberedLine(client, i);
  return text;
}

/** Every file under `dir` (dot files and folders left out), as one text. */
export async function readAll(dir: string): Promise<string> {
  let out = "";
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.name.startsWith(".")) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else out += await Deno.readTextFile(path);
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

/**
 * Waits (at most `timeoutMs`) until what `read` gives (stored files, rows) holds every line
 * `expected` says was acknowledged, then reads once more: those texts and their tally, for the
 * caller's checks (nothing twice, nothing torn).
 */
export async function untilAllStored(
  read: () => Promise<string[]>,
  expected: Map<number, number>,
  message: () => string,
  timeoutMs: number,
): Promise<{ texts: string[]; tally: Tally }> {
  await until(async () => tally(await read(), expected).missing === 0, message, timeoutMs);
  const texts = await read();
  return { texts, tally: tally(texts, expected) };
}

/** What was stored, counted against what each client had acknowledged. */
export interface Tally {
  missing: number;
  duplicated: number;
  torn: number;
  stored: number;
}

/**
 * Counts the lines of `texts` against `expected` (client -> lines acknowledged: lines 0 to n - 1
 * must each be there once; later ones, sent but not acknowledged, may be, once). A whole line is
 * a {@linkcode numberedLine} or an agent test's 99-character line (`_agent.ts` `line`); anything
 * else is torn.
 */
export function tally(texts: string[], expected: Map<number, number>): Tally {
  const seen = new Map<number, Map<number, number>>();
  const out: Tally = { missing: 0, duplicated: 0, torn: 0, stored: 0 };
  for (const text of texts) {
    for (const l of text.split("\n")) {
      // A probe's line is stored when it was taken before the failure showed.
      if (l === "" || l === "probe") continue;
      const m = /^c(\d+) (\d+) (x+)$/.exec(l);
      if (m === null || (m[3].length !== 40 && l.length !== 99)) {
        out.torn++;
        continue;
      }
      out.stored++;
      const client = Number(m[1]);
      const per = seen.get(client) ?? new Map<number, number>();
      seen.set(client, per);
      const n = per.get(Number(m[2])) ?? 0;
      if (n > 0) out.duplicated++;
      per.set(Number(m[2]), n + 1);
    }
  }
  for (const [client, count] of expected) {
    const per = seen.get(client);
    for (let i = 0; i < count; i++) if (!per?.has(i)) out.missing++;
  }
  return out;
}

/**
 * An HTTP client that posts bodies of 100 {@linkcode numberedLines} with a stream id and offset
 * and, on any error or non-200, sends the same body again (as the agent does) to the next of
 * `urls`, until stopped; at most `rate` lines a second when given. `state.acked` counts the lines
 * of bodies answered 200.
 */
export function httpClient(
  urls: string | readonly string[],
  client: number,
  stop: AbortSignal,
  rate = Infinity,
) {
  const list = typeof urls === "string" ? [urls] : urls;
  let at = 0;
  const state = { acked: 0, refused: 0, retryAfter: "" };
  const started = Date.now();
  const done = (async () => {
    while (!stop.aborted) {
      const from = state.acked;
      // The load's pace: the next body is due once the ones before it are.
      const due = started + from * 1000 / rate - Date.now();
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      try {
        const res = await fetch(`${list[at]}/api/v1/ingest?source=http${client}`, {
          method: "POST",
          body: numberedLines(client, from, from + 100),
          headers: { "x-stream-id": `client-${client}`, "x-stream-offset": String(from + 100) },
          signal: AbortSignal.timeout(20_000),
        });
        await res.body?.cancel();
        if (res.status === 200) state.acked = from + 100;
        else {
          state.refused++;
          state.retryAfter = res.headers.get("retry-after") ?? "";
          at = (at + 1) % list.length;
          await new Promise((r) => setTimeout(r, 100));
        }
      } catch {
        at = (at + 1) % list.length;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  return { state, done };
}
