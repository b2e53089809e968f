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
import { freePort, MAIN, type WatchedProcess, watchProcess } from "./_server.ts";
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
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...NODE_PERMISSIONS, ...permissions, MAIN, "store", ...args],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const process = await watchProcess(child, {
    ready: /Storing stream/,
    notReady: "logboom store exited before it stored",
  });
  return { dir, process };
}
