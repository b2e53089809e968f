/**
 * What the protocol decoders share: the neutral record's field values, level names and their
 * normalization, flattening of nested values into dotted keys, and times given as text or numbers.
 *
 * @module
 */

import { HttpError } from "../net/http_error.ts";

export { type Fields, type FieldValue, type Level, LEVELS } from "../pipeline/record.ts";
import { type Fields, type FieldValue, type Level, LEVELS } from "../pipeline/record.ts";

/**
 * Nesting a decoder follows before it refuses a value: OTLP `AnyValue`s, JSON documents flattened
 * into fields. Deeper input is refused with a clear error rather than walked.
 */
export const MAX_DEPTH = 32;

/**
 * Sets `fields[key] = value`, also when `key` is `__proto__` (which a plain assignment would
 * silently drop, or worse, take as the object's prototype).
 */
export function setField(fields: Fields, key: string, value: FieldValue): void {
  if (key === "__proto__") {
    Object.defineProperty(fields, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    fields[key] = value;
  }
}

const LEVEL_NAMES: ReadonlyMap<string, Level> = new Map<string, Level>([
  ["trace", "trace"],
  ["trc", "trace"],
  ["t", "trace"],
  ["finest", "trace"],
  ["verbose", "trace"],
  ["debug", "debug"],
  ["dbg", "debug"],
  ["d", "debug"],
  ["fine", "debug"],
  ["finer", "debug"],
  ["info", "info"],
  ["inf", "info"],
  ["i", "info"],
  ["information", "info"],
  ["informational", "info"],
  ["notice", "info"],
  ["log", "info"],
  ["warn", "warn"],
  ["warning", "warn"],
  ["wrn", "warn"],
  ["w", "warn"],
  ["error", "error"],
  ["err", "error"],
  ["eror", "error"],
  ["e", "error"],
  ["severe", "error"],
  ["fatal", "fatal"],
  ["ftl", "fatal"],
  ["f", "fatal"],
  ["critical", "fatal"],
  ["crit", "fatal"],
  ["alert", "fatal"],
  ["emerg", "fatal"],
  ["emergency", "fatal"],
  ["panic", "fatal"],
]);

/**
 * The level a severity name or number means, or `undefined`.
 *
 * - Names, case-insensitive: trace (`trc`, `t`, `finest`, `verbose`), debug (`dbg`, `d`, `fine`,
 *   `finer`), info (`inf`, `i`, `information`, `informational`, `notice`, `log`), warn (`warning`,
 *   `wrn`, `w`), error (`err`, `e`, `severe`), fatal (`ftl`, `f`, `critical`, `crit`, `alert`,
 *   `emerg`, `emergency`, `panic`). OpenTelemetry's numbered names (`INFO2`, `WARN4`) count as
 *   their base name.
 * - Numbers (or numeric text): 0 to 7 are syslog severities (0-2 fatal, 3 error, 4 warn, 5-6 info,
 *   7 debug); 10 and up are pino and bunyan levels (10 trace, 20 debug, 30 info, 40 warn,
 *   50 error, 60 and up fatal, each up to the next ten).
 */
export function normalizeLevel(value: unknown): Level | undefined {
  if (typeof value === "number") return levelOfNumber(value);
  if (typeof value !== "string" || value.length === 0 || value.length > 13) return undefined;
  let name = value.toLowerCase();
  let level = LEVEL_NAMES.get(name);
  if (level !== undefined) return level;
  const last = name.charCodeAt(name.length - 1);
  if (last >= 0x30 && last <= 0x39) {
    const first = name.charCodeAt(0);
    if (first >= 0x30 && first <= 0x39) {
      const n = Number(name);
      return Number.isFinite(n) ? levelOfNumber(n) : undefined;
    }
    if (last <= 0x34 && name.length > 2) {
      name = name.slice(0, -1);
      level = LEVEL_NAMES.get(name);
      if (level !== undefined) return level;
    }
  }
  return undefined;
}

function levelOfNumber(n: number): Level | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  if (n < 8) {
    if (n < 3) return "fatal";
    if (n < 4) return "error";
    if (n < 5) return "warn";
    if (n < 7) return "info";
    return "debug";
  }
  if (n < 10) return undefined;
  if (n < 20) return "trace";
  if (n < 30) return "debug";
  if (n < 40) return "info";
  if (n < 50) return "warn";
  if (n < 60) return "error";
  return "fatal";
}

/**
 * The level of an OpenTelemetry `SeverityNumber`: 1-4 trace, 5-8 debug, 9-12 info, 13-16 warn,
 * 17-20 error, 21-24 fatal; `undefined` for 0 (unspecified) and anything else.
 */
export function levelOfSeverityNumber(n: number): Level | undefined {
  if (!(n >= 1 && n <= 24)) return undefined;
  return LEVELS[((n - 1) / 4) | 0];
}

/** Thrown when a value nests deeper than {@linkcode MAX_DEPTH}. */
export class DepthError extends Error {
  constructor() {
    super(`Value nested deeper than ${MAX_DEPTH} levels`);
    this.name = "DepthError";
  }
}

/**
 * Flattens a JSON value (as `JSON.parse` gives it) into `fields` under `key`: objects into
 * `key.sub` keys, strings, finite numbers and booleans as they are, arrays as JSON text, an empty
 * object as `{}`, `null` skipped. Throws {@linkcode DepthError} past {@linkcode MAX_DEPTH}.
 *
 * @param key the key of `value`, or `""` to flatten an object's own keys at the top.
 */
export function flattenJson(fields: Fields, key: string, value: unknown, depth = 0): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      setField(fields, key, value);
      return;
    case "number":
      setField(fields, key, Number.isFinite(value) ? value : String(value));
      return;
    case "object": {
      if (value === null) return;
      if (Array.isArray(value)) {
        if (depth >= MAX_DEPTH) throw new DepthError();
        setField(fields, key, JSON.stringify(value));
        return;
      }
      if (depth >= MAX_DEPTH) throw new DepthError();
      let empty = true;
      for (const sub in value) {
        empty = false;
        flattenJson(
          fields,
          key === "" ? sub : key + "." + sub,
          (value as Record<string, unknown>)[sub],
          depth + 1,
        );
      }
      if (empty && key !== "") setField(fields, key, "{}");
      return;
    }
    default:
      return;
  }
}

/**
 * Milliseconds since the epoch of a time given as a number or numeric text, by its size: below
 * 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds. Other text is
 * read by `Date.parse` (RFC 3339 / ISO 8601). `undefined` when it is none of these.
 */
export function timeMsOf(value: unknown): number | undefined {
  if (typeof value === "number") return scaleEpoch(value);
  if (typeof value !== "string" || value.length === 0) return undefined;
  const first = value.charCodeAt(0);
  if (first >= 0x30 && first <= 0x39 && value.charCodeAt(4) !== 0x2d) {
    const n = Number(value);
    if (Number.isFinite(n)) return scaleEpoch(n, value);
  }
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function scaleEpoch(n: number, text?: string): number | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  if (n < 1e11) return Math.floor(n * 1000);
  if (n < 1e14) return Math.floor(n);
  if (n < 1e17) return Math.floor(n / 1000);
  // Nanoseconds: exact from the digits when there are any (a double loses the last ones).
  if (text !== undefined && text.length > 6 && text.indexOf(".") < 0) {
    return Number(text.slice(0, -6));
  }
  return Math.floor(n / 1e6);
}

/**
 * Milliseconds of a decimal count of nanoseconds since the epoch (OTLP's `timeUnixNano`, Loki's
 * timestamps), exactly, or `undefined` when `text` is not all digits.
 */
export function nanosTextToMs(text: string): number | undefined {
  const n = text.length;
  if (n === 0 || n > 20) return undefined;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  return n <= 6 ? 0 : Number(text.slice(0, n - 6));
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex of bytes (trace and span ids). */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/** Standard base64 of bytes (`bytes` values, as the OTLP JSON mapping writes them). */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  }
  return btoa(s);
}

/**
 * Records one request may decode into, by default. A record costs a few hundred bytes of memory
 * while its wire form can be 2 bytes (an empty OTLP log record or Loki entry), so the body size
 * alone does not bound memory; senders batch far less (OpenTelemetry SDKs 512, Promtail about
 * 1 MiB of lines, Filebeat 1,600 documents).
 */
export const DEFAULT_MAX_RECORDS = 100_000;

/** An error for a request that holds more than `max` records: 413, send smaller batches. */
export function tooManyRecords(max: number): HttpError {
  return new HttpError(413, `The request holds more than ${max} records; send smaller batches`);
}
