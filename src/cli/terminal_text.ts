/**
 * Log lines made safe and readable for a terminal. Log content comes from anyone who can send a
 * line: escape sequences in it could retitle the window, rewrite what is on screen, or hide text,
 * so control characters are shown as escapes instead of being obeyed.
 *
 * @module
 */

/**
 * C0 controls but tab, DEL, C1 controls, and the bidirectional overrides and isolates that can
 * make text display in an order other than the one it has.
 */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Shows control characters as escapes: `\x1b` for ESC, `\u202e` for a bidi override; tab stays.
 *
 * @example
 * ```ts
 * escapeControl("\x1b[2Jgone"); // "\\x1b[2Jgone"
 * ```
 */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * JSON text with the same characters escaped as `\uXXXX` (JSON.stringify leaves DEL, C1 and bidi
 * controls raw), so `-json` output is still valid JSON and safe on a terminal.
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const RESET = "\x1b[0m";
const LEVEL =
  /\b(FATAL|PANIC|EMERG|ALERT|CRIT(?:ICAL)?|ERROR|ERR|WARN(?:ING)?|WRN|INFO|INF|NOTICE|DEBUG|DBG|TRACE|TRC)\b/i;
const COLOURS: Record<string, string> = {
  fatal: "\x1b[1;31m",
  panic: "\x1b[1;31m",
  emerg: "\x1b[1;31m",
  alert: "\x1b[1;31m",
  crit: "\x1b[1;31m",
  critical: "\x1b[1;31m",
  error: "\x1b[31m",
  err: "\x1b[31m",
  warn: "\x1b[33m",
  warning: "\x1b[33m",
  wrn: "\x1b[33m",
  info: "\x1b[32m",
  inf: "\x1b[32m",
  notice: "\x1b[36m",
  debug: "\x1b[2m",
  dbg: "\x1b[2m",
  trace: "\x1b[2m",
  trc: "\x1b[2m",
};

/**
 * Colours the first level word of an (already escaped) line: red for errors, yellow for
 * warnings, green for info, dim for debug.
 *
 * @example
 * ```ts
 * colourLevel("2026-01-01 ERROR disk full"); // "2026-01-01 \x1b[31mERROR\x1b[0m disk full"
 * ```
 */
export function colourLevel(line: string): string {
  const match = LEVEL.exec(line);
  if (match === null) return line;
  const colour = COLOURS[match[1].toLowerCase()];
  const end = match.index + match[1].length;
  return `${line.slice(0, match.index)}${colour}${match[1]}${RESET}${line.slice(end)}`;
}

/** How a dropped-lines marker looks: impossible to mistake for a log line. */
export function droppedMarker(count: number, colour: boolean): string {
  const text = `--- logboom: ${count} line${
    count === 1 ? "" : "s"
  } dropped here (too slow or away) ---`;
  return colour ? `\x1b[7;33m${text}${RESET}` : text;
}
