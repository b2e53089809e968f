/**
 * The search routes over stored logs:
 *
 * - `GET /api/v1/search?q=&regex=&from=&to=&source=&level=&field.NAME=&limit=`: NDJSON, one
 *   object per matching line, newest file first (newest line first within a file), streamed as
 *   found, then `{"done":true,...}`; a client that goes away stops the reading at once.
 * - `GET /api/v1/search/histogram?<same>&buckets=60`: counts per bucket of time.
 * - `GET /api/v1/search/context?file=&offset=&before=20&after=20`: the lines around one line.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { HttpError } from "../net/http_error.ts";
import type { StoreLayout } from "../search/catalog.ts";
import { logRoot } from "../store/file_index.ts";
import { pgSearchFor, type SearchBackend } from "../search/pg.ts";
import { parseQuery, QueryError } from "../search/query.ts";
import type { Hit } from "../search/scan.ts";
import { context, histogram, search } from "../search/search.ts";

/** The routes this file serves. */
export const SEARCH_ROUTES = [
  "/api/v1/search",
  "/api/v1/search/histogram",
  "/api/v1/search/context",
];

const NDJSON = "application/x-ndjson";
const encoder = new TextEncoder();
const log = getLogger(["logboom", "api"]);
/** Most lines `before` or `after` a context. */
const MAX_CONTEXT = 1000;
/** Most buckets of a histogram. */
const MAX_BUCKETS = 1000;

/**
 * Answers a search route; `layout` says where the stored files are (`undefined` when nothing is
 * stored in files: 404). A `postgres` sink registered for the same state folder (its `search`
 * key) is read instead (`search/pg.ts`).
 */
export async function searchRoute(
  req: Request,
  route: string,
  layout: StoreLayout | undefined,
): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new HttpError(405, "Use GET", { headers: { allow: "GET, HEAD" } }).response();
  }
  const pg = pgSearchFor(layout?.stateDir);
  const unreadable = pg === undefined
    ? layout?.outputs.map(logRoot).find((root) =>
      Deno.permissions.querySync({ name: "read", path: root }).state !== "granted"
    )
    : undefined;
  if (unreadable !== undefined) {
    // Said at once, rather than a search that finds no file.
    return new HttpError(
      503,
      "Searching the stored files needs read permission on their folder: run with " +
        `--allow-read=${unreadable}`,
    ).response();
  }
  const backend = pg ?? filesBackend(layout);
  if (backend === undefined) {
    return new HttpError(404, "Nothing is stored in files here to search").response();
  }
  const params = new URL(req.url).searchParams;
  try {
    switch (route) {
      case "/api/v1/search":
        return searchAnswer(backend, params, req.signal);
      case "/api/v1/search/histogram":
        return await histogramAnswer(backend, params, req.signal);
      default:
        return await contextAnswer(backend, params, req.signal);
    }
  } catch (err) {
    if (err instanceof QueryError) return new HttpError(400, err.message).response();
    throw err;
  }
}

/** The search over the stored files of `layout`; `undefined` when there are none. */
function filesBackend(layout: StoreLayout | undefined): SearchBackend | undefined {
  if (layout === undefined || layout.outputs.length === 0) return undefined;
  return {
    search: (query, signal) => search(layout, query, signal),
    histogram: (query, buckets, signal) => histogram(layout, query, buckets, signal),
    context: (file, offset, before, after, signal) =>
      context(layout, file, offset, before, after, signal),
  };
}

function hitJson(hit: Hit & { hit?: true }): string {
  return JSON.stringify({
    ts: hit.ts === null ? null : new Date(hit.ts).toISOString(),
    source: hit.source,
    level: hit.level,
    line: hit.line,
    file: hit.file,
    offset: hit.offset,
    ...(hit.hit ? { hit: true } : {}),
  });
}

function searchAnswer(
  backend: SearchBackend,
  params: URLSearchParams,
  requestSignal: AbortSignal,
): Response {
  params.delete("buckets");
  const query = parseQuery(params);
  const abort = new AbortController();
  const onAbort = () => abort.abort(requestSignal.reason);
  requestSignal.addEventListener("abort", onAbort, { once: true });
  const started = performance.now();
  const found = backend.search(query, abort.signal);
  const stop = async () => {
    requestSignal.removeEventListener("abort", onAbort);
    abort.abort(new Error("The client went away"));
    await found.return(undefined as never).catch(() => {});
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await found.next();
        if (next.done) {
          const s = next.value;
          const done = {
            done: true,
            matched: s.matched,
            files: s.files,
            scanned_bytes: s.scannedBytes,
            skipped_bytes: s.skippedBytes,
            truncated: s.truncated,
            ms: Math.round(performance.now() - started),
          };
          controller.enqueue(encoder.encode(JSON.stringify(done) + "\n"));
          controller.close();
          requestSignal.removeEventListener("abort", onAbort);
          return;
        }
        let text = "";
        for (const hit of next.value) text += hitJson(hit) + "\n";
        controller.enqueue(encoder.encode(text));
      } catch (err) {
        if (abort.signal.aborted) return;
        log.error("A search failed: {error}", { error: describe(err) });
        controller.enqueue(encoder.encode(JSON.stringify({ error: describe(err) }) + "\n"));
        controller.close();
        requestSignal.removeEventListener("abort", onAbort);
      }
    },
    cancel: stop,
  }, { highWaterMark: 0 });
  return new Response(body, { status: 200, headers: { "content-type": NDJSON } });
}

async function histogramAnswer(
  backend: SearchBackend,
  params: URLSearchParams,
  signal: AbortSignal,
): Promise<Response> {
  const bucketsText = params.get("buckets") ?? "60";
  const buckets = Number(bucketsText);
  if (!/^\d+$/.test(bucketsText) || buckets < 1 || buckets > MAX_BUCKETS) {
    throw new QueryError(`"buckets" must be a whole number from 1 to ${MAX_BUCKETS}`);
  }
  params.delete("buckets");
  if (params.has("limit")) throw new QueryError('The histogram takes no "limit"');
  const query = parseQuery(params);
  const h = await backend.histogram(query, buckets, signal);
  return json({
    from: new Date(h.from).toISOString(),
    to: new Date(h.to).toISOString(),
    step_ms: h.stepMs,
    counts: h.counts,
    unplaced: h.unplaced,
  });
}

async function contextAnswer(
  backend: SearchBackend,
  params: URLSearchParams,
  signal: AbortSignal,
): Promise<Response> {
  const file = params.get("file");
  if (!file) throw new QueryError('Context needs "file" (as a search answer names it)');
  const offset = count(params, "offset", undefined, Number.MAX_SAFE_INTEGER);
  const before = count(params, "before", 20, MAX_CONTEXT);
  const after = count(params, "after", 20, MAX_CONTEXT);
  const lines = await backend.context(file, offset, before, after, signal);
  if (lines === undefined) {
    return new HttpError(404, `No stored file "${file}"`).response();
  }
  if (lines.length === 0) {
    return new HttpError(404, `No line starts at offset ${offset} of "${file}"`).response();
  }
  const text = lines.map((hit) => hitJson(hit) + "\n").join("");
  return new Response(text, { status: 200, headers: { "content-type": NDJSON } });
}

function count(
  params: URLSearchParams,
  name: string,
  fallback: number | undefined,
  max: number,
): number {
  const text = params.get(name);
  if (text === null) {
    if (fallback === undefined) throw new QueryError(`Context needs "${name}"`);
    return fallback;
  }
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > max) {
    throw new QueryError(`"${name}" must be a whole number from 0 to ${max}`);
  }
  return value;
}

function json(body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status: 200,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}
