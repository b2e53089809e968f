/**
 * `host:port` addresses on command lines: `127.0.0.1:8081`, `[::1]:8081`, `localhost:8081`, and
 * `:8081` for every interface.
 *
 * @module
 */

/** A parsed `host:port`. */
export interface HostPort {
  /** The host name or IP address, without brackets. */
  hostname: string;
  /** The port, 1-65535. */
  port: number;
}

/**
 * Parses `host:port`. An empty host (`:8081`) means every interface, `0.0.0.0`.
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
