/**
 * `-format json`: each line stored as one JSON object with its metadata, so `jq` and friends can
 * read where it came from.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Keys of the object itself, which a label of the same name does not override. */
const RESERVED: ReadonlySet<string> = new Set(["ts", "source", "host", "time", "line"]);

/**
 * The batch's lines as JSON lines: `{"ts":"<ISO 8601 UTC>","source":"…","host":"…","line":"…"}`,
 * where `ts` is when logboom received the line. A batch with labels (syslog's `app`, `facility`,
 * `severity`) has them after `host`, and a line whose sender stated its time has it as `time`
 * (ISO 8601 UTC, milliseconds) before `line`; batches without either are encoded as before.
 * Decoding is the price of this format: invalid UTF-8 becomes U+FFFD (`raw` keeps the bytes).
 *
 * @example
 * ```ts
 * encodeJsonLines(batch); // {"ts":"2026-11-21T23:54:55.123Z","source":"tcp","host":"10.0.0.5","line":"hello"}\n
 * ```
 */
export function encodeJsonLines(batch: Batch): Uint8Array {
  const { source, host, labels } = batch.meta;
  let head = `{"ts":"${new Date(batch.receivedAt).toISOString()}","source":${
    JSON.stringify(source)
  },"host":${JSON.stringify(host)}`;
  if (labels !== undefined) {
    for (const [name, value] of Object.entries(labels)) {
      if (!RESERVED.has(name)) head += `,${JSON.stringify(name)}:${JSON.stringify(value)}`;
    }
  }
  head += `,"line":`;
  const lines = decoder.decode(batch.data).split("\n");
  lines.pop(); // the text after the last newline: always empty, a batch is whole lines
  const times = batch.times;
  let out = "";
  if (times === undefined) {
    for (const line of lines) out += head + JSON.stringify(line) + "}\n";
  } else {
    const start = head.slice(0, -8); // without `,"line":`
    for (let i = 0; i < lines.length; i++) {
      const time = times[i];
      // Dates reach 8.64e15 ms either side of 1970; beyond, toISOString throws.
      out += Math.abs(time) <= 8.64e15
        ? `${start},"time":"${new Date(time).toISOString()}","line":`
        : head;
      out += JSON.stringify(lines[i]) + "}\n";
    }
  }
  return encoder.encode(out);
}
