/**
 * How the long-running subcommands stop: SIGINT or SIGTERM aborts a signal they watch. A command
 * that gives SIGHUP a meaning (`serve` reopens its files) catches it for as long as it runs, so
 * SIGHUP never ends it, whenever it comes.
 *
 * @module
 */

const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Options of {@linkcode untilStopped}. */
export interface StopOptions {
  /**
   * Called on each SIGHUP from before `run` starts until it has settled, so SIGHUP never ends the
   * process (Deno's default action). Without it SIGHUP keeps its default: a closed terminal ends
   * `logboom tail`.
   */
  onHangup?: () => void;
}

/**
 * Runs `run` with a signal that aborts on SIGINT or SIGTERM, and removes the listeners after, so
 * a second command in the same process (a test) starts clean.
 *
 * @example
 * ```ts
 * return await untilStopped((signal) => serve(config, signal));
 * ```
 */
export async function untilStopped<T>(
  run: (signal: AbortSignal) => Promise<T>,
  options: StopOptions = {},
): Promise<T> {
  const { onHangup } = options;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  // SIGHUP first: once the process catches SIGTERM, SIGHUP is safe too.
  if (onHangup) Deno.addSignalListener("SIGHUP", onHangup);
  for (const name of STOP_SIGNALS) Deno.addSignalListener(name, onSignal);
  try {
    return await run(stop.signal);
  } finally {
    for (const name of STOP_SIGNALS) Deno.removeSignalListener(name, onSignal);
    if (onHangup) Deno.removeSignalListener("SIGHUP", onHangup);
  }
}

/** The event {@linkcode hangupEvents} dispatches on each SIGHUP. */
export const HANGUP = "hangup";

/**
 * An event target that gets a {@linkcode HANGUP} event on each SIGHUP, and the
 * {@linkcode StopOptions} that make it so: a command listens once it has something to reopen,
 * and SIGHUP before that is ignored.
 *
 * @example
 * ```ts
 * const { hangups, options } = hangupEvents();
 * return await untilStopped((signal) => serve(config, signal, { hangups }), options);
 * ```
 */
export function hangupEvents(): { hangups: EventTarget; options: StopOptions } {
  const hangups = new EventTarget();
  return { hangups, options: { onHangup: () => hangups.dispatchEvent(new Event(HANGUP)) } };
}
