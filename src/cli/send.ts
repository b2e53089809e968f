/**
 * `logboom send`: sends lines from files or stdin. Over HTTP (`-server http://...`, the default)
 * it batches, gzips, and retries each batch until the server acknowledges it; every input is a
 * stream (`X-Stream-Id`, `X-Stream-Offset`), so a retried batch is never stored twice. Over TCP
 * (`-server host:port`) it streams the bytes as they are. The exit code says whether everything
 * was delivered.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1:8081 --allow-read main.ts send -source app app.log
 * ```
 *
 * @module
 */

import { basename } from "node:path";
import { describe, sleep } from "../_util.ts";
import { HttpClient } from "../agent/http_client.ts";
import { RetryPolicy } from "../retry.ts";
import { tokenFromEnv, unauthorizedHint } from "../token.ts";
import { parseDuration } from "../units.ts";
import { FlagError, type FlagSpecs, parseBytes, parseCommand, parseFlags } from "./flags.ts";
import { type HostPort, parseHostPort } from "../units.ts";
import { type LineBatch, LineBatcher } from "./line_batcher.ts";
import { untilStopped } from "./_stop.ts";

const decoder = new TextDecoder();

/** The flags of `send`. */
export const SEND_FLAGS: FlagSpecs = {
  server: {
    type: "string",
    value: "ADDR",
    default: "http://127.0.0.1:8081",
    help: "http(s)://host:port for acknowledged HTTP ingest, or host:port for raw TCP lines",
  },
  source: {
    type: "string",
    value: "S",
    help: "Source of the lines (default: the file's name, or stdin); HTTP only",
  },
  batch: {
    type: "string",
    value: "BYTES",
    default: "1MiB",
    help: "HTTP batch size: a batch ends at the last line end before it",
  },
  linger: {
    type: "string",
    value: "DURATION",
    default: "200ms",
    help: "Send the lines read so far when the input pauses this long (tail -f | logboom send)",
  },
  retryFor: {
    type: "string",
    value: "DURATION",
    default: "5m",
    help: "Give up on a batch the server has not acknowledged after this long; 0 retries forever",
  },
  timeout: {
    type: "string",
    value: "DURATION",
    default: "30s",
    help: "A request not answered within this (more than 0) is retried: a server stopped answering",
  },
  token: {
    type: "string",
    value: "T",
    help: "Bearer token (default: env LOGBOOM_TOKEN, with --allow-env=LOGBOOM_TOKEN)",
  },
};

const SYNOPSIS = "logboom send [-server ADDR] [-source S] [FILE...]";

/** Where `send` delivers. */
export type SendTarget = { kind: "http"; url: URL } | { kind: "tcp"; address: HostPort };

/** The settings of a send. */
export interface SendConfig {
  /** Where to send. */
  target: SendTarget;
  /** Files to send; empty for stdin. */
  files: string[];
  /** Source of every input; default per input. */
  source?: string;
  /** HTTP batch size in bytes. */
  batchBytes: number;
  /** Pause after which lines read so far are sent, in ms. */
  lingerMs: number;
  /** How long a batch is retried, in ms; 0 forever. */
  retryForMs: number;
  /** A request not answered within this is retried, in ms. */
  timeoutMs: number;
  /** Bearer token, `""` for none. */
  token: string;
}

/** Where a send reads and reports, and when it stops. */
export interface SendIo {
  /** Opens an input: a file by path, or stdin for `"-"`. */
  open(path: string): Promise<ReadableStream<Uint8Array>>;
  /** Prints a notice (stderr): retries, errors, the summary. */
  notice(text: string): void;
  /** Stops sending (what is not acknowledged then counts as undelivered). */
  signal: AbortSignal;
  /** First retry delay, in ms; doubles up to 5 s, with equal jitter (half of it random). Default 250. */
  retryMs?: number;
  /** Waits between tries (tests). Default: a timer, ended by `signal`. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** What a send delivered. */
export interface SendReport {
  /** Whether every byte of every input was delivered (acknowledged, over HTTP). */
  delivered: boolean;
  /** Lines the server acknowledged (HTTP; duplicates of an earlier attempt count once). */
  lines: number;
  /** Bytes of input delivered. */
  bytes: number;
}

/** Parses `send`'s arguments; throws {@linkcode FlagError} for bad ones. */
export function parseSendArgs(args: readonly string[]): { config: SendConfig; help: boolean } {
  const { values, positionals, help } = parseFlags(args, SEND_FLAGS);
  const raw = values.server as string;
  let target: SendTarget;
  if (/^https?:\/\//i.test(raw)) {
    try {
      target = { kind: "http", url: new URL("/api/v1/ingest", raw) };
    } catch {
      throw new FlagError(`Flag "-server" takes a URL or host:port, got "${raw}"`);
    }
  } else {
    try {
      target = { kind: "tcp", address: parseHostPort(raw) };
    } catch {
      throw new FlagError(
        `Flag "-server" takes http://host:port (HTTP) or host:port (TCP), got "${raw}"`,
      );
    }
  }
  const duration = (flag: string) => {
    try {
      return parseDuration(values[flag] as string);
    } catch (err) {
      throw new FlagError(`Flag "-${flag}" takes a duration such as 200ms or 5m: ${describe(err)}`);
    }
  };
  const positive = (flag: string) => {
    const ms = duration(flag);
    if (ms === 0) throw new FlagError(`Flag "-${flag}" must be more than 0, such as 30s`);
    return ms;
  };
  return {
    config: {
      target,
      files: positionals,
      source: values.source as string | undefined,
      batchBytes: parseBytes("batch", values.batch as string),
      lingerMs: duration("linger"),
      retryForMs: duration("retryFor"),
      timeoutMs: positive("timeout"),
      token: (values.token as string | undefined) ?? "",
    },
    help,
  };
}

/** Sends every input and reports what was delivered; never throws for delivery problems. */
export async function send(config: SendConfig, io: SendIo): Promise<SendReport> {
  const inputs = config.files.length === 0 ? ["-"] : config.files;
  const report: SendReport = { delivered: true, lines: 0, bytes: 0 };
  if (config.target.kind === "tcp") {
    await sendTcp(config.target.address, inputs, io, report);
    return report;
  }
  const client = new HttpClient(config.target.url.origin);
  try {
    for (const path of inputs) {
      if (io.signal.aborted) {
        report.delivered = false;
        break;
      }
      const source = config.source ?? (path === "-" ? "stdin" : basename(path));
      const input = { path, source, url: config.target.url, client };
      if (!await sendHttp(config, input, io, report)) {
        report.delivered = false;
        break;
      }
    }
  } finally {
    client.close();
  }
  return report;
}

interface HttpInput {
  path: string;
  source: string;
  url: URL;
  /** Requests to the server, over a kept-alive connection. */
  client: HttpClient;
}

/**
 * One input as one stream, batches sent in order, each acknowledged before the next (so offsets
 * only grow). Stopped by the signal, it counts as delivered when everything read so far was: the
 * usual end of `tail -f app.log | logboom send`.
 */
async function sendHttp(
  config: SendConfig,
  input: HttpInput,
  io: SendIo,
  report: SendReport,
): Promise<boolean> {
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await io.open(input.path);
  } catch (err) {
    io.notice(`logboom send: cannot read "${input.path}": ${describe(err)}`);
    return false;
  }
  const streamId = crypto.randomUUID();
  const batcher = new LineBatcher({ batchBytes: config.batchBytes });
  const reader = stream.getReader();
  const post = async (batch: LineBatch | undefined) =>
    batch === undefined || await deliver(config, { ...input, streamId, batch }, io, report);
  const aborted = new Promise<"aborted">((resolve) => {
    if (io.signal.aborted) resolve("aborted");
    io.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    let pending = reader.read();
    for (;;) {
      const waits: Promise<ReadableStreamReadResult<Uint8Array> | "linger" | "aborted">[] = [
        pending,
        aborted,
      ];
      if (batcher.pending > 0 && config.lingerMs > 0) {
        waits.push(
          new Promise((resolve) => timer = setTimeout(() => resolve("linger"), config.lingerMs)),
        );
      }
      const result = await Promise.race(waits);
      clearTimeout(timer);
      if (result === "aborted") return batcher.pending === 0;
      if (result === "linger") {
        // The input paused (a growing file piped in): send what is complete rather than wait.
        if (!await post(batcher.complete())) return false;
        continue;
      }
      if (result.done) break;
      for (const batch of batcher.push(result.value)) if (!await post(batch)) return false;
      pending = reader.read();
    }
    return await post(batcher.end());
  } catch (err) {
    io.notice(`logboom send: reading "${input.path}" failed: ${describe(err)}`);
    return false;
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
}

interface Delivery extends HttpInput {
  streamId: string;
  batch: LineBatch;
}

/**
 * POSTs one batch until it is acknowledged; `false` when refused for good or given up. A request
 * gets `timeoutMs` to be answered (a server that accepted and stopped answering is tried again);
 * a `Retry-After` is waited at most a minute.
 */
async function deliver(
  config: SendConfig,
  delivery: Delivery,
  io: SendIo,
  report: SendReport,
): Promise<boolean> {
  const { batch, streamId, source } = delivery;
  const body = await gzip(batch.data);
  const url = new URL(delivery.url);
  url.searchParams.set("source", source);
  const headers: Record<string, string> = {
    "content-type": "text/plain; charset=utf-8",
    "content-encoding": "gzip",
    "x-stream-id": streamId,
    "x-stream-offset": String(batch.offset),
  };
  if (config.token !== "") headers.authorization = `Bearer ${config.token}`;
  const started = Date.now();
  const pause = io.sleep ?? sleep;
  const policy = new RetryPolicy({ initialMs: io.retryMs ?? 250, maxMs: 5000 });
  for (let attempt = 1;; attempt++) {
    let problem: string;
    let retryAfter: string | null | undefined;
    try {
      const res = await delivery.client.request({
        method: "POST",
        path: url.pathname + url.search,
        headers,
        body,
        timeoutMs: config.timeoutMs,
        signal: io.signal,
      });
      const text = decoder.decode(res.body);
      if (res.status >= 200 && res.status < 300) {
        const answer = JSON.parse(text) as { accepted?: number; duplicate?: boolean };
        report.lines += answer.accepted ?? 0;
        report.bytes += batch.data.length;
        return true;
      }
      const reason = errorText(text) || `HTTP ${res.status}`;
      if (!(res.status === 503 || res.status === 429 || res.status >= 500)) {
        const hint = res.status === 401
          ? ` (${unauthorizedHint(config.token !== "", "-token T")})`
          : "";
        io.notice(
          `logboom send: the server refused a batch of "${delivery.path}": ${res.status} ${reason}${hint}`,
        );
        return false;
      }
      retryAfter = res.headers.get("retry-after");
      problem = `${res.status} ${reason}`;
    } catch (err) {
      if (io.signal.aborted) return false;
      const cause = (err as Error).cause;
      if (
        cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied
      ) {
        io.notice(`logboom send: ${describe(cause)}`);
        return false;
      }
      problem = describe(err);
    }
    const wait = policy.delayMs(attempt - 1, retryAfter);
    if (config.retryForMs > 0 && Date.now() + wait - started > config.retryForMs) {
      io.notice(
        `logboom send: giving up on a batch of "${delivery.path}" after ${attempt} attempts: ${problem}`,
      );
      return false;
    }
    if (attempt === 1 || attempt % 10 === 0) {
      io.notice(`logboom send: ${problem}; retrying (attempt ${attempt + 1})`);
    }
    await pause(wait, io.signal).catch(() => {});
    if (io.signal.aborted) return false;
  }
}

/**
 * Raw TCP: one connection, every input's bytes in turn (a newline added after an input that does
 * not end with one, so lines of two files never glue). TCP has no acknowledgement: after the last
 * byte the connection is half-closed and `send` waits until the server has read everything and
 * closed its side, which proves the bytes reached logboom (not that they are on disk).
 */
async function sendTcp(
  address: HostPort,
  inputs: readonly string[],
  io: SendIo,
  report: SendReport,
): Promise<void> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ ...address, transport: "tcp" });
  } catch (err) {
    io.notice(
      `logboom send: cannot connect to ${address.hostname}:${address.port}: ${describe(err)}`,
    );
    report.delivered = false;
    return;
  }
  const onAbort = () => conn.close();
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (const path of inputs) {
      const stream = await io.open(path);
      let last = 10;
      for await (const chunk of stream) {
        await writeAll(conn, chunk);
        report.bytes += chunk.length;
        report.lines += countLines(chunk);
        if (chunk.length > 0) last = chunk[chunk.length - 1];
      }
      if (last !== 10) {
        await writeAll(conn, new Uint8Array([10]));
        report.lines++;
      }
    }
    await conn.closeWrite();
    // The server closes its side once it has read up to our end of stream.
    const sink = new Uint8Array(1024);
    while (await conn.read(sink) !== null) { /* the server sends nothing; wait for its close */ }
  } catch (err) {
    report.delivered = false;
    if (!io.signal.aborted) io.notice(`logboom send: TCP delivery failed: ${describe(err)}`);
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch {
      // Closed already by the abort.
    }
  }
}

function countLines(chunk: Uint8Array): number {
  let n = 0;
  for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) n++;
  return n;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}

async function gzip(data: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function errorText(body: string): string {
  try {
    const { error } = JSON.parse(body);
    if (typeof error === "string") return error;
  } catch {
    // Not our JSON error: show the text.
  }
  return body.trim().slice(0, 200);
}

/** The `send` command: parses `args`, sends, returns 0 when everything was delivered, else 1. */
export async function runSend(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(args, parseSendArgs, { synopsis: SYNOPSIS, specs: SEND_FLAGS });
  if (typeof parsed === "number") return parsed;
  const { config } = parsed;
  if (config.token === "") config.token = tokenFromEnv();
  return await untilStopped(async (signal) => {
    const report = await send(config, {
      signal,
      notice: (text) => console.error(text),
      async open(path) {
        if (path === "-") return Deno.stdin.readable;
        return (await Deno.open(path)).readable;
      },
    });
    const where = config.target.kind === "http"
      ? config.target.url.origin
      : `${config.target.address.hostname}:${config.target.address.port}`;
    const what = `${report.lines} lines (${report.bytes} bytes)`;
    if (report.delivered) {
      console.error(`logboom send: delivered ${what} to ${where}`);
      return 0;
    }
    console.error(`logboom send: NOT everything was delivered; delivered ${what} to ${where}`);
    return 1;
  });
}
