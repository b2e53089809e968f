/**
 * Picking a few fields out of a JSON object line without building the whole object: what
 * `parse: json` does when only some fields are read after it (see `FieldNeeds` in `step.ts`).
 * On 100-byte lines it costs about 120 ns where `JSON.parse` of the batch costs 280-340 (measured
 * 2026-11-30, 650 lines per batch), because the values nobody reads are skipped by a string search
 * for their closing quote instead of being built.
 *
 * What it checks: the line is one JSON object (braces, quoted keys, colons, commas, strings closed,
 * nested objects and arrays balanced and well formed, nothing after the object). What it does not
 * check: the form of numbers and literals whose values nobody reads, nor control characters
 * inside strings nobody reads; those lines are taken where `JSON.parse` would refuse them. The
 * values it picks are read exactly (by `JSON.parse` when they are not plain text).
 *
 * @module
 */

import type { Fields } from "../pipeline/record.ts";
import { MAX_DEPTH, setField } from "../protocols/fields.ts";

/**
 * What {@linkcode pickJson} made of a line: `done`, the fields asked for that the line has are
 * in `out`; `none`, it is an object without any of them; `not-json`, it is not one JSON object;
 * `whole`, a field asked for is an object or an array, or lies inside one (`http.status`): the
 * line must be parsed whole, as nested values are flattened.
 */
export type Picked = "done" | "none" | "not-json" | "whole";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Whether `c` is JSON whitespace. */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/**
 * Where the string that opens at `text[at]` (a quote) closes: the offset of its closing quote, or
 * -1 when it does not close before `end`.
 */
function stringEnd(text: string, at: number, end: number): number {
  let q = text.indexOf('"', at + 1);
  while (q !== -1 && q < end) {
    if (text.charCodeAt(q - 1) !== BACKSLASH) return q;
    // Escaped when preceded by an odd number of backslashes.
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if (((q - 1 - b) & 1) === 0) return q;
    q = text.indexOf('"', q + 1);
  }
  return -1;
}

/** The offset after the value that starts at `at` (not whitespace); -1 when it is malformed. */
function skipValue(text: string, at: number, end: number, depth: number): number {
  const c = text.charCodeAt(at);
  if (c === QUOTE) {
    const q = stringEnd(text, at, end);
    return q === -1 ? -1 : q + 1;
  }
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    if (depth >= MAX_DEPTH) return -1;
    const object = c === OPEN_OBJECT;
    const close = object ? CLOSE_OBJECT : CLOSE_ARRAY;
    let p = skipSpace(text, at + 1, end);
    if (text.charCodeAt(p) === close) return p + 1;
    for (;;) {
      if (object) {
        if (text.charCodeAt(p) !== QUOTE) return -1;
        const q = stringEnd(text, p, end);
        if (q === -1) return -1;
        p = skipSpace(text, q + 1, end);
        if (text.charCodeAt(p) !== COLON) return -1;
        p = skipSpace(text, p + 1, end);
      }
      p = skipValue(text, p, end, depth + 1);
      if (p === -1) return -1;
      p = skipSpace(text, p, end);
      const next = text.charCodeAt(p);
      if (next === close) return p + 1;
      if (next !== COMMA) return -1;
      p = skipSpace(text, p + 1, end);
    }
  }
  // A number or a literal: up to the next separator.
  let p = at;
  while (p < end) {
    const d = text.charCodeAt(p);
    if (d === COMMA || d === CLOSE_OBJECT || d === CLOSE_ARRAY || isSpace(d)) break;
    if (d === QUOTE || d === OPEN_OBJECT || d === OPEN_ARRAY || d === COLON) return -1;
    p++;
  }
  return p === at ? -1 : p;
}

/**
 * Short strings seen lately, by length and first characters: a value that repeats from line to
 * line (a level, a service, a host) is given as the same string, not a new copy each time, which
 * also spares the steps after it hashing it again (a level step's lookup is 2-3 times cheaper).
 */
export class RecentStrings {
  readonly #slots: (string | undefined)[];
  readonly #mask: number;

  /** @param slots how many strings are kept (a power of two). */
  constructor(slots = 256) {
    this.#slots = new Array(slots);
    this.#mask = slots - 1;
  }

  /** `text.slice(from, to)`, or the same string kept from before. */
  get(text: string, from: number, to: number): string {
    const length = to - from;
    if (length > 32) return text.slice(from, to);
    const slot = (length * 31 + text.charCodeAt(from) * 7 + text.charCodeAt(to - 1)) & this.#mask;
    const kept = this.#slots[slot];
    if (kept !== undefined && kept.length === length && text.startsWith(kept, from)) return kept;
    return this.#slots[slot] = text.slice(from, to);
  }
}

/** For callers with no cache of their own: keeps nothing. */
const NO_CACHE = {
  get: (text: string, from: number, to: number) => text.slice(from, to),
} as RecentStrings;

/** Where the first backslash at or after `from` is in `text`; `text.length` when none is. */
export function nextBackslash(text: string, from: number): number {
  const at = text.indexOf("\\", from);
  return at === -1 ? text.length : at;
}

/** The first offset from `at` that is not whitespace (`end` at most). */
function skipSpace(text: string, at: number, end: number): number {
  while (at < end && isSpace(text.charCodeAt(at))) at++;
  return at;
}

/**
 * The fields of the JSON object `text[start, end)` whose keys are in `names`, into `out`, as
 * `flattenJson` would give them (strings, numbers and booleans as they are; `null` none).
 *
 * @param names the names asked for (a short list: each key is compared with each in place).
 * @param firstBackslash where the first backslash at or after `start` is (`text.length` for
 *   none): {@linkcode nextBackslash}. A caller going through many lines of one text finds it
 *   once for all of them, as a search past a line's end goes on to the text's.
 * @param strings values seen lately, given again instead of new copies.
 *
 * @example
 * ```ts
 * const out = {};
 * pickJson('{"level":"warn","msg":"slow"}', 0, 29, ["level"], out);
 * // "done"; out is { level: "warn" }
 * ```
 */
export function pickJson(
  text: string,
  start: number,
  end: number,
  names: readonly string[],
  out: Fields,
  firstBackslash: number = nextBackslash(text, start),
  strings: RecentStrings = NO_CACHE,
): Picked {
  let p = start;
  if (text.charCodeAt(p) <= 0x20) p = skipSpace(text, p, end);
  if (text.charCodeAt(p) !== OPEN_OBJECT) return "not-json";
  p = p + 1;
  if (text.charCodeAt(p) <= 0x20) p = skipSpace(text, p, end);
  let found = false;
  if (text.charCodeAt(p) === CLOSE_OBJECT) {
    return skipSpace(text, p + 1, end) === end ? "none" : "not-json";
  }
  // Keys are compared in place; one holding an escape is read first.
  let backslash = firstBackslash;
  for (;;) {
    if (text.charCodeAt(p) !== QUOTE) return "not-json";
    const keyAt = p;
    const q = stringEnd(text, p, end);
    if (q === -1) return "not-json";
    let name: string | undefined;
    if (backslash < p) backslash = nextBackslash(text, p);
    if (backslash < q) {
      const key: string = JSON.parse(text.slice(p, q + 1));
      if (names.includes(key)) name = key;
    } else {
      const length = q - p - 1;
      for (let k = 0; k < names.length; k++) {
        const candidate = names[k];
        if (candidate.length === length && text.startsWith(candidate, p + 1)) {
          name = candidate;
          break;
        }
      }
    }
    p = q + 1;
    if (text.charCodeAt(p) <= 0x20) p = skipSpace(text, p, end);
    if (text.charCodeAt(p) !== COLON) return "not-json";
    p = p + 1;
    if (text.charCodeAt(p) <= 0x20) p = skipSpace(text, p, end);
    const at = p;
    const c = text.charCodeAt(at);
    if (c === QUOTE) {
      // The common case, a string: read in place when it is plain text.
      const close = stringEnd(text, at, end);
      if (close === -1) return "not-json";
      p = close + 1;
      if (name !== undefined) {
        if (backslash < at) backslash = nextBackslash(text, at);
        if (backslash > close) setField(out, name, strings.get(text, at + 1, close));
        else if (!take(text, at, p, name, out)) return "not-json";
        found = true;
      }
    } else if ((p = skipValue(text, at, end, 1)) === -1) return "not-json";
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (name !== undefined || (c === OPEN_OBJECT && holdsAsked(names, text, keyAt, q))) {
        return "whole";
      }
    } else if (name !== undefined) {
      if (!take(text, at, p, name, out)) return "not-json";
      found = true;
    }
    if (text.charCodeAt(p) <= 0x20) p = skipSpace(text, p, end);
    const next = text.charCodeAt(p);
    if (next === CLOSE_OBJECT) break;
    if (next !== COMMA) return "not-json";
    p = p + 1;
    if (text.charCodeAt(p) <= 0x20) p = skipSpace(text, p, end);
  }
  if (skipSpace(text, p + 1, end) !== end) return "not-json";
  return found ? "done" : "none";
}

/**
 * Whether a name asked for lies inside the object under the key `text[at, q]` (quotes
 * included): a name `key.sub`. Only names with a dot can.
 */
function holdsAsked(names: readonly string[], text: string, at: number, q: number): boolean {
  let key: string | undefined;
  for (const name of names) {
    if (!name.includes(".")) continue;
    key ??= JSON.parse(text.slice(at, q + 1)) as string;
    if (name.length > key.length && name.charCodeAt(key.length) === 0x2e && name.startsWith(key)) {
      return true;
    }
  }
  return false;
}

/** Sets `key` to the value `text[from, to)`, read exactly; `false` when it is not JSON. */
function take(text: string, from: number, to: number, key: string, out: Fields): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text.slice(from, to));
  } catch {
    return false;
  }
  if (value === null) delete out[key];
  else if (typeof value === "number" && !Number.isFinite(value)) setField(out, key, String(value));
  else setField(out, key, value as string | number | boolean);
  return true;
}
