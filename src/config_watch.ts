/**
 * Watches a config file (the agent's, and `serve -config`'s): a change (an editor's rename over
 * it included) or `SIGHUP` calls back, after a short quiet period so that a file written in
 * several steps is read once. A low module: both commands use it, and it imports nothing of
 * either.
 *
 * The folder is watched, not the file, as editors and config managers replace the file. When the
 * watch ends or fails (the folder was removed, the watch went away), it is made again, with
 * backoff while the folder is missing, and the file is read again then, as it may have changed
 * while nobody watched.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { basename, dirname, resolve } from "node:path";
import { describe } from "./_util.ts";

/** Makes a watcher of a folder, as `Deno.watchFs` does (a seam for tests). */
export type WatchFs = (path: string, options: { recursive: boolean }) => Deno.FsWatcher;

/** Options of {@linkcode watchConfig}. */
export interface WatchConfigOptions {
  /** Stops watching. */
  signal: AbortSignal;
  /** Quiet period before calling back, in ms. Default 100. */
  quietMs?: number;
  /** First wait before watching again after the watch ended, in ms (doubling to 5 s). Default 100. */
  retryMs?: number;
  /** Makes the folder's watcher. Default `Deno.watchFs`. */
  watchFs?: WatchFs;
}

const log = getLogger(["logboom", "config"]);
const RETRY_MAX_MS = 5000;

/**
 * Calls `onChange` when the file at `path` changes or the process gets SIGHUP, until `signal`
 * aborts. Resolves once watching has stopped.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * const watching = watchConfig("agent.yaml", () => reload(), { signal: stop.signal });
 * ```
 */
export async function watchConfig(
  path: string,
  onChange: (why: "file" | "SIGHUP") => void,
  options: WatchConfigOptions,
): Promise<void> {
  const { signal, quietMs = 100, retryMs = 100, watchFs = Deno.watchFs } = options;
  if (signal.aborted) return;
  const full = resolve(path);
  const folder = dirname(full);
  const name = basename(full);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => onChange("file"), quietMs);
  };
  const onHangup = () => onChange("SIGHUP");
  Deno.addSignalListener("SIGHUP", onHangup);
  let watcher: Deno.FsWatcher | undefined;
  const onAbort = () => watcher?.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    let failures = 0;
    while (!signal.aborted) {
      try {
        watcher = watchFs(folder, { recursive: false });
      } catch (err) {
        // No file events here (or the folder is gone): SIGHUP still reloads meanwhile.
        if (failures++ === 0) {
          log.warn("Cannot watch {folder} for config changes ({error}): trying again", {
            folder,
            error: describe(err),
          });
        }
        await pause(Math.min(RETRY_MAX_MS, retryMs * 2 ** Math.min(failures, 10)), signal);
        continue;
      }
      // Watched again after a gap: the file may have changed meanwhile.
      if (failures > 0) later();
      failures = 0;
      try {
        for await (const event of watcher) {
          if (event.kind === "access") continue;
          if (event.paths.some((p) => basename(p) === name)) later();
          // The folder itself went: this watch sees nothing of a folder made in its place.
          if (event.kind === "remove" && event.paths.includes(folder)) break;
        }
      } catch (err) {
        if (!signal.aborted) {
          log.debug("The config watch ended ({error}): watching again", { error: describe(err) });
        }
      }
      watcher.close();
      if (signal.aborted) break;
      failures = 1;
      await pause(retryMs, signal);
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    Deno.removeSignalListener("SIGHUP", onHangup);
  }
}

/** Waits `ms`, or until `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timeout);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timeout = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
