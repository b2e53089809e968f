/**
 * Helpers for end-to-end tests: start the real program as a subprocess, talk to it over TCP, and
 * check what it stored.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { spawnTool } from "./_tools.ts";

/** The entry point under test. */
export const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

/** The design card's permissions: the program must need nothing more. */
export const CARD_PERMISSIONS = ["--allow-net", "--allow-write"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A running aggregator. */
export interface Server {
  /** The TCP port it listens on. */
  port: number;
  /** The HTTP API's port on 127.0.0.1 (a free one unless `args` has `-http`; 0 when `-http off`). */
  httpPort: number;
  /** The HTTP API's base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Its working folder (a fresh temporary one). */
  dir: string;
  /** The subprocess. */
  child: Deno.ChildProcess;
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** Sends `signal` and resolves with the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status once it exits by itself, with all of stderr read. */
  exited(): Promise<Deno.CommandStatus>;
  /** Kills it if still running and removes its folder. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions {
  /** Working folder; a new temporary one by default (removed on dispose). */
  dir?: string;
  /** Deno permission flags. Default: the card's, `--allow-net --allow-write`. */
  permissions?: string[];
  /** A command and arguments to run the program under, e.g. `setpriv ...`. */
  wrapper?: string[];
  /** Whether to wait for the "Listening" line. Default true. */
  waitReady?: boolean;
  /** The program to run. Default {@linkcode MAIN}. */
  main?: string;
  /** Environment variables besides the test's own (`NO_COLOR=1` is always set). */
  env?: Record<string, string>;
}

/**
 * Ports tests and benchmarks listen on: below the kernel's ephemeral range (32768 and up), which
 * outgoing connections draw from, so none can take a port between its probe and its use.
 */
export const TEST_PORTS = { min: 20000, max: 32767 } as const;

/**
 * Calls `bind` with random ports of {@linkcode TEST_PORTS} until one is not in use, and returns
 * what it returned: a listener bound this way is never raced for its port.
 *
 * @example
 * ```ts
 * const listener = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
 * ```
 */
export function bindFreePort<T>(bind: (port: number) => T): T {
  const { min, max } = TEST_PORTS;
  for (let attempt = 1;; attempt++) {
    const port = min + Math.floor(Math.random() * (max - min + 1));
    try {
      return bind(port);
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse) || attempt >= 200) throw err;
    }
  }
}

/** Ports {@linkcode freePort} gave: one given may not be bound yet, so it is never given again. */
const given = new Set<number>();

/**
 * A loopback TCP port of {@linkcode TEST_PORTS} that is free right now (bound and let go), for a
 * subprocess to listen on, and never given before in this process.
 */
export function freePort(): number {
  return bindFreePort((port) => {
    if (given.has(port)) throw new Deno.errors.AddrInUse(`port ${port} was given already`);
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    given.add(port);
    return port;
  });
}

/** Runs `main.ts` with `args` (a free `-port` is added unless `args` has one). */
export async function startServer(
  args: string[] = [],
  options: StartOptions = {},
): Promise<Server> {
  const { permissions = CARD_PERMISSIONS, wrapper = [], waitReady = true, main = MAIN } = options;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "logboom-e2e-" });
  const hasPort = args.some((a) => /^--?port(=|$)/.test(a));
  const port = hasPort ? Number(args[args.findIndex((a) => /^--?port/.test(a)) + 1]) : freePort();
  const fullArgs = hasPort ? [...args] : ["-port", String(port), ...args];
  // A free HTTP port for each server, so tests never meet on the default 8081.
  const httpAt = args.findIndex((a) => /^--?http(=|$)/.test(a));
  const httpValue = httpAt === -1
    ? undefined
    : args[httpAt].includes("=")
    ? args[httpAt].split("=")[1]
    : args[httpAt + 1];
  const httpPort = httpValue === undefined
    ? freePort()
    : httpValue === "off"
    ? 0
    : Number(httpValue.split(":").at(-1));
  if (httpValue === undefined) fullArgs.push("-http", `127.0.0.1:${httpPort}`);
  const deno = Deno.execPath();
  const [cmd, ...pre] = wrapper.length > 0 ? [...wrapper, deno] : [deno];
  const child = spawnTool(
    new Deno.Command(cmd, {
      args: [...pre, "run", ...permissions, main, ...fullArgs],
      cwd: dir,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { ...options.env, NO_COLOR: "1" },
    }),
    cmd,
  );
  const watched = await watchProcess(child, {
    ready: waitReady ? /Listening on/ : undefined,
    notReady: "Server exited before listening",
  });
  return {
    port,
    httpPort,
    url: `http://127.0.0.1:${httpPort}`,
    dir,
    child,
    stderr: watched.stderr,
    stop: watched.stop,
    exited: watched.exited,
    async [Symbol.asyncDispose]() {
      await watched.kill();
      if (ownDir) await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Starts `deno run <permissions> main.ts <args>` in `cwd`: stdout discarded, stderr piped for
 * {@linkcode watchProcess}.
 */
export function spawnMain(
  permissions: readonly string[],
  args: readonly string[],
  cwd: string,
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/** A subprocess whose stderr is collected, with the ways to end it the tests use. */
export interface WatchedProcess {
  /** Its process id. */
  readonly pid: number;
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** Sends `signal` (once) and resolves with the exit status, all of stderr read. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status once it exits by itself, all of stderr read. */
  exited(): Promise<Deno.CommandStatus>;
  /** Kills it if still running and waits for it. */
  kill(): Promise<void>;
}

/**
 * Collects `child`'s stderr (it must be piped) and, given `ready`, resolves once stderr matches
 * it; rejects with `notReady`, the exit code and stderr when the process exits first.
 */
export async function watchProcess(
  child: Deno.ChildProcess,
  options: { ready?: RegExp; notReady: string },
): Promise<WatchedProcess> {
  const { ready, notReady } = options;
  let text = "";
  let onText = () => {};
  const reading = (async () => {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      onText();
    }
  })();
  const status = child.status;
  if (ready) {
    await new Promise<void>((resolve, reject) => {
      onText = () => ready.test(text) && resolve();
      status.then((s) => reject(new Error(`${notReady} (exit code ${s.code}):\n${text}`)));
      onText();
    });
  }
  let stopped = false;
  const finish = async () => {
    stopped = true;
    const result = await status;
    await reading;
    return result;
  };
  return {
    pid: child.pid,
    stderr: () => text,
    stop(signal: Deno.Signal = "SIGTERM") {
      if (!stopped) child.kill(signal);
      return finish();
    },
    exited: finish,
    async kill() {
      if (!stopped) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already exited.
        }
      }
      await finish();
    },
  };
}

/** Connects to `port`, sends `data`, and closes the connection. */
export async function send(port: number, data: string | Uint8Array): Promise<void> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, typeof data === "string" ? encoder.encode(data) : data);
}

/** Writes every byte of `data`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}

/** The unique lines client `client` sends in the load tests: `c<client> <seq> <filler>`. */
export function clientLines(client: number, count: number, size = 60): Uint8Array {
  let text = "";
  for (let i = 0; i < count; i++) {
    const head = `c${client} ${i} `;
    text += head + "x".repeat(Math.max(0, size - head.length - 1)) + "\n";
  }
  return encoder.encode(text);
}

/** What {@linkcode verifyLines} found. */
export interface Verdict {
  lines: number;
  missing: number;
  duplicated: number;
  torn: number;
}

/** Counts missing, duplicated and torn lines of `clients` x `count` {@linkcode clientLines}. */
export function verifyLines(text: string, clients: number, count: number, size = 60): Verdict {
  const seen = new Uint8Array(clients * count);
  let lines = 0;
  let duplicated = 0;
  let torn = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    lines++;
    const match = /^c(\d+) (\d+) x*$/.exec(line);
    const client = match ? Number(match[1]) : NaN;
    const seq = match ? Number(match[2]) : NaN;
    if (!match || line.length !== size - 1 || client >= clients || seq >= count) {
      torn++;
      continue;
    }
    const at = client * count + seq;
    if (seen[at]) duplicated++;
    seen[at] = 1;
  }
  const missing = seen.length - seen.reduce((sum, v) => sum + v, 0);
  return { lines, missing, duplicated, torn };
}

/** Polls `path` until it holds `bytes` bytes (or more); fails after `timeoutMs`. */
export async function waitForBytes(path: string, bytes: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let size = 0;
    try {
      size = (await Deno.stat(path)).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (size >= bytes) return;
    if (Date.now() > deadline) {
      assert.fail(`"${path}" holds ${size} of ${bytes} bytes after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Like {@linkcode waitForBytes}, then returns the file's text. */
export async function waitForSize(
  path: string,
  bytes: number,
  timeoutMs?: number,
): Promise<string> {
  await waitForBytes(path, bytes, timeoutMs);
  return await Deno.readTextFile(path);
}

/** An outside process holding a file's `flock`, as another cooperating writer would. */
export interface LockHolder {
  /** Lets the lock go and waits for the process to exit. */
  release(): Promise<void>;
}

/** Starts `flock --exclusive PATH` in another process and resolves once it holds the lock. */
export async function holdLock(path: string): Promise<LockHolder> {
  const holder = spawnTool(
    new Deno.Command("flock", {
      args: ["--exclusive", path, "sh", "-c", "echo locked; read _"],
      stdin: "piped",
      stdout: "piped",
    }),
    "flock",
  );
  const reader = holder.stdout.getReader();
  const said = decoder.decode((await reader.read()).value).trim();
  assert.equal(said, "locked");
  return {
    async release() {
      const writer = holder.stdin.getWriter();
      await writer.write(encoder.encode("\n"));
      await writer.close();
      reader.releaseLock();
      await holder.stdout.cancel();
      assert.equal((await holder.status).code, 0);
    },
  };
}
