/**
 * Dissect patterns, as Elasticsearch's and Logstash's dissect processors read them: text cut at
 * literal delimiters, no regular expression. `%{client} - - [%{ts}] "%{method} %{path} %{proto}"`
 * reads an access log line: each `%{key}` takes the text up to the first occurrence of the
 * literal that follows it (the last one, to the end of the line).
 *
 * - `%{key}` a field; `%{}` and `%{?key}` skip the text (named for readability only);
 * - `%{key->}` also skips repeats of the delimiter that follows (columns padded with spaces);
 * - every other character is a literal that must be there; two keys with nothing between them
 *   are refused, as nothing would tell where the first ends.
 *
 * Time is linear in the line: each delimiter is searched once, from where the last one ended.
 *
 * @module
 */

import type { Fields } from "../pipeline/record.ts";
import { setField } from "../protocols/fields.ts";

/** One key of a pattern and the literal that follows it. */
interface Part {
  /** The field's name; `undefined` for a skipped key. */
  readonly key: string | undefined;
  /** Skip repeats of `after` (`->`). */
  readonly pad: boolean;
  /** The literal after the key; `""` for the last key, which takes the rest. */
  readonly after: string;
}

/** A compiled dissect pattern. */
export interface Dissect {
  /** The pattern as written. */
  readonly pattern: string;
  /** The field names it sets, in order. */
  readonly keys: readonly string[];
  /**
   * Cuts `text` into `fields`; returns `false` (with `fields` partly filled) when a literal is
   * not where the pattern says.
   */
  apply(text: string, fields: Fields): boolean;
}

const KEY = /%\{([^}]*)\}/g;
const NAME = /^[A-Za-z_@][A-Za-z0-9_.@-]{0,63}$/;

/**
 * Compiles a dissect pattern.
 *
 * @throws {SyntaxError} when it has no key, a key is not a name, or two keys touch.
 *
 * @example
 * ```ts
 * const d = compileDissect('%{ip} [%{ts}] "%{method} %{path}"');
 * const fields = {};
 * d.apply('10.0.0.1 [22/Nov/2026:10:00:00 +0000] "GET /a"', fields); // true
 * fields; // { ip: "10.0.0.1", ts: "22/Nov/2026:10:00:00 +0000", method: "GET", path: "/a" }
 * ```
 */
export function compileDissect(pattern: string): Dissect {
  const parts: Part[] = [];
  let prefix = "";
  let last = 0;
  let pending: { key: string | undefined; pad: boolean } | undefined;
  for (const match of pattern.matchAll(KEY)) {
    const literal = pattern.slice(last, match.index);
    if (pending === undefined) prefix = literal;
    else if (literal === "") {
      throw new SyntaxError(
        `Invalid dissect pattern "${pattern}": %{${match[1]}} follows another key with no ` +
          "text between them",
      );
    } else parts.push({ ...pending, after: literal });
    pending = readKey(match[1], pattern);
    last = match.index + match[0].length;
  }
  if (pending === undefined) {
    throw new SyntaxError(`Invalid dissect pattern "${pattern}": no %{key} in it`);
  }
  parts.push({ ...pending, after: pattern.slice(last) });
  const keys = parts.flatMap((p) => p.key === undefined ? [] : [p.key]);
  return { pattern, keys, apply: (text, fields) => cut(text, prefix, parts, fields) };
}

function readKey(inside: string, pattern: string): { key: string | undefined; pad: boolean } {
  let name = inside;
  const pad = name.endsWith("->");
  if (pad) name = name.slice(0, -2);
  if (name === "" || name.startsWith("?")) return { key: undefined, pad };
  if (!NAME.test(name)) {
    throw new SyntaxError(
      `Invalid dissect pattern "${pattern}": %{${inside}} is not a field name (letters, digits, ` +
        "_ . @ -, up to 64)",
    );
  }
  return { key: name, pad };
}

function cut(text: string, prefix: string, parts: readonly Part[], fields: Fields): boolean {
  if (!text.startsWith(prefix)) return false;
  let pos = prefix.length;
  for (let k = 0; k < parts.length; k++) {
    const { key, pad, after } = parts[k];
    let end: number;
    if (after === "") end = text.length;
    else {
      end = text.indexOf(after, pos);
      if (end < 0) return false;
    }
    if (key !== undefined) setField(fields, key, text.slice(pos, end));
    pos = end + after.length;
    if (pad && after !== "") { while (text.startsWith(after, pos)) pos += after.length; }
  }
  // The last literal must end the line, unless the last key took the rest.
  return parts[parts.length - 1].after === "" || pos === text.length;
}
