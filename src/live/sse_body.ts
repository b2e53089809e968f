/**
 * The body of an SSE live tail: a byte stream that pulls hub events only when the network takes
 * bytes, so a client that stops reading leaves its lines in its own bounded hub queue (where they
 * are dropped and counted) and never in an unbounded buffer.
 *
 * @module
 */

import { concatBytes } from "../_util.ts";
import type { DeliveryShare } from "./delivery_budget.ts";
import type { Subscription } from "./subscription.ts";
import { encodeSseComment, encodeSseDropped, encodeSseRaw } from "./sse.ts";

/** Options of {@linkcode sseBody}. */
export interface SseBodyOptions {
  /** Text sent first, e.g. a `ready` event or `retry:` field. Default: none. */
  first?: string;
  /** A comment is sent after this many milliseconds without events, for proxies. Default 15,000. */
  heartbeatMs?: number;
  /** Events queued together are joined into one chunk up to about this many bytes. Default 64 KiB. */
  maxChunkBytes?: number;
  /** This subscriber's share of the delivery budget; left when the stream ends. Default: none. */
  share?: DeliveryShare;
  /** The hub's epoch, for the lines' cursors (`<epoch>-<id>`). Default: bare line ids. */
  epoch?: string;
}

const encoder = new TextEncoder();

/**
 * Turns a subscription into SSE bytes. Cancelling the stream (the client went away) closes the
 * subscription; the stream ends when the subscription does.
 *
 * @example
 * ```ts
 * const tail = hub.subscribe({ grep: "ERROR" });
 * return new Response(sseBody(tail), { headers: { "content-type": SSE_CONTENT_TYPE } });
 * ```
 */
export function sseBody(
  sub: Subscription,
  options: SseBodyOptions = {},
): ReadableStream<Uint8Array> {
  const { first, heartbeatMs = 15_000, maxChunkBytes = 64 * 1024, share, epoch } = options;
  let pending: Promise<boolean> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resting: { timer: ReturnType<typeof setTimeout>; done: () => void } | undefined;
  const rest = (ms: number) =>
    new Promise<void>((resolve) => {
      resting = { timer: setTimeout(resolve, ms), done: resolve };
    }).finally(() => resting = undefined);
  // At least one line per event, however poor the share: progress is never blocked. And no
  // more queued than the share can send soon, so what goes out is recent.
  const take = (maxLines: number) => sub.pollRaw({ maxLines, keepLines: share?.keepLines() });
  const allowed = () => share === undefined ? Infinity : Math.max(1, Math.floor(share.available()));
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (first !== undefined) controller.enqueue(encoder.encode(first));
    },
    async pull(controller) {
      // Under load an event is usually queued already: no timer, no promise.
      let event = pending === undefined ? take(allowed()) : undefined;
      if (event === undefined) {
        pending ??= sub.ready();
        const beat = new Promise<"beat">((resolve) => {
          timer = setTimeout(() => resolve("beat"), heartbeatMs);
        });
        const next = await Promise.race([pending, beat]);
        clearTimeout(timer);
        if (next === "beat") {
          controller.enqueue(encoder.encode(encodeSseComment()));
          return;
        }
        pending = undefined;
        share?.resume();
        // Taken only now, so the lines that arrived while waiting go out as the share allows.
        if (next) event = take(allowed());
      }
      if (event === undefined) {
        share?.leave();
        controller.close();
        return;
      }
      // Whatever piled up while the network was busy goes out in one write, as far as this
      // subscriber's share allows. Lines are encoded from their bytes, never made records.
      const parts: Uint8Array[] = [];
      let size = 0;
      let lines = 0;
      const limit = allowed();
      for (;;) {
        const part = event.type === "raw"
          ? encodeSseRaw(event, epoch)
          : encoder.encode(encodeSseDropped(event.count));
        parts.push(part);
        size += part.length;
        if (event.type === "raw") lines += event.count;
        if (size >= maxChunkBytes || lines >= limit) break;
        const more = take(limit - lines);
        if (more === undefined) break;
        event = more;
      }
      controller.enqueue(parts.length === 1 ? parts[0] : concatBytes(parts, size));
      // Over its share, the subscriber reads later; meanwhile its hub queue fills and drops.
      const wait = share?.spend(lines) ?? 0;
      if (wait > 0) await rest(wait);
    },
    cancel() {
      clearTimeout(timer);
      if (resting !== undefined) {
        clearTimeout(resting.timer);
        resting.done();
      }
      share?.leave();
      sub.close();
    },
  }, { highWaterMark: 0 });
}
