/**
 * Token authentication of the HTTP API. Where a token comes from (flag or env) and what a client
 * is told on a 401 are in the low module `token.ts`, which clients use too.
 *
 * The token is accepted in the forms the senders people run can send, on every route:
 *
 * - `Authorization: Bearer <token>`: logboom's own clients, OpenTelemetry exporters (`headers`),
 *   any client that sets a header.
 * - `Authorization: Basic base64(<any user>:<token>)`: the token as the password, any user name,
 *   for senders that only speak Basic auth: Promtail and Alloy (`basic_auth`), winston-loki
 *   (`basicAuth`), pino-loki, Fluent Bit (`http_user`/`http_passwd`), Filebeat and Logstash
 *   (`username`/`password`), Vector (`auth.strategy: basic`).
 * - `Authorization: ApiKey <token>`, or `ApiKey base64(<any id>:<token>)`: Elasticsearch API keys
 *   as its clients send them: `auth: { apiKey: "<token>" }` in Elastic's JS client sends the key
 *   as given; Filebeat's and Logstash's `api_key: "<id>:<token>"` and the JS client's
 *   `apiKey: { id, api_key }` send `id:key` in base64.
 *
 * Every comparison with the token runs in constant time.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

/** The schemes a request can carry the token in. */
const SCHEME = /^(Bearer|Basic|ApiKey) +(.+)$/i;

/**
 * Whether the request's `Authorization` header carries `token`, in any of the forms the module
 * doc lists; comparisons in constant time. With an empty `token`, every request passes.
 *
 * @example
 * ```ts
 * const basic = `Basic ${btoa("promtail:s3cret")}`;
 * isAuthorized(new Request("http://x/", { headers: { authorization: basic } }), "s3cret"); // true
 * ```
 */
export function isAuthorized(req: Request, token: string): boolean {
  if (token === "") return true;
  const match = SCHEME.exec((req.headers.get("authorization") ?? "").trim());
  if (match === null) return false;
  const scheme = match[1].toLowerCase();
  const credentials = match[2];
  const want = sha256(token);
  if (scheme === "bearer") return same(credentials, want);
  const decoded = base64Text(credentials);
  // `user:password` and `id:key`: the secret is what follows the first colon.
  const colon = decoded === undefined ? -1 : decoded.indexOf(":");
  const secret = colon < 0 ? undefined : decoded!.slice(colon + 1);
  if (scheme === "basic") return secret !== undefined && same(secret, want);
  // ApiKey: the key as given, or `id:key` in base64. Both are compared, so that which form
  // matched takes no more time than the other.
  const raw = same(credentials, want);
  const encoded = secret !== undefined && same(secret, want);
  return raw || encoded;
}

/** Whether `text` is the token whose hash is `want`, in constant time. */
function same(text: string, want: Uint8Array): boolean {
  // Hashing first makes both sides the same length, as timingSafeEqual requires.
  return timingSafeEqual(sha256(text), want);
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 text of standard base64, or `undefined` when it is not that. */
function base64Text(value: string): string | undefined {
  try {
    return utf8.decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}
