/**
 * `logboom store`: a storage worker. Reads the JetStream stream the ingest nodes publish to
 * (`serve -nats`) with one durable pull consumer per owned partition, writes each message to the
 * file sink (same templates, rotation, compression and retention as `serve`) and/or PostgreSQL,
 * and acknowledges it to JetStream only once stored (see `nats/store_worker.ts` for exactly once).
 *
 * `-config FILE` reads the same settings from a YAML or JSON object whose keys are the flags'
 * names (`nats`, `logFile`, `partition`, ...), lists allowed where a flag takes commas.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { parse as parseYaml } from "yaml";
import { describe } from "../_util.ts";
import { pgSinkMetrics, renderSinks, type SinkMetrics } from "../api/metrics.ts";
import { LOG_LEVELS, type LogLevelName, setupLogging } from "../logging.ts";
import { StoreWorker } from "../nats/store_worker.ts";
import { connectNats } from "../nats/connection.ts";
import { PgSink } from "../pg/sink.ts";
import { notReadyLines } from "../pipeline/sink.ts";
import { PROMETHEUS_CONTENT_TYPE, PrometheusWriter } from "../prometheus.ts";
import { FileSink } from "../store/file_sink.ts";
import type { FsyncMode } from "../store/file_writer.ts";
import { defaultStateDir } from "../store/state_dir.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { type HostPort, parseHostPort } from "../units.ts";
import { untilStopped } from "./_stop.ts";
import { FILE_FLAGS, type FileSettings, parseFileFlags } from "./file_flags.ts";
import {
  FlagError,
  type FlagSpecs,
  ifGiven,
  parseBytes,
  parseChoice,
  parseCommand,
  parseCount,
  parseDurationFlag,
  parseFlags,
} from "./flags.ts";

const log = getLogger(["logboom", "store"]);

/** The flags of `store`. */
export const STORE_FLAGS: FlagSpecs = {
  nats: { type: "string", value: "URL[,URL...]", help: "NATS servers of the cluster (required)" },
  natsStream: {
    type: "string",
    value: "NAME",
    default: "LOGBOOM",
    help: "JetStream stream the ingest nodes publish to",
  },
  natsSubject: {
    type: "string",
    value: "SUBJECT",
    default: "logboom",
    help: "Subject prefix of the stream (the nats sink's subject)",
  },
  partitions: {
    type: "string",
    value: "N",
    default: "1",
    help: "Subject partitions the ingest nodes use (the nats sink's partitions)",
  },
  partition: {
    type: "string",
    value: "LIST",
    default: "all",
    help: "Partitions this worker owns, e.g. 0,2; each partition must have exactly one worker",
  },
  durable: {
    type: "string",
    value: "NAME",
    default: "logboom-store",
    help: "Prefix of the durable consumers' names (NAME-p<partition>)",
  },
  ackWait: {
    type: "string",
    value: "DURATION",
    default: "30s",
    help: "How long JetStream waits for an ack before it delivers a message again (when the " +
      "consumer is created): how soon a restarted worker gets what it had not acked",
  },
  logFile: {
    type: "string",
    value: "PATH",
    help: "File or template the lines are appended to, as serve's -logFile; give each worker " +
      "its own folder",
  },
  fsync: {
    type: "string",
    value: "MODE",
    default: "batch",
    help: "batch (before each ack to JetStream: nothing acked is lost on power loss), " +
      "interval or never",
  },
  ...FILE_FLAGS,
  queueBytes: {
    type: "string",
    value: "BYTES",
    default: "64MiB",
    help: "Bound of the queue in front of the files",
  },
  stateDir: {
    type: "string",
    value: "DIR",
    help: "Folder of the worker's journal of stored messages; default .logboom beside the files",
  },
  postgres: {
    type: "string",
    value: "URL",
    help: "Also (or only) store in PostgreSQL, e.g. postgres://logboom@db/logs",
  },
  pgTable: { type: "string", value: "NAME", default: "logs", help: "PostgreSQL table" },
  pgMaxAge: {
    type: "string",
    value: "DURATION",
    help: "Drop PostgreSQL day partitions older than this, e.g. 30d",
  },
  http: {
    type: "string",
    value: "ADDR:PORT",
    default: "off",
    help: "Serve /metrics, /healthz and /readyz here, e.g. 127.0.0.1:9101",
  },
  logLevel: {
    type: "string",
    value: "LEVEL",
    default: "info",
    help: "Level of logboom's own logs: debug, info, warn or error",
  },
  config: {
    type: "string",
    value: "FILE",
    help: "Read these settings from a YAML or JSON file whose keys are the flags' names",
  },
};

/** How `store` is called. */
export const STORE_SYNOPSIS =
  "logboom store -nats URLS [-logFile TEMPLATE] [-postgres URL] [flags]";

/** The settings of a storage worker. */
export interface StoreConfig extends FileSettings {
  servers: string[];
  stream: string;
  subject: string;
  partitions: number;
  owned: number[];
  durable: string;
  ackWaitMs: number;
  logFile?: string;
  fsync: FsyncMode;
  queueBytes: number;
  stateDir?: string;
  postgres?: string;
  pgTable: string;
  pgMaxAgeMs?: number;
  http?: HostPort;
  logLevel: LogLevelName;
}

/** What {@linkcode parseStoreArgs} makes of a command line. */
export interface ParsedStoreArgs {
  config: StoreConfig;
  configFile?: string;
  help: boolean;
}

/** Turns `store`'s flags into settings; throws {@linkcode FlagError} on a bad value. */
export function parseStoreArgs(args: readonly string[]): ParsedStoreArgs {
  const { values, positionals, help } = parseFlags(args, STORE_FLAGS);
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  const configFile = values.config as string | undefined;
  if (configFile !== undefined) {
    if (args.length > 2) throw new FlagError(`Flag "-config" cannot be mixed with other flags`);
    return { config: undefined as unknown as StoreConfig, configFile, help };
  }
  if (help) return { config: undefined as unknown as StoreConfig, help };
  const str = (name: string) => values[name] as string | undefined;
  const nats = str("nats");
  if (nats === undefined || nats.trim() === "") {
    throw new FlagError(`Flag "-nats" is required: the NATS servers, e.g. nats://10.0.0.1:4222`);
  }
  const partitions = parseCount("partitions", str("partitions")!, { min: 1 });
  const owned = parseOwned(str("partition")!, partitions);
  const logFile = str("logFile");
  const postgres = str("postgres");
  if (logFile === undefined && postgres === undefined) {
    throw new FlagError(`Needs -logFile, -postgres or both: where the lines are stored`);
  }
  if (logFile === "") throw new FlagError(`Flag "-logFile" needs a path`);
  const httpValue = str("http")!;
  const config: StoreConfig = {
    servers: nats.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) =>
      s.includes("://") ? s : `nats://${s}`
    ),
    stream: str("natsStream")!,
    subject: str("natsSubject")!,
    partitions,
    owned,
    durable: str("durable")!,
    ackWaitMs: parseDurationFlag("ackWait", str("ackWait")!),
    logFile,
    fsync: parseChoice("fsync", str("fsync")!, {
      choices: ["never", "interval", "batch"],
    }) as FsyncMode,
    ...parseFileFlags(values),
    queueBytes: parseBytes("queueBytes", str("queueBytes")!),
    stateDir: ifGiven(str("stateDir"), (v) => v || undefined),
    postgres,
    pgTable: str("pgTable")!,
    pgMaxAgeMs: ifGiven(str("pgMaxAge"), (v) => parseDurationFlag("pgMaxAge", v)),
    http: httpValue === "off" ? undefined : address("http", httpValue),
    logLevel: parseChoice("logLevel", str("logLevel")!, { choices: LOG_LEVELS }) as LogLevelName,
  };
  return { config, help };
}

function address(flag: string, value: string): HostPort {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new FlagError(`Flag "-${flag}" takes ADDR:PORT: ${describe(err)}`);
  }
}

/** `all` or a comma list of partitions below `partitions`. */
function parseOwned(value: string, partitions: number): number[] {
  if (value === "all") return Array.from({ length: partitions }, (_, i) => i);
  const owned = value.split(",").map((v) => v.trim());
  const out: number[] = [];
  for (const item of owned) {
    const p = /^\d+$/.test(item) ? Number(item) : NaN;
    if (!(p >= 0 && p < partitions)) {
      throw new FlagError(
        `Flag "-partition" takes "all" or partitions from 0 to ${partitions - 1}, got "${item}"`,
      );
    }
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** A config file's object as flags: `{ logFile: "x", compress: true }` -> `-logFile x -compress`. */
export function flagsFromObject(object: unknown): string[] {
  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    throw new FlagError("A store config file holds an object of flag names and values");
  }
  const args: string[] = [];
  for (const [key, value] of Object.entries(object)) {
    if (key === "config" || !Object.hasOwn(STORE_FLAGS, key)) {
      throw new FlagError(`Unknown key "${key}" in the store config file`);
    }
    if (STORE_FLAGS[key].type === "bool") {
      if (value === true) args.push(`-${key}`);
      continue;
    }
    const text = Array.isArray(value) ? value.join(",") : String(value);
    args.push(`-${key}`, text);
  }
  return args;
}

/** The `store` command. */
export async function runStore(args: readonly string[]): Promise<number> {
  let parsed = parseCommand(args, parseStoreArgs, { synopsis: STORE_SYNOPSIS, specs: STORE_FLAGS });
  if (typeof parsed === "number") return parsed;
  if (parsed.configFile !== undefined) {
    let fileArgs: string[];
    try {
      const text = await Deno.readTextFile(parsed.configFile);
      fileArgs = flagsFromObject(parseYaml(text));
    } catch (err) {
      console.error(`Cannot read the store config ${parsed.configFile}: ${describe(err)}`);
      return 2;
    }
    parsed = parseCommand(fileArgs, parseStoreArgs, {
      synopsis: STORE_SYNOPSIS,
      specs: STORE_FLAGS,
    });
    if (typeof parsed === "number") return parsed;
  }
  const config = parsed.config;
  setupLogging(config.logLevel);
  return await untilStopped((signal) => store(config, signal), { onHangup: () => {} });
}

/** Runs a storage worker until `signal` aborts; resolves with the exit code. */
export async function store(config: StoreConfig, signal: AbortSignal): Promise<number> {
  const opened: { close(): Promise<void> }[] = [];
  const closeAll = async () => {
    for (const o of opened.reverse()) await o.close().catch(() => {});
  };
  let marks: StreamMarks | undefined;
  let files: FileSink | undefined;
  let pg: PgSink | undefined;
  let worker: StoreWorker;
  try {
    if (config.logFile !== undefined) {
      const dir = config.stateDir ?? defaultStateDir(config.logFile);
      // Before a file is opened: settling the messages under way at a crash may cut one back.
      marks = await StreamMarks.open(dir, { sync: config.fsync === "batch", maxStreams: 100_000 });
      opened.push(marks);
      if (!marks.durable) {
        throw new Error(`the journal in ${dir} needs read permission (--allow-read)`);
      }
      const { stored, dropped, cut } = marks.recovery;
      if (stored + dropped > 0) {
        log.info(
          "Messages under way at the last stop: {stored} stored, {dropped} not ({cut} files cut back)",
          {
            stored,
            dropped,
            cut,
          },
        );
      }
      files = await FileSink.open({
        marks,
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
        index: { stateDir: dir },
      });
      opened.push(files);
    }
    if (config.postgres !== undefined) {
      pg = new PgSink({
        url: config.postgres,
        table: config.pgTable,
        maxAgeMs: config.pgMaxAgeMs,
        queueBytes: config.queueBytes,
      });
      opened.push(pg);
    }
    const nc = await connectNats(config.servers, "logboom store");
    opened.push({ close: () => nc.close() });
    worker = new StoreWorker({
      nc,
      stream: config.stream,
      subject: config.subject,
      partitions: config.owned,
      durable: config.durable,
      ackWaitMs: config.ackWaitMs,
      files,
      marks,
      pg,
    });
    worker.start();
  } catch (err) {
    log.error("Cannot start the storage worker: {error}", { error: describe(err) });
    await closeAll();
    return 1;
  }
  const server = config.http === undefined
    ? undefined
    : serveStatus(config.http, worker, files, pg);
  log.info("Storing stream {stream} partitions {partitions} to {outputs}", {
    stream: config.stream,
    partitions: config.owned.join(","),
    outputs: [config.logFile, pg?.where].filter((o) => o !== undefined).join(" and "),
  });
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  log.info("Stopping: storing and acknowledging what was received");
  await worker.close();
  await server?.shutdown();
  let code = 0;
  try {
    await files?.close({ signal: AbortSignal.timeout(4500) });
    await pg?.close({ signal: AbortSignal.timeout(4500) });
    opened.splice(0, opened.length, ...opened.filter((o) => o !== files && o !== pg));
  } catch (err) {
    log.error("Stopped before storing everything: {error}", { error: describe(err) });
    code = 1;
  }
  await closeAll();
  log.info("Stopped");
  return code;
}

/** `/metrics`, `/healthz` and `/readyz` of a worker. */
function serveStatus(
  at: HostPort,
  worker: StoreWorker,
  files: FileSink | undefined,
  pg: PgSink | undefined,
): Deno.HttpServer {
  return Deno.serve({ hostname: at.hostname, port: at.port, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return new Response("ok\n");
    if (path === "/readyz") {
      const problems = [...worker.problems(), ...files?.problems() ?? [], ...pg?.problems() ?? []];
      if (problems.length === 0) return new Response("ready\n");
      return new Response(notReadyLines(problems).join(""), { status: 503 });
    }
    if (path !== "/metrics") return new Response("not found\n", { status: 404 });
    const out = new PrometheusWriter();
    const s = worker.stats;
    out.family("logboom_store_messages_total", "counter", "Stream messages stored and acked.");
    out.sample({}, s.messages);
    out.family("logboom_store_lines_total", "counter", "Lines stored.");
    out.sample({}, s.lines);
    out.family(
      "logboom_store_redelivered_total",
      "counter",
      "Messages delivered again, found stored.",
    );
    out.sample({}, s.redelivered);
    out.family("logboom_store_bad_messages_total", "counter", "Messages that are not batches.");
    out.sample({}, s.bad);
    out.family("logboom_store_latency_seconds", "histogram", "From publish to stored and acked.");
    out.histogram({}, s.storeSeconds);
    // The worker's lag, then its file and PostgreSQL sinks': queues, write times, errors.
    const sinks: SinkMetrics[] = [{ name: "store", linesWritten: s.lines, consumerLag: s.lag }];
    if (files !== undefined) sinks.push({ ...files.stats, name: "file" });
    if (pg !== undefined) sinks.push(pgSinkMetrics("postgres", pg.stats));
    renderSinks(out, sinks);
    return new Response(out.text(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
  });
}
