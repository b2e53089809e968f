/**
 * The HTTP API's flags of `serve`: `-http`, `-token`, `-maxBody`, `-maxSubscribers`,
 * `-allowOrigin`, `-headerTimeout`, `-bodyTimeout`. The rule that an API other machines can reach
 * needs a token is the `http` component's (`config/inputs/http.ts`).
 *
 * @module
 */

import { FlagError, type FlagSpecs, parseBytes, parseDurationFlag } from "./flags.ts";
import { type HostPort, parseHostPort } from "../units.ts";

/** Flags of the HTTP API, merged into `serve`'s. */
export const HTTP_FLAGS: FlagSpecs = {
  http: {
    type: "string",
    value: "ADDR:PORT",
    default: "127.0.0.1:8081",
    help: "HTTP API (ingest, live tail, metrics); off disables it",
  },
  token: {
    type: "string",
    value: "T",
    default: "",
    help: "Bearer token every HTTP route but /healthz requires (default: env LOGBOOM_TOKEN); " +
      "required when -http is not a loopback address",
  },
  maxBody: {
    type: "string",
    value: "BYTES",
    default: "16MiB",
    help: "Largest HTTP ingest body, compressed and decompressed",
  },
  maxSubscribers: {
    type: "string",
    value: "N",
    default: "1000",
    help: "Most live-tail subscribers at once",
  },
  tailRate: {
    type: "string",
    value: "LINES",
    default: "200000",
    help: "Lines per second sent to all live tails together, shared evenly, and less while " +
      "ingestion runs above 100,000 lines/s; a tail over its share is told what it missed; " +
      "0 for no bound",
  },
  allowOrigin: {
    type: "string",
    value: "ORIGINS",
    default: "",
    help: "Comma-separated browser origins allowed besides the server's own, e.g. " +
      "https://logs.example.com, or *",
  },
  headerTimeout: {
    type: "string",
    value: "DURATION",
    default: "10s",
    help: "An HTTP request's head must arrive within this long of its first byte (of the " +
      "connection, for its first request), or the connection is closed",
  },
  bodyTimeout: {
    type: "string",
    value: "DURATION",
    default: "30s",
    help: "An HTTP request body that sends nothing for this long is given up and the connection " +
      "closed",
  },
};

/** The HTTP API's settings. */
export interface HttpSettings {
  /** Where it listens; `undefined` when `-http off`. */
  address: HostPort | undefined;
  /** The bearer token; `""` for none. */
  token: string;
  /** Largest ingest body, in bytes. */
  maxBody: number;
  /** Most live-tail subscribers at once. */
  maxSubscribers: number;
  /** Browser origins allowed besides the server's own. */
  allowedOrigins: string[];
  /** Lines per second for all live tails together; `Infinity` for no bound. */
  tailRate: number;
  /** How long a request head may take, in ms. */
  headerTimeoutMs: number;
  /** How long a request body may send nothing, in ms. */
  bodyTimeoutMs: number;
}

/** Reads the HTTP flags from parsed values; throws {@linkcode FlagError} for a bad one. */
export function parseHttpFlags(values: Record<string, string | boolean>): HttpSettings {
  const rawHttp = String(values.http ?? HTTP_FLAGS.http.default);
  let address: HostPort | undefined;
  if (rawHttp !== "off") {
    try {
      address = parseHostPort(rawHttp);
    } catch (err) {
      throw new FlagError(`Flag "-http" takes ADDR:PORT or off: ${(err as Error).message}`);
    }
  }
  const rawMax = String(values.maxSubscribers ?? HTTP_FLAGS.maxSubscribers.default);
  const maxSubscribers = /^\d+$/.test(rawMax) ? Number(rawMax) : NaN;
  if (!Number.isSafeInteger(maxSubscribers) || maxSubscribers < 1) {
    throw new FlagError(`Flag "-maxSubscribers" takes a whole number above 0, got "${rawMax}"`);
  }
  const rawRate = String(values.tailRate ?? HTTP_FLAGS.tailRate.default);
  const rate = /^\d{1,12}$/.test(rawRate) ? Number(rawRate) : NaN;
  if (Number.isNaN(rate)) {
    throw new FlagError(
      `Flag "-tailRate" takes lines per second, or 0 for no bound, got "${rawRate}"`,
    );
  }
  const allowedOrigins = String(values.allowOrigin ?? "").split(",").map((o) => o.trim())
    .filter((o) => o !== "");
  for (const origin of allowedOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/]+$/.test(origin)) {
      throw new FlagError(
        `Flag "-allowOrigin" takes origins such as https://logs.example.com, got "${origin}"`,
      );
    }
  }
  return {
    address,
    token: String(values.token ?? ""),
    maxBody: parseBytes("maxBody", String(values.maxBody ?? HTTP_FLAGS.maxBody.default)),
    maxSubscribers,
    allowedOrigins,
    tailRate: rate === 0 ? Infinity : rate,
    headerTimeoutMs: parseDurationFlag(
      "headerTimeout",
      String(values.headerTimeout ?? HTTP_FLAGS.headerTimeout.default),
    ),
    bodyTimeoutMs: parseDurationFlag(
      "bodyTimeout",
      String(values.bodyTimeout ?? HTTP_FLAGS.bodyTimeout.default),
    ),
  };
}
