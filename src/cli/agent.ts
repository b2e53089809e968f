/**
 * `logboom agent -config FILE`: follows files and ships their lines to the servers (see
 * `src/agent/`). A bad config at startup is one line naming the key and exit code 2; an edit of the
 * config file (or SIGHUP) reloads it, and a bad edit is refused while the running config stays.
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
import { type AgentConfig, ConfigError, loadAgentConfig } from "../agent/config.ts";
import { watchConfig } from "../config_watch.ts";
import { compileGlob } from "../files/glob.ts";
import { hostName } from "../host_name.ts";
import { tokenFromEnv } from "../token.ts";
import { LOG_LEVELS, setupLogging } from "../logging.ts";
import { FlagError, type FlagSpecs, parseChoice, parseCommand, parseFlags } from "./flags.ts";

/** The flags of `agent`. */
export const AGENT_FLAGS: FlagSpecs = {
  config: { type: "string", value: "FILE", help: "The agent's config, YAML or JSON (required)" },
  logLevel: {
    type: "string",
    value: "LEVEL",
    default: "info",
    help: "Level of the agent's own logs on stderr: debug, info, warn or error",
  },
};

const SYNOPSIS = "logboom agent -config FILE [flags]";
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
  /** The config file (`""` when usage was asked for). */
  configPath: string;
  /** The level of the agent's own logs. */
  level: typeof LOG_LEVELS[number];
  /** Whether usage was asked for. */
  help: boolean;
}

function parseAgentArgs(args: readonly string[]): ParsedAgentArgs {
  const { values, positionals, help } = parseFlags(args, AGENT_FLAGS);
  if (help) return { configPath: "", level: "info", help };
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  if (typeof values.config !== "string" || values.config === "") {
    throw new FlagError(`Flag "-config" is required`);
  }
  const level = parseChoice("logLevel", values.logLevel as string, { choices: LOG_LEVELS });
  return { configPath: values.config, level, help };
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
