/**
 * Small helpers shared across folders.
 *
 * @module
 */

/** The message of an error, or the value as text: for log lines and one-line startup errors. */
export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Waits `ms` milliseconds. When `signal` aborts first (or already has), rejects with its reason
 * and clears the timer, so a cancelled wait leaves nothing behind.
 *
 * @example
 * ```ts
 * await sleep(backoff, signal).catch(() => {}); // then look at signal.aborted
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Whether the process may read `path`, asked without a prompt: optional reads (noticing a
 * renamed log file, mending a torn line, reloading stream marks) are skipped without it, so the
 * design card's `--allow-net --allow-write` keeps working.
 */
export function canRead(path: string): boolean {
  return Deno.permissions.querySync({ name: "read", path }).state === "granted";
}
