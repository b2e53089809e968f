/**
 * Which browser origins may use the API. A page of another site must not open a WebSocket to the
 * live tail (cross-site WebSocket hijacking: browsers send cookies but enforce no CORS on
 * WebSockets), nor post lines into the aggregator.
 *
 * @module
 */

import { isLoopback } from "../units.ts";

/** Options of {@linkcode checkOrigin}. */
export interface OriginPolicy {
  /** Origins allowed besides the server's own, e.g. `https://logs.example.com`; `*` allows all. */
  allowedOrigins?: readonly string[];
  /**
   * Also require a loopback `Host` header. For a server on loopback without a token, this stops
   * DNS rebinding: a site whose name resolves to 127.0.0.1 is same-origin with itself, but its
   * requests still carry its own name as `Host`. Default false.
   */
  loopbackHostOnly?: boolean;
}

/**
 * Why the request's `Origin` or `Host` is refused (answer 403), or `undefined` when it is
 * allowed. A request without `Origin` (curl, websocat, the `tail` command) comes from no web page
 * and is allowed; one with `Origin` must match its own `Host` (http or https) or be listed.
 */
export function checkOrigin(req: Request, policy: OriginPolicy = {}): string | undefined {
  const { allowedOrigins = [], loopbackHostOnly = false } = policy;
  // Deno.serve builds the URL from Host, so the URL stands in when the header is missing.
  const host = (req.headers.get("host") ?? new URL(req.url).host).toLowerCase();
  if (loopbackHostOnly && !isLoopback(host.replace(/:\d+$/, ""))) {
    return `Host "${host}" is not allowed: this server answers loopback names only`;
  }
  const origin = req.headers.get("origin");
  if (origin === null) return undefined;
  if (allowedOrigins.includes("*") || allowedOrigins.includes(origin)) return undefined;
  let sameSite = false;
  try {
    const url = new URL(origin);
    // Read Host as a URL of the origin's scheme, so default ports compare equal either way.
    sameSite = (url.protocol === "http:" || url.protocol === "https:") &&
      new URL(`${url.protocol}//${host}`).host === url.host;
  } catch {
    // "null" (sandboxed frames, file: pages) and garbage are refused.
  }
  return sameSite ? undefined : `Origin "${origin}" is not allowed`;
}
