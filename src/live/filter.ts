/**
 * Subscription filters: what a live tail asks for (a source, a text, a regex), checked and
 * compiled once at subscribe into what the hub's offer loop runs per batch.
 *
 * @module
 */

import { compileLinearRegex, type LinearRegex } from "../text/linear_regex.ts";

/** What a subscriber asks to see; every part left out matches every line. */
export interface FilterOptions {
  /** Only lines of this source (exact match). Default: every source. */
  source?: string;
  /** Only lines containing this text (case-sensitive). Default: every line. */
  grep?: string;
  /**
   * Only lines this regular expression matches, run on a linear-time engine (RE2's algorithm, so
   * no lookahead nor backreferences): a string is compiled without flags; a `RegExp` keeps its
   * `i`, `m` and `s` flags. Combined with `grep`, both must match. The pattern looks at the
   * first `regexLineChars` characters of a line (a hub option), and its time comes out of the
   * hub's filter budget: lines it had no time for are counted as dropped.
   */
  regex?: string | RegExp;
}

/** A compiled subscription filter. */
export interface Filter {
  /** The one source whose lines match; `undefined` for every source. */
  readonly source: string | undefined;
  /** `undefined` when every line of the source matches, so the hot loop skips the call. */
  readonly test: ((line: string) => boolean) | undefined;
  /** The grep text: searched in the whole batch, so lines without it are never cut out. */
  readonly needle: string | undefined;
  /** Whether `needle` alone decides (grep without regex): matches are counted, not cut out. */
  readonly grepOnly: boolean;
  /** Whether a regex takes part: its time comes out of the filter budget. */
  readonly regex: boolean;
}

/**
 * Checks and compiles a filter: `TypeError` for a part of the wrong type, `SyntaxError` for an
 * invalid regex. `maxChars` is how many characters of a line the regex looks at.
 */
export function compileFilter(options: FilterOptions, maxChars: number): Filter {
  const { source, grep, regex } = options;
  if (source !== undefined && typeof source !== "string") {
    throw new TypeError(`Source filter must be a string, got "${String(source)}"`);
  }
  if (grep !== undefined && typeof grep !== "string") {
    throw new TypeError(`Grep filter must be a string, got "${String(grep)}"`);
  }
  let re: LinearRegex | undefined;
  if (regex instanceof RegExp || (typeof regex === "string" && regex !== "")) {
    re = compileLinearRegex(regex, { maxChars });
  } else if (regex !== undefined && regex !== "") {
    throw new TypeError(`Regex filter must be a string or a RegExp, got "${String(regex)}"`);
  }
  const text = grep === "" ? undefined : grep;
  let test: ((line: string) => boolean) | undefined;
  if (text !== undefined && re !== undefined) test = (line) => line.includes(text) && re.test(line);
  else if (text !== undefined) test = (line) => line.includes(text);
  else if (re !== undefined) test = (line) => re.test(line);
  return {
    source: source === "" ? undefined : source,
    test,
    needle: text,
    // A match across a newline belongs to no line: with a newline in the text, lines are tested.
    grepOnly: text !== undefined && re === undefined && !text.includes("\n"),
    regex: re !== undefined,
  };
}
