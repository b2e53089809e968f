/**
 * Helpers for end-to-end tests of the agent: run `main.ts agent` as a subprocess, write unique
 * lines to files with rotation, and count what the servers stored.
 *
 * @module
 */

import { join } from "node:path";
import { MAIN, watchProcess } from "./_server.ts";

const encoder = new TextEncoder();

/** What the agent may do in the tests: read and write its folders, reach loopback servers. */
export const AGENT_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-net=127.0.0.1",
  "--allow-env=LOGBOOM_TOKEN,LOG_TOKENS,LOG_STREAM",
];

/** The server's permissions in these tests: read lets it reload its stream marks after a restart. */
export const SERVER_PERMISSIONS = ["--allow-net", "--allow-write", "--allow-read"];

/** A running agent. */
export interface AgentProcess {
  /** The subprocess. */
  child: Deno.ChildProcess;
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** Sends `signal` and resolves with the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status once it exits by itself. */
  exited(): Promise<Deno.CommandStatus>;
  /** Kills it if still running. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Runs `main.ts agent -config <config>` in `cwd`; resolves once it started (or exited). */
export async function startAgent(
  config: string,
  options: {
    cwd: string;
    permissions?: string[];
    waitReady?: boolean;
    env?: Record<string, string>;
    /** A command and arguments to run the agent under, e.g. `setpriv ...`. */
    wrapper?: string[];
  },
): Promise<AgentProcess> {
  const { cwd, permissions = AGENT_PERMISSIONS, waitReady = true, env = {}, wrapper = [] } =
    options;
  const deno = Deno.execPath();
  const [cmd, ...pre] = wrapper.length > 0 ? [...wrapper, deno] : [deno];
  const child = new Deno.Command(cmd, {
    args: [...pre, "run", ...permissions, MAIN, "agent", "-config", config, "-logLevel", "info"],
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  const watched = await watchProcess(child, {
    ready: waitReady ? /Agent \S+ started/ : undefined,
    notReady: "Agent exited before starting",
  });
  return {
    child,
    stderr: watched.stderr,
    stop: watched.stop,
    exited: watched.exited,
    [Symbol.asyncDispose]: watched.kill,
  };
}

/** Reads counter `name` (`logboom_agent_...`) from the agent's metrics at `port`. */
export async function agentMetric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
}

/** Runs a process as root without the power to bypass file modes (else nothing, for a user). */
export const AS_A_USER: string[] = Deno.uid() === 0
  ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
  : [];

/** Writes `config` as JSON to `path`, atomically (as config managers do). */
export async function writeConfig(path: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(config, null, 2));
  await Deno.rename(`${path}.tmp`, path);
}

/** Appends lines `from` to `to` (exclusive) of writer `id` to `path`, in one write. */
export async function appendLines(
  path: string,
  id: number,
  from: number,
  to: number,
): Promise<void> {
  let text = "";
  for (let i = from; i < to; i++) text += line(id, i);
  await Deno.writeTextFile(path, text, { append: true });
}

/** A line of writer `id`: `c<id> <seq> <filler>`, 100 bytes with its newline. */
export function line(id: number, seq: number, size = 100): string {
  const head = `c${id} ${seq} `;
  return head + "x".repeat(size - head.length - 1) + "\n";
}

/** Options of {@linkcode FileWriter}. */
export interface FileWriterOptions {
  /** Writer id, written in each line. */
  id: number;
  /** The file. */
  path: string;
  /** Lines per second. */
  rate: number;
  /** Rotate every this many lines; 0 never. */
  rotateEvery?: number;
  /** Rotation kinds, taken in turn. Default rename, then copytruncate. */
  kinds?: ("rename" | "copytruncate")[];
}

/**
 * Appends unique lines to a file at a steady rate, rotating it by rename + create or by
 * copytruncate (copy to `<path>.<n>`, then truncate), as logrotate does.
 */
export class FileWriter {
  /** Lines written so far. */
  written = 0;
  /** Rotations done. */
  rotations = 0;
  readonly #options: FileWriterOptions;
  #stop = false;
  readonly #done: Promise<void>;

  /** Starts writing. */
  constructor(options: FileWriterOptions) {
    this.#options = options;
    this.#done = this.#run();
  }

  /** Stops writing; resolves once the last write is done. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }

  async #run(): Promise<void> {
    const { id, path, rate, rotateEvery = 0, kinds = ["rename", "copytruncate"] } = this.#options;
    let file = await Deno.open(path, { append: true, create: true });
    const started = Date.now();
    try {
      while (!this.#stop) {
        const due = Math.floor((Date.now() - started) * rate / 1000);
        let text = "";
        while (this.written < due) {
          text += line(id, this.written++);
          if (rotateEvery > 0 && this.written % rotateEvery === 0) {
            await writeAll(file, encoder.encode(text));
            text = "";
            const kind = kinds[this.rotations % kinds.length];
            const rotated = `${path}.${++this.rotations}`;
            if (kind === "rename") {
              file.close();
              await Deno.rename(path, rotated);
              file = await Deno.open(path, { append: true, create: true });
            } else {
              await Deno.copyFile(path, rotated);
              await file.truncate(0);
            }
          }
        }
        if (text !== "") await writeAll(file, encoder.encode(text));
        await new Promise((resolve) => setTimeout(resolve, 20)); // the writer's pace
      }
    } finally {
      file.close();
    }
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await file.write(data.subarray(at));
}

/** Every line stored under `dir` (files of any depth, dot files left out). */
export async function storedLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (folder: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(folder));
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile) {
        for (const l of (await Deno.readTextFile(path)).split("\n")) if (l !== "") out.push(l);
      }
    }
  };
  await walk(dir);
  return out;
}

/** What {@linkcode countLines} found. */
export interface LineCount {
  /** Lines expected and not found. */
  missing: number;
  /** Lines found more than once (each extra copy counts). */
  duplicated: number;
  /** Lines that are not whole lines of a writer. */
  torn: number;
  /** A few examples, for failure messages. */
  examples: string[];
}

/** Counts `lines` against writers: `expected.get(id)` lines `c<id> 0` to `c<id> n-1`. */
export function countLines(lines: readonly string[], expected: Map<number, number>): LineCount {
  const seen = new Map<number, Uint8Array>();
  for (const [id, n] of expected) seen.set(id, new Uint8Array(n));
  const result: LineCount = { missing: 0, duplicated: 0, torn: 0, examples: [] };
  for (const l of lines) {
    const match = /^c(\d+) (\d+) x+$/.exec(l);
    const marks = match ? seen.get(Number(match[1])) : undefined;
    const seq = match ? Number(match[2]) : -1;
    if (!match || marks === undefined || seq >= marks.length || l.length !== 99) {
      result.torn++;
      if (result.examples.length < 5) result.examples.push(`torn: ${l.slice(0, 60)}`);
      continue;
    }
    if (marks[seq]++ > 0) {
      result.duplicated++;
      if (result.examples.length < 5) result.examples.push(`duplicated: ${l.slice(0, 20)}`);
    }
  }
  for (const [id, marks] of seen) {
    for (let i = 0; i < marks.length; i++) {
      if (marks[i] === 0) {
        result.missing++;
        if (result.examples.length < 5) result.examples.push(`missing: c${id} ${i}`);
      }
    }
  }
  return result;
}
