/**
 * `logboom serve`: the aggregator. Listens for newline-delimited lines on TCP and appends them to
 * the log file until SIGINT or SIGTERM, then stores everything already received and exits 0.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { TcpInput } from "../ingest/tcp.ts";
import { LOG_LEVELS, type LogLevelName, setupLogging } from "../logging.ts";
import { Router } from "../pipeline/router.ts";
import { FileSink } from "../store/file_sink.ts";
import type { FsyncMode } from "../store/file_writer.ts";
import {
  FlagError,
  type FlagSpecs,
  formatUsage,
  parseBytes,
  parseChoice,
  parseFlags,
} from "./flags.ts";

const DEFAULT_PORT = 8080;
const DEFAULT_LOG_FILE = "aggregated_logs.txt";
const FSYNC_MODES: readonly FsyncMode[] = ["never", "interval", "batch"];

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
    help: "File the lines are appended to; missing folders are created",
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
  logLevel: {
    type: "string",
    value: "LEVEL",
    default: "info",
    help: "Level of logboom's own logs on stderr: debug, info, warn or error",
  },
};

const SYNOPSIS = "logboom [serve] [flags]";

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
  /** Level of the program's own logs. */
  logLevel: LogLevelName;
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
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
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
    fsync: parseChoice("fsync", values.fsync as string, FSYNC_MODES),
    logLevel: parseChoice("logLevel", values.logLevel as string, LOG_LEVELS),
  };
  return { config, warnings, help };
}

/** How long shutdown may take before the process gives up on what it could not write. */
const SHUTDOWN_DEADLINE_MS = 4500;

const log = getLogger(["logboom", "serve"]);

/**
 * Runs the aggregator until `signal` aborts. Resolves with the exit code: 0 after a clean stop,
 * 1 when a startup problem stopped it or data could not be written before the deadline.
 */
export async function serve(config: ServeConfig, signal: AbortSignal): Promise<number> {
  let sink: FileSink;
  try {
    sink = await FileSink.open({
      path: config.logFile,
      fsync: config.fsync,
      queueBytes: config.queueBytes,
    });
  } catch (err) {
    log.error(`Cannot open log file "${config.logFile}": ${describe(err)}`);
    return 1;
  }
  const router = new Router([sink]);
  let input: TcpInput;
  try {
    input = TcpInput.listen(
      { hostname: config.host, port: config.port, maxLine: config.maxLine },
      router,
    );
  } catch (err) {
    log.error(`Cannot listen on ${config.host}:${config.port}: ${describe(err)}`);
    await router.close();
    return 1;
  }
  log.info(
    `Listening on tcp://${config.host}:${input.addr.port}, appending to "${config.logFile}"`,
  );
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  log.info("Stopping: storing what was received");
  const deadline = AbortSignal.timeout(SHUTDOWN_DEADLINE_MS);
  const stopped = (async () => {
    await input.close();
    await router.close({ signal: deadline });
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
    log.error(`Stopped before storing everything: ${describe(err)}`);
    return 1;
  }
}

/** The `serve` command: parses `args`, runs until SIGINT or SIGTERM, returns the exit code. */
export async function runServe(args: readonly string[]): Promise<number> {
  let parsed: ParsedServeArgs;
  try {
    parsed = parseServeArgs(args);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    console.error(`${err.message}\n\n${formatUsage(SYNOPSIS, SERVE_FLAGS)}`);
    return 2;
  }
  if (parsed.help) {
    console.log(formatUsage(SYNOPSIS, SERVE_FLAGS));
    return 0;
  }
  for (const warning of parsed.warnings) console.error(warning);
  setupLogging(parsed.config.logLevel);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const name of signals) Deno.addSignalListener(name, onSignal);
  try {
    return await serve(parsed.config, stop.signal);
  } finally {
    for (const name of signals) Deno.removeSignalListener(name, onSignal);
  }
}
