/**
 * The agent: follows the files of its inputs and ships their lines to the servers, each line
 * exactly once, through rotations, restarts and outages. It reports to the server every few
 * seconds (`GET /api/v1/agents` lists the reports) and can serve its own Prometheus metrics.
 *
 * @module
 */

import { statMetric } from "./report_stats.ts";
import { getLogger } from "@logtape/logtape";
import denoJson from "../../deno.json" with { type: "json" };
import { describe } from "../_util.ts";
import { PROMETHEUS_CONTENT_TYPE, PrometheusWriter } from "../prometheus.ts";
import { CheckpointStore } from "../files/checkpoint.ts";
import { type AgentConfig, ConfigError, diffInputs, type InputConfig } from "./config.ts";
import { FileInput, type FileReport } from "../files/file_input.ts";
import { HttpTarget } from "./http_target.ts";
import { Shipper } from "./shipper.ts";

/** The agent's version, as in `deno.json`. */
export const AGENT_VERSION: string = denoJson.version;

/** What the agent tells the server at each report. */
export interface AgentReport {
  /** The agent's id. */
  id: string;
  /** The machine's name. */
  host: string;
  /** The agent's version. */
  version: string;
  /** When the agent started, ISO 8601. */
  started: string;
  /** The server batches go to now. */
  server: string;
  /** Followed files, those lagging most first (at most 1,000). */
  files: (FileReport & { input: string; source: string })[];
  /** Counters since start. */
  stats: Record<string, number>;
  /** The server batches go to now, of which, and whether it fails now. */
  failover: { active: string; servers: string[]; failing: boolean };
  /** The latest problems (at most {@linkcode MAX_ERRORS}), oldest first. */
  errors: { time: string; message: string }[];
  /** The config it runs: its own file, or a central config applied or refused. */
  config: ConfigState;
}

/** What config the agent runs, as reported. */
export interface ConfigState {
  /** `local`: its own file; `applied`, `refused`: that central config; `pending`: none yet. */
  state: "local" | "applied" | "refused" | "pending";
  /** The central config's name. */
  name?: string;
  /** The central config's version. */
  version?: number;
  /** Why it was refused. */
  reason?: string;
}

/** Problems kept for the reports. */
export const MAX_ERRORS = 20;

/** Options of {@linkcode Agent.start}. */
export interface AgentOptions {
  /** The machine's name, for reports. Default `localhost`. */
  host?: string;
  /** The token when the config has none (env `LOGBOOM_TOKEN`). Default `""`. */
  envToken?: string;
  /** Whether inputs use file events besides scans. Default true. */
  watch?: boolean;
  /** What config it runs, for the first reports. Default `{state: "local"}`: its own file. */
  configState?: ConfigState;
}

/** How long batches in flight get to be acknowledged when an input stops, in ms. */
const STOP_GRACE_MS = 5000;
/** Most files in one report. */
const REPORT_FILES = 1000;

const log = getLogger(["logboom", "agent"]);

/**
 * A running agent.
 *
 * @example
 * ```ts
 * const agent = await Agent.start(await loadAgentConfig("agent.yaml"), { host: "web-1" });
 * await agent.reload(await loadAgentConfig("agent.yaml")); // after an edit
 * await agent.stop();
 * ```
 */
export class Agent {
  readonly #store: CheckpointStore;
  readonly #shipper: Shipper;
  readonly #options: AgentOptions;
  readonly #inputs = new Map<string, { config: InputConfig; input: FileInput }>();
  readonly #stop = new AbortController();
  readonly #started = new Date();
  #config: AgentConfig;
  #reporting: Promise<void>;
  #metrics: Deno.HttpServer | undefined;
  #reloading: Promise<unknown> = Promise.resolve();
  #errors: { time: string; message: string }[] = [];
  #configState: ConfigState = { state: "local" };
  /** Ends the wait before the next report, when it is waiting. */
  #wake: (() => void) | undefined;
  /** Whether the next report is wanted at once (asked while one was under way). */
  #soon = false;
  /** Reports accepted by a server. */
  reports = 0;

  private constructor(config: AgentConfig, store: CheckpointStore, options: AgentOptions) {
    this.#config = config;
    this.#store = store;
    this.#options = options;
    this.#configState = options.configState ?? { state: "local" };
    this.#shipper = new Shipper({
      servers: config.servers,
      token: config.token ?? options.envToken ?? "",
      retry: config.retry,
      onProblem: (message) => this.noteError(message),
    });
    this.#reporting = Promise.resolve();
  }

  /**
   * Opens the state folder (locked against a second agent), starts every input and the reports.
   *
   * @throws {StateLockedError} when another agent uses the state folder; the file system's error
   * when it cannot be created.
   */
  static async start(config: AgentConfig, options: AgentOptions = {}): Promise<Agent> {
    const store = await CheckpointStore.open(config.stateDir, {
      agentId: config.id,
      host: options.host,
    });
    const agent = new Agent(config, store, options);
    agent.#forgetRemovedInputs();
    for (const input of config.inputs) agent.#startInput(input);
    agent.#reporting = agent.#reportLoop();
    try {
      agent.#metrics = agent.#listenMetrics(config.metrics);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    log.info("Agent {id} started: {inputs} inputs, shipping to {servers}", {
      id: store.agentId,
      inputs: config.inputs.length,
      servers: config.servers.join(", "),
    });
    return agent;
  }

  /** The agent's id. */
  get id(): string {
    return this.#store.agentId;
  }

  /** The running config. */
  get config(): AgentConfig {
    return this.#config;
  }

  /** Names of the running inputs. */
  get inputNames(): string[] {
    return [...this.#inputs.keys()];
  }

  /**
   * Applies a new config: inputs that changed are restarted, new ones started, removed ones
   * stopped; the others keep running untouched. Servers, token and retries apply at once.
   *
   * @throws {ConfigError} for a change that needs a restart (`state_dir`, `id`) or cannot be
   * made (a metrics address that is taken); the running config then stays, whole.
   */
  reload(config: AgentConfig): Promise<string> {
    const run = this.#reloading.then(() => this.#reload(config));
    this.#reloading = run.catch(() => {});
    return run;
  }

  async #reload(config: AgentConfig): Promise<string> {
    const before = this.#config;
    if (config.stateDir !== before.stateDir) {
      throw new ConfigError("state_dir", "cannot change while the agent runs; restart it");
    }
    if (config.id !== before.id) {
      throw new ConfigError("id", "cannot change while the agent runs; restart it");
    }
    // What can fail comes first, so a refused change leaves the running config whole.
    const switchMetrics = await this.#nextMetrics(before, config);
    const changes = diffInputs(before, config);
    this.#config = config;
    this.#shipper.update({
      servers: config.servers,
      token: config.token ?? this.#options.envToken ?? "",
      retry: config.retry,
    });
    const stopping = [...changes.removed, ...changes.changed];
    await Promise.all(stopping.map(async (name) => {
      const running = this.#inputs.get(name);
      this.#inputs.delete(name);
      await running?.input.stop(STOP_GRACE_MS);
    }));
    const byName = new Map(config.inputs.map((i) => [i.name, i]));
    for (const name of [...changes.added, ...changes.changed]) this.#startInput(byName.get(name)!);
    await switchMetrics?.();
    // Written soon; a write that fails is reported and retried by the store.
    this.#store.schedule();
    const parts = [
      changes.added.length > 0 && `started ${changes.added.join(", ")}`,
      changes.removed.length > 0 && `stopped ${changes.removed.join(", ")}`,
      changes.changed.length > 0 && `restarted ${changes.changed.join(", ")}`,
      changes.unchanged.length > 0 && `unchanged ${changes.unchanged.join(", ")}`,
    ].filter(Boolean);
    return parts.length > 0 ? parts.join("; ") : "no inputs";
  }

  /** What config it runs, for the reports. */
  get configState(): ConfigState {
    return this.#configState;
  }

  /** Sets what config it runs (a central config applied or refused), and reports it soon. */
  setConfigState(state: ConfigState): void {
    this.#configState = state;
    this.reportSoon();
  }

  /** Keeps `message` among the latest problems the reports carry. */
  noteError(message: string): void {
    this.#errors.push({ time: new Date().toISOString(), message: message.slice(0, 1024) });
    if (this.#errors.length > MAX_ERRORS) this.#errors.shift();
  }

  /** Sends the next report now rather than at the end of the period. */
  reportSoon(): void {
    this.#soon = true;
    this.#wake?.();
  }

  /** What the agent reports: its files with their lag, and its counters. */
  report(): AgentReport {
    const files: AgentReport["files"] = [];
    for (const [name, { config, input }] of this.#inputs) {
      for (const file of input.files()) files.push({ ...file, input: name, source: config.source });
    }
    files.sort((a, b) => b.lag - a.lag);
    return {
      id: this.id,
      host: this.#options.host ?? "localhost",
      version: AGENT_VERSION,
      started: this.#started.toISOString(),
      server: this.#shipper.servers[this.#shipper.preferred],
      files: files.slice(0, REPORT_FILES),
      stats: this.stats(),
      failover: this.#shipper.failover,
      errors: [...this.#errors],
      config: { ...this.#configState },
    };
  }

  /** Counters since start, summed over inputs. */
  stats(): Record<string, number> {
    const s = this.#shipper.stats;
    const totals: Record<string, number> = {
      batches: s.batches,
      duplicates: s.duplicates,
      lines: s.lines,
      bytes: s.bytes,
      wire_bytes: s.wireBytes,
      retries: s.retries,
      failovers: s.failovers,
      possible_duplicate_bytes: s.possibleDuplicateBytes,
      out_of_order: s.outOfOrder,
      files_open: 0,
      in_flight_bytes: 0,
      rotations: 0,
      truncations: 0,
      copies_followed: 0,
      files_given_up: 0,
      bytes_given_up: 0,
      bytes_lost: 0,
      files_lost: 0,
      files_found: 0,
      files_unreadable: 0,
      files_skipped: 0,
      lag_bytes: 0,
      checkpoint_writes: this.#store.writes,
      checkpoint_failures: this.#store.failures,
    };
    for (const { input } of this.#inputs.values()) {
      totals.files_open += input.openFiles;
      totals.in_flight_bytes += input.inFlightBytes;
      totals.rotations += input.stats.rotations;
      totals.truncations += input.stats.truncations;
      totals.copies_followed += input.stats.copiesFollowed;
      totals.files_given_up += input.stats.filesGivenUp;
      totals.bytes_given_up += input.stats.bytesGivenUp;
      totals.bytes_lost += input.stats.bytesLost;
      totals.files_lost += input.stats.filesLost;
      totals.files_found += input.stats.filesFound;
      totals.files_unreadable += input.stats.unreadable;
      totals.files_skipped += input.stats.skipped;
      for (const file of input.files()) totals.lag_bytes += file.lag;
    }
    return totals;
  }

  /** The counters in Prometheus' text format. */
  metricsText(): string {
    const out = new PrometheusWriter();
    for (const [stat, value] of Object.entries(this.stats())) {
      const { name, type } = statMetric(stat);
      out.family(name, type);
      out.sample({ agent: this.id }, value);
    }
    return out.text();
  }

  /**
   * Stops: inputs stop reading, batches in flight get a few seconds to be acknowledged (the rest
   * is resent from the checkpoints by the next run), and the checkpoints are written.
   */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#inputs.values()].map(({ input }) => input.stop(STOP_GRACE_MS)));
    this.#inputs.clear();
    await this.#reporting;
    await this.#metrics?.shutdown();
    this.#shipper.close();
    this.#store.server = this.#shipper.preferred;
    try {
      await this.#store.close();
    } catch (err) {
      // The journal still holds every plan: the next run resends from the last snapshot.
      log.error("Cannot write checkpoints before stopping: {error}", { error: describe(err) });
    }
    log.info("Agent stopped");
  }

  #startInput(config: InputConfig): void {
    const c = this.#config;
    const input = FileInput.start({
      name: config.name,
      paths: config.paths,
      exclude: config.exclude,
      startAt: config.startAt,
      target: new HttpTarget(this.#shipper, {
        source: config.source,
        level: c.compressionLevel,
        inFlight: c.batch.inFlight,
      }),
      store: this.#store,
      maxBytes: config.maxBytes,
      batchBytes: c.batch.maxBytes,
      batchWaitMs: c.batch.maxWaitMs,
      maxLine: c.maxLine,
      multiline: config.multiline,
      scanIntervalMs: c.scanIntervalMs,
      rotateWaitMs: c.rotateWaitMs,
      maxRotatedOpen: c.maxRotatedOpen,
      closeIdleMs: c.closeIdleMs,
      forgetAfterMs: c.forgetAfterMs,
      watch: this.#options.watch,
    });
    this.#inputs.set(config.name, { config, input });
  }

  /** Checkpoints of inputs no longer configured are kept for `forget_after`, then dropped. */
  #forgetRemovedInputs(): void {
    const configured = new Set(this.#config.inputs.map((i) => i.name));
    const now = Date.now();
    for (const name of this.#store.inputNames()) {
      if (configured.has(name)) continue;
      const { records } = this.#store.input(name);
      for (const [id, record] of records) {
        if (now - record.seen > this.#config.forgetAfterMs) records.delete(id);
      }
      if (records.size === 0) this.#store.dropInput(name);
    }
  }

  async #reportLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let failing = false;
    while (!signal.aborted) {
      this.#soon = false;
      const ok = await this.#shipper.post("/api/v1/agents/report", this.report(), signal);
      if (ok) this.reports++;
      if (!ok && !failing) log.debug("Report not accepted; trying again at the next period");
      failing = !ok;
      this.#store.server = this.#shipper.preferred;
      await this.#pause(this.#config.reportIntervalMs, signal);
    }
  }

  /** Waits `ms`, or until `signal` aborts or {@linkcode Agent.reportSoon} is called. */
  #pause(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#soon) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }

  /**
   * Listens on the metrics address of `next` when it differs from `before`'s, and returns what
   * switches to it; the old server keeps answering until then.
   *
   * @throws {ConfigError} when the new address cannot be listened on (the old one then stays).
   */
  async #nextMetrics(
    before: AgentConfig,
    next: AgentConfig,
  ): Promise<(() => Promise<void>) | undefined> {
    if (JSON.stringify(before.metrics) === JSON.stringify(next.metrics)) return undefined;
    let server: Deno.HttpServer | undefined;
    try {
      server = this.#listenMetrics(next.metrics);
    } catch (err) {
      // The new address may share the old one's port (another host name): free it, try again.
      if (this.#metrics === undefined || before.metrics?.port !== next.metrics?.port) throw err;
      await this.#metrics.shutdown();
      this.#metrics = undefined;
      try {
        server = this.#listenMetrics(next.metrics);
      } catch {
        this.#metrics = this.#listenMetrics(before.metrics);
        throw err;
      }
    }
    return async () => {
      await this.#metrics?.shutdown();
      this.#metrics = server;
    };
  }

  /**
   * Serves `/metrics` at `address`, when given.
   *
   * @throws {ConfigError} when it cannot listen there.
   */
  #listenMetrics(address: AgentConfig["metrics"]): Deno.HttpServer | undefined {
    if (address === undefined) return undefined;
    try {
      return Deno.serve({
        hostname: address.hostname,
        port: address.port,
        onListen: () =>
          log.info("Agent metrics on http://{hostname}:{port}/metrics", { ...address }),
      }, (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/metrics") {
          return new Response(this.metricsText(), {
            headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
          });
        }
        if (path === "/healthz") return new Response("ok\n");
        return new Response("Not found\n", { status: 404 });
      });
    } catch (err) {
      throw new ConfigError("metrics", `cannot listen: ${describe(err)}`);
    }
  }
}
