/**
 * Watches the agent's config file: a change (an editor's rename over it included) or `SIGHUP`
 * calls back, after a short quiet period so that a file written in several steps is read once.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";

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
  options: { signal: AbortSignal; quietMs?: number },
): Promise<void> {
  const { signal, quietMs = 100 } = options;
  if (signal.aborted) return;
  const full = resolve(path);
  const name = basename(full);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => onChange("file"), quietMs);
  };
  const onHangup = () => onChange("SIGHUP");
  Deno.addSignalListener("SIGHUP", onHangup);
  let watcher: Deno.FsWatcher | undefined;
  try {
    // The folder is watched, not the file: editors and config managers replace the file.
    watcher = Deno.watchFs(dirname(full), { recursive: false });
  } catch {
    // No file events here: SIGHUP still reloads.
  }
  const onAbort = () => watcher?.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (watcher !== undefined) {
      for await (const event of watcher) {
        if (event.kind === "access") continue;
        if (event.paths.some((p) => basename(p) === name)) later();
      }
    } else {
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    }
  } catch {
    // Closed on abort.
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    Deno.removeSignalListener("SIGHUP", onHangup);
  }
}
