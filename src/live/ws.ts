/**
 * The live tail over WebSocket: one JSON text message per hub event.
 *
 * - `{"type":"ready","lastId":N,"epoch":"E","cursor":"E-N","restarted":false}` first: the cursor
 *   to resume from (`?lastEventId=<cursor>`) if nothing else arrives; a line's cursor is
 *   `<epoch>-<id>`; `restarted` when the tail resumed from another run's cursor;
 * - `{"type":"lines","lines":[{"id","source","host","ts","line"}, ...]}`, with `"level"` before
 *   `"line"` and `"fields"` (an object) after it for lines that have them;
 * - `{"type":"dropped","count":N}` where lines were missed.
 *
 * A WebSocket has no flow control a sender can wait on, so the pump watches `bufferedAmount`:
 * while the socket holds more than its bound, events stay in the subscriber's bounded hub queue,
 * where the hub drops (and counts) what does not fit.
 *
 * @module
 */

import type { DeliveryShare } from "./delivery_budget.ts";
import type { LiveEvent, Subscription } from "./subscription.ts";

/** Options of {@linkcode pumpWebSocket}. */
export interface PumpWebSocketOptions {
  /** Last line id when the subscription opened, sent in the `ready` message. */
  lastId: number;
  /** The hub's epoch, for the cursor in the `ready` message. Default: none. */
  epoch?: string;
  /** Whether the tail resumed from a cursor of another run, said in the `ready` message. */
  restarted?: boolean;
  /** Most bytes left in the socket's send buffer before the pump waits. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** How often a waiting pump looks at the send buffer again, in ms. Default 10. */
  pollMs?: number;
  /** This subscriber's share of the delivery budget; left when the pump ends. Default: none. */
  share?: DeliveryShare;
}

/**
 * The part of a WebSocket the pump uses: the browser's `WebSocket`, or the server's own
 * (`net/websocket.ts`). `readyState` takes the `WebSocket.CONNECTING` ... `CLOSED` values.
 */
export interface TailSocket {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Bytes sent and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Sends a text message. */
  send(data: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Listens for `open` and `close`. */
  addEventListener(
    type: "open" | "close",
    listener: () => void,
    options?: { once?: boolean },
  ): void;
}

/** Close code sent when the server stops (1001, going away). */
export const WS_GOING_AWAY = 1001;
/** Close code sent when the subscriber stalled and was cut off (1008, policy violation). */
export const WS_STALLED = 1008;

/** Encodes a hub event as a WebSocket message. */
export function encodeWsEvent(event: LiveEvent): string {
  if (event.type === "dropped") return JSON.stringify({ type: "dropped", count: event.count });
  // Fields picked explicitly so the wire format does not follow whatever the record holds.
  const lines = event.lines.map(({ id, source, host, ts, line, level, fields }) =>
    level === undefined && fields === undefined
      ? { id, source, host, ts, line }
      : { id, source, host, ts, level, line, fields }
  );
  return JSON.stringify({ type: "lines", lines });
}

/**
 * Sends the subscription's events on `socket` until either ends: the socket closing closes the
 * subscription, and the subscription ending closes the socket (1001 when the server stops, 1008
 * when the subscriber stalled). Resolves when both are done.
 */
export async function pumpWebSocket(
  socket: TailSocket,
  sub: Subscription,
  options: PumpWebSocketOptions,
): Promise<void> {
  const { lastId, maxBufferedBytes = 1024 * 1024, pollMs = 10, share, epoch } = options;
  const cursor = epoch === undefined ? undefined : `${epoch}-${lastId}`;
  const ready = { type: "ready", lastId, epoch, cursor, restarted: options.restarted === true };
  try {
    await pump(socket, sub, { ready: JSON.stringify(ready), maxBufferedBytes, pollMs, share });
  } finally {
    share?.leave();
  }
}

async function pump(
  socket: TailSocket,
  sub: Subscription,
  options: { ready: string; maxBufferedBytes: number; pollMs: number; share?: DeliveryShare },
): Promise<void> {
  const { ready, maxBufferedBytes, pollMs, share } = options;
  const closed = new Promise<void>((resolve) => {
    socket.addEventListener("close", () => {
      sub.close();
      resolve();
    }, { once: true });
  });
  if (socket.readyState === WebSocket.CONNECTING) {
    await Promise.race([
      new Promise<void>((resolve) =>
        socket.addEventListener("open", () => resolve(), { once: true })
      ),
      closed,
    ]);
  }
  if (socket.readyState !== WebSocket.OPEN) {
    sub.close();
    return;
  }
  socket.send(ready);
  // At least one line per event, however poor the share: progress is never blocked. And no
  // more queued than the share can send soon, so what goes out is recent.
  const take = (maxLines: number) => sub.poll({ maxLines, keepLines: share?.keepLines() });
  const allowed = () => share === undefined ? Infinity : Math.max(1, Math.floor(share.available()));
  for (;;) {
    let limit = allowed();
    let event = take(limit);
    if (event === undefined) {
      if (!await sub.ready()) break;
      share?.resume();
      // Taken only now, so the lines that arrived while waiting go out as the share allows.
      limit = allowed();
      event = take(limit);
    }
    if (socket.readyState !== WebSocket.OPEN) break;
    let lines = 0;
    while (event !== undefined) {
      socket.send(encodeWsEvent(event));
      if (event.type === "lines") lines += event.lines.length;
      event = lines < limit ? take(limit - lines) : undefined;
    }
    // Over its share, or with the socket's buffer full, the subscriber reads later; meanwhile its
    // hub queue fills and drops. Waiting in steps notices a closed socket soon.
    let wait = share?.spend(lines) ?? 0;
    while (
      (wait > 0 || socket.bufferedAmount > maxBufferedBytes) &&
      socket.readyState === WebSocket.OPEN
    ) {
      const step = Math.min(pollMs * 10, Math.max(pollMs, wait));
      await new Promise((resolve) => setTimeout(resolve, step));
      wait -= step;
    }
  }
  if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
    const stalled = sub.closeReason === "stalled";
    socket.close(
      stalled ? WS_STALLED : WS_GOING_AWAY,
      stalled ? "Too slow: the subscriber stalled" : "Server closing the tail",
    );
  }
  await closed;
}
