/**
 * Bearer-token authentication of the HTTP API. Where a token comes from (flag or env) and what
 * a client is told on a 401 are in the low module `token.ts`, which clients use too.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

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
