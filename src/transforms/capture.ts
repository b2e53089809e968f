/**
 * Regexes with named groups for `parse: regex`, on the linear-time engine (`re2js`), under the
 * same bounds as every other user regex (`text/linear_regex.ts`: program size, characters looked
 * at). `(?<name>...)` and `(?P<name>...)` both name a group.
 *
 * @module
 */

import { RE2JS } from "re2js";
import type { Fields } from "../pipeline/record.ts";
import { setField } from "../protocols/fields.ts";
import { compileLinearRegex, DEFAULT_MAX_CHARS } from "../text/linear_regex.ts";

/** A compiled regex that fills fields from its named groups. */
export interface Capture {
  /** The pattern as written. */
  readonly source: string;
  /** Its named groups, in order. */
  readonly names: readonly string[];
  /**
   * Sets a field per named group that took part in the first match in `text` (at most the first
   * {@linkcode DEFAULT_MAX_CHARS} characters); `false` when the pattern does not match.
   */
  apply(text: string, fields: Fields): boolean;
}

/**
 * Compiles `pattern` (JavaScript syntax as far as RE2 has it).
 *
 * @throws {SyntaxError} `Invalid regex "<pattern>": <reason>` when it cannot run, is too large,
 * or names no group.
 *
 * @example
 * ```ts
 * const re = compileCapture("(?<method>[A-Z]+) (?<path>\\S+)");
 * const fields = {};
 * re.apply("GET /index.html HTTP/1.1", fields); // true
 * fields; // { method: "GET", path: "/index.html" }
 * ```
 */
export function compileCapture(pattern: string): Capture {
  // Checks the syntax and the size bound, with the message every user regex gets.
  compileLinearRegex(pattern);
  const re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  const names = Object.entries(re.re2().namedGroups ?? {})
    .sort(([, a], [, b]) => a - b)
    .map(([name]) => name);
  if (names.length === 0) {
    throw new SyntaxError(
      `Invalid regex "${pattern}": it names no group; write (?<name>...) for each field`,
    );
  }
  return {
    source: pattern,
    names,
    apply(text, fields) {
      const line = text.length > DEFAULT_MAX_CHARS ? text.slice(0, DEFAULT_MAX_CHARS) : text;
      const match = re.exec(line);
      if (match === null) return false;
      const groups = (match as { groups?: Record<string, string | undefined> }).groups ?? {};
      for (const name of names) {
        const value = groups[name];
        if (value !== undefined && value !== null) setField(fields, name, value);
      }
      return true;
    },
  };
}
