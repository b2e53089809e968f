/**
 * logboom: a log aggregator. `serve` (the default) receives lines and stores them.
 *
 * ```sh
 * deno run --allow-net --allow-write main.ts -port 9000
 * ```
 *
 * @module
 */

import { runServe } from "./src/cli/serve.ts";

/** The subcommands, by name; `serve` runs when the first argument is a flag or absent. */
const COMMANDS: Record<string, (args: readonly string[]) => Promise<number>> = {
  serve: runServe,
};

/** Runs the subcommand `args` names and resolves with the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [first] = args;
  if (first === undefined || first.startsWith("-")) return await runServe(args);
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (command === undefined) {
    console.error(`Unknown command "${first}". Commands: ${Object.keys(COMMANDS).join(", ")}`);
    return 2;
  }
  return await command(args.slice(1));
}

if (import.meta.main) Deno.exit(await main(Deno.args));
