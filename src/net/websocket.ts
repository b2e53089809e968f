/**
 * The server side of WebSocket (RFC 6455) for `HttpServer`: {@linkcode upgradeWebSocket}
 * takes the place of `Deno.upgradeWebSocket`, and {@linkcode ServerWebSocket} offers the part of
 * the browser `WebSocket` interface a server uses (`readyState`, `bufferedAmount`, `send`,
 * `close`, `open`/`message`/`close` events).
 *
 * Client frames must be masked; text must be UTF-8; control frames are at most 125 bytes and not
 * fragmented; a message (fragments joined) over `maxMessageBytes` closes the socket with 1009.
 * Pings are answered with pongs. A close the peer does not answer within `closeTimeoutMs` ends
 * the connection anyway.
 *
 * @module
 */

import { concatBytes } from "../_util.ts";
import { closeQuietly } from "./accept.ts";
import type { ConnReader } from "./http1.ts";

/** What the server keeps for a request that asked to upgrade. */
export interface UpgradeSlot {
  /** The connection's buffered reader (bytes after the head belong to the socket). */
  reader: ConnReader;
  /** The connection. */
  tcp: Deno.Conn;
}

/** Requests of `HttpServer` that asked to upgrade, while their handler runs. */
export const UPGRADES: WeakMap<Request, UpgradeSlot> = new WeakMap();
const SOCKETS = new WeakMap<Response, ServerWebSocket>();

/** Options of {@linkcode upgradeWebSocket}. */
export interface UpgradeOptions {
  /** Largest message the peer may send, fragments joined. Default 64 KiB. */
  maxMessageBytes?: number;
  /** How long a close waits for the peer's answer, in ms. Default 2,000. */
  closeTimeoutMs?: number;
}

/**
 * Answers a WebSocket handshake: returns the socket (open once the server wrote the 101) and the
 * response to return from the handler. Throws `TypeError` for a request that is not a valid
 * upgrade, or that did not come from `HttpServer`.
 *
 * @example
 * ```ts
 * const { socket, response } = upgradeWebSocket(req);
 * socket.addEventListener("open", () => socket.send("hello"));
 * return response;
 * ```
 */
export function upgradeWebSocket(
  req: Request,
  options: UpgradeOptions = {},
): { socket: ServerWebSocket; response: Response } {
  const slot = UPGRADES.get(req);
  if (req.method !== "GET") throw new TypeError("A WebSocket upgrade must be a GET request");
  if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
    throw new TypeError('Header "Upgrade" must be "websocket"');
  }
  const connection = (req.headers.get("connection") ?? "").toLowerCase().split(",");
  if (!connection.some((c) => c.trim() === "upgrade")) {
    throw new TypeError('Header "Connection" must include "Upgrade"');
  }
  if (req.headers.get("sec-websocket-version") !== "13") {
    throw new TypeError('Header "Sec-WebSocket-Version" must be "13"');
  }
  const key = req.headers.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    throw new TypeError('Header "Sec-WebSocket-Key" must be 16 bytes in base64');
  }
  if (slot === undefined) throw new TypeError("This request cannot be upgraded here");
  UPGRADES.delete(req);
  const socket = new ServerWebSocket(slot, key, options);
  // The Fetch standard's Response takes statuses 200-599 only: the 101 is set on the instance.
  const response = new Response(null, { status: 200 });
  Object.defineProperty(response, "status", { value: 101 });
  SOCKETS.set(response, socket);
  return { socket, response };
}

/** The socket a handler's 101 response stands for, once (for the server). */
export function takeUpgrade(res: Response): ServerWebSocket | undefined {
  const socket = SOCKETS.get(res);
  SOCKETS.delete(res);
  return socket;
}

/** What the server gives a socket to run with. */
export interface SocketRunOptions {
  /** Arms the send timeout before a write (returns its disarm), for a client that stops reading. */
  sendTimeout: (arm: boolean) => (() => void) | undefined;
}

/** What the server holds of an upgraded socket. */
export interface WebSocketConn {
  /** Runs the socket until it closes. */
  run(options: SocketRunOptions): Promise<void>;
  /** The 101 could not be written. */
  fail(err: unknown): void;
  /** The `Sec-WebSocket-Accept` value. */
  acceptValue(): Promise<string>;
  /** Closes with `code` (e.g. 1001 on shutdown). */
  close(code?: number, reason?: string): void;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const OP_CONTINUATION = 0;
const OP_TEXT = 1;
const OP_BINARY = 2;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

/** A protocol error: the socket closes with `code`. */
class WsError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * A server's end of a WebSocket. Events: `open`, `message` (a `MessageEvent` whose data is a
 * string or a `Uint8Array`), `close` (a `CloseEvent`).
 */
export class ServerWebSocket extends EventTarget implements WebSocketConn {
  /** Waiting for the server to write the 101. */
  static readonly CONNECTING = 0;
  /** Messages flow. */
  static readonly OPEN = 1;
  /** A close frame was sent or received. */
  static readonly CLOSING = 2;
  /** The connection is closed. */
  static readonly CLOSED = 3;
  /** One of the four states above. */
  readyState = 0;
  readonly #slot: UpgradeSlot;
  readonly #key: string;
  readonly #maxMessage: number;
  readonly #closeTimeoutMs: number;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #writing: Promise<void> | undefined;
  #sendTimeout: SocketRunOptions["sendTimeout"] | undefined;
  #closeSent = false;
  #closeCode = 1005;
  #closeReason = "";
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #ended: (() => void) | undefined;

  constructor(slot: UpgradeSlot, key: string, options: UpgradeOptions) {
    super();
    this.#slot = slot;
    this.#key = key;
    this.#maxMessage = options.maxMessageBytes ?? 64 * 1024;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  }

  /** Bytes sent with {@linkcode send} and not yet written to the connection. */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Sends a text (string) or binary message; ignored unless open. */
  send(data: string | Uint8Array): void {
    if (this.readyState !== ServerWebSocket.OPEN) return;
    const text = typeof data === "string";
    this.#enqueue(frame(text ? OP_TEXT : OP_BINARY, text ? encoder.encode(data) : data));
  }

  /** Starts the closing handshake with `code` (default 1000) and `reason`. */
  close(code = 1000, reason = ""): void {
    if (this.readyState === ServerWebSocket.CONNECTING) {
      this.#closeCode = code;
      this.#closeReason = reason;
      this.readyState = ServerWebSocket.CLOSED;
      return;
    }
    if (this.readyState !== ServerWebSocket.OPEN) return;
    this.readyState = ServerWebSocket.CLOSING;
    this.#sendClose(code, reason);
    this.#closeTimer = setTimeout(() => this.#end(), this.#closeTimeoutMs);
  }

  /** The `Sec-WebSocket-Accept` value: base64 of SHA-1 of the key and the RFC's GUID. */
  async acceptValue(): Promise<string> {
    const digest = await crypto.subtle.digest("SHA-1", encoder.encode(this.#key + GUID));
    return btoa(String.fromCharCode(...new Uint8Array(digest)));
  }

  /** The 101 could not be written: the socket closes without opening. */
  fail(_err: unknown): void {
    this.readyState = ServerWebSocket.CLOSED;
    this.#dispatchClose(1006, "", false);
  }

  /** Runs the socket until the connection closes. */
  async run(options: SocketRunOptions): Promise<void> {
    this.#sendTimeout = options.sendTimeout;
    if (this.readyState === ServerWebSocket.CLOSED) {
      // Closed by its owner before the handshake finished.
      closeQuietly(this.#slot.tcp);
      this.#dispatchClose(this.#closeCode, this.#closeReason, false);
      return;
    }
    const ended = new Promise<void>((resolve) => this.#ended = resolve);
    this.readyState = ServerWebSocket.OPEN;
    this.dispatchEvent(new Event("open"));
    const reading = this.#read();
    await Promise.race([reading, ended]);
    // What was queued (an echoed close) goes out before the connection ends.
    await this.#writing;
    this.#end();
    await reading;
  }

  async #read(): Promise<void> {
    let message: Uint8Array[] = [];
    let messageBytes = 0;
    let messageOp = 0;
    try {
      for (;;) {
        const head = await this.#exact(2);
        if (head === null) return;
        const fin = (head[0] & 0x80) !== 0;
        if ((head[0] & 0x70) !== 0) throw new WsError(1002, "Reserved bits set");
        const op = head[0] & 0x0f;
        if ((head[1] & 0x80) === 0) throw new WsError(1002, "Client frames must be masked");
        let length = head[1] & 0x7f;
        if (length === 126) {
          const ext = await this.#exact(2);
          if (ext === null) return;
          length = (ext[0] << 8) | ext[1];
        } else if (length === 127) {
          const ext = await this.#exact(8);
          if (ext === null) return;
          const high = new DataView(ext.buffer, ext.byteOffset, 8).getUint32(0);
          if (high !== 0) throw new WsError(1009, "Message too big");
          length = new DataView(ext.buffer, ext.byteOffset, 8).getUint32(4);
        }
        const control = op >= 8;
        if (control && (!fin || length > 125)) throw new WsError(1002, "Malformed control frame");
        if (!control && messageBytes + length > this.#maxMessage) {
          throw new WsError(1009, `Messages are at most ${this.#maxMessage} bytes`);
        }
        const mask = await this.#exact(4);
        if (mask === null) return;
        const payload = length === 0 ? new Uint8Array(0) : await this.#exact(length);
        if (payload === null) return;
        for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
        if (op === OP_CLOSE) {
          this.#onClose(payload);
          return;
        }
        if (op === OP_PING) {
          this.#enqueue(frame(OP_PONG, payload));
          continue;
        }
        if (op === OP_PONG) continue;
        if (op === OP_CONTINUATION) {
          if (messageOp === 0) throw new WsError(1002, "Continuation without a message");
        } else if (op === OP_TEXT || op === OP_BINARY) {
          if (messageOp !== 0) throw new WsError(1002, "A new message within a fragmented one");
          messageOp = op;
        } else throw new WsError(1002, `Unknown opcode ${op}`);
        message.push(payload);
        messageBytes += payload.length;
        if (!fin) continue;
        const data = join(message, messageBytes);
        const op0 = messageOp;
        message = [];
        messageBytes = 0;
        messageOp = 0;
        if (this.readyState !== ServerWebSocket.OPEN) continue;
        if (op0 === OP_TEXT) {
          let text: string;
          try {
            text = new TextDecoder("utf-8", { fatal: true }).decode(data);
          } catch {
            throw new WsError(1007, "Text messages must be UTF-8");
          }
          this.dispatchEvent(new MessageEvent("message", { data: text }));
        } else this.dispatchEvent(new MessageEvent("message", { data }));
      }
    } catch (err) {
      if (err instanceof WsError && this.readyState === ServerWebSocket.OPEN) {
        this.close(err.code, err.message);
        // The peer broke the protocol: no need to wait for its answer.
        await this.#writing;
        this.#end();
      }
      // Otherwise the connection failed or was closed: #end reports it.
    }
  }

  #onClose(payload: Uint8Array): void {
    let code = 1005;
    let reason = "";
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      try {
        reason = new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(2));
      } catch {
        reason = "";
      }
    }
    if (!this.#closeSent) {
      // Echo the peer's close, then the connection ends once it is written.
      this.#closeCode = code;
      this.#closeReason = reason;
      this.readyState = ServerWebSocket.CLOSING;
      this.#sendClose(code === 1005 ? 1000 : code, "");
    } else {
      this.#closeCode = code;
      this.#closeReason = reason;
    }
    const writing = this.#writing ?? Promise.resolve();
    writing.finally(() => this.#end(true));
  }

  #sendClose(code: number, reason: string): void {
    this.#closeSent = true;
    this.#closeCode = code;
    this.#closeReason = reason;
    const why = encoder.encode(reason).subarray(0, 123);
    const payload = new Uint8Array(2 + why.length);
    payload[0] = code >> 8;
    payload[1] = code & 0xff;
    payload.set(why, 2);
    this.#enqueue(frame(OP_CLOSE, payload), true);
  }

  /** Ends the connection (once) and reports the close. */
  #end(clean = false): void {
    if (this.readyState === ServerWebSocket.CLOSED) return;
    const wasClean = clean || this.#closeSent;
    this.readyState = ServerWebSocket.CLOSED;
    clearTimeout(this.#closeTimer);
    closeQuietly(this.#slot.tcp);
    this.#queue.length = 0;
    this.#queued = 0;
    this.#dispatchClose(wasClean ? this.#closeCode : 1006, this.#closeReason, wasClean);
    this.#ended?.();
  }

  #dispatchClose(code: number, reason: string, wasClean: boolean): void {
    this.dispatchEvent(new CloseEvent("close", { code, reason, wasClean }));
  }

  #enqueue(bytes: Uint8Array, evenClosing = false): void {
    if (this.readyState === ServerWebSocket.CLOSED) return;
    if (this.readyState === ServerWebSocket.CLOSING && !evenClosing && this.#closeSent) return;
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    this.#writing ??= this.#flush().finally(() => this.#writing = undefined);
  }

  async #flush(): Promise<void> {
    const tcp = this.#slot.tcp;
    while (this.#queue.length > 0) {
      const bytes = this.#queue.length === 1 ? this.#queue[0] : join(this.#queue, this.#queued);
      const count = this.#queue.length;
      const disarm = this.#sendTimeout?.(true);
      try {
        let offset = 0;
        while (offset < bytes.length) offset += await tcp.write(bytes.subarray(offset));
      } catch {
        this.#end();
        return;
      } finally {
        disarm?.();
      }
      this.#queue.splice(0, count);
      this.#queued -= bytes.length;
    }
  }

  /** Exactly `n` bytes from the connection; `null` when it ended first. */
  async #exact(n: number): Promise<Uint8Array | null> {
    const reader = this.#slot.reader;
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < n) {
      const chunk = await reader.readSome(n - got);
      if (chunk === null) return null;
      parts.push(chunk);
      got += chunk.length;
    }
    return parts.length === 1 ? parts[0] : join(parts, got);
  }
}

/** A server frame (never masked), FIN set. */
export function frame(op: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const headLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = new Uint8Array(headLength + length);
  out[0] = 0x80 | op;
  if (length < 126) out[1] = length;
  else if (length < 65536) {
    out[1] = 126;
    out[2] = length >> 8;
    out[3] = length & 0xff;
  } else {
    out[1] = 127;
    new DataView(out.buffer).setUint32(6, length);
  }
  out.set(payload, headLength);
  return out;
}

/** One part as it is, several joined. */
function join(parts: Uint8Array[], total: number): Uint8Array {
  return parts.length === 1 ? parts[0] : concatBytes(parts, total);
}
