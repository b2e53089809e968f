/**
 * Agents reporting in: `POST /api/v1/agents/report` takes an agent's report (its id, host,
 * version, files with their offsets and lag, and counters), `GET /api/v1/agents` lists the latest
 * report of each agent, and the agents' counters join the server's `/metrics`.
 *
 * Memory is bounded: at most `maxAgents` agents (the one silent longest is forgotten first), a
 * report body of at most 1 MiB, at most 1,000 files and 20 errors per agent.
 *
 * An agent's `config` says what it runs: `local` (its own file), or the version of a central
 * config (`api/agent_configs.ts`) it `applied` or `refused` (with the reason). Listed against the
 * store, an agent whose matching config has another version than the one it reported is
 * `pending` (it has not polled or reported since the change).
 *
 * @module
 */

import { statMetric } from "../agent/report_stats.ts";
import type { AgentConfigStore } from "./agent_configs.ts";
import { HttpError } from "../net/http_error.ts";
import { type MetricType, PrometheusWriter } from "../prometheus.ts";

/** One agent's latest report, as listed. */
export interface AgentEntry {
  /** The agent's id. */
  id: string;
  /** The machine it runs on, as it says. */
  host: string;
  /** The address its report came from. */
  address: string;
  /** Its version. */
  version: string;
  /** When it started, as it says. */
  started: string;
  /** When its last report came, ISO 8601. */
  lastSeen: string;
  /** The server it ships to now. */
  server: string;
  /** Its files: path, offset, size, lag. */
  files: unknown[];
  /** Bytes not yet shipped, over its files. */
  lag: number;
  /** Its counters. */
  stats: Record<string, number>;
  /** Which server it ships to, of which, and whether that one fails now. */
  failover: { active: string; servers: string[]; failing: boolean };
  /** Its latest errors, oldest first. */
  errors: { time: string; message: string }[];
  /** The config it runs. */
  config: AgentConfigState;
}

/** What config an agent runs. */
export interface AgentConfigState {
  /** The central config's version (none for `local`). */
  version?: number;
  /** The central config's name. */
  name?: string;
  /**
   * `local`: its own file; `applied`/`refused`: that version of a central config; `pending`: a
   * central config it has not taken yet.
   */
  state: "applied" | "refused" | "pending" | "local";
  /** Why it refused the config. */
  reason?: string;
  /** For `pending`: the version it runs now, if any. */
  running?: number;
}

const MAX_BODY = 1024 * 1024;
const MAX_FILES = 1000;
const MAX_ERRORS = 20;
const CONFIG_STATES = new Set(["applied", "refused", "pending", "local"]);

/**
 * The latest report of each agent.
 *
 * @example
 * ```ts
 * const agents = new AgentRegistry();
 * await agents.accept(req, "10.0.0.7");
 * agents.list(); // [{ id, host, files, lag, ... }]
 * ```
 */
export class AgentRegistry {
  readonly #agents = new Map<string, AgentEntry>();
  readonly #maxAgents: number;

  /** @param options `maxAgents`: most agents remembered (default 10,000). */
  constructor(options: { maxAgents?: number } = {}) {
    const { maxAgents = 10_000 } = options;
    if (!Number.isSafeInteger(maxAgents) || maxAgents < 1) {
      throw new RangeError(`Agent limit must be a positive integer, got "${maxAgents}"`);
    }
    this.#maxAgents = maxAgents;
  }

  /**
   * Reads a report from `req` and keeps it as its agent's latest.
   *
   * @throws {HttpError} for a body that is too large or not a report.
   */
  async accept(req: Request, address: string): Promise<AgentEntry> {
    const length = Number(req.headers.get("content-length") ?? 0);
    if (length > MAX_BODY) {
      await req.body?.cancel();
      throw new HttpError(413, `Report is over ${MAX_BODY} bytes`);
    }
    const text = await readLimited(req, MAX_BODY);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new HttpError(400, "Report is not JSON");
    }
    if (typeof doc !== "object" || doc === null || typeof doc.id !== "string" || doc.id === "") {
      throw new HttpError(400, 'Report needs an "id" string');
    }
    const files = Array.isArray(doc.files) ? doc.files.slice(0, MAX_FILES) : [];
    let lag = 0;
    for (const file of files) {
      const n = (file as { lag?: unknown })?.lag;
      if (typeof n === "number" && Number.isFinite(n)) lag += n;
    }
    const stats: Record<string, number> = {};
    if (typeof doc.stats === "object" && doc.stats !== null) {
      for (const [name, value] of Object.entries(doc.stats)) {
        if (/^[a-z_]{1,64}$/.test(name) && typeof value === "number" && Number.isFinite(value)) {
          stats[name] = value;
        }
      }
    }
    const entry: AgentEntry = {
      id: doc.id.slice(0, 256),
      host: text256(doc.host),
      address,
      version: text256(doc.version),
      started: text256(doc.started),
      lastSeen: new Date().toISOString(),
      server: text256(doc.server),
      files,
      lag,
      stats,
      failover: failover(doc.failover, text256(doc.server)),
      errors: errors(doc.errors),
      config: configState(doc.config),
    };
    // Re-inserted, so the map stays in order of last report and the silent longest go first.
    this.#agents.delete(entry.id);
    this.#agents.set(entry.id, entry);
    for (const id of this.#agents.keys()) {
      if (this.#agents.size <= this.#maxAgents) break;
      this.#agents.delete(id);
    }
    return entry;
  }

  /**
   * The agents, by id; with `configs`, an agent whose matching central config has a version it
   * did not report is shown `pending`.
   */
  list(configs?: AgentConfigStore): AgentEntry[] {
    const agents = [...this.#agents.values()].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0
    );
    if (configs === undefined) return agents;
    return agents.map((agent) => {
      if (agent.config.state === "local") return agent;
      const wanted = configs.forAgent(agent.id, agent.host);
      if (wanted === undefined || wanted.version === agent.config.version) return agent;
      const config: AgentConfigState = {
        name: wanted.name,
        version: wanted.version,
        state: "pending",
        ...(agent.config.state === "applied" ? { running: agent.config.version } : {}),
      };
      return { ...agent, config };
    });
  }

  /** The agents' counters and lag in Prometheus' text format. */
  metrics(): string {
    if (this.#agents.size === 0) return "";
    // The samples of a family go together: gathered by family first, over every agent.
    const families = new Map<string, { type: MetricType; rows: [string, number][] }>();
    const add = (name: string, type: MetricType, agent: string, value: number) => {
      let family = families.get(name);
      if (family === undefined) families.set(name, family = { type, rows: [] });
      family.rows.push([agent, value]);
    };
    for (const agent of this.#agents.values()) {
      add("logboom_agent_lag_bytes", "gauge", agent.id, agent.lag);
      add(
        "logboom_agent_last_report_seconds",
        "gauge",
        agent.id,
        Date.parse(agent.lastSeen) / 1000,
      );
      for (const [stat, value] of Object.entries(agent.stats)) {
        if (stat === "lag_bytes") continue;
        const { name, type } = statMetric(stat);
        add(name, type, agent.id, value);
      }
    }
    const out = new PrometheusWriter();
    for (const [name, { type, rows }] of families) {
      out.family(name, type);
      for (const [agent, value] of rows) out.sample({ agent }, value);
    }
    return out.text();
  }
}

function failover(value: unknown, server: string): AgentEntry["failover"] {
  const doc = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const servers = Array.isArray(doc.servers)
    ? doc.servers.slice(0, 100).filter((s) => typeof s === "string").map(text256)
    : [];
  return {
    active: typeof doc.active === "string" ? text256(doc.active) : server,
    servers: servers.length > 0 ? servers : server === "" ? [] : [server],
    failing: doc.failing === true,
  };
}

function errors(value: unknown): AgentEntry["errors"] {
  if (!Array.isArray(value)) return [];
  return value.slice(-MAX_ERRORS).flatMap((item) => {
    const { time, message } = (item ?? {}) as Record<string, unknown>;
    if (typeof message !== "string") return [];
    return [{ time: text256(time), message: message.slice(0, 1024) }];
  });
}

function configState(value: unknown): AgentConfigState {
  const doc = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const state = typeof doc.state === "string" && CONFIG_STATES.has(doc.state)
    ? doc.state as AgentConfigState["state"]
    : "local";
  const out: AgentConfigState = { state };
  if (typeof doc.version === "number" && Number.isSafeInteger(doc.version)) {
    out.version = doc.version;
  }
  if (typeof doc.name === "string") out.name = text256(doc.name);
  if (typeof doc.reason === "string") out.reason = doc.reason.slice(0, 4096);
  return out;
}

function text256(value: unknown): string {
  return typeof value === "string" ? value.slice(0, 256) : "";
}

async function readLimited(req: Request, limit: number): Promise<string> {
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) throw new HttpError(413, `Report is over ${limit} bytes`);
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(all);
}
