/**
 * `logboom tail`: prints lines as they arrive, like `tail -f`, from the server's live tail (SSE).
 * Reconnects with backoff and resumes where it left off (`Last-Event-ID`), shows a marker where
 * lines were dropped, escapes terminal control characters from log content, and colours levels
 * when stdout is a terminal.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1:8081 main.ts tail -grep ERROR -n 20
 * deno run --allow-net=127.0.0.1:8081 main.ts tail -level warn -field service=billing
 * ```
 *
 * @module
 */

import { describe, sleep } from "../_util.ts";
import { type Level, LEVELS } from "../pipeline/record.ts";
import { RetryPolicy } from "../retry.ts";
import { tokenFromEnv, unauthorizedHint } from "../token.ts";
import { compileLinearRegex } from "../text/linear_regex.ts";
import { type SseEvent, SseParser } from "../live/sse_decoder.ts";
import { FlagError, type FlagSpecs, parseCommand, parseFlags } from "./flags.ts";
import { colourLevel, droppedMarker, escapeControl, safeJson } from "./terminal_text.ts";
import { untilStopped } from "./_stop.ts";

/** The flags of `tail`. */
export const TAIL_FLAGS: FlagSpecs = {
  server: {
    type: "string",
    value: "URL",
    default: "http://127.0.0.1:8081",
    help: "The logboom server's HTTP API",
  },
  source: { type: "string", value: "S", help: "Only lines of this source" },
  grep: { type: "string", value: "TEXT", help: "Only lines containing this text" },
  regex: { type: "string", value: "RE", help: "Only lines this regular expression matches" },
  level: {
    type: "string",
    value: "LEVEL",
    help: `Only lines with this level or a higher one (${LEVELS.join(", ")}); lines without a ` +
      "level are left out",
  },
  field: {
    type: "string",
    value: "NAME=VALUE",
    repeat: true,
    help: "Only lines whose field NAME has this value; several must all match",
  },
  n: {
    type: "string",
    value: "N",
    default: "10",
    help: "Start with the last N matching lines the server still holds",
  },
  json: { type: "bool", help: "Print each line as JSON with its id, source, host and time" },
  token: {
    type: "string",
    value: "T",
    help: "Bearer token (default: env LOGBOOM_TOKEN, with --allow-env=LOGBOOM_TOKEN)",
  },
};

const SYNOPSIS = "logboom tail [-server URL] [-source S] [-grep TEXT] [-regex RE] [-level LEVEL] " +
  "[-field NAME=VALUE ...] [-n N] [-json]";

/** The settings of a tail. */
export interface TailConfig {
  /** The server's base URL. */
  server: URL;
  /** Only lines of this source. */
  source?: string;
  /** Only lines containing this text. */
  grep?: string;
  /** Only lines this regular expression matches. */
  regex?: string;
  /** Only lines with this level or a higher one. */
  level?: Level;
  /** Only lines whose fields hold these values (name, value), all of them. */
  fields?: [name: string, value: string][];
  /** Backfill on the first connection. */
  n: number;
  /** Print JSON records instead of lines. */
  json: boolean;
  /** Bearer token, `""` for none. */
  token: string;
}

/** Where a tail writes, and when it stops. */
export interface TailIo {
  /** Writes text to the output (stdout); may wait for it to drain. */
  write(text: string): Promise<void>;
  /** Prints a notice (stderr): reconnections and errors. */
  notice(text: string): void;
  /** Whether to colour levels and markers. */
  colour: boolean;
  /** Ends the tail. */
  signal: AbortSignal;
  /**
   * First reconnection delay, in ms; doubles up to `maxRetryMs`, with equal jitter (half of it
   * random). Default 500.
   */
  retryMs?: number;
  /** Longest reconnection delay, and longest wait a `Retry-After` gets, in ms. Default 10,000. */
  maxRetryMs?: number;
}

/** Parses `tail`'s arguments; throws {@linkcode FlagError} for bad ones. */
export function parseTailArgs(args: readonly string[]): { config: TailConfig; help: boolean } {
  const { values, positionals, help, lists } = parseFlags(args, TAIL_FLAGS);
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  const rawServer = values.server as string;
  let server: URL;
  try {
    server = new URL(/^https?:\/\//i.test(rawServer) ? rawServer : `http://${rawServer}`);
  } catch {
    throw new FlagError(
      `Flag "-server" takes a URL such as http://127.0.0.1:8081, got "${rawServer}"`,
    );
  }
  const rawN = values.n as string;
  const n = /^\d{1,9}$/.test(rawN) ? Number(rawN) : NaN;
  if (Number.isNaN(n)) throw new FlagError(`Flag "-n" takes a whole number, got "${rawN}"`);
  const regex = values.regex as string | undefined;
  if (regex !== undefined) {
    try {
      // The server's engine: RE2 syntax (no lookahead, no backreferences), linear time.
      compileLinearRegex(regex);
    } catch (err) {
      throw new FlagError(`Flag "-regex" is not a valid regular expression: ${describe(err)}`);
    }
  }
  const rawLevel = values.level as string | undefined;
  const level = rawLevel?.toLowerCase();
  if (level !== undefined && !(LEVELS as readonly string[]).includes(level)) {
    throw new FlagError(`Flag "-level" takes one of ${LEVELS.join(", ")}, got "${rawLevel}"`);
  }
  const fields = (lists.field ?? []).map((pair): [string, string] => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new FlagError(`Flag "-field" takes NAME=VALUE, got "${pair}"`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
  const names = new Set(fields.map(([name]) => name));
  if (names.size < fields.length) {
    throw new FlagError(`Flag "-field" names a field twice; a line has one value per field`);
  }
  return {
    config: {
      server,
      source: values.source as string | undefined,
      grep: values.grep as string | undefined,
      regex,
      level: level as Level | undefined,
      fields: fields.length > 0 ? fields : undefined,
      n,
      json: values.json === true,
      token: (values.token as string | undefined) ?? "",
    },
    help,
  };
}

/** A server answer that retrying cannot fix (bad filter, wrong token). */
class FatalAnswer extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FatalAnswer";
  }
}

/**
 * Follows the live tail until `io.signal` aborts (resolves 0) or the server refuses the request
 * in a way retrying cannot fix (resolves 1). Connection losses are retried forever, with backoff.
 */
export async function tail(config: TailConfig, io: TailIo): Promise<number> {
  const { signal, retryMs = 500, maxRetryMs = 10_000 } = io;
  const policy = new RetryPolicy({
    initialMs: retryMs,
    maxMs: maxRetryMs,
    retryAfterCapMs: maxRetryMs,
  });
  let cursor: string | undefined;
  let attempt = 0;
  let connectedOnce = false;
  while (!signal.aborted) {
    const url = new URL("/api/v1/tail", config.server);
    if (config.source !== undefined) url.searchParams.set("source", config.source);
    if (config.grep !== undefined) url.searchParams.set("grep", config.grep);
    if (config.regex !== undefined) url.searchParams.set("regex", config.regex);
    if (config.level !== undefined) url.searchParams.set("level", config.level);
    for (const [name, value] of config.fields ?? []) url.searchParams.set(`field.${name}`, value);
    // Backfill only once: after that the cursor says where to resume.
    if (cursor === undefined && config.n > 0) url.searchParams.set("n", String(config.n));
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (config.token !== "") headers.authorization = `Bearer ${config.token}`;
    if (cursor !== undefined) headers["last-event-id"] = cursor;
    let problem: string;
    let retryAfter: string | null = null;
    try {
      const res = await fetch(url, { headers, signal });
      if (!res.ok) {
        const reason = await errorOf(res);
        if (res.status === 503 || res.status === 429 || res.status >= 500) {
          retryAfter = res.headers.get("retry-after");
          throw new Error(`server answered ${res.status}: ${reason}`);
        }
        const hint = res.status === 401
          ? ` (${unauthorizedHint(config.token !== "", "-token")})`
          : "";
        throw new FatalAnswer(`Server answered ${res.status}: ${reason}${hint}`);
      }
      if (connectedOnce) io.notice(`logboom tail: reconnected to ${config.server.origin}`);
      connectedOnce = true;
      const parser = new SseParser(cursor);
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) {
        const events = parser.push(decoder.decode(chunk, { stream: true }));
        if (events.length === 0) continue;
        // Something arrived: the connection works, so the next loss starts the backoff afresh.
        attempt = 0;
        if (events.some(restarted)) {
          io.notice(
            "logboom tail: the server restarted; resuming from the oldest line it holds " +
              "(lines its previous run took after the last one shown are in its files, not here)",
          );
        }
        const text = render(events, config.json, io.colour);
        const last = events.at(-1)!.lastEventId;
        if (last !== "") cursor = last;
        if (text !== "") await io.write(text);
      }
      problem = "the server closed the stream";
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof FatalAnswer) {
        io.notice(`logboom tail: ${err.message}`);
        return 1;
      }
      if (err instanceof Deno.errors.BrokenPipe) return 0; // stdout closed: `| head` is done
      if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
        io.notice(`logboom tail: ${describe(err)}`);
        return 1;
      }
      problem = describe(err);
    }
    if (signal.aborted) break;
    const delay = policy.delayMs(attempt++, retryAfter);
    io.notice(
      `logboom tail: connection lost (${problem}); reconnecting in ${(delay / 1000).toFixed(1)} s`,
    );
    await sleep(delay, signal).catch(() => {});
  }
  return 0;
}

/** Whether the event is the `ready` of a tail resumed from a cursor of the server's previous run. */
function restarted(event: SseEvent): boolean {
  if (event.event !== "ready") return false;
  try {
    return JSON.parse(event.data).restarted === true;
  } catch {
    return false;
  }
}

/** Turns events into output text: lines, or JSON records, with markers for dropped lines. */
function render(events: readonly SseEvent[], json: boolean, colour: boolean): string {
  let text = "";
  for (const event of events) {
    if (event.event === "message") {
      let record: { line?: unknown };
      try {
        record = JSON.parse(event.data);
      } catch {
        continue;
      }
      if (json) text += safeJson(record) + "\n";
      else {
        const line = escapeControl(String(record.line ?? ""));
        text += (colour ? colourLevel(line) : line) + "\n";
      }
    } else if (event.event === "dropped") {
      let count = 0;
      try {
        count = Number(JSON.parse(event.data).count) || 0;
      } catch {
        // A malformed notice still says that something was missed.
      }
      text += json ? safeJson({ dropped: count }) + "\n" : droppedMarker(count, colour) + "\n";
    }
  }
  return text;
}

async function errorOf(res: Response): Promise<string> {
  const body = await res.text().catch(() => "");
  try {
    const { error } = JSON.parse(body);
    if (typeof error === "string") return error;
  } catch {
    // Not our JSON error: show the text.
  }
  return body.trim().slice(0, 200) || res.statusText;
}

/** The `tail` command: parses `args`, follows until SIGINT or SIGTERM, returns the exit code. */
export async function runTail(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(args, parseTailArgs, { synopsis: SYNOPSIS, specs: TAIL_FLAGS });
  if (typeof parsed === "number") return parsed;
  const { config } = parsed;
  if (config.token === "") config.token = tokenFromEnv();
  const encoder = new TextEncoder();
  return await untilStopped(async (signal) => {
    return await tail(config, {
      signal,
      colour: Deno.stdout.isTerminal() && !Deno.noColor,
      async write(text) {
        const bytes = encoder.encode(text);
        let offset = 0;
        while (offset < bytes.length) offset += await Deno.stdout.write(bytes.subarray(offset));
      },
      notice: (text) => console.error(text),
    });
  });
}
