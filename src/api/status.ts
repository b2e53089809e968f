/**
 * `GET /api/v1/status`: the server's state at a glance: version, uptime, queues, open files, the
 * disk space of the log folder, the compression backlog and the running config with its secrets
 * masked.
 *
 * The disk space comes from `statfs` (`node:fs`), which Deno grants only with
 * `--allow-sys=statfs`: without it `disk` says so (`available: false` and the flag to add) rather
 * than guess. Nothing else here needs a permission the server does not already have.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { describe } from "../_util.ts";
import { redactedWebhook } from "../alerts/config.ts";
import type { LiveHubStats } from "../live/hub.ts";
import type { NetStats } from "../net/accept.ts";
import { VERSION } from "../cli/version.ts";
import type { SinkMetrics } from "./metrics.ts";

/** What the server tells the status route about itself (from the pipeline). */
export interface ServerFacts {
  /** The state folder (stream marks, agent configs). */
  stateDir?: string;
  /** What the sinks write (paths and templates): the first file's folder is the log folder. */
  outputs?: readonly string[];
  /** The sinks' queue bound, in bytes. */
  queueLimitBytes?: number;
  /** The running config, read at request time. */
  running?: () => unknown;
}

/** What {@linkcode serverStatus} reads, at request time. */
export interface StatusInput {
  /** The server's facts. */
  facts: ServerFacts;
  /** Each sink's counters. */
  sinks: readonly SinkMetrics[];
  /** The live hub's counters. */
  live: LiveHubStats;
  /** Ingest bodies held at once, at most, in bytes. */
  ingestLimitBytes?: number;
  /** Connection counters. */
  net?: NetStats;
  /** Where the agent configs are kept; `undefined` in memory. */
  agentConfigs?: string;
  /** Now, in ms since the epoch. Default `Date.now()`. */
  now?: number;
}

/** When this process started (this module was loaded), in ms since the epoch. */
export const STARTED = Date.now();

/** The disk a folder is on: free and total bytes, or why they cannot be shown. */
export type DiskSpace =
  | { path: string; available: true; free_bytes: number; total_bytes: number }
  | { path: string; available: false; reason: string };

/** The status route's answer. */
export async function serverStatus(input: StatusInput): Promise<Record<string, unknown>> {
  const { facts, sinks, live, net } = input;
  const now = input.now ?? Date.now();
  const folder = logFolder(facts.outputs ?? []);
  let openFiles = 0;
  let queued = 0;
  for (const sink of sinks) {
    openFiles += sink.openFiles ?? 0;
    queued += sink.queuedBytes ?? 0;
  }
  return {
    version: VERSION,
    started: new Date(STARTED).toISOString(),
    uptime_s: Math.round((now - STARTED) / 1000),
    queues: {
      sinks: sinks.filter((s) => s.queuedBytes !== undefined).map((s) => ({
        name: s.name,
        used_bytes: s.queuedBytes,
        limit_bytes: facts.queueLimitBytes ?? null,
      })),
      used_bytes: queued,
      limit_bytes: facts.queueLimitBytes ?? null,
      ingest_limit_bytes: input.ingestLimitBytes ?? null,
      live_ring_bytes: live.ringBytes,
    },
    open_files: openFiles,
    files: {
      open: openFiles,
      waiting: sum(sinks, "waitingFiles"),
      failing: sum(sinks, "failingFiles"),
    },
    connections: net?.open ?? {},
    live: { subscribers: live.subscribers, dropped_lines: live.linesDropped },
    disk: folder === undefined
      ? { path: null, available: false, reason: "no file output" }
      : await diskSpace(folder),
    rotation: { pending_compress: sum(sinks, "pendingJobs") },
    state_dir: facts.stateDir ?? null,
    agent_configs: input.agentConfigs ?? "in memory (no state folder): lost at restart",
    config: maskSecrets(facts.running?.() ?? null),
  };
}

function sum(sinks: readonly SinkMetrics[], key: string): number {
  let total = 0;
  for (const sink of sinks) {
    const value = (sink as unknown as Record<string, unknown>)[key];
    if (typeof value === "number") total += value;
  }
  return total;
}

/**
 * The folder of the first output (a template's fixed part: `logs/{source}/app.log` gives `logs`),
 * absolute; `undefined` without one.
 */
export function logFolder(outputs: readonly string[]): string | undefined {
  const first = outputs[0];
  if (first === undefined) return undefined;
  const brace = first.indexOf("{");
  const fixed = brace === -1 ? first : first.slice(0, brace);
  // A file's folder; a template cut inside a folder name: that name's folder.
  return resolve(brace === -1 || !fixed.endsWith("/") ? dirname(fixed + "x") : fixed);
}

/** Free and total bytes of the disk `path` is on, or why they cannot be read. */
export async function diskSpace(path: string): Promise<DiskSpace> {
  if (Deno.permissions.querySync({ name: "sys", kind: "statfs" }).state !== "granted") {
    return {
      path,
      available: false,
      reason: "reading disk space needs --allow-sys=statfs",
    };
  }
  try {
    // The folder may not exist yet (no line written): the disk it will be on.
    let at = path;
    let fs;
    for (;;) {
      try {
        fs = await statfs(at);
        break;
      } catch (err) {
        const missing = (err as { code?: string }).code === "ENOENT";
        if (!missing || dirname(at) === at) throw err;
        at = dirname(at);
      }
    }
    return {
      path,
      available: true,
      free_bytes: fs.bavail * fs.bsize,
      total_bytes: fs.blocks * fs.bsize,
    };
  } catch (err) {
    return { path, available: false, reason: describe(err) };
  }
}

const SECRET_KEY = /token|passw|secret|api_?key|authorization|credential|signature/i;

/** Keys holding a webhook's URL, whose path itself is often the secret (Slack, Discord). */
const WEBHOOK_KEY = /webhook|hook_?url/i;

/** A webhook's URL as the alerts API shows it (`https://hooks.slack.com/***`); not a URL: hidden. */
function maskWebhook(text: string): string {
  try {
    return redactedWebhook(text);
  } catch {
    return "***";
  }
}

/** A URL's password and secret-named query values masked; other text as it is. */
function maskUrl(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text;
  let masked = text.replace(/^(\w+:\/\/[^/:@]*):[^/@]*@/, "$1:***@");
  masked = masked.replace(
    /([?&])([^=&#]+)=([^&#]*)/g,
    (all, sep, name, value) => SECRET_KEY.test(name) && value !== "" ? `${sep}${name}=***` : all,
  );
  return masked;
}

/**
 * `value` as JSON would show it, with every secret replaced by `"***"`: the values of keys that
 * name one (`token`, `password`, `api_key`...), the password of URLs (`http://u:***@h`) and their
 * query values of such names (`?token=***`), and a webhook's URL past its origin
 * (`https://hooks.slack.com/***`).
 * Regular expressions show their source, sets and maps their entries.
 */
export function maskSecrets(value: unknown, key = ""): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (SECRET_KEY.test(key) && (typeof value !== "object" || Array.isArray(value))) {
    return value === "" ? "" : "***";
  }
  if (WEBHOOK_KEY.test(key) && typeof value === "string") return maskWebhook(value);
  if (typeof value === "string") return maskUrl(value);
  if (typeof value !== "object") return typeof value === "bigint" ? String(value) : value;
  if (value instanceof RegExp) return value.source;
  if (Array.isArray(value) || value instanceof Set) {
    return [...value].map((item) => maskSecrets(item));
  }
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [name, item] of entries) {
    if (typeof item === "function") continue;
    out[String(name)] = maskSecrets(item, String(name));
  }
  return out;
}
