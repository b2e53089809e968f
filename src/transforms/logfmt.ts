/**
 * logfmt, as Heroku, Go's `log/slog` text handler and many others write it:
 * `level=info msg="user logged in" user=42 ok`. Keys are runs of characters up to `=` or a space;
 * a value is a bare word or a double-quoted string with `\"`, `\\`, `\n`, `\t`, `\r` escapes; a key
 * without `=` is `true`; `key=` is the empty string. Values stay strings (logfmt has no types),
 * but for the bare `key` (`true`).
 *
 * @module
 */

import type { Fields } from "../pipeline/record.ts";
import { setField } from "../protocols/fields.ts";

const SP = 0x20;
const TAB = 0x09;
const EQ = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Parses `text` as logfmt into `fields`; returns how many pairs it found, or -1 when `text` is
 * not logfmt (a quoted value left open, a pair without key such as `=x`, or no pair at all).
 *
 * @example
 * ```ts
 * const fields = {};
 * parseLogfmt('level=warn msg="disk low" pct=93', fields); // 3
 * fields; // { level: "warn", msg: "disk low", pct: "93" }
 * ```
 */
export function parseLogfmt(text: string, fields: Fields): number {
  const n = text.length;
  let i = 0;
  let pairs = 0;
  while (i < n) {
    let c = text.charCodeAt(i);
    if (c === SP || c === TAB) {
      i++;
      continue;
    }
    const keyStart = i;
    while (i < n) {
      c = text.charCodeAt(i);
      if (c === EQ || c === SP || c === TAB || c === QUOTE) break;
      i++;
    }
    if (i === keyStart) return -1; // `=value` or a stray quote
    const key = text.slice(keyStart, i);
    if (i >= n || c !== EQ) {
      if (c === QUOTE) return -1;
      setField(fields, key, true);
      pairs++;
      continue;
    }
    i++; // =
    if (i < n && text.charCodeAt(i) === QUOTE) {
      const value = quoted(text, i + 1);
      if (value === undefined) return -1;
      setField(fields, key, value.text);
      i = value.end;
    } else {
      const start = i;
      while (i < n) {
        c = text.charCodeAt(i);
        if (c === SP || c === TAB) break;
        i++;
      }
      setField(fields, key, text.slice(start, i));
    }
    pairs++;
  }
  return pairs === 0 ? -1 : pairs;
}

/** The quoted string from `start` (after its opening quote) and where it ends, or undefined. */
function quoted(text: string, start: number): { text: string; end: number } | undefined {
  const close = text.indexOf('"', start);
  if (close < 0) return undefined;
  const slash = text.indexOf("\\", start);
  if (slash < 0 || slash > close) return { text: text.slice(start, close), end: close + 1 };
  let out = "";
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return { text: out, end: i + 1 };
    if (c === BACKSLASH && i + 1 < text.length) {
      const next = text[i + 1];
      out += next === "n" ? "\n" : next === "t" ? "\t" : next === "r" ? "\r" : next;
      i += 2;
      continue;
    }
    out += text[i];
    i++;
  }
  return undefined;
}
