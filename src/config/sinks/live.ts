/**
 * The `live` sink: the hub live tails subscribe to (`live/hub.ts`). It runs with the HTTP API,
 * which serves the tails; a config that names none gets one with these defaults while the API
 * is on.
 *
 * @module
 */

import { LiveHub } from "../../live/hub.ts";
import { defineSink } from "../component.ts";
import type { KeyTable } from "../keys.ts";

/** The keys of the `live` sink. */
export const LIVE_KEYS = {
  max_subscribers: {
    type: "count",
    default: 1000,
    min: 1,
    flag: "maxSubscribers",
    doc: "Most live-tail subscribers at once",
  },
  tail_rate: {
    type: "count",
    default: 200000,
    max: 999_999_999_999,
    flag: "tailRate",
    doc: "Lines per second sent to all live tails together, shared evenly, and less while " +
      "ingestion runs above 100,000 lines/s; a tail over its share is told what it missed; 0 for " +
      "no bound",
  },
} as const satisfies KeyTable;

/** The `live` sink component. */
export const liveSink = defineSink({
  type: "live",
  doc: "The live hub behind GET /api/v1/tail (SSE, WebSocket); needs the HTTP API",
  keys: LIVE_KEYS,
  build(name, values) {
    // Small events keep each tail's delivery budget fine-grained; SSE joins them into large
    // writes.
    const hub = new LiveHub({ maxSubscribers: values.max_subscribers, maxEventLines: 100 });
    const tailRate = values.tail_rate === 0 ? Infinity : values.tail_rate;
    return Promise.resolve({
      sink: hub,
      metrics: () => ({ name, linesWritten: hub.stats.linesDelivered }),
      // Tails filter by level: inputs that know a line's level from its framing (syslog's PRI)
      // give it. Fields are not asked for: the inputs that have them give them anyway.
      reads: { labels: new Set<string>(), times: false, levels: true },
      // A tail shows and filters any field: while one is open, rules give them all.
      readsAllFieldsNow: () => hub.subscriberCount > 0,
      live: { hub, tailRate },
    });
  },
});
