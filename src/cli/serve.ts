/**
 * `logboom serve`: the aggregator. Listens for newline-delimited lines on TCP and appends them to
 * the log file until SIGINT or SIGTERM, then stores everything already received and exits 0.
 *
 * The flags, or a config file (`-config logboom.yaml`), make one {@linkcode ServerConfig}; the
 * pipeline of `config/` builds the components from it. `-config` and other flags do not mix: the
 * file is the whole configuration, so what runs is what the file says. A config file is watched
 * and read again on SIGHUP: what changed is applied while running (`Pipeline.reload`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { NET_FLAGS, type NetSettings, parseNetFlags } from "./net_flags.ts";
import { LOG_LEVELS, type LogLevelName, setupLogging } from "../logging.ts";
import { tokenFromEnv } from "../token.ts";
import { HTTP_FLAGS, type HttpSettings, parseHttpFlags } from "./http_flags.ts";
import { parseWatchPaths, WATCH_FLAGS } from "./watch_flags.ts";
import { FILE_FLAGS, type FileSettings, parseFileFlags } from "./file_flags.ts";
import { type HostPort, parseHostPort } from "../units.ts";
import type { FsyncMode } from "../store/file_writer.ts";
import {
  FlagError,
  type FlagSpecs,
  ifGiven,
  parseBytes,
  parseChoice,
  parseCommand,
  parseFlags,
} from "./flags.ts";
import { HANGUP, hangupEvents, untilStopped } from "./_stop.ts";
import { VERSION } from "./version.ts";
import { BuildError } from "../config/component.ts";
import { ConfigError, loadServerConfig } from "../config/load.ts";
import { Pipeline, ReloadRefused } from "../config/pipeline.ts";
import { watchConfig } from "../config_watch.ts";
import { flagKeys, type ServerConfig } from "../config/server_config.ts";
import { MAX_RECEIVE_BUFFER, MIN_RECEIVE_BUFFER } from "../net/socket_buffer.ts";
import { defaultValues } from "../config/keys.ts";
import { SINKS } from "../config/registry.ts";

const DEFAULT_PORT = 8080;
const DEFAULT_LOG_FILE = "aggregated_logs.txt";
const FSYNC_MODES: readonly FsyncMode[] = ["never", "interval", "batch"];
/** The flags of the file sink, which `-nats` replaces. */
const FILE_SINK_FLAGS = ["logFile", "fsync", ...Object.keys(FILE_FLAGS)];

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
  ...FILE_FLAGS,
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
    help: "Bound of the queue in front of the file (with -nats, of the lines JetStream has not " +
      "acknowledged; default there 16MiB); when full, TCP pushes back on senders",
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
  syslog: {
    type: "string",
    value: "ADDR:PORT",
    help: "Listen for syslog over TCP (octet counting or LF, per frame) and UDP at this address, " +
      "e.g. 0.0.0.0:514; TLS is set in a config file",
  },
  udp: {
    type: "string",
    value: "ADDR:PORT",
    help: "Listen for raw lines over UDP, one or more per datagram, e.g. 0.0.0.0:5140",
  },
  udpReceiveBuffer: {
    type: "string",
    value: "BYTES",
    help: "Receive buffer of the -udp and -syslog UDP sockets, e.g. 8MiB (as ss -m shows it); " +
      "needs --allow-ffi, capped by net.core.rmem_max unless root; default the system's",
  },
  nats: {
    type: "string",
    value: "URL[,URL...]",
    help: "Publish to a NATS JetStream stream on these servers instead of the log file " +
      "(storage workers, logboom store, write the files)",
  },
  natsStream: {
    type: "string",
    value: "NAME",
    default: "LOGBOOM",
    help: "JetStream stream of -nats, created when missing (3 replicas)",
  },
  ...HTTP_FLAGS,
  ...NET_FLAGS,
  ...WATCH_FLAGS,
  config: {
    type: "string",
    value: "FILE",
    help: "Run the server a YAML or JSON file describes (inputs, sinks, HTTP API, storage) " +
      "instead of these flags, which it cannot be mixed with; see docs/config-reference.md",
  },
};

/** How `serve` is called, for its usage text. */
export const SERVE_SYNOPSIS = "logboom [serve] [flags]";

/** The settings of a running aggregator. */
export interface ServeConfig extends FileSettings {
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
  /** Folder of logboom's own state; default `.logboom` beside the log files. */
  stateDir?: string;
  /** The HTTP API: address, token, limits. */
  http: HttpSettings;
  /** The connection cap and idle timeout of both listeners. */
  net: NetSettings;
  /** Local files followed as an input (`-watch`). Default none. */
  watch?: string[];
  /** Syslog over TCP and UDP at this address (`-syslog`). Default none. */
  syslog?: HostPort;
  /** Raw lines over UDP at this address (`-udp`). Default none. */
  udp?: HostPort;
  /** Receive buffer of the UDP sockets (`-udpReceiveBuffer`). Default the system's. */
  udpReceiveBuffer?: number;
  /** NATS servers to publish to instead of the file (`-nats`). Default none. */
  nats?: string[];
  /** The JetStream stream of `nats`. */
  natsStream?: string;
  /** `-queueBytes` when given, for the nats sink (whose default differs from the file's). */
  natsQueueBytes?: number;
}

/** What {@linkcode parseServeArgs} makes of a command line. */
export interface ParsedServeArgs {
  /** The settings to run with, from the flags (their defaults under `-config`). */
  config: ServeConfig;
  /** The config file to run from instead (`-config`), when given. */
  configFile?: string;
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
  const configFile = values.config as string | undefined;
  if (configFile !== undefined) return withConfigFile(args, configFile, help);
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
    stateDir: ifGiven(values.stateDir, (v) => v || undefined),
    ...parseFileFlags(values),
    logLevel: parseChoice("logLevel", values.logLevel as string, { choices: LOG_LEVELS }),
    http: parseHttpFlags(values),
    net: parseNetFlags(values),
    watch,
    syslog: ifGiven(values.syslog, (v) => parseAddressFlag("syslog", v)),
    udp: ifGiven(values.udp, (v) => parseAddressFlag("udp", v)),
    udpReceiveBuffer: ifGiven(values.udpReceiveBuffer, parseReceiveBufferFlag),
    nats: ifGiven(values.nats, (v) => parseListFlag("nats", v)),
    natsStream: values.natsStream as string,
  };
  if (args.some((a) => /^--?queueBytes(=|$)/.test(a))) config.natsQueueBytes = config.queueBytes;
  if (config.nats !== undefined) {
    const fileFlags = FILE_SINK_FLAGS.filter((flag) =>
      args.some((a) => new RegExp(`^--?${flag}(=|$)`).test(a))
    );
    if (fileFlags.length > 0) {
      warnings.push(
        `-nats replaces the log file: ${fileFlags.map((f) => `-${f}`).join(", ")} not used ` +
          "(give them to logboom store, which writes the files)",
      );
    }
  }
  if (config.udpReceiveBuffer !== undefined && !config.udp && !config.syslog) {
    throw new FlagError(`Flag "-udpReceiveBuffer" is for the sockets of -udp and -syslog`);
  }
  return { config, warnings, help };
}

function parseListFlag(flag: string, value: string): string[] {
  const items = value.split(",").map((v) => v.trim()).filter((v) => v !== "");
  if (items.length === 0) throw new FlagError(`Flag "-${flag}" needs at least one URL`);
  return items;
}

function parseReceiveBufferFlag(value: string): number {
  const bytes = parseBytes("udpReceiveBuffer", value);
  if (bytes < MIN_RECEIVE_BUFFER || bytes > MAX_RECEIVE_BUFFER) {
    throw new FlagError(`Flag "-udpReceiveBuffer" takes a size from 4KiB to 1GiB, got "${value}"`);
  }
  return bytes;
}

function parseAddressFlag(flag: string, value: string): HostPort {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new FlagError(`Flag "-${flag}" takes ADDR:PORT such as 0.0.0.0:514: ${describe(err)}`);
  }
}

/**
 * `-config FILE` alone: every other flag is refused, naming the key it would be in the file, so
 * nobody runs a file believing a flag changed it.
 */
function withConfigFile(args: readonly string[], file: string, help: boolean): ParsedServeArgs {
  if (file.trim() === "") throw new FlagError(`Flag "-config" needs a file`);
  const bare = Object.fromEntries(
    Object.entries(SERVE_FLAGS).map(([name, spec]) => [name, { ...spec, default: undefined }]),
  );
  const { values, positionals } = parseFlags(args, bare);
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  const other = Object.keys(values).find((name) => name !== "config");
  if (other !== undefined) {
    const keys = flagKeys().get(other) ?? [];
    const where = keys.length > 0 ? ` (in the file: ${keys.join(", ")})` : "";
    throw new FlagError(
      `Flag "-${other}" cannot be used with -config: the file holds the whole configuration${where}`,
    );
  }
  return { config: parseServeArgs([]).config, configFile: file, warnings: [], help };
}

/** The {@linkcode ServerConfig} the flags describe: the same object a config file would give. */
export function serverConfigFromFlags(flags: ServeConfig): ServerConfig {
  const config: ServerConfig = {
    log_level: flags.logLevel,
    storage: { state_dir: flags.stateDir },
    http: {
      address: flags.http.address,
      token: flags.http.token,
      max_body: flags.http.maxBody,
      max_line: flags.maxLine,
      allow_origin: flags.http.allowedOrigins,
      header_timeout: flags.http.headerTimeoutMs,
      body_timeout: flags.http.bodyTimeoutMs,
    },
    net: { max_connections: flags.net.maxConnections, idle_timeout: flags.net.idleTimeoutMs },
    inputs: {
      tcp: {
        type: "tcp",
        address: { hostname: flags.host, port: flags.port },
        max_line: flags.maxLine,
        source: "tcp",
      },
    },
    sinks: {
      file: {
        type: "file",
        path: flags.logFile,
        format: flags.format,
        fsync: flags.fsync,
        queue_bytes: flags.queueBytes,
        rotate_size: flags.rotateBytes,
        rotate_every: flags.rotateEveryMs,
        compress: flags.compress,
        keep: flags.keep,
        max_age: flags.maxAgeMs,
        max_open_files: flags.maxOpenFiles,
      },
    },
  };
  if (flags.watch?.length) {
    config.inputs.watch = { type: "watch", paths: flags.watch, max_line: flags.maxLine };
  }
  if (flags.syslog !== undefined) {
    config.inputs.syslog = {
      type: "syslog",
      tcp: flags.syslog,
      udp: flags.syslog,
      max_message: 64 * 1024,
      parse: "auto",
      time_zone: "UTC",
      udp_receive_buffer: flags.udpReceiveBuffer,
    };
  }
  if (flags.udp !== undefined) {
    config.inputs.udp = {
      type: "udp",
      address: flags.udp,
      max_line: 64 * 1024,
      receive_buffer: flags.udpReceiveBuffer,
    };
  }
  if (flags.nats !== undefined) {
    // JetStream takes the file's place: storage workers (logboom store) write the files.
    delete config.sinks.file;
    config.sinks.nats = {
      ...defaultValues(SINKS.nats.keys),
      type: "nats",
      servers: flags.nats,
      stream: flags.natsStream ?? "LOGBOOM",
    };
    // -queueBytes bounds the nats sink's queue only when given: its default is the sink's own.
    if (flags.natsQueueBytes !== undefined) config.sinks.nats.queue_bytes = flags.natsQueueBytes;
  }
  if (flags.http.address !== undefined) {
    config.sinks.live = {
      type: "live",
      max_subscribers: flags.http.maxSubscribers,
      tail_rate: flags.http.tailRate === Infinity ? 0 : flags.http.tailRate,
    };
  }
  return config;
}

/** How long shutdown may take before the process gives up on what it could not write. */
const SHUTDOWN_DEADLINE_MS = 4500;

const log = getLogger(["logboom", "serve"]);

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Each {@linkcode HANGUP} event (SIGHUP) reopens the log files, from open to close. */
  hangups?: EventTarget;
  /** Whether `config` came from flags, so messages name flags rather than keys. Default false. */
  fromFlags?: boolean;
  /**
   * The config file `config` was read from: it is watched, and read again on each change and
   * on SIGHUP, and what changed is applied while running (see {@linkcode Pipeline.reload}).
   */
  configFile?: string;
}

/**
 * Runs the aggregator until `signal` aborts. Resolves with the exit code: 0 after a clean stop,
 * 1 when a startup problem stopped it or data could not be written before the deadline.
 */
export async function serve(
  config: ServerConfig,
  signal: AbortSignal,
  options: ServeOptions = {},
): Promise<number> {
  let pipeline: Pipeline;
  try {
    pipeline = await Pipeline.start(config, { fromFlags: options.fromFlags });
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    log.error(err.template, err.properties);
    return 1;
  }
  // logrotate's postrotate sends SIGHUP: every file is reopened before its next write, also
  // during the drain at shutdown.
  options.hangups?.addEventListener(HANGUP, () => pipeline.reopen());
  const stopWatching = new AbortController();
  const { configFile } = options;
  const watching = configFile === undefined
    ? undefined
    : watchConfig(configFile, (why) => void reloadFrom(configFile, pipeline, why), {
      signal: stopWatching.signal,
    });
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  stopWatching.abort();
  await watching;
  log.info("Stopping: storing what was received");
  const deadline = AbortSignal.timeout(SHUTDOWN_DEADLINE_MS);
  const stopped = pipeline.close({ signal: deadline });
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

/**
 * Reads the config file again and applies it: what changed is rebuilt, the rest keeps running;
 * a config that is invalid or cannot be applied while running is refused with the reason, and
 * the running one stays. Never throws.
 */
async function reloadFrom(file: string, pipeline: Pipeline, why: string): Promise<void> {
  let next: ServerConfig;
  try {
    next = await loadServerConfig(file);
  } catch (err) {
    log.error("Config reload ({why}) refused, the running config stays: {reason}", {
      why,
      reason: describe(err),
    });
    return;
  }
  if (next.http.token === "") next.http.token = tokenFromEnv();
  try {
    const done = await pipeline.reload(next);
    if (done.logLevel) setupLogging(next.log_level);
    const names = (list: string[]) => list.join(", ") || "none";
    log.info(
      "Config reloaded ({why}): inputs added {added}; removed {removed}; updated in place " +
        "{updated}; rebuilt {rebuilt}. Sinks added {sinksAdded}; removed {sinksRemoved}; " +
        "rebuilt {sinksRebuilt}. Applied in place: http {http}; net {net}",
      {
        why,
        added: names(done.added),
        removed: names(done.removed),
        updated: names(done.updated),
        rebuilt: names(done.rebuilt),
        sinksAdded: names(done.sinks.added),
        sinksRemoved: names(done.sinks.removed),
        sinksRebuilt: names(done.sinks.rebuilt),
        http: names(done.http),
        net: names(done.net),
      },
    );
  } catch (err) {
    if (!(err instanceof ReloadRefused)) {
      log.error("Config reload ({why}) failed: {error}", { why, error: describe(err) });
      return;
    }
    log.error("Config reload ({why}) refused, the running config stays: {reason}", {
      why,
      reason: err.message,
    });
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
  let config: ServerConfig;
  if (parsed.configFile === undefined) config = serverConfigFromFlags(parsed.config);
  else {
    try {
      config = await loadServerConfig(parsed.configFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(err.message);
      return 2;
    }
  }
  if (config.http.token === "") config.http.token = tokenFromEnv();
  setupLogging(config.log_level);
  const { hangups, options } = hangupEvents();
  const fromFlags = parsed.configFile === undefined;
  return await untilStopped((signal) => {
    // From here on SIGHUP is handled: it never ends the process.
    log.debug("Starting logboom {version}, pid {pid}", { version: VERSION, pid: Deno.pid });
    return serve(config, signal, { hangups, fromFlags, configFile: parsed.configFile });
  }, options);
}
