/**
 * How the long-running subcommands stop: SIGINT or SIGTERM aborts a signal they watch.
 *
 * @module
 */

const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/**
 * Runs `run` with a signal that aborts on SIGINT or SIGTERM, and removes the listeners after, so
 * a second command in the same process (a test) starts clean.
 *
 * @example
 * ```ts
 * return await untilStopped((signal) => serve(config, signal));
 * ```
 */
export async function untilStopped<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const name of STOP_SIGNALS) Deno.addSignalListener(name, onSignal);
  try {
    return await run(stop.signal);
  } finally {
    for (const name of STOP_SIGNALS) Deno.removeSignalListener(name, onSignal);
  }
}
