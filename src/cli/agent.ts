/**
 * `logboom agent -config FILE`: follows files and ships their lines to the servers (see
 * `src/agent/`). A bad config at startup is one line naming the key and exit code 2; an edit of the
 * config file (or SIGHUP) reloads it, and a bad edit is refused while the running config stays.
 *
 * `logboom agent -server URL [-token T] [-id ID] [-stateDir DIR]` takes its config from the
 * server instead (`GET /api/v1/agents/config`, polled every `-poll`): each new version is applied
 * as a file edit would be, or refused (the running config stays) and reported with its reason.
 * The state folder (checkpoints), the id and the token stay the agent's own; a config without
 * `servers` ships to `URL`. Until a config matches, the agent runs no input and reports in. The
 * last config applied is kept in the state folder (`central-config.json`): a restart while the
 * server is away runs it again.
 *
 * ```sh
 * deno run --allow-read=/var/log,/etc/logboom,/var/lib/logboom-agent \
 *   --allow-write=/var/lib/logboom-agent --allow-net=10.0.0.5:8081,10.0.0.6:8081 \
 *   --allow-env=LOGBOOM_TOKEN,LOG_TOKENS,LOG_STREAM --allow-sys=hostname \
 *   main.ts agent -config /etc/logboom/agent.yaml
 * ```
 *
 * @module
 */

import { untilStopped } from "./_stop.ts";
import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { Agent } from "../agent/agent.ts";
import { StateLockedError } from "../files/checkpoint.ts";
import {
  type AgentConfig,
  checkAgentConfig,
  ConfigError,
  loadAgentConfig,
} from "../agent/config.ts";
import { type CentralConfig, pollCentralConfig } from "../agent/central.ts";
import { join, resolve } from "node:path";
import { parseDuration } from "../units.ts";
import { watchConfig } from "../config_watch.ts";
import { compileGlob } from "../files/glob.ts";
import { hostName } from "../host_name.ts";
import { tokenFromEnv } from "../token.ts";
import { LOG_LEVELS, setupLogging } from "../logging.ts";
import { FlagError, type FlagSpecs, parseChoice, parseCommand, parseFlags } from "./flags.ts";

/** The flags of `agent`. */
export const AGENT_FLAGS: FlagSpecs = {
  config: {
    type: "string",
    value: "FILE",
    help: "The agent's config, YAML or JSON (this or -server)",
  },
  server: {
    type: "string",
    value: "URL",
    help: "Take the config from this server (central config) instead of -config",
  },
  token: {
    type: "string",
    value: "TOKEN",
    help: "With -server: the server's token (default env LOGBOOM_TOKEN)",
  },
  id: {
    type: "string",
    value: "ID",
    help: "With -server: the agent's id (default: made up once, kept in the state folder)",
  },
  stateDir: {
    type: "string",
    value: "DIR",
    default: "logboom-agent-state",
    help: "With -server: the folder of the agent's checkpoints",
  },
  poll: {
    type: "string",
    value: "DURATION",
    default: "10s",
    help: "With -server: how often the config is asked for (longer after failures)",
  },
  logLevel: {
    type: "string",
    value: "LEVEL",
    default: "info",
    help: "Level of the agent's own logs on stderr: debug, info, warn or error",
  },
};

const SYNOPSIS = "logboom agent -config FILE | -server URL [flags]";
const log = getLogger(["logboom", "agent"]);

/**
 * The permissions the agent needs for `config` that it lacks, as one message, or `undefined`
 * when it has them all.
 */
export function missingPermissions(config: AgentConfig): string | undefined {
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  const missing: string[] = [];
  if (!granted({ name: "write", path: config.stateDir })) {
    missing.push(`--allow-write=${config.stateDir}`);
  }
  const reads = [
    config.stateDir,
    ...config.inputs.flatMap((i) => i.paths.map((p) => compileGlob(p).root)),
  ];
  for (const path of new Set(reads)) {
    if (!granted({ name: "read", path })) missing.push(`--allow-read=${path}`);
  }
  for (const server of config.servers) {
    const { host } = new URL(server);
    if (!granted({ name: "net", host })) missing.push(`--allow-net=${host}`);
  }
  if (missing.length === 0) return undefined;
  return `The agent needs more permissions for this config: ${missing.join(" ")}`;
}

/** What {@linkcode parseAgentArgs} makes of a command line. */
interface ParsedAgentArgs {
  /** The config file (`""` with `-server` or when usage was asked for). */
  configPath: string;
  /** With `-server`: where the config comes from. */
  central?: CentralFlags;
  /** The level of the agent's own logs. */
  level: typeof LOG_LEVELS[number];
  /** Whether usage was asked for. */
  help: boolean;
}

/** The flags of central configuration. */
interface CentralFlags {
  /** The server's base URL. */
  server: string;
  /** The token given with `-token`; `undefined`: env `LOGBOOM_TOKEN`. */
  token?: string;
  /** The agent's id, when given. */
  id?: string;
  /** The state folder, absolute. */
  stateDir: string;
  /** Time between polls, in ms. */
  pollMs: number;
}

function parseAgentArgs(args: readonly string[]): ParsedAgentArgs {
  const { values, positionals, help } = parseFlags(args, AGENT_FLAGS);
  if (help) return { configPath: "", level: "info", help };
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  const level = parseChoice("logLevel", values.logLevel as string, { choices: LOG_LEVELS });
  const server = values.server as string | undefined;
  const config = values.config as string | undefined;
  if (server !== undefined && config !== undefined) {
    throw new FlagError('Give "-config" or "-server", not both');
  }
  if (server !== undefined) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new FlagError(
        `Flag "-server" needs a URL such as http://10.0.0.5:8081, got "${server}"`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new FlagError(`Flag "-server" needs an http or https URL, got "${server}"`);
    }
    let pollMs: number;
    try {
      pollMs = parseDuration(values.poll as string);
    } catch {
      pollMs = NaN;
    }
    if (!(pollMs >= 100)) {
      throw new FlagError(`Flag "-poll" needs a duration of at least 100ms, got "${values.poll}"`);
    }
    const id = values.id as string | undefined;
    if (id !== undefined && (!/^[\x21-\x7e]{1,64}$/.test(id) || id.includes("/"))) {
      throw new FlagError(`Flag "-id" needs 1 to 64 visible ASCII characters without "/"`);
    }
    return {
      configPath: "",
      central: {
        server: url.href.replace(/\/+$/, ""),
        token: values.token as string | undefined,
        id,
        stateDir: resolve(values.stateDir as string),
        pollMs,
      },
      level,
      help,
    };
  }
  for (const flag of ["token", "id", "poll"]) {
    if (args.some((a) => a.replace(/^--?/, "").split("=")[0] === flag)) {
      throw new FlagError(`Flag "-${flag}" goes with "-server"`);
    }
  }
  if (config === undefined || config === "") {
    throw new FlagError(`Give "-config FILE" or "-server URL"`);
  }
  return { configPath: config, level, help };
}

/** The `agent` command: runs until SIGINT or SIGTERM and returns the exit code. */
export async function runAgent(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(args, parseAgentArgs, { synopsis: SYNOPSIS, specs: AGENT_FLAGS });
  if (typeof parsed === "number") return parsed;
  // SIGINT and SIGTERM stop it from the start. SIGHUP reloads the config while it is watched;
  // before that (starting) and after (stopping, while batches in flight get their answers) it is
  // ignored: it never ends the agent.
  return await untilStopped((signal) => runAgentWith(parsed, signal), { onHangup: () => {} });
}

async function runAgentWith(parsed: ParsedAgentArgs, stopped: AbortSignal): Promise<number> {
  if (parsed.central !== undefined) return await runCentral(parsed.central, parsed, stopped);
  const { configPath, level } = parsed;
  let config: AgentConfig;
  try {
    config = await loadAgentConfig(configPath);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`Bad config "${configPath}": ${err.message}`);
    return 2;
  }
  setupLogging(level);
  const missing = missingPermissions(config);
  if (missing !== undefined) {
    log.error("{problem}", { problem: missing });
    return 1;
  }
  let agent: Agent;
  try {
    agent = await Agent.start(config, { host: hostName(), envToken: tokenFromEnv() });
  } catch (err) {
    if (err instanceof StateLockedError || err instanceof ConfigError) {
      log.error("{problem}", { problem: err.message });
    } else log.error("Cannot start the agent: {error}", { error: describe(err) });
    return 1;
  }
  const reload = async (why: string) => {
    try {
      const next = await loadAgentConfig(configPath);
      const refused = missingPermissions(next);
      if (refused !== undefined) throw new ConfigError("", refused);
      const summary = await agent.reload(next);
      log.info("Config reloaded ({why}): {summary}", { why, summary });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      log.error("Config change refused, the running config stays: {problem}", {
        problem: err.message,
      });
      agent.noteError(`Config change refused, the running config stays: ${err.message}`);
    }
  };
  let reloads = Promise.resolve();
  const watching = watchConfig(configPath, (why) => {
    reloads = reloads.then(() => reload(why)).catch((err) =>
      log.error("Reload failed: {error}", { error: describe(err) })
    );
  }, { signal: stopped });
  if (!stopped.aborted) {
    await new Promise((resolve) => stopped.addEventListener("abort", resolve, { once: true }));
  }
  log.info("Stopping: waiting for batches in flight");
  await watching;
  await reloads;
  await agent.stop();
  return 0;
}

/** Where central configs seem to come from, for the paths they hold (relative ones: the cwd). */
const CENTRAL_PATH = "central-config.json";
/** The last central config applied, in the state folder. */
const CENTRAL_KEPT = "central-config.json";

/**
 * `central`'s part of every config: `doc` (a central config, or none) with the agent's own state
 * folder, id and token, and the server it polls when `doc` names no `servers`.
 *
 * @throws {ConfigError} naming the first key that is wrong.
 */
export function centralAgentConfig(
  central: CentralFlags,
  doc: Record<string, unknown> | undefined,
): AgentConfig {
  return checkAgentConfig({
    servers: [central.server],
    inputs: [],
    ...doc,
    state_dir: central.stateDir,
    id: central.id,
    token: central.token,
  }, join(Deno.cwd(), CENTRAL_PATH));
}

async function runCentral(
  central: CentralFlags,
  parsed: ParsedAgentArgs,
  stopped: AbortSignal,
): Promise<number> {
  setupLogging(parsed.level);
  const empty = centralAgentConfig(central, undefined);
  const missing = missingPermissions(empty);
  if (missing !== undefined) {
    log.error("{problem}", { problem: missing });
    return 1;
  }
  const kept = await keptConfig(central);
  const initial = kept?.config ?? empty;
  let agent: Agent;
  const host = hostName();
  const token = central.token ?? tokenFromEnv();
  try {
    agent = await Agent.start(initial, {
      host,
      envToken: tokenFromEnv(),
      configState: kept === undefined
        ? { state: "pending" }
        : { state: "applied", name: kept.name, version: kept.version },
    });
  } catch (err) {
    if (err instanceof StateLockedError || err instanceof ConfigError) {
      log.error("{problem}", { problem: err.message });
    } else log.error("Cannot start the agent: {error}", { error: describe(err) });
    return 1;
  }
  const apply = async ({ name, version, config }: CentralConfig) => {
    try {
      const next = centralAgentConfig(central, config);
      const refused = missingPermissions(next);
      if (refused !== undefined) throw new ConfigError("", refused);
      const summary = await agent.reload(next);
      agent.setConfigState({ state: "applied", name, version });
      await keepConfig(central, { name, version, config });
      log.info("Central config {name} version {version} applied: {summary}", {
        name,
        version,
        summary,
      });
    } catch (err) {
      const reason = err instanceof ConfigError ? err.message : describe(err);
      agent.noteError(`Central config ${name} version ${version} refused: ${reason}`);
      agent.setConfigState({ state: "refused", name, version, reason });
      log.error(
        "Central config {name} version {version} refused, the running config stays: {reason}",
        { name, version, reason },
      );
    }
  };
  log.info("Taking the config from {server} every {seconds} s", {
    server: central.server,
    seconds: central.pollMs / 1000,
  });
  await pollCentralConfig({
    server: central.server,
    token,
    id: agent.id,
    host,
    intervalMs: central.pollMs,
    version: kept?.version,
    apply,
    onProblem: (message) => agent.noteError(message),
  }, stopped);
  log.info("Stopping: waiting for batches in flight");
  await agent.stop();
  return 0;
}

/** The central config applied last time, if it is still good here. */
async function keptConfig(
  central: CentralFlags,
): Promise<{ name: string; version: number; config: AgentConfig } | undefined> {
  const path = join(central.stateDir, CENTRAL_KEPT);
  try {
    const { name, version, config } = JSON.parse(await Deno.readTextFile(path)) as CentralConfig;
    const checked = centralAgentConfig(central, config);
    const refused = missingPermissions(checked);
    if (refused !== undefined) throw new ConfigError("", refused);
    log.info("Running central config {name} version {version} kept from the last run", {
      name,
      version,
    });
    return { name, version, config: checked };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    log.warn("Cannot run the central config kept in {path} ({error}); waiting for the server's", {
      path,
      error: describe(err),
    });
    return undefined;
  }
}

/** Keeps `update` in the state folder for the next run (a failure is logged, not fatal). */
async function keepConfig(central: CentralFlags, update: CentralConfig): Promise<void> {
  const path = join(central.stateDir, CENTRAL_KEPT);
  try {
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(update) + "\n");
    await Deno.rename(`${path}.tmp`, path);
  } catch (err) {
    log.warn("Cannot keep the central config in {path} for the next run: {error}", {
      path,
      error: describe(err),
    });
  }
}
