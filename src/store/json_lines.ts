/**
 * `-format json`: each line stored as one JSON object with its metadata, so `jq` and friends can
 * read where it came from.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { LEVELS } from "../pipeline/record.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Keys of the object itself, which a label of the same name does not override. */
const RESERVED: ReadonlySet<string> = new Set([
  "ts",
  "level",
  "source",
  "host",
  "time",
  "line",
  "fields",
]);

/** `,"level":"<name>"` by level code (0: none). */
const LEVEL_KEYS: readonly string[] = ["", ...LEVELS.map((level) => `,"level":"${level}"`)];

/**
 * The batch's lines as JSON lines: `{"ts":"<ISO 8601 UTC>","source":"…","host":"…","line":"…"}`,
 * where `ts` is when logboom received the line (always there, and in arrival order; the
 * sender's own claim is `time`). A line with a level (`Batch.levels`) has it as `level` right
 * after `ts`; a batch with labels (syslog's `app`, `facility`, `severity`) has them after
 * `host`; a line whose sender stated its time has it as `time` (ISO 8601 UTC, milliseconds)
 * before `line`; a line with fields (`Batch.fields`, not empty) has them as the object `fields`
 * after `line`. Batches without any of these are encoded as before. Decoding is the price of
 * this format: invalid UTF-8 becomes U+FFFD (`raw` keeps the bytes).
 *
 * @example
 * ```ts
 * encodeJsonLines(batch); // {"ts":"2026-11-21T23:54:55.123Z","source":"tcp","host":"10.0.0.5","line":"hello"}\n
 * // with levels and fields:
 * // {"ts":"…","level":"warn","source":"api","host":"10.0.0.5","line":"slow","fields":{"ms":912}}\n
 * ```
 */
export function encodeJsonLines(batch: Batch): Uint8Array {
  const { source, host, labels } = batch.meta;
  const ts = `{"ts":"${new Date(batch.receivedAt).toISOString()}"`;
  let meta = `,"source":${JSON.stringify(source)},"host":${JSON.stringify(host)}`;
  if (labels !== undefined) {
    for (const [name, value] of Object.entries(labels)) {
      if (!RESERVED.has(name)) meta += `,${JSON.stringify(name)}:${JSON.stringify(value)}`;
    }
  }
  const lines = decoder.decode(batch.data).split("\n");
  lines.pop(); // the text after the last newline: always empty, a batch is whole lines
  const { times, levels, fields } = batch;
  let out = "";
  if (times === undefined && levels === undefined && fields === undefined) {
    const head = ts + meta + `,"line":`;
    for (const line of lines) out += head + JSON.stringify(line) + "}\n";
    return encoder.encode(out);
  }
  for (let i = 0; i < lines.length; i++) {
    out += ts;
    if (levels !== undefined) out += LEVEL_KEYS[levels[i]] ?? "";
    out += meta;
    if (times !== undefined) {
      const time = times[i];
      // Dates reach 8.64e15 ms either side of 1970; beyond, toISOString throws.
      if (Math.abs(time) <= 8.64e15) out += `,"time":"${new Date(time).toISOString()}"`;
    }
    out += `,"line":` + JSON.stringify(lines[i]);
    const own = fields?.[i];
    if (own !== undefined && hasKeys(own)) out += `,"fields":` + JSON.stringify(own);
    out += "}\n";
  }
  return encoder.encode(out);
}

/** Whether `object` has an own enumerable key. */
function hasKeys(object: object): boolean {
  for (const key in object) if (Object.hasOwn(object, key)) return true;
  return false;
}
