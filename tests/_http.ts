/**
 * Helpers for end-to-end tests of the HTTP API: post lines, follow a tail over SSE or WebSocket,
 * read a process's memory, put a proxy in between that can cut connections, and run the CLI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type SseEvent, SseParser } from "../src/live/sse_decoder.ts";
import { bindFreePort, MAIN } from "./_server.ts";
import { spawnTool } from "./_tools.ts";

const decoder = new TextDecoder();

/** A line as the tail sends it. */
export interface TailLine {
  id: number;
  source: string;
  host: string;
  ts: number;
  line: string;
}

/** What a tail client saw, in order: lines, and `dropped` notices with their count. */
export type Seen = { line: TailLine } | { dropped: number } | { ready: number };

/** Polls `condition` every 10 ms until it holds; fails with `message()` after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  message: () => string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`Timed out after ${timeoutMs} ms: ${message()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** POSTs `body` to `/api/v1/ingest` and returns the status, headers and parsed JSON answer. */
export async function ingest(
  base: string,
  body: BodyInit,
  options: { query?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/v1/ingest${options.query ?? ""}`, {
    method: "POST",
    headers: options.headers,
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: JSON.parse(text) };
}

/** Gzips bytes or text. */
export async function gzip(data: string | Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const blob = new Blob([data as string | Uint8Array<ArrayBuffer>]);
  const stream = blob.stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A live tail over SSE, read in the background into {@linkcode SseTail.seen}. */
export class SseTail {
  /** Everything received so far. */
  readonly seen: Seen[] = [];
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The last event id received. */
  lastEventId = "";
  /** Whether the server ended the stream. */
  ended = false;
  readonly #abort: AbortController;
  readonly #reading: Promise<void>;

  private constructor(res: Response, abort: AbortController) {
    this.status = res.status;
    this.#abort = abort;
    this.#reading = this.#read(res);
  }

  /** Opens `/api/v1/tail` with `query`; resolves once the answer's headers are in. */
  static async open(
    base: string,
    query = "",
    headers: Record<string, string> = {},
  ): Promise<SseTail> {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/v1/tail${query}`, {
      headers: { accept: "text/event-stream", ...headers },
      signal: abort.signal,
    });
    return new SseTail(res, abort);
  }

  /** The lines received so far. */
  get lines(): TailLine[] {
    return this.seen.flatMap((s) => "line" in s ? [s.line] : []);
  }

  /** Waits until `condition` holds for what was seen. */
  async wait(condition: (tail: SseTail) => boolean, timeoutMs?: number): Promise<void> {
    await until(
      () => condition(this),
      () => `SSE tail saw ${JSON.stringify(this.seen.slice(-5))} (${this.seen.length} items)`,
      timeoutMs,
    );
  }

  /** Disconnects. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#reading;
  }

  async #read(res: Response): Promise<void> {
    if (!res.ok) {
      await res.body?.cancel();
      return;
    }
    const parser = new SseParser();
    try {
      for await (const chunk of res.body!) {
        for (const event of parser.push(decoder.decode(chunk, { stream: true }))) this.#add(event);
      }
      this.ended = true;
    } catch {
      // Aborted by close().
    }
  }

  #add(event: SseEvent): void {
    if (event.lastEventId !== "") this.lastEventId = event.lastEventId;
    if (event.event === "message") this.seen.push({ line: JSON.parse(event.data) });
    else if (event.event === "dropped") this.seen.push({ dropped: JSON.parse(event.data).count });
    else if (event.event === "ready") this.seen.push({ ready: JSON.parse(event.data).lastId });
  }
}

/** A live tail over WebSocket, collecting messages into {@linkcode WsTail.seen}. */
export class WsTail {
  /** Everything received so far. */
  readonly seen: Seen[] = [];
  /** The socket. */
  readonly socket: WebSocket;
  /** The close event's code, once closed. */
  closeCode: number | undefined;
  /** Whether connecting failed (e.g. the upgrade was refused). */
  failed = false;
  readonly #closed: Promise<void>;

  /** Connects to `/api/v1/tail` with `query`, sending `headers` (Deno's WebSocket allows it). */
  constructor(base: string, query = "", headers: Record<string, string> = {}) {
    const url = `${base.replace(/^http/, "ws")}/api/v1/tail${query}`;
    // @ts-ignore: Deno's WebSocket takes headers in a second options argument.
    this.socket = new WebSocket(url, { headers });
    this.socket.onmessage = (e) => {
      const message = JSON.parse(e.data);
      if (message.type === "lines") { for (const line of message.lines) this.seen.push({ line }); }
      else if (message.type === "dropped") this.seen.push({ dropped: message.count });
      else if (message.type === "ready") this.seen.push({ ready: message.lastId });
    };
    this.socket.onerror = () => this.failed = true;
    this.#closed = new Promise((resolve) => {
      this.socket.onclose = (e) => {
        this.closeCode = e.code;
        resolve();
      };
    });
  }

  /** The lines received so far. */
  get lines(): TailLine[] {
    return this.seen.flatMap((s) => "line" in s ? [s.line] : []);
  }

  /** Resolves once open; rejects when the connection failed. */
  async opened(): Promise<void> {
    await until(
      () => this.socket.readyState !== WebSocket.CONNECTING,
      () => "WebSocket still connecting",
    );
    if (this.socket.readyState !== WebSocket.OPEN) throw new Error("WebSocket did not open");
  }

  /** Waits until `condition` holds for what was seen. */
  async wait(condition: (tail: WsTail) => boolean, timeoutMs?: number): Promise<void> {
    await until(
      () => condition(this),
      () => `WebSocket tail saw ${JSON.stringify(this.seen.slice(-5))}`,
      timeoutMs,
    );
  }

  /** Closes (if open) and waits for the close event. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close();
    await this.#closed;
  }
}

/** The resident memory of process `pid`, in kB (Deno reads /proc only under --allow-all). */
export async function rssKb(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  return Number(/VmRSS:\s+(\d+)/.exec(decoder.decode(out.stdout))?.[1] ?? NaN);
}

/** Reads a counter or gauge from `/metrics` (labels as written, e.g. `{sink="file"}`). */
export async function metric(
  base: string,
  name: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(`${base}/metrics`, { headers });
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/**
 * A TCP proxy in front of a port, for tests that need a connection cut or a response lost. While
 * `down`, it accepts and at once closes connections.
 */
export class TcpProxy {
  /** The port clients connect to. */
  readonly port: number;
  /** Refuse service: close every connection as it comes. */
  down = false;
  /** Swallow this many more responses: forward the request, then cut before any answer. */
  loseResponses = 0;
  readonly #listener: Deno.Listener;
  readonly #target: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  /** @param target the port to forward to, on 127.0.0.1. */
  constructor(target: number) {
    this.#target = target;
    this.#listener = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  /** Cuts every open connection. */
  cut(): void {
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
  }

  /** Stops and waits for every forwarding task. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    this.cut();
    await Promise.all(this.#tasks);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      if (this.down) {
        closeQuietly(client);
        continue;
      }
      const task = this.#forward(client).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
    }
  }

  async #forward(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      closeQuietly(client);
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const lose = this.loseResponses > 0;
    if (lose) this.loseResponses--;
    const pipe = async (from: Deno.Conn, to: Deno.Conn, drop: boolean) => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          if (drop) break; // the answer came: cut the client off before it sees a byte
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
        }
      } catch {
        // Cut.
      }
      closeQuietly(from);
      closeQuietly(to);
    };
    await Promise.all([pipe(client, server, false), pipe(server, client, lose)]);
    this.#conns.delete(client);
    this.#conns.delete(server);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** A running `logboom` subcommand with piped stdout and stderr. */
export interface Cli {
  /** The subprocess. */
  child: Deno.ChildProcess;
  /** Everything it wrote on stdout so far. */
  stdout(): string;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** Writes to its stdin (when started with `stdin: true`), then closes it if `end`. */
  input(text: string, end?: boolean): Promise<void>;
  /** Resolves with its status once it exits, with all output read. */
  status(): Promise<Deno.CommandStatus>;
  /** Kills it if still running and waits. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `deno run <permissions> main.ts <args>`. */
export function runCli(
  permissions: string[],
  args: string[],
  options: { stdin?: boolean; cwd?: string; env?: Record<string, string>; wrapper?: string[] } = {},
): Cli {
  const deno = Deno.execPath();
  const runArgs = ["run", ...permissions, MAIN, ...args];
  const [cmd, ...pre] = options.wrapper ? [...options.wrapper] : [deno];
  const child = spawnTool(
    new Deno.Command(cmd, {
      args: options.wrapper ? [...pre, [deno, ...runArgs].map(shellQuote).join(" ")] : runArgs,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "", ...options.env },
    }),
    cmd,
  );
  let out = "";
  let err = "";
  const outDecoder = new TextDecoder();
  const errDecoder = new TextDecoder();
  const reading = Promise.all([
    (async () => {
      for await (const c of child.stdout) out += outDecoder.decode(c, { stream: true });
    })(),
    (async () => {
      for await (const c of child.stderr) err += errDecoder.decode(c, { stream: true });
    })(),
  ]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async input(text, end = false) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(text));
      writer.releaseLock();
      if (end) await child.stdin.close();
    },
    async status() {
      const s = await status;
      await reading;
      return s;
    },
    async [Symbol.asyncDispose]() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Gone already.
        }
      }
      if (options.stdin) await child.stdin.close().catch(() => {});
      await status;
      await reading;
    },
  };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
