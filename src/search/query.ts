/**
 * A search's query, read from the URL of `GET /api/v1/search` (and of the histogram): text,
 * regex, time range, source glob, least level and field values, each checked with a clear
 * message for a 400.
 *
 * @module
 */

import { parseDuration } from "../units.ts";
import { levelCode, LEVELS } from "../pipeline/record.ts";
import { compileLinearRegex, type LinearRegex } from "../text/linear_regex.ts";
import { compileSourceGlob, type SourceGlob } from "../transforms/source_glob.ts";

/** Default and largest `limit`. */
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 100_000;
/** Characters of a line a regex looks at (as the live tail's default). */
export const REGEX_CHARS = 8192;

/** What a search looks for; every part left out matches every line. */
export interface SearchQuery {
  /** Text each line must contain (case-sensitive), as given. */
  q?: string;
  /** The pattern, on the linear-time engine. */
  regex?: LinearRegex;
  /** Earliest receive time, ms since the epoch (inclusive). */
  from: number;
  /** Latest receive time, ms since the epoch (inclusive). */
  to: number;
  /** Sources that match. */
  source?: SourceGlob;
  /** The least level code (`record.ts`), 0 for any. */
  minLevel: number;
  /** Field values a line must hold (JSON-format lines), as text. */
  fields: [name: string, value: string][];
  /** Most lines answered. */
  limit: number;
}

/** A query parameter that cannot be used: the message is the 400's. */
export class QueryError extends Error {
  /** @param message what is wrong, for the client. */
  constructor(message: string) {
    super(message);
    this.name = "QueryError";
  }
}

/**
 * A time as a query gives it: ISO 8601, `now`, `now-15m` (any duration of `units.ts`), or
 * milliseconds since the epoch.
 *
 * @example
 * ```ts
 * parseTime("now-15m", Date.parse("2026-11-30T10:00:00Z")); // 2026-11-30T09:45:00Z in ms
 * parseTime("2026-11-30T10:00:00Z"); // 1795946400000
 * ```
 */
export function parseTime(value: string, now = Date.now()): number {
  const text = value.trim();
  if (text === "now") return now;
  const relative = /^now\s*([-+])\s*(.+)$/.exec(text);
  if (relative !== null) {
    let ms: number;
    try {
      ms = parseDuration(relative[2]);
    } catch {
      throw new QueryError(`Cannot read the time "${value}": use now-15m, now-2h, now-7d`);
    }
    return relative[1] === "-" ? now - ms : now + ms;
  }
  if (/^\d{1,16}$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) {
    throw new QueryError(
      `Cannot read the time "${value}": use ISO 8601 (2026-11-30T10:00:00Z), now-15m, or ` +
        "milliseconds since the epoch",
    );
  }
  return ms;
}

/** Reads a query from URL parameters; `withLimit` false for the histogram (no limit). */
export function parseQuery(params: URLSearchParams, now = Date.now()): SearchQuery {
  const known = new Set(["q", "regex", "from", "to", "source", "level", "limit", "buckets"]);
  for (const name of params.keys()) {
    if (!known.has(name) && !name.startsWith("field.")) {
      throw new QueryError(
        `Unknown parameter "${name}": use q, regex, from, to, source, level, field.NAME, limit`,
      );
    }
  }
  const q = params.get("q") || undefined;
  if (q !== undefined && new TextEncoder().encode(q).length > 65536) {
    throw new QueryError("The text q is longer than 64 KiB");
  }
  let regex: LinearRegex | undefined;
  const pattern = params.get("regex");
  if (pattern) {
    try {
      regex = compileLinearRegex(pattern, { maxChars: REGEX_CHARS });
    } catch (err) {
      throw new QueryError(`Bad regex: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const from = params.has("from") ? parseTime(params.get("from")!, now) : -Infinity;
  const to = params.has("to") ? parseTime(params.get("to")!, now) : Infinity;
  if (from > to) throw new QueryError(`"from" is after "to"`);
  const sourceText = params.get("source");
  const source = sourceText ? compileSourceGlob(sourceText) : undefined;
  const level = params.get("level");
  if (level && !(LEVELS as readonly string[]).includes(level)) {
    throw new QueryError(`Unknown level "${level}": use ${LEVELS.join(", ")}`);
  }
  const fields: [string, string][] = [];
  for (const [name, value] of params) {
    if (!name.startsWith("field.")) continue;
    const field = name.slice("field.".length);
    if (field === "") throw new QueryError("A field filter needs a name: field.NAME=VALUE");
    fields.push([field, value]);
  }
  let limit = DEFAULT_LIMIT;
  const limitText = params.get("limit");
  if (limitText !== null) {
    limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_LIMIT) {
      throw new QueryError(`"limit" must be a whole number from 1 to ${MAX_LIMIT}`);
    }
  }
  return {
    q,
    regex,
    from,
    to,
    source,
    minLevel: level ? levelCode(level as typeof LEVELS[number]) : 0,
    fields,
    limit,
  };
}
