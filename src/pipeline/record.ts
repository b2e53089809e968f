/**
 * The record model: a line that can carry, besides its bytes, a time, a level and fields.
 *
 * A batch holds records column by column, each column only when something asked for it: `data`
 * (the lines' bytes, always), `times` (each line's own time), `levels` and `fields`. A plain line
 * from TCP pays for none of them; an input that parses (syslog, OTLP, Loki, Elasticsearch) or a
 * rule that extracts fills the columns it has, once per batch, and sinks read only the columns
 * they use. See `docs/design.md`, "The record model".
 *
 * @module
 */

/** A field value: nested values are flattened into dotted keys, arrays become JSON text. */
export type FieldValue = string | number | boolean;

/** A record's fields, by dotted key (`http.status`, `service.name`). */
export type Fields = Record<string, FieldValue>;

/** The normalized levels, lowest first. */
export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

/** A normalized level. */
export type Level = typeof LEVELS[number];

/**
 * A level as stored in a batch's `levels` column: 0 for none, else its place in
 * {@linkcode LEVELS} plus one, so that codes compare as levels do.
 *
 * @example
 * ```ts
 * levelCode("warn"); // 4
 * levelCode("warn") > levelCode("info"); // true
 * ```
 */
export function levelCode(level: Level | undefined): number {
  return level === undefined ? 0 : LEVELS.indexOf(level) + 1;
}

/**
 * The level of a `levels` code; `undefined` for 0 (none) or a code out of range.
 *
 * @example
 * ```ts
 * levelOfCode(4); // "warn"
 * ```
 */
export function levelOfCode(code: number): Level | undefined {
  return code >= 1 && code <= LEVELS.length ? LEVELS[code - 1] : undefined;
}
