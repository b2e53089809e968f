/**
 * logboom: a log aggregator. `serve` (the default) receives lines and stores them; `tail`
 * follows them live; `send` sends lines from files or stdin; `agent` follows files and ships them.
 *
 * ```sh
 * deno run --allow-net --allow-write main.ts -port 9000
 * deno task install   # the `logboom` command
 * ```
 *
 * This module imports nothing before it catches SIGHUP: loading the commands takes 0.1-0.15 s, and
 * a SIGHUP then (logrotate's postrotate, a closed terminal) would end the process, Deno's default.
 *
 * @module
 */

/** Whether `args` run a command that gives SIGHUP a meaning (reopen files, reload the config). */
function catchesHangup(args: readonly string[]): boolean {
  const [first] = args;
  return first === undefined || first.startsWith("-") || first === "serve" || first === "agent";
}

if (import.meta.main) {
  // `serve` and the agent handle SIGHUP while they run; from the process's first line to its
  // exit it must never end them either, also after they return. `tail` and `send` keep the
  // default: a closed terminal ends them.
  if (catchesHangup(Deno.args)) Deno.addSignalListener("SIGHUP", () => {});
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
