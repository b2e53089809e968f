/**
 * The agent's configuration: a YAML or JSON file, checked whole before it is used, so a bad value
 * is one clear line naming its key, at startup (exit 2) and on reload (the running config stays).
 *
 * ```yaml
 * servers: ["http://10.0.0.5:8081", "http://10.0.0.6:8081"]   # failover order
 * token: "..."                                                # or env LOGBOOM_TOKEN
 * state_dir: /var/lib/logboom-agent
 * inputs:
 *   - source: nginx
 *     paths: ["/var/log/nginx/*.log"]
 *     exclude: ["*.gz"]
 *     start_at: end
 *     multiline: { start: '^\d{4}-\d{2}-\d{2} ' }
 * batch: { max_bytes: 1048576, max_wait: 200ms }
 * ```
 *
 * @module
 */

import { compileLinearRegex, type LinearRegex } from "../text/linear_regex.ts";
import type { MultilineConfig } from "../files/multiline.ts";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { describe } from "../_util.ts";
import { type HostPort, parseDuration, parseHostPort, parseSize } from "../units.ts";
import { compileExclude, compileGlob } from "../files/glob.ts";

/** A configuration that cannot be used: {@linkcode ConfigError.key} names what is wrong. */
export class ConfigError extends Error {
  /** The key at fault, as a path such as `inputs[0].paths`; `""` for the file as a whole. */
  readonly key: string;

  /**
   * @param key the key at fault.
   * @param problem what is wrong with it, in a few words.
   */
  constructor(key: string, problem: string, options?: ErrorOptions) {
    super(key === "" ? problem : `${key}: ${problem}`, options);
    this.name = "ConfigError";
    this.key = key;
  }
}

/** One input: a set of files shipped under one source. */
export interface InputConfig {
  /** Unique name, the key of its checkpoints. Default: the source. */
  name: string;
  /** The source the server files the lines under. */
  source: string;
  /** Globs of the files to follow, absolute. */
  paths: string[];
  /** Globs of files to leave out: a bare name pattern (`*.gz`) matches file names. */
  exclude: string[];
  /** Where files found at the input's very first scan are read from. Default `beginning`. */
  startAt: "beginning" | "end";
  /** Joining of multi-line events, when set. */
  multiline?: MultilineConfig;
  /** Bytes read and not yet acknowledged, over all files of the input. Default 8 MiB. */
  maxBytes: number;
}

/** Retries, timeouts and failover. */
export interface RetryConfig {
  /** First delay after a failure, in ms. Default 100. */
  initialMs: number;
  /** Longest delay between tries, in ms. Default 10,000. */
  maxMs: number;
  /** A request without an answer after this long fails, in ms. Default 30,000. */
  timeoutMs: number;
  /** Consecutive failures after which the next server is tried. Default 2. */
  failoverAfter: number;
  /** A server given up is tried again after this long, in ms. Default 30,000. */
  failbackMs: number;
  /**
   * A batch whose request got no answer (it may have been stored) is retried on the same server
   * this long before it goes to the next, in ms. Default 30,000.
   */
  resendWindowMs: number;
}

/** The agent's whole configuration, checked and with defaults filled in. */
export interface AgentConfig {
  /** The file it was read from, absolute. */
  path: string;
  /** The agent's id; default: made up at the first start and kept in the state folder. */
  id?: string;
  /** Server base URLs, in failover order. */
  servers: string[];
  /** Bearer token; `undefined` means env `LOGBOOM_TOKEN`. */
  token?: string;
  /** Folder of the checkpoints, absolute. */
  stateDir: string;
  /** The inputs, with unique names. */
  inputs: InputConfig[];
  /**
   * Batches: uncompressed size, longest wait, and how many of one file's batches are in flight
   * at once (1 to 8, default 2: the next is sent while the server stores the one before).
   */
  batch: { maxBytes: number; maxWaitMs: number; inFlight: number };
  /**
   * gzip level, 1 (fastest) to 9, 0 for none, or `"auto"` (the default): level 1 unless every
   * server is on loopback, where there is no network to save.
   */
  compressionLevel: number | "auto";
  /** Retries and failover. */
  retry: RetryConfig;
  /** Globs are listed this often (file events pick changes up sooner), in ms. Default 1000. */
  scanIntervalMs: number;
  /** A rotated file is let go once read, shipped and quiet this long, in ms. Default 5000. */
  rotateWaitMs: number;
  /** Rotated files held open with unshipped lines, per input, before the oldest is given up. Default 16. */
  maxRotatedOpen: number;
  /** A file that has not changed for this long is closed until it changes, in ms. Default 300,000. */
  closeIdleMs: number;
  /** Checkpoints of files gone for this long are forgotten, in ms. Default 24 h. */
  forgetAfterMs: number;
  /** The agent reports to the server this often, in ms. Default 5000. */
  reportIntervalMs: number;
  /** Where the agent serves Prometheus `/metrics`, when set. */
  metrics?: HostPort;
  /** Longer lines are split into pieces of this many bytes. Default 1 MiB. */
  maxLine: number;
}

const MiB = 1024 * 1024;

const TOP_KEYS = new Set([
  "id",
  "servers",
  "token",
  "state_dir",
  "inputs",
  "batch",
  "compression_level",
  "retry",
  "scan_interval",
  "rotate_wait",
  "max_rotated_open",
  "close_idle",
  "forget_after",
  "report_interval",
  "metrics",
  "max_line",
]);
const INPUT_KEYS = new Set([
  "name",
  "source",
  "paths",
  "exclude",
  "start_at",
  "multiline",
  "max_bytes",
]);
const MULTILINE_KEYS = new Set(["start", "join", "max_lines", "max_bytes", "timeout"]);
const BATCH_KEYS = new Set(["max_bytes", "max_wait", "in_flight"]);
const RETRY_KEYS = new Set([
  "initial",
  "max",
  "timeout",
  "failover_after",
  "failback_after",
  "resend_window",
]);

/**
 * Checks a parsed configuration document and fills in defaults. Relative paths are taken from
 * `path`'s folder.
 *
 * @throws {ConfigError} naming the first key that is wrong.
 */
export function checkAgentConfig(doc: unknown, path: string): AgentConfig {
  const problems: ConfigError[] = [];
  const config = checkInto(doc, path, problems);
  if (problems.length > 0 || config === undefined) throw problems[0];
  return config;
}

/**
 * Every problem of a parsed configuration document, each at its key (`inputs[0].paths`), in the
 * order of the document's checks; none for a config {@linkcode checkAgentConfig} accepts.
 *
 * @example
 * ```ts
 * agentConfigProblems({ servers: [], inputs: [{}] }, "agent.json").map((p) => p.key);
 * // ["servers", "state_dir", "inputs[0].source", "inputs[0].paths"]
 * ```
 */
export function agentConfigProblems(doc: unknown, path: string): ConfigError[] {
  const problems: ConfigError[] = [];
  checkInto(doc, path, problems);
  return problems;
}

/** What a check of one key gives: its value, or `fallback` once its problem is noted. */
type Take = <T>(fallback: T, check: () => T) => T;

function checkInto(doc: unknown, path: string, problems: ConfigError[]): AgentConfig | undefined {
  const take: Take = (fallback, check) => {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err);
      return fallback;
    }
  };
  const base = dirname(resolve(path));
  const top = take(undefined, () => object(doc, ""));
  if (top === undefined) return undefined;
  onlyKeys(top, TOP_KEYS, "", problems);
  const serverList = take(undefined, () => list(top.servers, "servers"));
  const servers = (serverList ?? []).flatMap((value, i) =>
    take([], () => [serverUrl(value, `servers[${i}]`)])
  );
  if (serverList !== undefined && serverList.length === 0) {
    problems.push(new ConfigError("servers", "needs at least one server URL"));
  }
  const maxLine = take(MiB, () => size(top.max_line, "max_line", MiB));
  const inputs = take([], () => list(top.inputs ?? [], "inputs")).flatMap((value, i) =>
    take([], () => [input(value, `inputs[${i}]`, base, maxLine, take)])
  );
  const names = new Set<string>();
  inputs.forEach((inp, i) => {
    if (names.has(inp.name)) {
      problems.push(
        new ConfigError(`inputs[${i}].name`, `"${inp.name}" is used by another input`),
      );
    }
    names.add(inp.name);
  });
  const batch = take({}, () => object(top.batch ?? {}, "batch"));
  onlyKeys(batch, BATCH_KEYS, "batch", problems);
  const retry = take({}, () => object(top.retry ?? {}, "retry"));
  onlyKeys(retry, RETRY_KEYS, "retry", problems);
  const config: AgentConfig = {
    path: resolve(path),
    id: top.id === undefined ? undefined : take(undefined, () => streamSafe(top.id, "id")),
    servers,
    token: top.token === undefined ? undefined : take(undefined, () => string(top.token, "token")),
    stateDir: resolve(base, take("", () => nonEmpty(top.state_dir, "state_dir"))),
    inputs,
    batch: {
      maxBytes: take(MiB, () => size(batch.max_bytes, "batch.max_bytes", MiB, 1024, 64 * MiB)),
      maxWaitMs: take(200, () => duration(batch.max_wait, "batch.max_wait", 200)),
      inFlight: take(2, () => integer(batch.in_flight, "batch.in_flight", 2, 1, 8)),
    },
    compressionLevel: top.compression_level === undefined || top.compression_level === "auto"
      ? "auto"
      : take(1, () => integer(top.compression_level, "compression_level", 1, 0, 9)),
    retry: {
      initialMs: take(100, () => duration(retry.initial, "retry.initial", 100, 1)),
      maxMs: take(10_000, () => duration(retry.max, "retry.max", 10_000, 1)),
      timeoutMs: take(30_000, () => duration(retry.timeout, "retry.timeout", 30_000, 1)),
      failoverAfter: take(
        2,
        () => integer(retry.failover_after, "retry.failover_after", 2, 1, 1000),
      ),
      failbackMs: take(
        30_000,
        () => duration(retry.failback_after, "retry.failback_after", 30_000),
      ),
      resendWindowMs: take(
        30_000,
        () => duration(retry.resend_window, "retry.resend_window", 30_000),
      ),
    },
    scanIntervalMs: take(1000, () => duration(top.scan_interval, "scan_interval", 1000, 10)),
    rotateWaitMs: take(5000, () => duration(top.rotate_wait, "rotate_wait", 5000)),
    maxRotatedOpen: take(
      16,
      () => integer(top.max_rotated_open, "max_rotated_open", 16, 1, 100_000),
    ),
    closeIdleMs: take(300_000, () => duration(top.close_idle, "close_idle", 300_000, 10)),
    forgetAfterMs: take(
      24 * 3600_000,
      () => duration(top.forget_after, "forget_after", 24 * 3600_000, 1),
    ),
    reportIntervalMs: take(
      5000,
      () => duration(top.report_interval, "report_interval", 5000, 10),
    ),
    metrics: top.metrics === undefined
      ? undefined
      : take(undefined, () => hostPort(top.metrics, "metrics")),
    maxLine,
  };
  if (config.retry.maxMs < config.retry.initialMs) {
    problems.push(new ConfigError("retry.max", "must not be shorter than retry.initial"));
  }
  return config;
}

/**
 * Parses `text` as JSON when `path` ends in `.json`, as YAML otherwise, and checks it.
 *
 * @throws {ConfigError} when the text does not parse or a value is wrong.
 */
export function parseAgentConfig(text: string, path: string): AgentConfig {
  let doc: unknown;
  try {
    doc = path.toLowerCase().endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) {
      throw new ConfigError(
        "",
        "reading YAML needs --allow-env=LOG_TOKENS,LOG_STREAM (the yaml package reads these " +
          "two debug variables); or write the config as JSON",
      );
    }
    throw new ConfigError(
      "",
      `not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${describe(err).split("\n")[0]}`,
    );
  }
  return checkAgentConfig(doc, path);
}

/**
 * Reads and checks the config file at `path`.
 *
 * @throws {ConfigError} when it cannot be read, does not parse, or a value is wrong.
 */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError("", `cannot be read: ${describe(err)}`);
  }
  return parseAgentConfig(text, path);
}

/** What a reload changes: input names by what happens to them. */
export interface InputChanges {
  /** Inputs to start. */
  added: string[];
  /** Inputs to stop. */
  removed: string[];
  /** Inputs to stop and start again with their new settings. */
  changed: string[];
  /** Inputs that keep running untouched. */
  unchanged: string[];
}

/**
 * Compares two configurations input by input. An input changes when its own settings change or
 * when a setting every input reads does (batch size, line limit, file timings).
 */
export function diffInputs(before: AgentConfig, after: AgentConfig): InputChanges {
  const shared = (c: AgentConfig) =>
    JSON.stringify([
      c.batch,
      c.compressionLevel,
      c.maxLine,
      c.scanIntervalMs,
      c.rotateWaitMs,
      c.maxRotatedOpen,
      c.closeIdleMs,
      c.forgetAfterMs,
    ]);
  const sharedChanged = shared(before) !== shared(after);
  const old = new Map(before.inputs.map((i) => [i.name, inputKey(i)]));
  const changes: InputChanges = { added: [], removed: [], changed: [], unchanged: [] };
  for (const inp of after.inputs) {
    const previous = old.get(inp.name);
    if (previous === undefined) changes.added.push(inp.name);
    else if (sharedChanged || previous !== inputKey(inp)) changes.changed.push(inp.name);
    else changes.unchanged.push(inp.name);
    old.delete(inp.name);
  }
  changes.removed.push(...old.keys());
  return changes;
}

function inputKey(inp: InputConfig): string {
  return JSON.stringify({
    ...inp,
    multiline: inp.multiline && { ...inp.multiline, start: inp.multiline.start.source },
  });
}

function input(
  value: unknown,
  key: string,
  base: string,
  maxLine: number,
  take: Take,
): InputConfig {
  const doc = object(value, key);
  const problems: ConfigError[] = [];
  onlyKeys(doc, INPUT_KEYS, key, problems);
  for (const problem of problems) {
    take(undefined, () => {
      throw problem;
    });
  }
  const source = take("", () => streamSafe(doc.source, `${key}.source`));
  const pathList = take(undefined, () => list(doc.paths, `${key}.paths`));
  const paths = (pathList ?? []).flatMap((p, i) =>
    take([], () => [
      glob(resolve(base, nonEmpty(p, `${key}.paths[${i}]`)), `${key}.paths[${i}]`, compileGlob),
    ])
  );
  if (pathList !== undefined && pathList.length === 0) {
    take(undefined, () => {
      throw new ConfigError(`${key}.paths`, "needs at least one path or glob");
    });
  }
  const exclude = take([], () => list(doc.exclude ?? [], `${key}.exclude`)).flatMap((p, i) =>
    take([], () => [
      glob(nonEmpty(p, `${key}.exclude[${i}]`), `${key}.exclude[${i}]`, compileExclude),
    ])
  );
  const startAt = doc.start_at ?? "beginning";
  if (startAt !== "beginning" && startAt !== "end") {
    take(undefined, () => {
      throw new ConfigError(`${key}.start_at`, `must be beginning or end, got ${show(startAt)}`);
    });
  }
  let multiline: MultilineConfig | undefined;
  if (doc.multiline !== undefined && doc.multiline !== null) {
    multiline = take(undefined, () => multilineConfig(doc.multiline, `${key}.multiline`, maxLine));
  }
  return {
    name: doc.name === undefined ? source : take(source, () => streamSafe(doc.name, `${key}.name`)),
    source,
    paths,
    exclude,
    startAt: startAt === "end" ? "end" : "beginning",
    multiline,
    maxBytes: take(8 * MiB, () => size(doc.max_bytes, `${key}.max_bytes`, 8 * MiB, 1024)),
  };
}

function multilineConfig(value: unknown, key: string, maxLine: number): MultilineConfig {
  const ml = object(value, key);
  onlyKeys(ml, MULTILINE_KEYS, key);
  const pattern = nonEmpty(ml.start, `${key}.start`);
  let start: LinearRegex;
  try {
    start = compileLinearRegex(pattern);
  } catch (err) {
    throw new ConfigError(`${key}.start`, `is not a regular expression: ${describe(err)}`);
  }
  return {
    start,
    join: ml.join === undefined ? "\\n" : string(ml.join, `${key}.join`),
    maxLines: integer(ml.max_lines, `${key}.max_lines`, 500, 1, 1_000_000),
    maxBytes: size(ml.max_bytes, `${key}.max_bytes`, maxLine, 1, maxLine),
    timeoutMs: duration(ml.timeout, `${key}.timeout`, 1000, 1),
  };
}

/** `pattern`, once `compile` accepts it. */
function glob(pattern: string, key: string, compile: (pattern: string) => unknown): string {
  try {
    compile(pattern);
  } catch (err) {
    throw new ConfigError(key, `is not a glob: ${describe(err)}`);
  }
  return pattern;
}

function object(value: unknown, key: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(
      key,
      key === "" ? "the file must hold a mapping of keys" : "must be a mapping",
    );
  }
  return value as Record<string, unknown>;
}

/** Throws for the first unknown key; with `problems`, notes every one there instead. */
function onlyKeys(
  doc: Record<string, unknown>,
  known: Set<string>,
  key: string,
  problems?: ConfigError[],
): void {
  for (const name of Object.keys(doc)) {
    if (!known.has(name)) {
      const problem = new ConfigError(
        key === "" ? name : `${key}.${name}`,
        `unknown key (known: ${[...known].join(", ")})`,
      );
      if (problems === undefined) throw problem;
      problems.push(problem);
    }
  }
}

function list(value: unknown, key: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(key, `must be a list, got ${show(value)}`);
  return value;
}

function string(value: unknown, key: string): string {
  if (typeof value !== "string") throw new ConfigError(key, `must be a string, got ${show(value)}`);
  return value;
}

function nonEmpty(value: unknown, key: string): string {
  if (value === undefined) throw new ConfigError(key, "is required");
  const text = string(value, key);
  if (text.trim() === "") throw new ConfigError(key, "must not be empty");
  return text;
}

/** Names that go into stream ids and URLs: visible ASCII, no spaces or slashes. */
function streamSafe(value: unknown, key: string): string {
  const text = nonEmpty(value, key);
  if (!/^[\x21-\x7e]{1,64}$/.test(text) || text.includes("/")) {
    throw new ConfigError(
      key,
      `must be 1 to 64 visible ASCII characters without "/", got ${show(text)}`,
    );
  }
  return text;
}

function serverUrl(value: unknown, key: string): string {
  const text = nonEmpty(value, key);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(key, `is not a URL such as "http://10.0.0.5:8081", got ${show(text)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(key, `must be an http or https URL, got ${show(text)}`);
  }
  return url.href.replace(/\/+$/, "");
}

function integer(value: unknown, key: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be a whole number from ${min} to ${max}, got ${show(value)}`);
  }
  return value;
}

function size(value: unknown, key: string, fallback: number, min = 1, max = 2 ** 40): number {
  if (value === undefined) return fallback;
  let bytes = NaN;
  if (typeof value === "number") bytes = value;
  else if (typeof value === "string") {
    try {
      bytes = parseSize(value);
    } catch {
      // Reported below with the key.
    }
  }
  if (!Number.isSafeInteger(bytes) || bytes < min || bytes > max) {
    throw new ConfigError(
      key,
      `must be a size from ${min} to ${max} bytes such as 1048576 or "1MiB", got ${show(value)}`,
    );
  }
  return bytes;
}

function duration(value: unknown, key: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  let ms = NaN;
  if (typeof value === "string") {
    try {
      ms = parseDuration(value);
    } catch {
      // Reported below with the key.
    }
  }
  if (!Number.isSafeInteger(ms) || ms < min) {
    throw new ConfigError(
      key,
      `must be a duration such as "200ms", "5s" or "1h"${
        min > 0 ? ` of at least ${min} ms` : ""
      }, got ${show(value)}`,
    );
  }
  return ms;
}

function hostPort(value: unknown, key: string): HostPort {
  const text = nonEmpty(value, key);
  try {
    return parseHostPort(text);
  } catch {
    throw new ConfigError(
      key,
      `must be ADDR:PORT such as "127.0.0.1:9101" (:PORT for every interface), got ${show(text)}`,
    );
  }
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}
