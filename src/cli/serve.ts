/**
 * `logboom serve`: the aggregator. Listens for newline-delimited lines on TCP and appends them to
 * the log file until SIGINT or SIGTERM, then stores everything already received and exits 0.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { canRead, describe } from "../_util.ts";
import { TcpInput } from "../ingest/tcp.ts";
import { ConnectionGate } from "../net/accept.ts";
import { NET_FLAGS, type NetSettings, parseNetFlags } from "./net_flags.ts";
import { LOG_LEVELS, type LogLevelName, setupLogging } from "../logging.ts";
import { Router } from "../pipeline/router.ts";
import { ApiServer } from "../api/server.ts";
import { tokenFromEnv } from "../api/auth.ts";
import { SourceStats } from "../api/source_stats.ts";
import { LiveHub } from "../live/hub.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { defaultStateDir, stateDirConflict } from "../store/state_dir.ts";
import {
  checkHttpExposure,
  describeHttpAccess,
  HTTP_FLAGS,
  type HttpSettings,
  parseHttpFlags,
} from "./http_flags.ts";
import { formatHostPort } from "../units.ts";
import { checkWatchPermissions, parseWatchPaths, WATCH_FLAGS } from "./watch_flags.ts";
import { WatchInput } from "../ingest/watch.ts";
import { hostName } from "../agent/host_name.ts";
import { dirname } from "node:path";
import { type FileFormat, FileSink } from "../store/file_sink.ts";
import { parseDuration } from "../units.ts";
import type { FsyncMode } from "../store/file_writer.ts";
import {
  FlagError,
  type FlagSpecs,
  parseBytes,
  parseChoice,
  parseCommand,
  parseCount,
  parseFlags,
} from "./flags.ts";
import { HANGUP, hangupEvents, untilStopped } from "./_stop.ts";
import { VERSION } from "./version.ts";

const DEFAULT_PORT = 8080;
const DEFAULT_LOG_FILE = "aggregated_logs.txt";
const FSYNC_MODES: readonly FsyncMode[] = ["never", "interval", "batch"];
const FORMATS: readonly FileFormat[] = ["raw", "json"];

/** The flags of `serve`, with their defaults. */
export const SERVE_FLAGS: FlagSpecs = {
  port: {
    type: "string",
    value: "N",
    default: String(DEFAULT_PORT),
    help: "TCP port for newline-delimited lines, 1024-65535",
  },
  logFile: {
    type: "string",
    value: "PATH",
    default: DEFAULT_LOG_FILE,
    help: "File the lines are appended to, or a template with {source}, {host}, {date} " +
      "(one file per value); missing folders are created",
  },
  format: {
    type: "string",
    value: "FORMAT",
    default: "raw",
    help: 'raw (lines as received) or json ({"ts","source","host","line"} per line)',
  },
  rotateSize: {
    type: "string",
    value: "BYTES",
    help: "Rotate a file before it grows past this size, e.g. 100MiB",
  },
  rotateEvery: {
    type: "string",
    value: "DURATION",
    help: "Rotate files at each multiple of this period in UTC, e.g. 24h (at midnight UTC)",
  },
  compress: { type: "bool", help: "Gzip rotated files in the background" },
  keep: { type: "string", value: "N", help: "Keep this many rotated files per output" },
  maxAge: {
    type: "string",
    value: "DURATION",
    help: "Delete rotated files older than this, e.g. 7d",
  },
  maxOpenFiles: {
    type: "string",
    value: "N",
    default: "1024",
    help: "Most log files open at once; the least recently used idle ones are closed",
  },
  host: {
    type: "string",
    value: "ADDR",
    default: "0.0.0.0",
    help: "Address the TCP listener binds",
  },
  maxLine: {
    type: "string",
    value: "BYTES",
    default: "1MiB",
    help: "Longer lines are split into pieces of this size, never dropped",
  },
  queueBytes: {
    type: "string",
    value: "BYTES",
    default: "64MiB",
    help: "Bound of the queue in front of the file; when full, TCP pushes back on senders",
  },
  fsync: {
    type: "string",
    value: "MODE",
    default: "interval",
    help: "never, interval (each second) or batch (before each acknowledgement)",
  },
  stateDir: {
    type: "string",
    value: "DIR",
    help: "Folder of logboom's own state (stream marks); default .logboom beside the log files, " +
      "which git ignores",
  },
  logLevel: {
    type: "string",
    value: "LEVEL",
    default: "info",
    help: "Level of logboom's own logs on stderr: debug, info, warn or error",
  },
  ...HTTP_FLAGS,
  ...NET_FLAGS,
  ...WATCH_FLAGS,
};

/** How `serve` is called, for its usage text. */
export const SERVE_SYNOPSIS = "logboom [serve] [flags]";

/** The settings of a running aggregator. */
export interface ServeConfig {
  /** TCP port. */
  port: number;
  /** Address the TCP listener binds. */
  host: string;
  /** Where lines are appended. */
  logFile: string;
  /** Longer lines are split into pieces of this many bytes. */
  maxLine: number;
  /** Bound of the queue in front of the file, in bytes. */
  queueBytes: number;
  /** When the file is fsynced. */
  fsync: FsyncMode;
  /** How lines are stored. */
  format: FileFormat;
  /** Rotation by size, in bytes. */
  rotateBytes?: number;
  /** Rotation by time, in ms. */
  rotateEveryMs?: number;
  /** Whether rotated files are gzipped. */
  compress: boolean;
  /** Rotated files kept per output. */
  keep?: number;
  /** Age past which rotated files are deleted, in ms. */
  maxAgeMs?: number;
  /** Most log files open at once. */
  maxOpenFiles: number;
  /** Level of the program's own logs. */
  logLevel: LogLevelName;
  /** Folder of logboom's own state; default `.logboom` beside the log files. */
  stateDir?: string;
  /** The HTTP API: address, token, limits. */
  http: HttpSettings;
  /** The connection cap and idle timeout of both listeners. */
  net: NetSettings;
  /** Local files followed as an input (`-watch`). Default none. */
  watch?: string[];
}

/** What {@linkcode parseServeArgs} makes of a command line. */
export interface ParsedServeArgs {
  /** The settings to run with. */
  config: ServeConfig;
  /** Lines for stderr: problems that did not stop the program (the invalid port). */
  warnings: string[];
  /** Whether usage was asked for. */
  help: boolean;
}

/**
 * Turns `serve`'s arguments into settings. An invalid port is not fatal: as the original
 * specification's Example 3 says, it prints `Invalid port number: X` and runs on the defaults,
 * port 8080 and `aggregated_logs.txt`. Other bad values throw {@linkcode FlagError}.
 */
export function parseServeArgs(args: readonly string[]): ParsedServeArgs {
  const { values, positionals, help } = parseFlags(args, SERVE_FLAGS);
  const watch = parseWatchPaths(values, positionals);
  const warnings: string[] = [];
  const rawPort = values.port as string;
  let port = /^\d+$/.test(rawPort) ? Number(rawPort) : NaN;
  let logFile = values.logFile as string;
  if (!(port >= 1024 && port <= 65535)) {
    warnings.push(`Invalid port number: ${rawPort}`);
    port = DEFAULT_PORT;
    logFile = DEFAULT_LOG_FILE;
  }
  if (logFile === "") throw new FlagError(`Flag "-logFile" needs a path`);
  const config: ServeConfig = {
    port,
    host: values.host as string,
    logFile,
    maxLine: parseBytes("maxLine", values.maxLine as string),
    queueBytes: parseBytes("queueBytes", values.queueBytes as string),
    fsync: parseChoice("fsync", values.fsync as string, { choices: FSYNC_MODES }),
    format: parseChoice("format", values.format as string, { choices: FORMATS }),
    stateDir: optional(values.stateDir, (v) => v || undefined),
    rotateBytes: optional(values.rotateSize, (v) => parseBytes("rotateSize", v)),
    rotateEveryMs: optional(values.rotateEvery, (v) => parseDurationFlag("rotateEvery", v)),
    compress: values.compress === true,
    keep: optional(values.keep, (v) => parseCount("keep", v)),
    maxAgeMs: optional(values.maxAge, (v) => parseDurationFlag("maxAge", v)),
    maxOpenFiles: parseCount("maxOpenFiles", values.maxOpenFiles as string, { min: 1 }),
    logLevel: parseChoice("logLevel", values.logLevel as string, { choices: LOG_LEVELS }),
    http: parseHttpFlags(values),
    net: parseNetFlags(values),
    watch,
  };
  return { config, warnings, help };
}

function optional<T>(value: string | boolean | undefined, parse: (v: string) => T): T | undefined {
  return typeof value === "string" ? parse(value) : undefined;
}

function parseDurationFlag(flag: string, value: string): number {
  try {
    const ms = parseDuration(value);
    if (ms > 0) return ms;
  } catch (err) {
    throw new FlagError(`Flag "-${flag}" takes a duration such as 24h or 15m: ${describe(err)}`);
  }
  throw new FlagError(`Flag "-${flag}" takes a duration above zero, got "${value}"`);
}

/**
 * Rotation renames files and retention lists their folder; Deno asks read permission for both.
 * Refusing to start beats failing at the first rotation.
 */
function checkStoragePermissions(config: ServeConfig): string | undefined {
  const tidies = config.rotateBytes !== undefined || config.rotateEveryMs !== undefined ||
    config.compress || config.keep !== undefined || config.maxAgeMs !== undefined;
  const fixed = config.logFile.includes("{")
    ? config.logFile.slice(0, config.logFile.indexOf("{"))
    : config.logFile;
  const folder = dirname(fixed.endsWith("/") ? fixed + "x" : fixed);
  if (tidies && !canRead(folder)) {
    return `Rotation, compression and retention need read permission on "${folder}": ` +
      `run with --allow-read=${folder}`;
  }
}

/**
 * The HTTP API's stream marks, from the state folder (`undefined` without the API). Opened before
 * the file sink: settling the batches under way at a crash may cut a torn one back. `null` after
 * a startup problem, logged.
 */
async function openMarks(config: ServeConfig): Promise<StreamMarks | undefined | null> {
  if (config.http.address === undefined) return undefined;
  const dir = config.stateDir ?? defaultStateDir(config.logFile);
  const conflict = stateDirConflict(config.logFile, dir);
  if (conflict !== undefined) {
    log.error("{reason}", { reason: conflict });
    return null;
  }
  let marks: StreamMarks;
  try {
    marks = await StreamMarks.open(dir, { sync: config.fsync === "batch" });
  } catch (err) {
    log.error("Cannot use the state folder {dir}: {error}", { dir, error: describe(err) });
    return null;
  }
  return marks;
}

/** Says, once serving, whether marks survive a restart and what the last crash left. */
function reportMarks(marks: StreamMarks, dir: string): void {
  if (marks.notReloaded !== undefined) {
    log.warn(
      "Stream marks are kept in memory only ({reason}): a batch resent after a restart is " +
        "stored again. Run with --allow-read={dir} to keep them in {dir}",
      { reason: marks.notReloaded, dir },
    );
  }
  const { stored, dropped, cut, partial } = marks.recovery;
  if (stored + dropped + partial > 0) {
    log.info(
      "Batches under way at the last stop: {stored} stored, {dropped} not stored (their resend " +
        "is), {partial} stored in part; {cut} files cut back where a batch was torn",
      { stored, dropped, partial, cut },
    );
  }
}

/** How long shutdown may take before the process gives up on what it could not write. */
const SHUTDOWN_DEADLINE_MS = 4500;

const log = getLogger(["logboom", "serve"]);

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Each {@linkcode HANGUP} event (SIGHUP) reopens the log files, from open to close. */
  hangups?: EventTarget;
}

/**
 * Runs the aggregator until `signal` aborts. Resolves with the exit code: 0 after a clean stop,
 * 1 when a startup problem stopped it or data could not be written before the deadline.
 */
export async function serve(
  config: ServeConfig,
  signal: AbortSignal,
  options: ServeOptions = {},
): Promise<number> {
  const refused = checkStoragePermissions(config) ?? checkHttpExposure(config.http) ??
    checkWatchPermissions(config.watch);
  if (refused) {
    log.error("{reason}", { reason: refused });
    return 1;
  }
  // Before any log file is opened: settling the batches of a crash may cut a torn one back.
  const marks = await openMarks(config);
  if (marks === null) return 1;
  let sink: FileSink;
  try {
    sink = await FileSink.open({
      marks: marks?.durable ? marks : undefined,
      path: config.logFile,
      fsync: config.fsync,
      queueBytes: config.queueBytes,
      format: config.format,
      rotateBytes: config.rotateBytes,
      rotateEveryMs: config.rotateEveryMs,
      compress: config.compress,
      keep: config.keep,
      maxAgeMs: config.maxAgeMs,
      maxOpenFiles: config.maxOpenFiles,
    });
  } catch (err) {
    log.error('Cannot open log file "{path}": {error}', {
      path: config.logFile,
      error: describe(err),
    });
    await marks?.close();
    return 1;
  }
  // logrotate's postrotate sends SIGHUP: every file is reopened before its next write, also
  // during the drain at shutdown.
  options.hangups?.addEventListener(HANGUP, () => {
    log.info("SIGHUP: reopening the log files");
    sink.reopen();
  });
  // Without the HTTP API nobody can subscribe: the hub (and its ring's copy) stays out of the way.
  // Small events keep each tail's delivery budget fine-grained; SSE joins them into large writes.
  const hub = config.http.address === undefined
    ? undefined
    : new LiveHub({ maxSubscribers: config.http.maxSubscribers, maxEventLines: 100 });
  const sources = new SourceStats();
  const router = new Router(hub ? [sink, hub, sources] : [sink, sources]);
  // One cap over both listeners: together they must stay under the descriptor limit.
  const gate = new ConnectionGate(config.net.maxConnections);
  let input: TcpInput;
  try {
    input = TcpInput.listen({
      hostname: config.host,
      port: config.port,
      maxLine: config.maxLine,
      gate,
      idleTimeoutMs: config.net.idleTimeoutMs,
    }, router);
  } catch (err) {
    log.error("Cannot listen on {host}:{port}: {error}{hint}", {
      host: config.host,
      port: config.port,
      error: describe(err),
      hint: err instanceof Deno.errors.AddrInUse
        ? "; another program has this port: choose another with -port N"
        : "",
    });
    await router.close();
    await marks?.close();
    return 1;
  }
  let api: ApiServer | undefined;
  const { address } = config.http;
  if (address !== undefined && hub !== undefined) {
    try {
      api = await ApiServer.open({
        ...address,
        ...config.http,
        maxLine: config.maxLine,
        // Bodies are read whole before they are queued: room for a few at the largest size.
        maxBufferedBytes: Math.max(config.queueBytes, 4 * config.http.maxBody),
        marks,
        gate,
        headerMs: config.http.headerTimeoutMs,
        bodyMs: config.http.bodyTimeoutMs,
        // Clients keep idle connections for 90 s at most: closing first at 75 s avoids a
        // request racing the close.
        idleMs: Math.min(75_000, config.net.idleTimeoutMs),
      }, {
        router,
        hub,
        sources,
        sinkMetrics: () => [{ ...sink.stats, name: "file" }, {
          name: "live",
          linesWritten: hub.stats.linesDelivered,
        }],
      });
    } catch (err) {
      log.error("Cannot serve HTTP on {address}: {error}{hint}", {
        address: formatHostPort(address),
        error: describe(err),
        hint: err instanceof Deno.errors.AddrInUse
          ? `; another program has this port: choose another with -http ${address.hostname}:PORT, ` +
            "or run without the HTTP API with -http off"
          : "",
      });
      await input.close({ quietMs: 0, drainMs: 0 });
      await router.close();
      await marks?.close();
      return 1;
    }
    log.info("HTTP API on http://{address} ({access})", {
      address: formatHostPort(address),
      access: describeHttpAccess(config.http),
    });
  }
  const watch = config.watch?.length
    ? WatchInput.start(router, {
      paths: config.watch,
      host: hostName(),
      maxLine: config.maxLine,
      // Never read back what is stored: the output, its rotations, logboom's own state.
      outputs: [config.logFile],
      stateDirs: [config.stateDir ?? defaultStateDir(config.logFile)],
    })
    : undefined;
  if (watch) {
    log.info("Watching {paths}", { paths: config.watch!.map((p) => `"${p}"`).join(", ") });
  }
  if (marks) reportMarks(marks, config.stateDir ?? defaultStateDir(config.logFile));
  log.info('Listening on tcp://{host}:{port}, appending to "{path}"', {
    host: config.host,
    port: input.addr.port,
    path: config.logFile,
  });
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  log.info("Stopping: storing what was received");
  const deadline = AbortSignal.timeout(SHUTDOWN_DEADLINE_MS);
  const stopped = (async () => {
    // Stop taking lines from both sides first, so everything taken is in the router when it closes.
    await Promise.all([input.close(), api?.close(), watch?.close()]);
    await router.close({ signal: deadline });
    await marks?.close();
  })();
  // A write blocked in flock(2) by another process cannot be interrupted: stop waiting for it.
  const expired = new Promise<never>((_, reject) => {
    deadline.addEventListener("abort", () => setTimeout(() => reject(deadline.reason), 250), {
      once: true,
    });
  });
  try {
    await Promise.race([stopped, expired]);
    log.info("Stopped");
    return 0;
  } catch (err) {
    log.error("Stopped before storing everything: {error}", { error: describe(err) });
    return 1;
  }
}

/** The `serve` command: parses `args`, runs until SIGINT or SIGTERM, returns the exit code. */
export async function runServe(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(args, parseServeArgs, {
    synopsis: SERVE_SYNOPSIS,
    specs: SERVE_FLAGS,
  });
  if (typeof parsed === "number") return parsed;
  for (const warning of parsed.warnings) console.error(warning);
  if (parsed.config.http.token === "") parsed.config.http.token = tokenFromEnv();
  setupLogging(parsed.config.logLevel);
  const { hangups, options } = hangupEvents();
  return await untilStopped((signal) => {
    // From here on SIGHUP is handled: it never ends the process.
    log.debug("Starting logboom {version}, pid {pid}", { version: VERSION, pid: Deno.pid });
    return serve(parsed.config, signal, { hangups });
  }, options);
}
