/**
 * Reads a server config file, YAML or JSON, into a {@linkcode ServerConfig}: a file that does not
 * parse, and every key that is wrong, unknown keys included, are reported together, each at its
 * key path.
 *
 * @module
 */

import { dirname } from "node:path";
import { parseDocument } from "yaml";
import { describe } from "../_util.ts";
import { formatProblem, type Problem } from "./keys.ts";
import { checkServerConfig, type ServerConfig } from "./server_config.ts";

/** A config that cannot be used, with every problem found in it. */
export class ConfigError extends Error {
  /** Each problem, at its key path (`""` for the file as a whole). */
  readonly problems: readonly Problem[];

  /**
   * @param file the config file, named in the message.
   * @param problems what is wrong.
   */
  constructor(file: string, problems: readonly Problem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`${file}: ${count}:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** The environment variables the `yaml` package reads (its debug switches) on every parse. */
const YAML_ENV = ["LOG_TOKENS", "LOG_STREAM"];

/**
 * Parses `text` as JSON when `file` ends in `.json`, as YAML otherwise, and checks it; relative
 * paths in it are taken from `file`'s folder.
 *
 * @throws {ConfigError} with every problem, when it does not parse or a key is wrong.
 */
export function parseServerConfig(text: string, file: string): ServerConfig {
  const doc = parseText(text, file);
  const { config, problems } = checkServerConfig(doc, { base: dirname(file) });
  if (!problems.empty) throw new ConfigError(file, problems.list);
  return config;
}

/**
 * Reads and checks the config file at `file`.
 *
 * @throws {ConfigError} when it cannot be read, does not parse, or a key is wrong.
 */
export async function loadServerConfig(file: string): Promise<ServerConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    const hint = err instanceof Deno.errors.NotCapable ? ` (run with --allow-read=${file})` : "";
    throw new ConfigError(file, [{ path: "", message: `cannot be read: ${describe(err)}${hint}` }]);
  }
  return parseServerConfig(text, file);
}

/**
 * Parses `text` as JSON when `file` ends in `.json`, as YAML otherwise, without checking what it
 * holds (`logboom rules test` reads only its `transforms` section).
 *
 * @throws {ConfigError} when it does not parse, or YAML cannot be read without env permission.
 */
export function parseConfigText(text: string, file: string): unknown {
  return parseText(text, file);
}

function parseText(text: string, file: string): unknown {
  if (file.toLowerCase().endsWith(".json")) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ConfigError(file, [{ path: "", message: `not valid JSON: ${describe(err)}` }]);
    }
  }
  const denied = YAML_ENV.filter((variable) =>
    Deno.permissions.querySync({ name: "env", variable }).state !== "granted"
  );
  if (denied.length > 0) {
    throw new ConfigError(file, [{
      path: "",
      message: `reading YAML needs --allow-env=${YAML_ENV.join(",")} (the yaml package reads ` +
        "these two debug variables); or write the config as JSON (a .json file)",
    }]);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((err) => ({ path: "", message: `not valid YAML: ${oneLine(err.message)}` })),
    );
  }
  return doc.toJS();
}

/** A YAML error's first line (the rest draws the spot in the text). */
function oneLine(message: string): string {
  return message.split("\n")[0].replace(/:$/, "");
}
