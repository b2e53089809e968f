/**
 * `logboom validate -config FILE`: checks a server config file without running it. Every problem
 * is printed with its key path and the exit code is 2; a good file prints `OK` and exits 0.
 *
 * @module
 */

import { ConfigError, loadServerConfig } from "../config/load.ts";
import { FlagError, type FlagSpecs, parseCommand, parseFlags } from "./flags.ts";

/** The flags of `validate`. */
export const VALIDATE_FLAGS: FlagSpecs = {
  config: {
    type: "string",
    value: "FILE",
    help: "The server config file to check, YAML or JSON (a .json file)",
  },
};

const SYNOPSIS = "logboom validate -config FILE";

interface ParsedValidateArgs {
  file: string;
  help: boolean;
}

function parseValidateArgs(args: readonly string[]): ParsedValidateArgs {
  const { values, positionals, help } = parseFlags(args, VALIDATE_FLAGS);
  if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
  const file = values.config;
  if (!help && (typeof file !== "string" || file.trim() === "")) {
    throw new FlagError(`Flag "-config" is required: the file to check`);
  }
  return { file: String(file ?? ""), help };
}

/** The `validate` command: resolves with the exit code, 0 for a good file, 2 otherwise. */
export async function runValidate(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(args, parseValidateArgs, {
    synopsis: SYNOPSIS,
    specs: VALIDATE_FLAGS,
  });
  if (typeof parsed === "number") return parsed;
  try {
    const config = await loadServerConfig(parsed.file);
    const inputs = [
      ...(config.http.address === undefined ? [] : ["http"]),
      ...Object.keys(config.inputs),
    ];
    const transforms = config.transforms === undefined
      ? ""
      : `; transforms: ${Object.keys(config.transforms).join(", ") || "none"}`;
    const alerts = config.alerts === undefined
      ? ""
      : `; alerts: ${Object.keys(config.alerts).join(", ") || "none"}`;
    console.log(
      `${parsed.file}: OK (inputs: ${inputs.join(", ")}; sinks: ${
        Object.keys(config.sinks).join(", ")
      }${transforms}${alerts})`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
}
