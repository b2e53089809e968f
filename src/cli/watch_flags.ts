/**
 * `serve -watch PATH...`: the flag (the permission it needs is the `watch` component's, in
 * `config/inputs/watch.ts`).
 *
 * `-watch` takes a path or glob; more paths may follow the flags, so a shell-expanded glob works:
 * `logboom serve -port 9000 -watch /var/log/app/*.log`.
 *
 * @module
 */

import { FlagError, type FlagSpecs } from "./flags.ts";

/** The `-watch` flag of `serve`. */
export const WATCH_FLAGS: FlagSpecs = {
  watch: {
    type: "string",
    value: "PATH",
    help: "Follow local files (paths or globs; more may follow the flags) as an input, like " +
      "tail -F: rotation-safe, from their end",
  },
};

/**
 * The watched paths: `-watch`'s value, then the arguments after the flags.
 *
 * @throws {FlagError} for arguments after the flags without `-watch`, or a flag among them.
 */
export function parseWatchPaths(
  values: Record<string, string | boolean>,
  positionals: readonly string[],
): string[] {
  const first = values.watch;
  if (typeof first !== "string") {
    if (positionals.length > 0) throw new FlagError(`Unexpected argument "${positionals[0]}"`);
    return [];
  }
  const flag = positionals.find((p) => p.startsWith("-"));
  if (flag !== undefined) {
    throw new FlagError(`Flags go before the watched paths, got "${flag}" after them`);
  }
  const paths = [first, ...positionals];
  if (paths.some((p) => p.trim() === "")) throw new FlagError(`Flag "-watch" needs a path`);
  return paths;
}
