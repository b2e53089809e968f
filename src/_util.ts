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

/**
 * The bytes of `parts` one after another, in a new array of `total` bytes (their summed length),
 * for joining a few reads or frames into one write.
 *
 * @example
 * ```ts
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])], 3); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
