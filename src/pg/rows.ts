/**
 * A batch as rows of PostgreSQL's COPY text format, one row per line, in the column order of
 * {@linkcode COPY_COLUMNS}: tab-separated, `\N` for NULL, backslash, tab, newline and carriage
 * return escaped. Encoded once, when the sink is given the batch (its bytes are borrowed), so the
 * queue holds exactly what is sent.
 *
 * Text PostgreSQL would refuse is made storable rather than refused (a refused COPY would hold
 * the queue for ever): bytes that are not UTF-8 become U+FFFD, as do NUL characters, which
 * neither `text` nor `jsonb` can hold.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { LEVELS } from "../pipeline/record.ts";

/** The columns a COPY names, in the order {@linkcode encodeRows} writes them. */
export const COPY_COLUMNS = [
  "ts",
  "time",
  "source",
  "host",
  "level",
  "message",
  "fields",
  "labels",
];

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** Level text by code (0: none, NULL). */
const LEVEL_TEXT: readonly string[] = ["\\N", ...LEVELS];
/** Characters COPY's text format needs escaped, and NUL. */
// deno-lint-ignore no-control-regex
const NEEDS_ESCAPE = /[\\\t\n\r\u0000]/;
// deno-lint-ignore no-control-regex
const ESCAPED = /[\\\t\n\r\u0000]/g;
const ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\u0000": "\uFFFD",
};

/** `text` as a field of COPY's text format. */
export function copyText(text: string): string {
  return NEEDS_ESCAPE.test(text) ? text.replace(ESCAPED, (c) => ESCAPES[c]) : text;
}

/** A value as JSON text jsonb takes (no `\u0000`), escaped for COPY; `\N` for none. */
export function copyJson(value: object | undefined): string {
  if (value === undefined) return "\\N";
  let empty = true;
  for (const key in value) {
    if (Object.hasOwn(value, key)) {
      empty = false;
      break;
    }
  }
  if (empty) return "\\N";
  let json = JSON.stringify(value);
  if (json.includes("\\u0000")) {
    json = JSON.stringify(
      value,
      (_, v) => typeof v === "string" ? v.replaceAll("\u0000", "\uFFFD") : v,
    );
  }
  return copyText(json);
}

/** A time in ms as COPY text for `timestamptz`; `\N` when not a time. */
function copyTime(ms: number): string {
  // Dates reach 8.64e15 ms either side of 1970; PostgreSQL's from 4713 BC.
  return Number.isFinite(ms) && ms >= -2e14 && ms <= 8.64e15 ? new Date(ms).toISOString() : "\\N";
}

/** Years 1970 to 9999 in ms: a receive time outside (a clock gone wrong) is taken as now. */
const LAST_MS = Date.UTC(9999, 11, 31);

/** `ms` as a receive time the table partitions by: now when it is not a time of 1970-9999. */
function saneTime(ms: number): number {
  return Number.isFinite(ms) && ms >= 0 && ms <= LAST_MS ? ms : Date.now();
}

/** The rows of one batch. */
export interface Rows {
  /** COPY text, one row per line of the batch. */
  readonly data: Uint8Array;
  /** How many rows. */
  readonly rows: number;
  /** The batch's receive time, ms since the epoch (the partition key). */
  readonly receivedAt: number;
}

/**
 * The batch's lines as COPY rows: `ts` (receive time), `time` (the sender's, or NULL), `source`,
 * `host`, `level` (or NULL), `message` (the line without its newline), `fields` (jsonb or NULL),
 * `labels` (the batch's labels, e.g. syslog's app, as jsonb or NULL).
 *
 * @example
 * ```ts
 * decode(encodeRows(batch).data);
 * // "2026-11-30T10:00:00.000Z\t\\N\tweb\t10.0.0.5\twarn\tslow\t{\"ms\":912}\t\\N\n"
 * ```
 */
export function encodeRows(batch: Batch): Rows {
  const { source, host, labels } = batch.meta;
  const { times, levels, fields } = batch;
  const receivedAt = saneTime(batch.receivedAt);
  const head = copyTime(receivedAt) + "\t";
  const meta = "\t" + copyText(source) + "\t" + copyText(host) + "\t";
  const labelText = "\t" + copyJson(labels) + "\n";
  const lines = decoder.decode(batch.data).split("\n");
  lines.pop(); // after the last newline: always empty, a batch is whole lines
  let out = "";
  if (times === undefined && levels === undefined && fields === undefined) {
    const before = head + "\\N" + meta + "\\N\t";
    const after = "\t\\N" + labelText;
    for (const line of lines) out += before + copyText(line) + after;
  } else {
    for (let i = 0; i < lines.length; i++) {
      out += head + (times === undefined ? "\\N" : copyTime(times[i])) + meta +
        (levels === undefined ? "\\N" : LEVEL_TEXT[levels[i]] ?? "\\N") + "\t" +
        copyText(lines[i]) + "\t" + copyJson(fields?.[i]) + labelText;
    }
  }
  return { data: encoder.encode(out), rows: lines.length, receivedAt };
}
