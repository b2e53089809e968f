/**
 * The program's own structured logs: one logger (`@logtape/logtape`), always to stderr, never
 * into the log files it writes.
 *
 * @module
 */

import {
  configureSync,
  defaultTextFormatter,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";

/** The values `-logLevel` accepts. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevelName = typeof LOG_LEVELS[number];

const encoder = new TextEncoder();

/** Writes a record to stderr synchronously, so nothing is lost when the process exits. */
function stderrSink(record: LogRecord): void {
  const bytes = encoder.encode(defaultTextFormatter(record));
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
}

/** Sends every `logboom` logger at `level` or above to stderr. Call once at startup. */
export function setupLogging(level: LogLevelName): void {
  const lowestLevel: LogLevel = level === "warn" ? "warning" : level;
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["logboom"], lowestLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
