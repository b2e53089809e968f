/**
 * The flags of `serve` that bound connections over both listeners, TCP lines and the HTTP API:
 * `-maxConnections` and `-idleTimeout`.
 *
 * @module
 */

import { DEFAULT_MAX_CONNECTIONS } from "../config/server_config.ts";
import { type FlagSpecs, parseCount, parseDurationFlag } from "./flags.ts";

/** The default cap (why this number: see its definition with the `net` section's keys). */
export { DEFAULT_MAX_CONNECTIONS };

/** Flags of the connection limits, merged into `serve`'s. */
export const NET_FLAGS: FlagSpecs = {
  maxConnections: {
    type: "string",
    value: "N",
    default: String(DEFAULT_MAX_CONNECTIONS),
    help: "Most TCP and HTTP connections open at once, together; past it a new connection is " +
      "closed at once (HTTP answers 503) and counted in /metrics",
  },
  idleTimeout: {
    type: "string",
    value: "DURATION",
    default: "1h",
    help: "A TCP connection that sends nothing for this long is closed (TCP keepalive is on as " +
      "well); an HTTP connection waits at most this long, and never over 75s, between requests",
  },
};

/** The connection limits. */
export interface NetSettings {
  /** Most connections open at once, over both listeners. */
  maxConnections: number;
  /** How long a TCP connection may send nothing, in ms. */
  idleTimeoutMs: number;
}

/** Reads the connection flags from parsed values; throws `FlagError` for a bad one. */
export function parseNetFlags(values: Record<string, string | boolean>): NetSettings {
  const maxConnections = parseCount(
    "maxConnections",
    String(values.maxConnections ?? NET_FLAGS.maxConnections.default),
    { min: 1 },
  );
  return {
    maxConnections,
    idleTimeoutMs: parseDurationFlag(
      "idleTimeout",
      String(values.idleTimeout ?? NET_FLAGS.idleTimeout.default),
    ),
  };
}
