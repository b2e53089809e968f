/**
 * The program's own structured logs: one logger (`@logtape/logtape`), always to stderr, never
 * into the log files it writes.
 *
 * @module
 */

import { configureSync, getTextFormatter, type LogLevel, type LogRecord } from "@logtape/logtape";

/** The values `-logLevel` accepts. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevelName = typeof LOG_LEVELS[number];

const encoder = new TextEncoder();

/**
 * LogTape's text format, with string values as they are (control characters, escape sequences
 * and line breaks escaped, so a client-chosen name cannot forge a log line) instead of quoted:
 * a message quotes where it means to, e.g. `Cannot open log file "{path}": {error}`.
 */
export const formatRecord: (record: LogRecord) => string = getTextFormatter({ value: "bare" });

/** Writes a record to stderr synchronously, so nothing is lost when the process exits. */
function stderrSink(record: LogRecord): void {
  const bytes = encoder.encode(formatRecord(record));
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
