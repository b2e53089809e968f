/**
 * What logboom's HTTP clients (`send`, the agent) share when a server refuses a request: how long
 * a `Retry-After` may make them wait, and what to tell the user about a 401.
 *
 * @module
 */

import { TOKEN_ENV } from "./api/auth.ts";

/**
 * The longest wait a `Retry-After` gets, in ms: a server (or a proxy in front of it) asking for
 * hours is waited on for a minute, then asked again.
 */
export const RETRY_AFTER_CAP_MS = 60_000;

/**
 * How long a `Retry-After` value asks to wait, in ms, at most {@linkcode RETRY_AFTER_CAP_MS}:
 * delay-seconds or an HTTP date; 0 when absent or not understood.
 *
 * @example
 * ```ts
 * retryAfterMs("2"); // 2000
 * retryAfterMs("86400"); // 60000
 * ```
 */
export function retryAfterMs(value: string | null | undefined, now: number = Date.now()): number {
  const text = (value ?? "").trim();
  if (text === "") return 0;
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const date = Date.parse(text);
    if (Number.isNaN(date)) return 0;
    ms = date - now;
  }
  return Math.max(0, Math.min(ms, RETRY_AFTER_CAP_MS));
}

/**
 * Why a server answered 401, as far as the client can tell, and what to do: when no token was
 * sent and env permission for `LOGBOOM_TOKEN` is not granted, a token set there was not read.
 *
 * @param sent whether the request carried a token.
 * @param elsewhere the other place a token can come from, e.g. `-token T`.
 */
export function unauthorizedHint(sent: boolean, elsewhere: string): string {
  if (sent) return `the server does not accept the token sent (from ${elsewhere} or ${TOKEN_ENV})`;
  const permission = Deno.permissions.querySync({ name: "env", variable: TOKEN_ENV });
  if (permission.state !== "granted") {
    return `no token was sent; a token set in ${TOKEN_ENV} is not read without env permission: ` +
      `run with --allow-env=${TOKEN_ENV} (or give ${elsewhere})`;
  }
  return `no token was sent: set ${TOKEN_ENV} or give ${elsewhere}`;
}
