/**
 * `GET /api/v1/tail`: the live tail, as Server-Sent Events, or as WebSocket messages when the
 * request asks to upgrade. Query: `source`, `grep`, `regex` (linear-time, RE2 syntax), `level`
 * (that level and above: `level=warn`, or `level>=warn`), `field.NAME=VALUE` (lines whose field
 * NAME has that value; several are ANDed), `n` (backfill); the cursor (`<epoch>-<line id>`) comes in the `Last-Event-ID` header (or a
 * `lastEventId` query parameter, for WebSocket clients in browsers, which cannot set headers).
 * A cursor from another run of the server resumes from the first line this run still holds, and
 * the `ready` event says `"restarted":true`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { type Level, LEVELS } from "../pipeline/record.ts";
import { HttpError } from "../net/http_error.ts";
import {
  HubClosedError,
  type LiveHub,
  type SubscribeOptions,
  TooManySubscribersError,
} from "../live/hub.ts";
import type { Subscription } from "../live/subscription.ts";
import { DeliveryBudget } from "../live/delivery_budget.ts";
import { formatCursor } from "../live/cursor.ts";
import { encodeSseMessage, SSE_CONTENT_TYPE } from "../live/sse.ts";
import { sseBody } from "../live/sse_body.ts";
import { pumpWebSocket } from "../live/ws.ts";
import { type ServerWebSocket, upgradeWebSocket } from "../net/websocket.ts";

/** Options of {@linkcode TailRoute}. */
export interface TailRouteOptions {
  /** SSE heartbeat period, in ms. Default 15,000. */
  heartbeatMs?: number;
  /** Most backfill lines a request may ask for with `n`. Default 10,000. */
  maxBackfill?: number;
  /** Lines per second delivered to all tails together, shared evenly. Default: no bound. */
  linesPerSecond?: number;
  /**
   * Bytes queued for all tails together: each new tail's queue gets an even share of it, between
   * 64 KiB and 1 MiB. Queued lines are live objects the garbage collector walks again and again,
   * so their total is what costs, not the count of tails. Default 16 MiB.
   */
  queueBytes?: number;
}

const log = getLogger(["logboom", "api", "tail"]);
const MIN_QUEUE_BYTES = 64 * 1024;
const MAX_QUEUE_BYTES = 1024 * 1024;

/**
 * Serves live tails from one hub, and ends them all on {@linkcode TailRoute.close}.
 *
 * @example
 * ```ts
 * const tail = new TailRoute(hub);
 * Deno.serve((req) => tail.handle(req));
 * // on shutdown:
 * await tail.close();
 * ```
 */
export class TailRoute {
  readonly #hub: LiveHub;
  readonly #heartbeatMs: number | undefined;
  readonly #maxBackfill: number;
  readonly #budget: DeliveryBudget;
  readonly #queueBytes: number;
  readonly #stop = new AbortController();
  readonly #pumps = new Set<Promise<void>>();

  /**
   * @param hub where the lines come from.
   * @param options see {@linkcode TailRouteOptions}.
   */
  constructor(hub: LiveHub, options: TailRouteOptions = {}) {
    this.#hub = hub;
    this.#heartbeatMs = options.heartbeatMs;
    this.#maxBackfill = options.maxBackfill ?? 10_000;
    this.#queueBytes = options.queueBytes ?? 16 * 1024 * 1024;
    this.#budget = new DeliveryBudget(options.linesPerSecond ?? Infinity, {
      ingested: () => hub.stats.lastId,
    });
  }

  /**
   * Opens a tail: an SSE response, or the WebSocket upgrade response. Answers 400 for a bad
   * query (an invalid `regex`, a bad `n` or cursor) and 503 at the subscriber limit.
   */
  handle(req: Request): Response {
    let sub: Subscription;
    try {
      const options = this.#parse(req);
      const share = Math.floor(this.#queueBytes / (this.#hub.stats.subscribers + 1));
      const queueBytes = Math.max(MIN_QUEUE_BYTES, Math.min(MAX_QUEUE_BYTES, share));
      sub = this.#hub.subscribe({ ...options, queueBytes, signal: this.#stop.signal });
    } catch (err) {
      return errorResponse(err);
    }
    // The cursor a client resumes from when nothing else arrives: where this tail starts, or the
    // cursor it came back with (so lines it still had to receive are not skipped); after a
    // restart, the start of this run.
    const { epoch } = this.#hub;
    const { after, restarted } = sub;
    if ((req.headers.get("upgrade") ?? "").toLowerCase() === "websocket") {
      let upgraded: { socket: ServerWebSocket; response: Response };
      try {
        upgraded = upgradeWebSocket(req);
      } catch (err) {
        sub.close();
        return errorResponse(new HttpError(400, `Bad WebSocket upgrade: ${describe(err)}`));
      }
      const share = this.#budget.join();
      const pump = pumpWebSocket(upgraded.socket, sub, { lastId: after, epoch, restarted, share })
        .catch((err) => log.warn("WebSocket tail failed: {error}", { error: describe(err) }))
        .finally(() => this.#pumps.delete(pump));
      this.#pumps.add(pump);
      return upgraded.response;
    }
    const first = "retry: 1000\n" +
      encodeSseMessage({
        id: formatCursor(epoch, after),
        event: "ready",
        data: JSON.stringify({ lastId: after, epoch, restarted }),
      });
    const share = this.#budget.join();
    const body = sseBody(sub, { first, heartbeatMs: this.#heartbeatMs, share, epoch });
    return new Response(body, {
      headers: {
        "content-type": SSE_CONTENT_TYPE,
        "cache-control": "no-store",
        // Tells nginx and similar proxies not to buffer the stream.
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every open tail (SSE streams end, WebSockets close with 1001) and waits for them. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#pumps);
  }

  #parse(req: Request): SubscribeOptions {
    const query = new URL(req.url).searchParams;
    const options: SubscribeOptions = {};
    const source = query.get("source");
    if (source !== null && source !== "") options.source = source;
    const grep = query.get("grep");
    if (grep !== null && grep !== "") options.grep = grep;
    const regex = query.get("regex");
    if (regex !== null && regex !== "") options.regex = regex;
    const level = levelOf(query);
    if (level !== undefined) options.level = level;
    const fields = fieldsOf(query);
    if (fields !== undefined) options.fields = fields;
    const n = query.get("n");
    if (n !== null && n !== "") {
      options.backfill = integer("n", n);
      if (options.backfill > this.#maxBackfill) {
        throw new HttpError(400, `Query "n" is at most ${this.#maxBackfill}, got "${n}"`);
      }
    }
    // Parsed by the hub, which knows its epoch: a malformed cursor is a RangeError, so a 400.
    const cursor = req.headers.get("last-event-id") ?? query.get("lastEventId");
    if (cursor !== null && cursor !== "") options.lastEventId = cursor;
    return options;
  }
}

/** What a field filter's parameter starts with: `field.service=billing`. */
const FIELD_PARAM = "field.";

/**
 * The least level asked for: `level=warn`, or `level>=warn` (which a query string reads as the
 * parameter `level>` with the value `warn`); any case. One of them, once.
 */
function levelOf(query: URLSearchParams): Level | undefined {
  const given = [...query.getAll("level"), ...query.getAll("level>")].filter((v) => v !== "");
  if (given.length === 0) return undefined;
  if (given.length > 1) {
    throw new HttpError(400, `Query "level" is given ${given.length} times; give it once`);
  }
  const level = given[0].toLowerCase();
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new HttpError(
      400,
      `Query "level" must be one of ${LEVELS.join(", ")} (that level and above), got "${given[0]}"`,
    );
  }
  return level as Level;
}

/** The field filters: every `field.NAME=VALUE`, each name once. */
function fieldsOf(query: URLSearchParams): Record<string, string> | undefined {
  let fields: Record<string, string> | undefined;
  for (const [key, value] of query) {
    if (!key.startsWith(FIELD_PARAM)) continue;
    const name = key.slice(FIELD_PARAM.length);
    if (name === "") {
      throw new HttpError(400, `Query "${key}" names no field: use field.NAME=VALUE`);
    }
    fields ??= Object.create(null) as Record<string, string>;
    if (Object.hasOwn(fields, name)) {
      throw new HttpError(400, `Query "${key}" is given twice; a line has one value per field`);
    }
    fields[name] = value;
  }
  return fields;
}

function integer(what: string, value: string): number {
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new HttpError(400, `${what} must be a non-negative integer, got "${value}"`);
  }
  return n;
}

/** The answer to a tail that cannot start: bad options 400, the hub full or closed 503, else 500. */
function errorResponse(err: unknown): Response {
  if (err instanceof HttpError) return err.response();
  const message = describe(err);
  if (err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError) {
    return new HttpError(400, message).response();
  }
  if (err instanceof TooManySubscribersError || err instanceof HubClosedError) {
    return new HttpError(503, message, { headers: { "retry-after": "5" } }).response();
  }
  log.error("Tail failed: {error}", { error: message });
  return new HttpError(500, message).response();
}
