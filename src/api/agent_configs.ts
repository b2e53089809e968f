/**
 * Central agent configuration: named agent configs with match rules, kept by the server, which
 * agents started with `logboom agent -server URL` poll and apply by hot reload.
 *
 * | route | what |
 * | --- | --- |
 * | `GET /api/v1/agent-configs` | every config: `{configs: [{name, match, version, config, updated}]}` |
 * | `PUT /api/v1/agent-configs/NAME` | `{match, config}`: checked whole (400 with every problem at its key), stored, new version |
 * | `DELETE /api/v1/agent-configs/NAME` | removes it |
 * | `GET /api/v1/agents/config?id=ID&host=H` | the agent's poll: `{name, version, config}` of the config that matches it, `ETag` = version, 304 when unchanged, 404 when none |
 *
 * A config is checked by the agent's own checker (`agent/config.ts`), so what the server accepts
 * the agent accepts too, but for what only the agent can know (its permissions, its metrics port).
 * `state_dir`, `id` and `token` belong to each agent (its flags) and are refused here; `servers`
 * may be left out (the agent then ships to the server it polls).
 *
 * Which config an agent takes: one naming its id in `match.ids` first, then one whose
 * `match.hosts` glob (`*`, `?`) matches its host, then one with an empty `match` (every agent);
 * among equals, the first by name. Versions are numbered over the whole store, so an agent that
 * moves from one config to another always sees a new version.
 *
 * Configs live in `<state_dir>/agent-configs.json` (written whole, atomically, before the change
 * is answered), so they survive restarts; without a state folder, or without the permission to
 * read it (the file could not be loaded, so it is not written over either), in memory only, which
 * the store says ({@linkcode AgentConfigStore.memoryOnly}).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { join } from "node:path";
import { describe } from "../_util.ts";
import { agentConfigProblems } from "../agent/config.ts";
import { HttpError, JSON_CONTENT_TYPE } from "../net/http_error.ts";

/** Which agents a config is for; empty: every agent. */
export interface AgentMatch {
  /** Agent ids, exactly. */
  ids?: string[];
  /** Host names, as globs with `*` and `?`. */
  hosts?: string[];
}

/** One named config. */
export interface AgentConfigEntry {
  /** Its name: letters, digits, `.`, `_`, `-`. */
  name: string;
  /** The agents it is for. */
  match: AgentMatch;
  /** Its version, numbered over the whole store: each change takes the next. */
  version: number;
  /** The agent config, as given (the agent's keys: `inputs`, `batch`, ...). */
  config: Record<string, unknown>;
  /** When it was last changed, ISO 8601. */
  updated: string;
}

/** A problem of a config sent to the server, at its key path. */
export interface ConfigProblem {
  /** e.g. `config.inputs[0].paths`. */
  key: string;
  /** What is wrong. */
  problem: string;
}

/** Options of {@linkcode AgentConfigStore.open}. */
export interface AgentConfigStoreOptions {
  /** Most configs kept. Default 1,000. */
  maxConfigs?: number;
  /** Now, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

const FILE = "agent-configs.json";
const MAX_BODY = 1024 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Keys each agent sets for itself (its flags), never a central config. */
const AGENT_OWN: Record<string, string> = {
  state_dir: "is the agent's own (its -stateDir flag): its checkpoints stay on its machine",
  id: "is the agent's own (its -id flag)",
  token: "is the agent's own (its -token flag or LOGBOOM_TOKEN), never stored centrally",
};
const log = getLogger(["logboom", "api", "agent-configs"]);

/**
 * The named agent configs, persisted in the server's state folder.
 *
 * @example
 * ```ts
 * const store = await AgentConfigStore.open("/var/lib/logboom");
 * await store.put("web", { match: { hosts: ["web-*"] }, config: { inputs: [] } });
 * store.forAgent("a1", "web-3")?.version; // 1
 * ```
 */
export class AgentConfigStore {
  #path: string | undefined;
  #memoryOnly: string | undefined;
  readonly #maxConfigs: number;
  readonly #now: () => number;
  #configs = new Map<string, AgentConfigEntry>();
  /** The configs by name, made again at each change. */
  #sorted: AgentConfigEntry[] = [];
  #lastVersion = 0;
  /** Changes, one after another. */
  #writing: Promise<unknown> = Promise.resolve();

  private constructor(path: string | undefined, options: AgentConfigStoreOptions) {
    this.#path = path;
    this.#memoryOnly = path === undefined ? "no state folder" : undefined;
    this.#maxConfigs = options.maxConfigs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Opens the store of `stateDir` (reads its file when there is one), or one in memory when
   * `stateDir` is `undefined`. A file that cannot be understood is set aside as
   * `agent-configs.json.unreadable` (said in the log) and the store starts empty.
   *
   * @throws the file system's error when the file exists and cannot be read.
   */
  static async open(
    stateDir: string | undefined,
    options: AgentConfigStoreOptions = {},
  ): Promise<AgentConfigStore> {
    const store = new AgentConfigStore(
      stateDir === undefined ? undefined : join(stateDir, FILE),
      options,
    );
    if (store.#path !== undefined) await store.#load(store.#path);
    return store;
  }

  /** Where the configs are kept; `undefined` in memory only. */
  get path(): string | undefined {
    return this.#path;
  }

  /** Why the configs are kept in memory only (lost at a restart); `undefined` when they are not. */
  get memoryOnly(): string | undefined {
    return this.#memoryOnly;
  }

  /** Every config, by name. */
  list(): AgentConfigEntry[] {
    return [...this.#sorted];
  }

  /** The config named `name`. */
  get(name: string): AgentConfigEntry | undefined {
    return this.#configs.get(name);
  }

  /**
   * Checks `body` (`{match, config}`) and stores it as config `name`, with the next version; the
   * file is written before this resolves.
   *
   * @throws {ConfigProblems} for a bad name or body (every problem at its key path); the file
   * system's error when it cannot be written (nothing changes then).
   */
  put(name: string, body: unknown): Promise<AgentConfigEntry> {
    const problems = checkEntry(name, body);
    if (problems.length > 0) return Promise.reject(new ConfigProblems(problems));
    const { match, config } = body as { match?: AgentMatch; config: Record<string, unknown> };
    // Changes go one at a time, each from the state the one before left.
    return this.#change(async () => {
      if (!this.#configs.has(name) && this.#configs.size >= this.#maxConfigs) {
        throw new ConfigProblems([{ key: "", problem: `at most ${this.#maxConfigs} configs` }]);
      }
      const entry: AgentConfigEntry = {
        name,
        match: {
          ...(match?.ids === undefined ? {} : { ids: [...match.ids] }),
          ...(match?.hosts === undefined ? {} : { hosts: [...match.hosts] }),
        },
        version: this.#lastVersion + 1,
        config: structuredClone(config),
        updated: new Date(this.#now()).toISOString(),
      };
      await this.#save(new Map(this.#configs).set(name, entry), entry.version);
      return entry;
    });
  }

  /** Removes config `name`; resolves with whether there was one (the file is written first). */
  delete(name: string): Promise<boolean> {
    return this.#change(async () => {
      if (!this.#configs.has(name)) return false;
      const next = new Map(this.#configs);
      next.delete(name);
      await this.#save(next, this.#lastVersion);
      return true;
    });
  }

  /** The config agent `id` on `host` takes (see the module doc), if any. */
  forAgent(id: string, host: string): AgentConfigEntry | undefined {
    let best: AgentConfigEntry | undefined;
    let bestRank = Infinity;
    for (const entry of this.#sorted) {
      const rank = matchRank(entry.match, id, host);
      if (rank < bestRank) [best, bestRank] = [entry, rank];
    }
    return best;
  }

  /** Runs `change` once the changes before it are done. */
  #change<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#writing.then(change);
    this.#writing = run.catch(() => {});
    return run;
  }

  /** Writes `next` (when kept in a file), then makes it the store's state. */
  async #save(next: Map<string, AgentConfigEntry>, lastVersion: number): Promise<void> {
    if (this.#path !== undefined) {
      const text = JSON.stringify({ last_version: lastVersion, configs: [...next.values()] });
      const tmp = `${this.#path}.tmp`;
      await Deno.writeTextFile(tmp, text + "\n");
      await Deno.rename(tmp, this.#path);
    }
    this.#use(next, lastVersion);
  }

  #use(configs: Map<string, AgentConfigEntry>, lastVersion: number): void {
    this.#configs = configs;
    this.#sorted = [...configs.values()].sort((a, b) => a.name < b.name ? -1 : 1);
    this.#lastVersion = lastVersion;
  }

  async #load(path: string): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      if (!(err instanceof Deno.errors.NotCapable)) throw err;
      // What the file holds is unknown: writing it would lose it.
      this.#path = undefined;
      this.#memoryOnly = `reading ${path} needs --allow-read for it`;
      log.warn("Agent configs are kept in memory only (lost at a restart): {reason}", {
        reason: this.#memoryOnly,
      });
      return;
    }
    try {
      const doc = JSON.parse(text);
      const configs = new Map<string, AgentConfigEntry>();
      for (const entry of doc.configs as AgentConfigEntry[]) {
        if (checkEntry(entry.name, entry).length > 0 || !Number.isSafeInteger(entry.version)) {
          throw new Error(`config "${entry.name}" is not valid`);
        }
        configs.set(entry.name, entry);
      }
      if (!Number.isSafeInteger(doc.last_version)) throw new Error("no last_version");
      this.#use(configs, doc.last_version);
    } catch (err) {
      const aside = `${path}.unreadable`;
      await Deno.rename(path, aside);
      log.error(
        "Cannot understand the agent configs in {path} ({error}); set aside as {aside}, " +
          "starting with none",
        { path, error: describe(err), aside },
      );
    }
  }
}

/** A config refused: every problem at its key path. */
export class ConfigProblems extends HttpError {
  /** The problems. */
  readonly problems: ConfigProblem[];

  /** @param problems what is wrong, at least one. */
  constructor(problems: ConfigProblem[]) {
    const first = problems[0];
    super(
      400,
      (problems.length === 1 ? "1 problem" : `${problems.length} problems`) +
        `: ${first.key === "" ? "" : `${first.key}: `}${first.problem}`,
    );
    this.problems = problems;
  }

  /** `{"error": "...", "problems": [{key, problem}]}`. */
  override response(): Response {
    return new Response(
      JSON.stringify({ error: this.message, problems: this.problems }) + "\n",
      { status: 400, headers: { "content-type": JSON_CONTENT_TYPE } },
    );
  }
}

/**
 * Every problem of config `name` with body `{match, config}`, at its key path (`name`, `match.hosts[0]`,
 * `config.inputs[0].paths`).
 */
export function checkEntry(name: string, body: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!NAME.test(name)) {
    problems.push({
      key: "name",
      problem: `must be 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(name)}`,
    });
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    problems.push({ key: "", problem: 'the body must be an object {"match": ..., "config": ...}' });
    return problems;
  }
  const doc = body as Record<string, unknown>;
  for (const key of Object.keys(doc)) {
    if (!["match", "config", "name", "version", "updated"].includes(key)) {
      problems.push({ key, problem: "unknown key (known: match, config)" });
    }
  }
  const match = doc.match ?? {};
  if (typeof match !== "object" || match === null || Array.isArray(match)) {
    problems.push({ key: "match", problem: "must be an object {ids?: [...], hosts?: [...]}" });
  } else {
    for (const [key, value] of Object.entries(match)) {
      if (key !== "ids" && key !== "hosts") {
        problems.push({ key: `match.${key}`, problem: "unknown key (known: ids, hosts)" });
      } else if (!Array.isArray(value)) {
        problems.push({ key: `match.${key}`, problem: "must be a list of strings" });
      } else {
        value.forEach((item, i) => {
          if (typeof item !== "string" || item === "" || item.length > 256) {
            problems.push({ key: `match.${key}[${i}]`, problem: "must be a string of 1 to 256" });
          }
        });
      }
    }
  }
  const config = doc.config;
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    problems.push({ key: "config", problem: "must be an object: the agent's config" });
    return problems;
  }
  const own = config as Record<string, unknown>;
  for (const key of Object.keys(AGENT_OWN)) {
    if (own[key] !== undefined) problems.push({ key: `config.${key}`, problem: AGENT_OWN[key] });
  }
  // Agents run in folders of their own: a relative path would mean something else on each.
  if (Array.isArray(own.inputs)) {
    own.inputs.forEach((input, i) => {
      const paths = (input as { paths?: unknown } | null)?.paths;
      if (!Array.isArray(paths)) return;
      paths.forEach((path, j) => {
        if (typeof path === "string" && path !== "" && !path.startsWith("/")) {
          problems.push({
            key: `config.inputs[${i}].paths[${j}]`,
            problem: `must be an absolute path in a central config, got ${JSON.stringify(path)}`,
          });
        }
      });
    });
  }
  // The agent's own checker, with what each agent adds for itself.
  const whole = {
    ...own,
    servers: own.servers ?? ["http://server.invalid"],
    state_dir: "/agent-state",
    id: undefined,
    token: undefined,
  };
  for (const problem of agentConfigProblems(whole, "/central/agent.json")) {
    if (problem.key in AGENT_OWN) continue;
    problems.push({
      key: problem.key === "" ? "config" : `config.${problem.key}`,
      problem: problem.message.slice(problem.key === "" ? 0 : problem.key.length + 2),
    });
  }
  return problems;
}

/** 0 for a match by id, 1 by host, 2 for a config of every agent, Infinity for none. */
function matchRank(match: AgentMatch, id: string, host: string): number {
  if (match.ids?.includes(id)) return 0;
  if (match.hosts?.some((glob) => globRegex(glob).test(host))) return 1;
  if (match.ids === undefined && match.hosts === undefined) return 2;
  return Infinity;
}

/** Compiled host globs: a listing of many agents matches each against every config. */
const GLOBS = new Map<string, RegExp>();

function globRegex(glob: string): RegExp {
  let regex = GLOBS.get(glob);
  if (regex === undefined) {
    if (GLOBS.size >= 10_000) GLOBS.clear();
    GLOBS.set(glob, regex = compileHostGlob(glob));
  }
  return regex;
}

function compileHostGlob(glob: string): RegExp {
  const source = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(
    /\?/g,
    ".",
  );
  return new RegExp(`^${source}$`, "i");
}

/**
 * The routes of this module: `GET /api/v1/agent-configs`, `PUT` and `DELETE
 * /api/v1/agent-configs/NAME`, `GET /api/v1/agents/config`.
 */
export async function agentConfigsRoute(
  req: Request,
  store: AgentConfigStore,
): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  if (path === "/api/v1/agents/config") {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, HEAD");
    return poll(req, url, store);
  }
  if (path === "/api/v1/agent-configs") {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, HEAD");
    return json(200, {
      configs: store.list(),
      persistent: store.path !== undefined,
      ...(store.memoryOnly === undefined ? {} : { memory_only: store.memoryOnly }),
    });
  }
  const name = decodeURIComponent(path.slice("/api/v1/agent-configs/".length));
  try {
    switch (req.method) {
      case "GET":
      case "HEAD": {
        const entry = store.get(name);
        if (entry === undefined) throw new HttpError(404, `No agent config "${name}"`);
        return json(200, entry);
      }
      case "PUT": {
        const body = await readJson(req);
        const entry = await store.put(name, body);
        log.info("Agent config {name} is now version {version}", {
          name,
          version: entry.version,
        });
        return json(200, entry);
      }
      case "DELETE": {
        await req.body?.cancel();
        if (!await store.delete(name)) throw new HttpError(404, `No agent config "${name}"`);
        log.info("Agent config {name} removed", { name });
        return json(200, { deleted: name });
      }
      default:
        await req.body?.cancel();
        return methodNotAllowed("GET, HEAD, PUT, DELETE");
    }
  } catch (err) {
    if (err instanceof HttpError) return err.response();
    throw err;
  }
}

function poll(req: Request, url: URL, store: AgentConfigStore): Response {
  const id = url.searchParams.get("id") ?? "";
  const host = url.searchParams.get("host") ?? "";
  if (id === "") return new HttpError(400, 'Give the agent\'s "id"').response();
  const entry = store.forAgent(id, host);
  if (entry === undefined) {
    return new HttpError(404, `No agent config matches agent "${id}" on "${host}"`).response();
  }
  const etag = `"${entry.version}"`;
  const seen = req.headers.get("if-none-match");
  // The version quoted as ETags are, or bare (a hand-made request), weak or not; `*` any.
  const same = (tag: string) => {
    const bare = tag.trim().replace(/^W\//, "");
    return bare === etag || bare === String(entry.version) || bare === "*";
  };
  if (seen !== null && seen.split(",").some(same)) {
    return new Response(null, { status: 304, headers: { etag } });
  }
  return json(200, { name: entry.name, version: entry.version, config: entry.config }, { etag });
}

async function readJson(req: Request): Promise<unknown> {
  if (Number(req.headers.get("content-length") ?? 0) > MAX_BODY) {
    await req.body?.cancel();
    throw new HttpError(413, `A config is at most ${MAX_BODY} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body !== null) {
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > MAX_BODY) throw new HttpError(413, `A config is at most ${MAX_BODY} bytes`);
      chunks.push(chunk);
    }
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  try {
    return JSON.parse(new TextDecoder().decode(all));
  } catch (err) {
    throw new HttpError(400, `The body is not JSON: ${describe(err)}`);
  }
}

function methodNotAllowed(allow: string): Response {
  return new HttpError(405, `Use ${allow.split(", ").join(" or ")}`, { headers: { allow } })
    .response();
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": JSON_CONTENT_TYPE, ...headers },
  });
}
