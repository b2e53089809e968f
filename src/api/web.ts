/**
 * The web control centre: `GET /` and `GET /ui/<asset>`, served from files inside the program.
 * The page's files (`src/web/`) are imported as text, so they ride in the module graph, in
 * `deno bundle` and `deno compile`; nothing is read from disk or fetched from a CDN.
 *
 * The page is public code and holds no secret: it is served without the token (the API calls it
 * makes carry the token), behind the same Origin and Host checks as every route. Every answer
 * carries a Content-Security-Policy without `unsafe-inline` or `unsafe-eval`: scripts and styles
 * come only from the server itself, the page connects only to it, and no other site may frame
 * it. The only thing the server writes into the page is whether the API wants a token, so the
 * page asks for it before its first call instead of meeting a 401.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import index from "../web/index.html" with { type: "text" };
import style from "../web/style.css" with { type: "text" };
import icon from "../web/icon.svg" with { type: "text" };
import app from "../web/app.js" with { type: "text" };
import lib from "../web/lib.js" with { type: "text" };
import tail from "../web/tail.js" with { type: "text" };
import search from "../web/search.js" with { type: "text" };
import fleet from "../web/fleet.js" with { type: "text" };
import configs from "../web/configs.js" with { type: "text" };
import rules from "../web/rules.js" with { type: "text" };
import alerts from "../web/alerts.js" with { type: "text" };
import preact from "../web/vendor/preact.js" with { type: "text" };
import hooks from "../web/vendor/hooks.js" with { type: "text" };
import htm from "../web/vendor/htm.js" with { type: "text" };
import uplot from "../web/vendor/uPlot.js" with { type: "text" };
import uplotCss from "../web/vendor/uPlot.css" with { type: "text" };
import { HttpError } from "../net/http_error.ts";

/** The policy every page answer carries. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The assets under `/ui/`, by path. */
const ASSETS: ReadonlyMap<string, Asset> = new Map(
  ([
    ["/ui/style.css", style, CSS],
    ["/ui/icon.svg", icon, "image/svg+xml"],
    ["/ui/app.js", app, JS],
    ["/ui/lib.js", lib, JS],
    ["/ui/tail.js", tail, JS],
    ["/ui/search.js", search, JS],
    ["/ui/fleet.js", fleet, JS],
    ["/ui/configs.js", configs, JS],
    ["/ui/rules.js", rules, JS],
    ["/ui/alerts.js", alerts, JS],
    ["/ui/vendor/preact.js", preact, JS],
    ["/ui/vendor/hooks.js", hooks, JS],
    ["/ui/vendor/htm.js", htm, JS],
    ["/ui/vendor/uPlot.js", uplot, JS],
    ["/ui/vendor/uPlot.css", uplotCss, CSS],
  ] as const).map(([path, text, type]) => [path, asset(text, type)]),
);

/** The page itself, with and without a token wanted. */
const PAGES = {
  token: asset(index.replace("{{auth}}", "token"), "text/html; charset=utf-8"),
  none: asset(index.replace("{{auth}}", "none"), "text/html; charset=utf-8"),
};

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
  /** The body gzipped, made at the first request that accepts it. */
  gzip?: Uint8Array<ArrayBuffer>;
}

/** Smaller bodies go as they are: gzip would save too little to be worth a header. */
const GZIP_MIN = 1024;

function asset(text: string, type: string): Asset {
  const body = new TextEncoder().encode(text);
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { body, type, etag };
}

/**
 * The route name of a page path, for the request counters: `/` for the page, `/ui` for every
 * asset (known or not, so the counters stay few), `undefined` for other paths.
 */
export function webRoute(pathname: string): "/" | "/ui" | undefined {
  if (pathname === "/") return "/";
  if (pathname.startsWith("/ui/")) return "/ui";
  return undefined;
}

/** Options of {@linkcode webResponse}. */
export interface WebOptions {
  /** Whether the API wants a token: the page then asks for it before its first call. */
  tokenWanted: boolean;
}

/**
 * Answers `GET`/`HEAD` of the page or an asset: 200 with the policy headers, 304 when the
 * client's `If-None-Match` names the same content, 404 for an unknown asset, 405 for other
 * methods.
 */
export async function webResponse(req: Request, options: WebOptions): Promise<Response> {
  const { pathname } = new URL(req.url);
  if (req.method !== "GET" && req.method !== "HEAD") {
    await req.body?.cancel();
    return new HttpError(405, "Use GET", { headers: { allow: "GET, HEAD" } }).response();
  }
  const found = pathname === "/"
    ? PAGES[options.tokenWanted ? "token" : "none"]
    : ASSETS.get(pathname);
  if (found === undefined) return new HttpError(404, `No page file "${pathname}"`).response();
  // 100 KB of page in 45 KB (uPlot 51 KB in 22 KB): a remote browser waits less.
  const gzip = found.body.length >= GZIP_MIN &&
    /\bgzip\b/.test(req.headers.get("accept-encoding") ?? "");
  const body = gzip
    ? found.gzip ??= new Uint8Array(gzipSync(found.body, { level: 9 }))
    : found.body;
  // Each encoding its own tag, as a cache must not give one for the other.
  const etag = gzip ? `${found.etag.slice(0, -1)}-gz"` : found.etag;
  const headers: Record<string, string> = {
    "content-type": found.type,
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    // Asked again each time (a new version of the program serves new files), answered with 304
    // when unchanged.
    "cache-control": "no-cache",
    vary: "accept-encoding",
    etag,
  };
  if (gzip) headers["content-encoding"] = "gzip";
  if (req.headers.get("if-none-match") === etag) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(req.method === "HEAD" ? null : body, { headers });
}
