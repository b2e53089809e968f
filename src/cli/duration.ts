/**
 * Durations written as on Go's command lines: `200ms`, `5s`, `1h30m`, plus `d` for days.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
};

/** One `<number><unit>` term; `ms` must come before `m` so `200ms` is not read as minutes. */
const TERM = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;

/**
 * Parses a duration into milliseconds: one or more `<number><unit>` terms with units `ms`, `s`,
 * `m`, `h` and `d` (24 hours), as in `24h`, `1h30m` or `1.5s`. A bare `0` is zero; any other
 * number needs a unit, so `-rotate 5` is not silently read as 5 ms.
 *
 * @throws {RangeError} when `value` is not such a duration, is too long to count in milliseconds
 * exactly, or does not come to a whole number of milliseconds.
 *
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5400000
 * parseDuration("200ms"); // 200
 * parseDuration("7d"); // 604800000
 * ```
 */
export function parseDuration(value: string): number {
  if (value === "0") return 0;
  let ms = 0;
  let at = 0;
  while (at < value.length) {
    TERM.lastIndex = at;
    const match = TERM.exec(value);
    if (match === null) break;
    ms += Number(match[1]) * UNIT_MS[match[2]];
    at = TERM.lastIndex;
  }
  if (at === 0 || at !== value.length) {
    throw new RangeError(
      `Expected a duration such as "200ms", "5s", "1h30m" or "7d", got "${value}"`,
    );
  }
  if (ms > Number.MAX_SAFE_INTEGER) throw new RangeError(`Duration "${value}" is too long`);
  if (!Number.isInteger(ms)) {
    throw new RangeError(`Duration "${value}" is not a whole number of milliseconds`);
  }
  return ms;
}
