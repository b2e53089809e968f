/**
 * `-format json`: each line stored as one JSON object with its metadata, so `jq` and friends can
 * read where it came from.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The batch's lines as JSON lines: `{"ts":"<ISO 8601 UTC>","source":"…","host":"…","line":"…"}`.
 * Decoding is the price of this format: invalid UTF-8 becomes U+FFFD (`raw` keeps the bytes).
 *
 * @example
 * ```ts
 * encodeJsonLines(batch); // {"ts":"2026-11-21T23:54:55.123Z","source":"tcp","host":"10.0.0.5","line":"hello"}\n
 * ```
 */
export function encodeJsonLines(batch: Batch): Uint8Array {
  const { source, host } = batch.meta;
  const head = `{"ts":"${new Date(batch.receivedAt).toISOString()}","source":${
    JSON.stringify(source)
  },"host":${JSON.stringify(host)},"line":`;
  const lines = decoder.decode(batch.data).split("\n");
  lines.pop(); // the text after the last newline: always empty, a batch is whole lines
  let out = "";
  for (const line of lines) out += head + JSON.stringify(line) + "}\n";
  return encoder.encode(out);
}
