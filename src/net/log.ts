/**
 * Log lines of the listeners: a failed accept is one warning per error code per minute with the
 * count in between, so a storm of resets or a full descriptor table cannot flood stderr.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { describe } from "../_util.ts";

const EVERY_MS = 60_000;
const last = new Map<string, { at: number; since: number }>();

/** Logs a failed accept: the first of each code, then at most one a minute with the count. */
export function logAcceptError(log: Logger, code: string, err: unknown, now = Date.now()): void {
  const key = `${log.category.join(".")} ${code}`;
  const seen = last.get(key);
  if (seen !== undefined && now - seen.at < EVERY_MS) {
    seen.since++;
    return;
  }
  last.set(key, { at: now, since: 0 });
  const more = seen?.since ?? 0;
  if (code === "EMFILE" || code === "ENFILE") {
    log.warn(
      "Cannot accept a connection, out of file descriptors ({code}): new connections wait; " +
        "lower -maxConnections or raise the limit (ulimit -n). {more} more since the last report",
      { code, more },
    );
  } else {
    // A client that reset its connection before it was accepted: nothing to do about it.
    log.debug("Cannot accept a connection ({code}): {error}. {more} more since the last report", {
      code,
      error: describe(err),
      more,
    });
  }
}
