/**
 * logboom: a log aggregator. `serve` (the default) receives lines and stores them; `tail`
 * follows them live; `send` sends lines from files or stdin; `agent` follows files and ships them.
 *
 * ```sh
 * deno run --allow-net --allow-write main.ts -port 9000
 * deno task install   # the `logboom` command
 * ```
 *
 * @module
 */

import { runAgent } from "./src/cli/agent.ts";
import { formatUsage } from "./src/cli/flags.ts";
import { runSend } from "./src/cli/send.ts";
import { runServe, SERVE_FLAGS, SERVE_SYNOPSIS } from "./src/cli/serve.ts";
import { runTail } from "./src/cli/tail.ts";
import { runValidate } from "./src/cli/validate.ts";
import { VERSION } from "./src/cli/version.ts";

/** A subcommand: what runs it, and one line on what it does. */
interface Command {
  run: (args: readonly string[]) => Promise<number>;
  summary: string;
}

/** The subcommands, by name; `serve` runs when the first argument is a flag or absent. */
const COMMANDS: Record<string, Command> = {
  serve: {
    run: runServe,
    summary: "Receive lines over TCP and HTTP and store them in files (the default command)",
  },
  tail: { run: runTail, summary: "Follow a server's lines live, like tail -f, with filters" },
  send: {
    run: runSend,
    summary: "Send lines from files or stdin to a server, each batch acknowledged",
  },
  agent: {
    run: runAgent,
    summary: "Follow log files and ship their lines to servers, through rotations and restarts",
  },
  validate: {
    run: runValidate,
    summary: "Check a serve config file (-config FILE): every problem with its key path",
  },
};

const HELP_FLAGS = new Set(["-h", "-help", "--help"]);
const VERSION_FLAGS = new Set(["-version", "--version"]);

/** The top-level help: the subcommands, one line each, then the default command's flags. */
export function topLevelHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const commands = Object.entries(COMMANDS).map(([name, { summary }]) =>
    `  ${name.padEnd(width)}  ${summary}`
  );
  return [
    `logboom ${VERSION}: a log aggregator`,
    "",
    "Usage: logboom [COMMAND] [flags]",
    "",
    "Commands:",
    ...commands,
    "",
    "Run `logboom COMMAND -h` for a command's flags; `logboom --version` for the version.",
    "Flags without a command are serve's:",
    "",
    formatUsage(SERVE_SYNOPSIS, SERVE_FLAGS),
  ].join("\n");
}

/** Runs the subcommand `args` names and resolves with the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [first] = args;
  if (first !== undefined && HELP_FLAGS.has(first)) {
    console.log(topLevelHelp());
    return 0;
  }
  if (first !== undefined && VERSION_FLAGS.has(first)) {
    console.log(`logboom ${VERSION}`);
    return 0;
  }
  if (first === undefined || first.startsWith("-")) return await runServe(args);
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (command === undefined) {
    console.error(
      `Unknown command "${first}". Commands: ${Object.keys(COMMANDS).join(", ")} ` +
        "(logboom -h says what each does)",
    );
    return 2;
  }
  return await command.run(args.slice(1));
}

/** Whether `args` run a command that gives SIGHUP a meaning (reopen files, reload the config). */
function catchesHangup(args: readonly string[]): boolean {
  const [first] = args;
  return first === undefined || first.startsWith("-") || first === "serve" || first === "agent";
}

if (import.meta.main) {
  // `serve` and the agent handle SIGHUP while they run; from the process's first line to its
  // exit it must never end them either (Deno's default), also after they return. `tail` and
  // `send` keep the default: a closed terminal ends them.
  if (catchesHangup(Deno.args)) Deno.addSignalListener("SIGHUP", () => {});
  Deno.exit(await main(Deno.args));
}
