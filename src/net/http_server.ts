/**
 * An HTTP/1.1 server over `Deno.listen` that hands web-standard `Request`s to a handler and writes
 * its `Response`s, with what `Deno.serve` lacks: a connection cap shared with the other
 * listeners, a header timeout (slowloris), a body read timeout (half-open uploads), a send
 * timeout (a client that stops reading), an idle keep-alive timeout, and accept errors that
 * never stop the listener.
 *
 * - Keep-alive by default in HTTP/1.1, `Connection: close` honoured; requests on a connection are
 *   answered in order.
 * - Request bodies (Content-Length or chunked) are streams that read only when the handler pulls;
 *   `Expect: 100-continue` is answered when it first does. A body the handler leaves unread closes
 *   the connection after the answer. A handler can instead read a body straight into its own
 *   buffer (`bodyReaderOf(request)` of `http1.ts`), with the same framing, timeout and errors.
 * - A response body that ends at once goes with `Content-Length`; one that streams (SSE) goes
 *   chunked, each chunk written before the next is pulled (backpressure). A client that goes away
 *   cancels the body and aborts `request.signal`.
 * - Malformed requests get 400, oversized heads 431, unsupported codings 501, each with a JSON
 *   body saying why, and the connection closes.
 * - WebSocket upgrades: see `websocket.ts`.
 *
 * @module
 */

import { acceptLoop, closeQuietly, type ConnectionGate } from "./accept.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";
import {
  bodyFraming,
  BodyReader,
  type BodyState,
  ConnReader,
  encodeChunk,
  headEnd,
  LAST_CHUNK,
  parseHead,
  READ_BODY_INTO,
  readerStream,
  type RequestHead,
  type ResponseFraming,
  responseHead,
} from "./http1.ts";
import { HttpError } from "./http_error.ts";
import { takeUpgrade, UPGRADES, type WebSocketConn } from "./websocket.ts";

/** The peer of a request. */
export interface HttpPeer {
  /** The client's IP address. */
  hostname: string;
  /** The client's port. */
  port: number;
}

/** Answers one request. Thrown errors become a 500. */
export type HttpHandler = (req: Request, peer: HttpPeer) => Response | Promise<Response>;

/** Timeouts of {@linkcode HttpServer}, in ms. */
export interface HttpTimeouts {
  /** From the first byte of a request (or the connection's start) to the end of its head. Default 10 s. */
  headerMs?: number;
  /** Longest wait for the next bytes of a request body. Default 30 s. */
  bodyMs?: number;
  /** Longest wait for the client to take response bytes. Default 60 s. */
  sendMs?: number;
  /** Longest a kept-alive connection waits for its next request. Default 75 s. */
  idleMs?: number;
}

/** Settings of {@linkcode HttpServer.listen}. */
export interface HttpServerOptions extends HttpTimeouts {
  /** Address to bind. */
  hostname: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** The cap shared with the other listeners. */
  gate: ConnectionGate;
  /** Largest request head, in bytes. Default 32 KiB. */
  maxHeadBytes?: number;
  /** Called once per failed accept (for a log line). */
  onAcceptError?: (code: string, err: unknown) => void;
  /** Called when a handler throws (for a log line); the client gets a 500. */
  onError?: (err: unknown) => void;
  /** The deadline sweeper; tests inject one with a fake clock. Default: a new one. */
  deadlines?: Deadlines;
}

const DEFAULT_TIMEOUTS: Required<HttpTimeouts> = {
  headerMs: 10_000,
  bodyMs: 30_000,
  sendMs: 60_000,
  idleMs: 75_000,
};
const HOST = /^[A-Za-z0-9.\-_~%!$&'()*+,;=:\[\]]{1,255}$/;
const encoder = new TextEncoder();
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/**
 * Serves HTTP/1.1 with a handler.
 *
 * @example
 * ```ts
 * const gate = new ConnectionGate(4096);
 * const server = HttpServer.listen({ hostname: "127.0.0.1", port: 8081, gate }, (req) => {
 *   return new Response("ok\n");
 * });
 * // on shutdown: no new connections, requests under way finish
 * await server.shutdown();
 * ```
 */
export class HttpServer {
  /** The address actually bound. */
  readonly addr: Deno.NetAddr;
  readonly #listener: Deno.Listener;
  readonly #handler: HttpHandler;
  readonly #gate: ConnectionGate;
  readonly #timeouts: Required<HttpTimeouts>;
  readonly #maxHead: number;
  readonly #onError: (err: unknown) => void;
  readonly #deadlines: Deadlines;
  readonly #ownDeadlines: boolean;
  readonly #conns = new Set<Connection>();
  readonly #accepting: Promise<void>;
  readonly #done = new Set<Promise<void>>();
  #closing = false;

  private constructor(listener: Deno.Listener, handler: HttpHandler, options: HttpServerOptions) {
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    this.#handler = handler;
    this.#gate = options.gate;
    this.#timeouts = {
      headerMs: options.headerMs ?? DEFAULT_TIMEOUTS.headerMs,
      bodyMs: options.bodyMs ?? DEFAULT_TIMEOUTS.bodyMs,
      sendMs: options.sendMs ?? DEFAULT_TIMEOUTS.sendMs,
      idleMs: options.idleMs ?? DEFAULT_TIMEOUTS.idleMs,
    };
    this.#maxHead = options.maxHeadBytes ?? 32 * 1024;
    this.#onError = options.onError ?? (() => {});
    this.#ownDeadlines = options.deadlines === undefined;
    this.#deadlines = options.deadlines ??
      new Deadlines({ sweepMs: sweepPeriod(this.#timeouts) });
    this.#accepting = acceptLoop(listener, {
      gate: this.#gate,
      transport: "http",
      stopped: () => this.#closing,
      failed: options.onAcceptError,
      refuse: (conn) => refuse(conn),
      serve: (conn) => this.#serve(conn),
    });
  }

  /** Binds (throws `Deno.errors.AddrInUse` and the like at once) and starts serving. */
  static listen(options: HttpServerOptions, handler: HttpHandler): HttpServer {
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    return new HttpServer(listener, handler, options);
  }

  /**
   * New timeouts (a config reload), for every deadline set from now on, on open connections too.
   * The deadline sweeper keeps its period, set from the timeouts the server started with.
   */
  setTimeouts(timeouts: HttpTimeouts): void {
    for (const [key, ms] of Object.entries(timeouts) as [keyof HttpTimeouts, number][]) {
      if (ms !== undefined) this.#timeouts[key] = ms;
    }
  }

  /** Open connections of this server. */
  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Stops accepting, closes idle connections, lets requests under way finish (each connection
   * closes after its current answer), then resolves. WebSockets must be closed by their owner
   * first; any still open are cut.
   */
  async shutdown(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#listener.close();
    }
    await this.#accepting;
    for (const conn of this.#conns) conn.closeIfIdle();
    await Promise.all(this.#done);
    if (this.#ownDeadlines) this.#deadlines.close();
  }

  #serve(tcp: Deno.Conn): void {
    const conn = new Connection(tcp, {
      handler: this.#handler,
      timeouts: this.#timeouts,
      maxHead: this.#maxHead,
      deadlines: this.#deadlines,
      onError: this.#onError,
      gate: this.#gate,
      closing: () => this.#closing,
    });
    this.#conns.add(conn);
    const done = conn.run().finally(() => {
      this.#conns.delete(conn);
      this.#done.delete(done);
      this.#gate.leave("http");
    });
    this.#done.add(done);
  }
}

/** The sweep runs a few times per shortest timeout, between 20 ms and 1 s. */
function sweepPeriod(t: Required<HttpTimeouts>): number {
  const shortest = Math.min(t.headerMs, t.bodyMs, t.sendMs, t.idleMs);
  return Math.max(20, Math.min(1000, Math.floor(shortest / 4)));
}

interface ConnectionOptions {
  handler: HttpHandler;
  timeouts: Required<HttpTimeouts>;
  maxHead: number;
  deadlines: Deadlines;
  onError: (err: unknown) => void;
  gate: ConnectionGate;
  closing: () => boolean;
}

/** One accepted connection: reads requests and writes answers in turn. */
class Connection {
  readonly #tcp: Deno.Conn;
  readonly #o: ConnectionOptions;
  readonly #reader: ConnReader;
  readonly #deadline: Deadline;
  readonly #peer: HttpPeer;
  /** Reading a request head (none is being answered): shutdown may close now. */
  #idle = true;
  #closed = false;
  #timedOut: string | undefined;
  #abort: AbortController | undefined;
  #socket: WebSocketConn | undefined;

  constructor(tcp: Deno.Conn, options: ConnectionOptions) {
    this.#tcp = tcp;
    this.#o = options;
    this.#reader = new ConnReader(tcp, options.maxHead + 1);
    this.#deadline = options.deadlines.watch((phase) => {
      options.gate.timedOut(phase);
      this.#timedOut = phase;
      this.close();
    });
    const remote = tcp.remoteAddr as Deno.NetAddr;
    this.#peer = { hostname: remote.hostname, port: remote.port };
    try {
      // A live tail's peer that vanished without closing is found by the kernel's probes.
      (tcp as Deno.TcpConn).setKeepAlive(true);
    } catch {
      // Reset already: the first read says so.
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort?.abort(new Error("The client connection closed"));
    closeQuietly(this.#tcp);
  }

  /** For shutdown: closes the connection if it waits for a request; a WebSocket closes with 1001. */
  closeIfIdle(): void {
    if (this.#socket !== undefined) this.#socket.close(1001, "The server is shutting down");
    else if (this.#idle) this.close();
  }

  async run(): Promise<void> {
    try {
      let first = true;
      while (!this.#closed && !this.#o.closing()) {
        const keep = await this.#exchange(first);
        first = false;
        if (!keep) break;
        this.#reader.releaseSlab();
      }
    } catch {
      // The connection failed or was closed by a timeout: nothing more to answer on it.
    } finally {
      this.#o.deadlines.unwatch(this.#deadline);
      this.close();
    }
  }

  /** Reads one request and answers it; resolves whether the connection can carry another. */
  async #exchange(first: boolean): Promise<boolean> {
    const { timeouts, deadlines } = this.#o;
    const reader = this.#reader;
    let head: RequestHead;
    let end: number;
    // The first request's head is due within the header timeout of the connection's start; a
    // later one may be preceded by an idle keep-alive wait.
    this.#idle = true;
    let headStart = first ? deadlines.now() : undefined;
    let searched = 0;
    for (;;) {
      end = reader.buffered > 0 ? headEnd(reader.peek(), Math.max(0, searched - 3)) : -1;
      if (end !== -1) break;
      searched = reader.buffered;
      if (reader.buffered > 0) headStart ??= deadlines.now();
      if (reader.buffered > this.#o.maxHead || reader.full) {
        await this.#fail(new HttpError(431, `The request head is over ${this.#o.maxHead} bytes`));
        return false;
      }
      if (this.#o.closing() && reader.buffered === 0) return false;
      this.#deadline.phase = headStart === undefined ? "idle" : "header";
      this.#deadline.at = headStart === undefined
        ? deadlines.now() + timeouts.idleMs
        : headStart + timeouts.headerMs;
      const more = await reader.fill();
      this.#deadline.at = Infinity;
      if (!more) {
        if (reader.buffered > 0) await this.#fail(new HttpError(400, "Incomplete request head"));
        return false;
      }
    }
    this.#idle = false;
    if (end > this.#o.maxHead) {
      await this.#fail(new HttpError(431, `The request head is over ${this.#o.maxHead} bytes`));
      return false;
    }
    let request: Request;
    let state: BodyState = { done: true, failed: false };
    let upgrade = false;
    try {
      head = parseHead(reader.peek().subarray(0, end));
      reader.skip(end);
      const built = this.#request(head);
      request = built.request;
      state = built.state;
      upgrade = built.upgrade;
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      await this.#fail(err);
      return false;
    }
    let res: Response;
    try {
      res = await this.#o.handler(request, this.#peer);
      if (!(res instanceof Response)) throw new TypeError("The handler did not return a Response");
    } catch (err) {
      this.#o.onError(err);
      res = new HttpError(500, "Internal error").response();
    } finally {
      if (upgrade) UPGRADES.delete(request);
    }
    const socket = upgrade && res.status === 101 ? takeUpgrade(res) : undefined;
    if (socket !== undefined) {
      await this.#upgrade(res, socket);
      return false;
    }
    // A malformed or cut-short body: the handler answered from a broken one; say what broke.
    if (state.failed && state.error instanceof HttpError) {
      await res.body?.cancel().catch(() => {});
      await this.#fail(state.error);
      return false;
    }
    // A body the handler left unread: cancel it, and close after the answer (the rest of it is
    // still on the wire).
    if (!state.done && request.body !== null && !request.bodyUsed) {
      await request.body.cancel().catch(() => {});
    }
    const keepAlive = state.done && !state.failed && wantsKeepAlive(head) && !this.#o.closing() &&
      (res.headers.get("connection") ?? "").toLowerCase() !== "close";
    return await this.#respond(head, res, keepAlive, state);
  }

  #request(head: RequestHead): {
    request: Request;
    state: BodyState;
    upgrade: boolean;
  } {
    const framing = bodyFraming(head.headers);
    let host: string | undefined;
    let expectContinue = false;
    let upgrade = false;
    for (const [name, value] of head.headers) {
      if (name === "host") {
        if (host !== undefined) throw new HttpError(400, "More than one Host header");
        host = value;
      } else if (name === "expect" && value.toLowerCase() === "100-continue") {
        expectContinue = head.version === 11;
      } else if (name === "upgrade" && value.toLowerCase() === "websocket") upgrade = true;
    }
    if (host !== undefined && !HOST.test(host)) throw new HttpError(400, "Malformed Host header");
    if (host === undefined && head.version === 11) {
      throw new HttpError(400, "HTTP/1.1 requests need a Host header");
    }
    const path = requestPath(head.target);
    const addr = this.#tcp.localAddr as Deno.NetAddr;
    const authority = host ??
      (addr.hostname.includes(":")
        ? `[${addr.hostname}]:${addr.port}`
        : `${addr.hostname}:${addr.port}`);
    let url: string;
    try {
      url = new URL(`http://${authority}${path}`).href;
    } catch {
      throw new HttpError(400, "Malformed request target or Host header");
    }
    let headers: Headers;
    try {
      headers = new Headers(head.headers);
    } catch {
      throw new HttpError(400, "Malformed header field");
    }
    const state: BodyState = { done: framing.type === "none", failed: false };
    let body: ReadableStream<Uint8Array> | null = null;
    let direct: BodyReader | undefined;
    if (framing.type !== "none") {
      const { bodyMs } = this.#o.timeouts;
      const deadline = this.#deadline;
      const deadlines = this.#o.deadlines;
      direct = new BodyReader(this.#reader, framing, {
        beforeRead() {
          deadline.phase = "body";
          deadline.at = deadlines.now() + bodyMs;
        },
        afterRead() {
          deadline.at = Infinity;
        },
        start: expectContinue ? () => this.#write(CONTINUE) : undefined,
        failure: () =>
          this.#timedOut === "body"
            ? new HttpError(408, `No bytes of the request body arrived for ${bodyMs} ms`)
            : new HttpError(400, "The connection failed within the request body"),
      }, state);
      body = readerStream(direct, state);
    }
    this.#abort = new AbortController();
    const method = head.method;
    const request = new Request(url, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? null : body,
      signal: this.#abort.signal,
      // @ts-ignore: a streamed request body needs half duplex (not in every lib's RequestInit).
      duplex: "half",
    });
    if ((method === "GET" || method === "HEAD") && body !== null) {
      // GET and HEAD bodies are not handed on: read and dropped, so the connection stays usable.
      state.done = false;
      void drain(body, state);
    }
    if (direct !== undefined && request.body !== null) {
      // The body straight into the handler's buffer, without the stream's buffer per read.
      const reader = direct;
      Object.defineProperty(request, READ_BODY_INTO, {
        value: (buf: Uint8Array): Promise<number | null> => {
          if (request.bodyUsed || request.body!.locked) {
            return Promise.reject(new TypeError("The request body is being read as a stream"));
          }
          return reader.readInto(buf);
        },
      });
    }
    if (upgrade) UPGRADES.set(request, { reader: this.#reader, tcp: this.#tcp });
    return { request, state, upgrade };
  }

  /** Writes the answer; resolves whether the connection can carry another request. */
  async #respond(
    head: RequestHead,
    res: Response,
    keepAlive: boolean,
    state: { done: boolean },
  ): Promise<boolean> {
    const close = !keepAlive;
    const withoutBody = head.method === "HEAD" || res.status === 204 || res.status === 304;
    if (res.body === null) {
      const framing: ResponseFraming = withoutBody
        ? { type: "none" }
        : { type: "length", length: 0 };
      await this.#write(responseHead(res.status, res.headers, framing, { close }));
      return keepAlive;
    }
    const reader = res.body.getReader();
    try {
      // A body that ends at once (a string, bytes) goes with its length; one that does not
      // (SSE) streams. A read of an ended stream resolves before a plain value does.
      const first = await reader.read();
      let next: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
      let ended = first.done;
      if (!first.done) {
        next = reader.read();
        const second = await Promise.race([next, undefined]);
        ended = second !== undefined && second.done;
      }
      const data = first.done ? new Uint8Array(0) : first.value;
      if (withoutBody) {
        const framing: ResponseFraming = head.method === "HEAD" && ended
          ? { type: "length", length: data.length }
          : { type: "none" };
        await this.#write(responseHead(res.status, res.headers, framing, { close }));
        return keepAlive;
      }
      if (ended) {
        const framing: ResponseFraming = { type: "length", length: data.length };
        await this.#write(concat(responseHead(res.status, res.headers, framing, { close }), data));
        return keepAlive;
      }
      // A stream: chunked in HTTP/1.1, delimited by closing the connection in HTTP/1.0.
      const chunked = head.version === 11;
      const closeAfter = close || !chunked;
      const framing: ResponseFraming = chunked ? { type: "chunked" } : { type: "close" };
      const frame = chunked ? encodeChunk : (bytes: Uint8Array) => bytes;
      const headBytes = responseHead(res.status, res.headers, framing, { close: closeAfter });
      await this.#write(data.length > 0 ? concat(headBytes, frame(data)) : headBytes);
      // A client that goes away while the stream waits for its next chunk cancels it.
      const watch = { on: true, gone: false };
      if (state.done) this.#watchClose(watch, () => reader.cancel().catch(() => {}));
      try {
        let read = next!;
        for (;;) {
          const result = await read;
          if (watch.gone) {
            this.close();
            return false;
          }
          if (result.done) break;
          if (result.value.length > 0) await this.#write(frame(result.value));
          read = reader.read();
        }
      } finally {
        watch.on = false;
      }
      if (chunked) await this.#write(LAST_CHUNK);
      return !closeAfter;
    } catch (err) {
      this.close();
      throw err;
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /**
   * Calls `gone` once the client ends or breaks the connection, while `watch.on`; bytes it sends
   * meanwhile (a pipelined request) stay buffered for later.
   */
  async #watchClose(watch: { on: boolean; gone: boolean }, gone: () => void): Promise<void> {
    const reader = this.#reader;
    try {
      while (watch.on && !reader.full) {
        if (!await reader.fill()) break;
      }
      if (!watch.on || reader.full) return;
    } catch {
      // Reset: gone.
    }
    if (!watch.on) return;
    watch.gone = true;
    gone();
  }

  async #upgrade(res: Response, socket: WebSocketConn): Promise<void> {
    try {
      const headBytes = responseHead(101, res.headers, { type: "none" }, {
        close: false,
        extra: [
          ["connection", "Upgrade"],
          ["upgrade", "websocket"],
          ["sec-websocket-accept", await socket.acceptValue()],
        ],
      });
      this.#socket = socket;
      await this.#write(headBytes);
    } catch (err) {
      socket.fail(err);
      throw err;
    }
    this.#o.deadlines.unwatch(this.#deadline);
    const deadlines = this.#o.deadlines;
    const { sendMs } = this.#o.timeouts;
    const gate = this.#o.gate;
    await socket.run({
      sendTimeout: (arm) => {
        if (!arm) return undefined;
        const deadline = deadlines.watch((phase) => {
          gate.timedOut(phase);
          this.close();
        });
        deadline.phase = "send";
        deadline.at = deadlines.now() + sendMs;
        return () => deadlines.unwatch(deadline);
      },
    });
  }

  /** Writes every byte, within the send timeout. */
  async #write(bytes: Uint8Array): Promise<void> {
    const deadline = this.#deadline;
    deadline.phase = "send";
    deadline.at = this.#o.deadlines.now() + this.#o.timeouts.sendMs;
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await this.#tcp.write(bytes.subarray(offset));
    } finally {
      deadline.at = Infinity;
    }
  }

  /** Answers a request the server refuses itself, then the connection closes. */
  async #fail(err: HttpError): Promise<void> {
    const res = err.response();
    const body = new Uint8Array(await res.arrayBuffer());
    const headBytes = responseHead(res.status, res.headers, {
      type: "length",
      length: body.length,
    }, { close: true });
    await this.#write(concat(headBytes, body)).catch(() => {});
  }
}

/** Reads a body to its end and drops it. */
async function drain(body: ReadableStream<Uint8Array>, state: { done: boolean }): Promise<void> {
  try {
    for await (const _ of body) {
      // Dropped.
    }
  } catch {
    state.done = false;
  }
}

function wantsKeepAlive(head: RequestHead): boolean {
  let connection = "";
  for (const [name, value] of head.headers) {
    if (name === "connection") connection += "," + value.toLowerCase();
  }
  const options = connection.split(",").map((o) => o.trim());
  if (options.includes("close")) return false;
  return head.version === 11 || options.includes("keep-alive");
}

/** The path and query of a request target (origin-form, absolute-form or `*`). */
function requestPath(target: string): string {
  // Appended to "http://host", "//x" stays a path (it is resolving against a base that would
  // read it as a host).
  if (target[0] === "/") return target;
  if (target === "*") return "/";
  if (/^https?:\/\//i.test(target)) {
    try {
      const url = new URL(target);
      return url.pathname + url.search;
    } catch {
      // Falls through to the refusal.
    }
  }
  throw new HttpError(400, "Malformed request target");
}

const REFUSAL_BODY = '{"error":"Too many connections: the server is at its limit"}\n';
const REFUSAL = encoder.encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n" +
    `retry-after: 1\r\nconnection: close\r\ncontent-length: ${REFUSAL_BODY.length}\r\n\r\n` +
    REFUSAL_BODY,
);

/** How long a refused connection may take to read its 503 before it is closed. */
const REFUSAL_LINGER_MS = 500;

/**
 * Answers 503 on a connection refused at the cap (the bytes fit any fresh send buffer), then
 * reads what the client sent, briefly, before closing: closing with unread bytes would reset the
 * connection and the client could lose the answer.
 */
function refuse(conn: Deno.Conn): void {
  const timer = setTimeout(() => closeQuietly(conn), REFUSAL_LINGER_MS);
  (async () => {
    await conn.write(REFUSAL);
    await conn.closeWrite();
    const buf = new Uint8Array(16 * 1024);
    while (await conn.read(buf) !== null);
  })().catch(() => {}).finally(() => {
    clearTimeout(timer);
    closeQuietly(conn);
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
