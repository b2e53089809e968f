/**
 * The agent's soak: writers append unique lines to several files at a steady rate, rotating every
 * few thousand lines (rename + create and copytruncate in turn, the rotated `.N` names matched by
 * the glob too); meanwhile the agent is killed with SIGKILL and restarted twice, the first server
 * is stopped for 5 seconds (the agent fails over to the second), and the config is changed to add
 * an input and to remove another. At the end the servers' files must hold every line exactly once.
 *
 * `tests/agent_soak_test.ts` runs it briefly; `scripts/soak_agent.ts` runs it for longer.
 *
 * @module
 */

import { join } from "node:path";
import { freePort, type Server, startServer } from "./_server.ts";
import {
  type AgentProcess,
  countLines,
  FileWriter,
  type LineCount,
  SERVER_PERMISSIONS,
  startAgent,
  storedLines,
  writeConfig,
} from "./_agent.ts";

/** Options of {@linkcode soak}. */
export interface SoakOptions {
  /** How long the writers write, in seconds (at least 20). */
  seconds: number;
  /** Files of the main input. Default 3. */
  files?: number;
  /** Lines per second per file. Default 1500. */
  rate?: number;
  /** Lines between rotations. Default 2000. */
  rotateEvery?: number;
  /** Progress messages. Default none. */
  log?: (message: string) => void;
}

/** What {@linkcode soak} saw. */
export interface SoakResult {
  /** Missing, duplicated and torn lines over every writer. */
  count: LineCount;
  /** Lines written. */
  written: number;
  /** Rotations done. */
  rotations: number;
  /** Seconds from the writers' stop until every line was stored. */
  drainSeconds: number;
  /** The server folders, for the Go verifier. */
  outputs: string[];
  /** The agent's counters as its last report to the second server had them. */
  agentStats: Record<string, number>;
  /** Warnings and errors the agent logged. */
  agentProblems: string[];
  /** The soak's folder (removed by `cleanup`). */
  dir: string;
  /** Removes the soak's folder. */
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the soak (see the module doc). */
export async function soak(options: SoakOptions): Promise<SoakResult> {
  const { seconds, files = 3, rate = 1500, rotateEvery = 2000, log = () => {} } = options;
  if (seconds < 20) throw new RangeError(`A soak needs at least 20 seconds, got "${seconds}"`);
  const dir = await Deno.makeTempDir({ prefix: "logboom-soak-" });
  for (const sub of ["logs", "logs_b", "logs_c", "srv1", "srv2"]) await Deno.mkdir(join(dir, sub));
  const ports = [freePort(), freePort()];
  const serverArgs = (i: number) => [
    "-http",
    `127.0.0.1:${ports[i]}`,
    "-logFile",
    "out/{source}.log",
  ];
  const startOne = (i: number) =>
    startServer(serverArgs(i), { dir: join(dir, `srv${i + 1}`), permissions: SERVER_PERMISSIONS });
  const servers: (Server | undefined)[] = [await startOne(0), await startOne(1)];
  const configPath = join(dir, "agent.json");
  const input = (name: string, paths: string[]) => ({ source: name, paths });
  const config = (inputs: unknown[]) => ({
    servers: ports.map((p) => `http://127.0.0.1:${p}`),
    state_dir: "state",
    inputs,
    batch: { max_bytes: "256KiB", max_wait: "100ms" },
    retry: {
      initial: "50ms",
      max: "1s",
      timeout: "5s",
      failover_after: 2,
      failback_after: "3s",
      resend_window: "15s",
    },
    scan_interval: "250ms",
    rotate_wait: "1s",
    report_interval: "1s",
  });
  const inputA = input("a", [join(dir, "logs", "*.log*")]);
  const inputB = input("b", [join(dir, "logs_b", "*.log")]);
  const inputC = input("c", [join(dir, "logs_c", "*.log")]);
  await writeConfig(configPath, config([inputA, inputC]));
  const agentLog: string[] = [];
  let agent: AgentProcess | undefined;
  const runAgent = async () => {
    agent = await startAgent(configPath, { cwd: dir });
  };
  const killAgent = async () => {
    await agent!.stop("SIGKILL");
    agentLog.push(agent!.stderr());
  };
  const writers = new Map<number, FileWriter>();
  const t0 = Date.now();
  const at = async (fraction: number) => {
    const wait = t0 + fraction * seconds * 1000 - Date.now();
    if (wait > 0) await sleep(wait); // the soak's timeline: time passing is the subject
  };
  try {
    await runAgent();
    for (let i = 0; i < files; i++) {
      writers.set(
        i,
        new FileWriter({ id: i, path: join(dir, "logs", `app${i}.log`), rate, rotateEvery }),
      );
    }
    writers.set(10, new FileWriter({ id: 10, path: join(dir, "logs_c", "c.log"), rate: rate / 3 }));
    await at(0.15);
    log("kill -9 the agent");
    await killAgent();
    await sleep(500);
    await runAgent();
    await at(0.2);
    writers.set(20, new FileWriter({ id: 20, path: join(dir, "logs_b", "b.log"), rate: rate / 3 }));
    await at(0.25);
    log("add input b");
    await writeConfig(configPath, config([inputA, inputB, inputC]));
    await at(0.3);
    log("stop the first server for 5 s");
    await servers[0]!.stop("SIGTERM");
    servers[0] = undefined;
    await sleep(5000);
    servers[0] = await startOne(0);
    log("first server back");
    await at(0.45);
    await writers.get(10)!.stop();
    await at(0.55);
    log("kill -9 the agent");
    await killAgent();
    await sleep(1000);
    await runAgent();
    // Input c goes once all its lines are stored; what is removed later is no longer shipped.
    const cLines = writers.get(10)!.written;
    const outputs = [join(dir, "srv1", "out"), join(dir, "srv2", "out")];
    const deadline = Date.now() + 30_000;
    while ((await countSource(outputs, "c.log")) < cLines && Date.now() < deadline) {
      await sleep(100);
    }
    await at(0.7);
    log("remove input c");
    await writeConfig(configPath, config([inputA, inputB]));
    await at(1);
    for (const writer of writers.values()) await writer.stop();
    const stoppedAt = Date.now();
    const expected = new Map([...writers].map(([id, w]) => [id, w.written]));
    const written = [...expected.values()].reduce((a, b) => a + b, 0);
    log(`writers stopped: ${written} lines; waiting for them to be stored`);
    const drainDeadline = Date.now() + 60_000;
    let stored = 0;
    while (Date.now() < drainDeadline) {
      stored = (await storedLines(outputs[0])).length + (await storedLines(outputs[1])).length;
      if (stored >= written) break;
      await sleep(250);
    }
    const drainSeconds = (Date.now() - stoppedAt) / 1000;
    // A moment more, so a duplicate arriving late would be counted too.
    await sleep(1000);
    const res = await fetch(`${servers[1]!.url}/api/v1/agents`);
    const { agents } = await res.json() as { agents: { stats: Record<string, number> }[] };
    await agent!.stop("SIGTERM");
    agentLog.push(agent!.stderr());
    agent = undefined;
    for (const server of servers) await server?.stop("SIGTERM");
    const lines = [...await storedLines(outputs[0]), ...await storedLines(outputs[1])];
    const rotations = [...writers.values()].reduce((a, w) => a + w.rotations, 0);
    return {
      count: countLines(lines, expected),
      written,
      rotations,
      drainSeconds,
      outputs,
      agentStats: agents[0]?.stats ?? {},
      agentProblems: agentLog.join("").split("\n").filter((l) => /\[(WRN|ERR)\]/.test(l)),
      dir,
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (err) {
    for (const writer of writers.values()) await writer.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  } finally {
    if (agent !== undefined) await agent[Symbol.asyncDispose]();
    for (const server of servers) await server?.[Symbol.asyncDispose]();
  }
}

async function countSource(outputs: string[], name: string): Promise<number> {
  let n = 0;
  for (const out of outputs) {
    try {
      const text = await Deno.readTextFile(join(out, name));
      for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
    } catch {
      // Not there yet.
    }
  }
  return n;
}
