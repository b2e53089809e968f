/**
 * The commands of logboom, by name, with the top-level help and version. `main.ts` loads this
 * module once it catches SIGHUP.
 *
 * @module
 */

import { runAgent } from "./agent.ts";
import { formatUsage } from "./flags.ts";
import { runSend } from "./send.ts";
import { runRules } from "./rules.ts";
import { runServe, SERVE_FLAGS, SERVE_SYNOPSIS } from "./serve.ts";
import { runTail } from "./tail.ts";
import { runValidate } from "./validate.ts";
import { VERSION } from "./version.ts";

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
  store: {
    // Loaded when run: the NATS client takes 60-100 ms to load, which no other command needs.
    run: async (args) => (await import("./store.ts")).runStore(args),
    summary: "Storage worker: write a NATS JetStream stream's lines to files and/or PostgreSQL",
  },
  rules: {
    run: runRules,
    summary: "Try a config's transform rules on sample lines: rules test -config FILE < sample",
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
