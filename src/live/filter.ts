/**
 * Subscription filters: what a live tail asks for (a source, a text, a regex, a least level,
 * field values), checked and compiled once at subscribe into what the hub's offer loop runs per
 * batch.
 *
 * @module
 */

import { type Fields, type Level, levelCode, LEVELS } from "../pipeline/record.ts";
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
  /**
   * Only lines with this level or a higher one (`warn`: warn, error and fatal), read from the
   * batch's levels column: a line without a level never matches. Default: every line.
   */
  level?: Level;
  /**
   * Only lines whose fields hold all of these values, read from the batch's fields column: a
   * value matches a field whose value as text is the same (`"500"` matches the number 500,
   * `"true"` the boolean). A line without the field never matches. Default: every line.
   */
  fields?: Readonly<Record<string, string>>;
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
  /** The least level code a line must have (`record.ts`); 0 for no level filter. */
  readonly minLevel: number;
  /** The fields a line must hold, with their values as text; `undefined` for none. */
  readonly fields: readonly (readonly [name: string, value: string])[] | undefined;
  /**
   * Whether a level or fields filter takes part: lines are then checked one by one against the
   * batch's columns (cheap and bounded, so outside the filter budget), and a batch without the
   * column asked for has no line that matches.
   */
  readonly columns: boolean;
}

/**
 * Checks and compiles a filter: `TypeError` for a part of the wrong type, `SyntaxError` for an
 * invalid regex. `maxChars` is how many characters of a line the regex looks at.
 */
export function compileFilter(options: FilterOptions, maxChars: number): Filter {
  const { source, grep, regex, level, fields } = options;
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
  if (level !== undefined && !(LEVELS as readonly unknown[]).includes(level)) {
    throw new RangeError(
      `Level filter must be one of ${LEVELS.join(", ")}, got "${String(level)}"`,
    );
  }
  const wanted = fieldsWanted(fields);
  const minLevel = levelCode(level);
  const columns = minLevel > 0 || wanted !== undefined;
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
    grepOnly: text !== undefined && re === undefined && !columns && !text.includes("\n"),
    regex: re !== undefined,
    minLevel,
    fields: wanted,
    columns,
  };
}

/**
 * Whether line `i` matches the filter's level and fields, given its batch's columns (either may
 * be `undefined`, then no line has a level, or fields).
 */
export function columnsMatch(
  filter: Filter,
  levels: Uint8Array | undefined,
  fields: readonly (Readonly<Fields> | undefined)[] | undefined,
  i: number,
): boolean {
  if (filter.minLevel > 0 && (levels === undefined || levels[i] < filter.minLevel)) return false;
  const wanted = filter.fields;
  if (wanted === undefined) return true;
  const own = fields?.[i];
  if (own === undefined) return false;
  for (const [name, value] of wanted) {
    if (!Object.hasOwn(own, name) || String(own[name]) !== value) return false;
  }
  return true;
}

/**
 * Whether a batch with these columns may hold a matching line at all: not when the filter asks
 * for a level and the batch has no levels, or for fields and it has none.
 */
export function columnsMayMatch(
  filter: Filter,
  levels: Uint8Array | undefined,
  fields: readonly unknown[] | undefined,
): boolean {
  return (filter.minLevel === 0 || levels !== undefined) &&
    (filter.fields === undefined || fields !== undefined);
}

function fieldsWanted(
  fields: Readonly<Record<string, string>> | undefined,
): [string, string][] | undefined {
  if (fields === undefined) return undefined;
  if (typeof fields !== "object" || fields === null) {
    throw new TypeError(`Fields filter must be an object, got "${String(fields)}"`);
  }
  const wanted: [string, string][] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (name === "") throw new RangeError("A field filter needs a field name");
    if (typeof value !== "string") {
      throw new TypeError(`Field filter "${name}" must be a string, got "${String(value)}"`);
    }
    wanted.push([name, value]);
  }
  return wanted.length === 0 ? undefined : wanted;
}
