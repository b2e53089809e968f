/**
 * The units people write in flags and config files, in one low module every layer may import:
 * durations (`200ms`, `1h30m`, `7d`), sizes (`64KiB`, `1MiB`) and `host:port` addresses.
 * Each parser throws a `RangeError` quoting the value; callers add the flag or key that held it.
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

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a size in bytes such as `1048576`, `64KiB`, `1MiB` or `2g`: units are binary and
 * case-blind, and `0` is zero.
 *
 * @throws {RangeError} when `value` is not such a size or is too large to count exactly.
 *
 * @example
 * ```ts
 * parseSize("64KiB"); // 65536
 * parseSize("1m"); // 1048576
 * ```
 */
export function parseSize(value: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Number(match[1]) * unit : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`Expected a size in bytes such as 1048576 or 1MiB, got "${value}"`);
  }
  return bytes;
}

/** A parsed `host:port`. */
export interface HostPort {
  /** The host name or IP address, without brackets. */
  hostname: string;
  /** The port, 1-65535. */
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port`, or `:port` for every interface (`0.0.0.0`).
 *
 * @throws {RangeError} when `value` is not `host:port` with a port in 1-65535.
 *
 * @example
 * ```ts
 * parseHostPort("127.0.0.1:8081"); // { hostname: "127.0.0.1", port: 8081 }
 * parseHostPort("[::1]:9000"); // { hostname: "::1", port: 9000 }
 * ```
 */
export function parseHostPort(value: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (match === null || !(port >= 1 && port <= 65535)) {
    throw new RangeError(`Expected host:port such as "127.0.0.1:8081", got "${value}"`);
  }
  const hostname = match[1] ?? (match[2] === "" ? "0.0.0.0" : match[2]);
  return { hostname, port };
}

/** Formats a {@linkcode HostPort} back, bracketing IPv6 addresses. */
export function formatHostPort(address: HostPort): string {
  const { hostname, port } = address;
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/**
 * Whether `hostname` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`), which only
 * processes of this machine can reach. Brackets around an IPv6 address are allowed.
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host.replace(/^::ffff:/, ""));
  return v4 !== null && v4.slice(1).every((part) => Number(part) <= 255);
}
