/**
 * logboom: a log aggregator. `serve` (the default) receives lines and stores them; `tail`
 * follows them live; `send` sends lines from files or stdin; `agent` follows files and ships them.
 *
 * ```sh
 * deno run --allow-net --allow-write main.ts -port 9000
 * ```
 *
 * @module
 */

import { runAgent } from "./src/cli/agent.ts";
import { runSend } from "./src/cli/send.ts";
import { runServe } from "./src/cli/serve.ts";
import { runTail } from "./src/cli/tail.ts";

/** The subcommands, by name; `serve` runs when the first argument is a flag or absent. */
const COMMANDS: Record<string, (args: readonly string[]) => Promise<number>> = {
  serve: runServe,
  tail: runTail,
  send: runSend,
  agent: runAgent,
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
