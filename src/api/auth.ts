/**
 * Bearer-token authentication of the HTTP API, and the rule that an API reachable from other
 * machines must have a token.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

/** The environment variable that holds the token when `-token` is not given. */
export const TOKEN_ENV = "LOGBOOM_TOKEN";

/**
 * The token from {@linkcode TOKEN_ENV}, read only when env permission for it is granted (so the
 * design card's `--allow-net --allow-write` never prompts); `""` when unset or not permitted.
 */
export function tokenFromEnv(): string {
  return canReadTokenEnv() ? Deno.env.get(TOKEN_ENV) ?? "" : "";
}

/** Whether env permission for {@linkcode TOKEN_ENV} is granted, so a token set there is read. */
export function canReadTokenEnv(): boolean {
  return Deno.permissions.querySync({ name: "env", variable: TOKEN_ENV }).state === "granted";
}

/** The sentence that says a {@linkcode TOKEN_ENV} set in the environment is not read, and how. */
export const TOKEN_ENV_NOT_READ = `env permission for ${TOKEN_ENV} is not granted, so a token ` +
  `set there is not read: run with --allow-env=${TOKEN_ENV} or pass -token`;

/**
 * What to add to a 401 answer so the user sees why: `""` when a token was sent; otherwise that
 * none was, and, without env permission for {@linkcode TOKEN_ENV}, that a token set there is not
 * read (with the permission to grant).
 *
 * @example
 * ```ts
 * io.notice(`Server answered 401: ${reason}${missingTokenHint(config.token)}`);
 * ```
 */
export function missingTokenHint(token: string): string {
  if (token !== "") return "";
  return canReadTokenEnv()
    ? ` (no token was sent: pass -token or set ${TOKEN_ENV})`
    : ` (no token was sent; ${TOKEN_ENV_NOT_READ})`;
}

/**
 * Whether `hostname` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`), which only
 * processes of this machine can reach.
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host.replace(/^::ffff:/, ""));
  return v4 !== null && v4.slice(1).every((part) => Number(part) <= 255);
}

/**
 * Checks the request's `Authorization: Bearer <token>` in constant time. With an empty `token`,
 * every request passes.
 */
export function isAuthorized(req: Request, token: string): boolean {
  if (token === "") return true;
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer +(.+)$/i.exec(header.trim());
  if (match === null) return false;
  // Hashing first makes both sides the same length, as timingSafeEqual requires.
  return timingSafeEqual(sha256(match[1]), sha256(token));
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}
