/**
 * HTTP/1.1 on the wire (RFC 9112): a buffered connection reader, the request head parser, request
 * bodies (Content-Length and chunked) as byte streams, and response heads.
 *
 * Bodies move as the bytes `conn.read` returned: no per-line work, and a copy only for bytes that
 * arrived in the same read as the head or a chunk-size line. A handler that keeps its own buffer
 * reads a body straight into it ({@linkcode READ_BODY_INTO}), with no buffer per read at all.
 *
 * @module
 */

import { HttpError } from "./http_error.ts";

/**
 * The key of a method the HTTP server puts on each `Request` with a body: `(buf) =>
 * Promise<number | null>` reads the body's next bytes straight into `buf` (how many, `null` at its
 * end), honouring its framing and the body timeout, and failing as the body stream would (e.g.
 * {@linkcode HttpError} 408). It reads from the same position as `request.body`; it throws while
 * the body stream is locked or used. See {@linkcode bodyReaderOf}.
 */
export const READ_BODY_INTO: unique symbol = Symbol("logboom.readBodyInto");

/** Reads a request body into the caller's buffer: bytes read, or `null` at its end. */
export type ReadBodyInto = (buf: Uint8Array) => Promise<number | null>;

/** The direct reader of `req`'s body, when the server that made it offers one. */
export function bodyReaderOf(req: Request): ReadBodyInto | undefined {
  const read = (req as unknown as Record<symbol, unknown>)[READ_BODY_INTO];
  return typeof read === "function" ? read as ReadBodyInto : undefined;
}

/** What a connection is read through: a `Deno.Conn`, or a fake in tests. */
export interface ByteSource {
  /** Reads into `p`; `null` at the end of the stream. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Bytes read per `read` for bodies. */
export const READ_BYTES = 64 * 1024;
/** Body reads share slabs of this size. */
const SLAB_BYTES = 256 * 1024;
/** Smaller reads (WebSocket frame heads) get their own buffer. */
const SLAB_MIN_READ = 16 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * A connection's read side with a buffer: the head parser looks into it, bodies take from it
 * first and then read straight into fresh buffers that are handed on without a copy.
 */
export class ConnReader {
  readonly #source: ByteSource;
  readonly #max: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #filling: Promise<boolean> | undefined;
  #slab = EMPTY;
  #slabAt = 0;
  /** Whether the peer ended its side. */
  eof = false;

  /**
   * @param source the connection.
   * @param max the largest the buffer grows: the largest head plus what may arrive behind it.
   * @param initial the buffer's first size; it doubles up to `max` as a head needs it.
   */
  constructor(source: ByteSource, max: number, initial = Math.min(max, 4096)) {
    this.#source = source;
    this.#max = max;
    this.#buf = new Uint8Array(initial);
  }

  /** Bytes buffered and not taken yet. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The buffered bytes (borrowed: valid until the next call). */
  peek(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Drops `n` buffered bytes. */
  skip(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /** Whether the buffer is full and cannot grow. */
  get full(): boolean {
    return this.#start === 0 && this.#end === this.#max;
  }

  /**
   * Reads once more into the buffer (moving what is buffered to its front first). Resolves
   * `false` at the end of the stream. The buffer must not be {@linkcode full}. A call while a
   * read is under way joins it, so reads never overlap.
   */
  fill(): Promise<boolean> {
    this.#filling ??= this.#fill().finally(() => this.#filling = undefined);
    return this.#filling;
  }

  async #fill(): Promise<boolean> {
    if (this.eof) return false;
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.length) {
      if (this.#buf.length >= this.#max) throw new RangeError("The read buffer is full");
      const grown = new Uint8Array(Math.min(this.#max, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#end));
      this.#buf = grown;
    }
    const n = await this.#source.read(this.#buf.subarray(this.#end));
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.#end += n;
    return true;
  }

  /**
   * Up to `max` bytes, for the caller to keep: buffered ones (copied), else one read into a
   * fresh buffer or a fresh part of a slab. `null` at the end of the stream.
   */
  async readSome(max: number): Promise<Uint8Array | null> {
    // A read under way (watching for the peer going away) lands in the buffer first.
    if (this.#filling !== undefined) await this.#filling;
    if (this.#end > this.#start) {
      const n = Math.min(max, this.#end - this.#start);
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.skip(n);
      return out;
    }
    if (this.eof) return null;
    const size = Math.min(max, READ_BYTES);
    if (size < SLAB_MIN_READ) {
      const chunk = new Uint8Array(size);
      const n = await this.#source.read(chunk);
      if (n === null) this.eof = true;
      return n === null ? null : chunk.subarray(0, n);
    }
    // Body reads land in a slab, each handed on as its own view: a short read costs only its
    // bytes (a fresh buffer per read would be zeroed whole).
    if (this.#slab.length - this.#slabAt < size) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabAt = 0;
    }
    const at = this.#slabAt;
    const n = await this.#source.read(this.#slab.subarray(at, at + size));
    if (n === null) {
      this.eof = true;
      return null;
    }
    this.#slabAt = at + n;
    return this.#slab.subarray(at, at + n);
  }

  /**
   * Up to `buf.length` bytes into `buf`: buffered ones first, else one read straight into it.
   * `null` at the end of the stream.
   */
  async readInto(buf: Uint8Array): Promise<number | null> {
    if (this.#filling !== undefined) await this.#filling;
    if (this.#end > this.#start) {
      const n = Math.min(buf.length, this.#end - this.#start);
      buf.set(this.#buf.subarray(this.#start, this.#start + n));
      this.skip(n);
      return n;
    }
    if (this.eof) return null;
    const n = await this.#source.read(buf);
    if (n === null) this.eof = true;
    return n;
  }

  /** Lets go of the body slab (between requests), so an idle connection holds only its buffer. */
  releaseSlab(): void {
    this.#slab = EMPTY;
    this.#slabAt = 0;
  }

  /** Where the buffered bytes hold `\n` from `from` on, relative to the buffered start; or -1. */
  indexOfNewline(from = 0): number {
    return this.#buf.subarray(this.#start, this.#end).indexOf(10, from);
  }
}

/** A parsed request head. */
export interface RequestHead {
  /** The method, e.g. `GET`. */
  method: string;
  /** The request target as sent, e.g. `/api/v1/tail?source=app`. */
  target: string;
  /** 10 for HTTP/1.0, 11 for HTTP/1.1. */
  version: 10 | 11;
  /** Header fields in order, names lowercased. */
  headers: [string, string][];
}

/** Limits of {@linkcode parseHead}. */
export interface HeadLimits {
  /** Most header fields. Default 100. */
  maxFields?: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab; no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^[\x21-\x7e]+$/;

/**
 * Where the head ends in `bytes` (the index after its blank line), or -1 when not there yet.
 * Lines may end in CRLF or a bare LF, as RFC 9112 lets a server accept.
 */
export function headEnd(bytes: Uint8Array, from = 0): number {
  let at = bytes.indexOf(10, from);
  while (at !== -1) {
    if (at + 1 < bytes.length && bytes[at + 1] === 10) return at + 2;
    if (at + 2 < bytes.length && bytes[at + 1] === 13 && bytes[at + 2] === 10) return at + 3;
    at = bytes.indexOf(10, at + 1);
  }
  return -1;
}

/** Decodes bytes one char per byte (ISO-8859-1), as header values are ByteStrings. */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + 8192)));
  }
  return text;
}

/**
 * Parses a request head (the request line and the header fields, up to and including the blank
 * line). Throws {@linkcode HttpError} 400 for a malformed one, 431 for too many fields, 505 for a
 * version other than 1.0 and 1.1.
 */
export function parseHead(bytes: Uint8Array, limits: HeadLimits = {}): RequestHead {
  const { maxFields = 100 } = limits;
  const lines = latin1(bytes).split("\n");
  let first = 0;
  // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
  while (first < lines.length && (lines[first] === "" || lines[first] === "\r")) first++;
  const requestLine = stripCr(lines[first] ?? "");
  const parts = requestLine.split(" ");
  if (parts.length !== 3) throw new HttpError(400, "Malformed request line");
  const [method, target, protocol] = parts;
  if (!TOKEN.test(method)) throw new HttpError(400, "Malformed method");
  if (!TARGET.test(target)) throw new HttpError(400, "Malformed request target");
  let version: 10 | 11;
  if (protocol === "HTTP/1.1") version = 11;
  else if (protocol === "HTTP/1.0") version = 10;
  else if (/^HTTP\/\d\.\d$/.test(protocol)) {
    throw new HttpError(505, `${protocol} is not supported; use HTTP/1.1`);
  } else throw new HttpError(400, "Malformed HTTP version");
  const headers: [string, string][] = [];
  for (let i = first + 1; i < lines.length; i++) {
    const line = stripCr(lines[i]);
    if (line === "") break;
    if (line[0] === " " || line[0] === "\t") {
      throw new HttpError(400, "Folded header lines are not accepted");
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) throw new HttpError(400, "Malformed header line");
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value)) throw new HttpError(400, `Header "${name}" holds a control byte`);
    if (headers.length === maxFields) {
      throw new HttpError(431, `More than ${maxFields} header fields`);
    }
    headers.push([name.toLowerCase(), value]);
  }
  return { method, target, version, headers };
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** How a request's body is delimited. */
export type BodyFraming = { type: "none" } | { type: "length"; length: number } | {
  type: "chunked";
};

/**
 * How the body of a request with these headers is delimited (RFC 9112 6.3). Refuses what request
 * smuggling is made of: Transfer-Encoding with Content-Length, differing lengths, codings other
 * than chunked.
 */
export function bodyFraming(headers: readonly [string, string][]): BodyFraming {
  let length: string | undefined;
  let coding: string | undefined;
  for (const [name, value] of headers) {
    if (name === "content-length") {
      for (const part of value.split(",")) {
        const v = part.trim();
        if (length !== undefined && length !== v) {
          throw new HttpError(400, "Conflicting Content-Length headers");
        }
        length = v;
      }
    } else if (name === "transfer-encoding") {
      coding = coding === undefined ? value : `${coding}, ${value}`;
    }
  }
  if (coding !== undefined) {
    if (length !== undefined) {
      throw new HttpError(400, "Transfer-Encoding and Content-Length together are not accepted");
    }
    const codings = coding.toLowerCase().split(",").map((c) => c.trim()).filter((c) => c !== "");
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw new HttpError(501, `Transfer-Encoding "${coding}" is not supported; use chunked`);
    }
    return { type: "chunked" };
  }
  if (length === undefined) return { type: "none" };
  if (!/^\d{1,15}$/.test(length)) throw new HttpError(400, "Malformed Content-Length");
  const n = Number(length);
  return n === 0 ? { type: "none" } : { type: "length", length: n };
}

/** Hooks of a request body stream into its connection. */
export interface BodyHooks {
  /** Called before each read from the connection (arm the body timeout). */
  beforeRead(): void;
  /** Called after each read (disarm it). */
  afterRead(): void;
  /** Called once, before the first byte is read: send `100 Continue` if it was asked for. */
  start?(): Promise<void>;
  /** Turns a failed read into the error the body's reader gets (e.g. a timeout's 408). */
  failure?(err: unknown): unknown;
}

/** What became of a request body. */
export interface BodyState {
  /** Read to its end: the connection can carry another request. */
  done: boolean;
  /** Its framing broke or the connection failed within it. */
  failed: boolean;
  /** Why it failed: an {@linkcode HttpError} for a malformed or cut-short body. */
  error?: unknown;
}

/** Largest chunk-size line, trailer field section or chunk-data terminator looked at. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;

/**
 * Where a request body stands on the wire, read either as fresh chunks (the body stream) or
 * straight into the caller's buffer ({@linkcode BodyReader.readInto}), from one position: one read
 * at a time, each through the hooks (the body timeout), a failure recorded in `state`.
 */
export class BodyReader {
  readonly #reader: ConnReader;
  readonly #framing: BodyFraming;
  readonly #hooks: BodyHooks;
  readonly #state: BodyState;
  #remaining: number;
  /** For chunked: `size` before a chunk-size line, `data` within a chunk. */
  #phase: "size" | "data" = "size";
  #started = false;
  #ended = false;
  #busy = false;

  /**
   * @param reader the connection, its head already taken.
   * @param framing how the body is delimited.
   * @param hooks the body timeout, `100 Continue`, the error a failed read becomes.
   * @param state tells afterwards whether the body was read to its end and whether it failed.
   */
  constructor(reader: ConnReader, framing: BodyFraming, hooks: BodyHooks, state: BodyState) {
    this.#reader = reader;
    this.#framing = framing;
    this.#hooks = hooks;
    this.#state = state;
    this.#remaining = framing.type === "length" ? framing.length : 0;
    this.#ended = framing.type === "none";
  }

  /**
   * Reads the next bytes of the body into `buf` (no more than the body holds): how many, or
   * `null` at its end. Throws {@linkcode HttpError} (or what `hooks.failure` makes of an error)
   * when the body is malformed, cut short or timed out.
   */
  readInto(buf: Uint8Array): Promise<number | null> {
    if (buf.length === 0) throw new RangeError("Reading a request body needs room");
    return this.#next((max) => this.#reader.readInto(buf.subarray(0, max)), (n) => n);
  }

  /** The next bytes of the body in a buffer of their own, or `null` at its end. */
  readChunk(): Promise<Uint8Array | null> {
    return this.#next((max) => this.#reader.readSome(max), (chunk) => chunk.length);
  }

  async #next<T>(
    take: (max: number) => Promise<T | null>,
    size: (got: T) => number,
  ): Promise<T | null> {
    if (this.#busy) throw new TypeError("A read of this request body is under way");
    if (this.#state.failed) throw this.#state.error;
    if (this.#ended) return null;
    this.#busy = true;
    try {
      if (!this.#started) {
        this.#started = true;
        await this.#hooks.start?.();
      }
      if (this.#framing.type === "chunked" && !await this.#toChunkData()) return this.#end();
      if (this.#remaining === 0) return this.#end();
      const got = await this.#read(() => take(this.#remaining));
      if (got === null) throw new HttpError(400, "The connection ended within the body");
      this.#remaining -= size(got);
      if (this.#framing.type === "length" && this.#remaining === 0) this.#end();
      return got;
    } catch (err) {
      const error = err instanceof HttpError ? err : this.#hooks.failure?.(err) ?? err;
      this.#state.failed = true;
      this.#state.error = error;
      this.#ended = true;
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  #end(): null {
    this.#ended = true;
    this.#state.done = true;
    return null;
  }

  async #read<T>(step: () => Promise<T>): Promise<T> {
    this.#hooks.beforeRead();
    try {
      return await step();
    } finally {
      this.#hooks.afterRead();
    }
  }

  /** Moves to bytes of chunk data; `false` at the last chunk (its trailers read). */
  async #toChunkData(): Promise<boolean> {
    for (;;) {
      if (this.#phase === "data") {
        if (this.#remaining > 0) return true;
        if (await this.#line("chunk terminator") !== "") {
          throw new HttpError(400, "Malformed chunked body: data longer than its size");
        }
        this.#phase = "size";
      }
      const sizeLine = await this.#line("chunk-size line");
      const hex = sizeLine.split(";")[0].trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
        throw new HttpError(400, "Malformed chunked body: bad chunk size");
      }
      this.#remaining = parseInt(hex, 16);
      if (this.#remaining === 0) {
        let trailers = 0;
        for (;;) {
          const trailer = await this.#line("trailer section");
          if (trailer === "") return false;
          trailers += trailer.length;
          if (trailers > MAX_TRAILERS) throw new HttpError(400, "The trailer section is too long");
        }
      }
      this.#phase = "data";
    }
  }

  async #line(what: string): Promise<string> {
    const reader = this.#reader;
    for (;;) {
      const nl = reader.indexOfNewline();
      if (nl !== -1) {
        const text = latin1(reader.peek().subarray(0, nl));
        reader.skip(nl + 1);
        return stripCr(text);
      }
      if (reader.buffered >= MAX_CHUNK_LINE || reader.full) {
        throw new HttpError(400, `The ${what} is too long`);
      }
      if (!await this.#read(() => reader.fill())) {
        throw new HttpError(400, "The connection ended within the body");
      }
    }
  }
}

/**
 * A request body as a byte stream that reads from the connection only when its reader asks.
 * `state` tells afterwards whether the body was read to its end and whether it failed.
 */
export function bodyStream(
  reader: ConnReader,
  framing: BodyFraming,
  hooks: BodyHooks,
  state: BodyState,
): ReadableStream<Uint8Array> {
  return readerStream(new BodyReader(reader, framing, hooks, state), state);
}

/** `body` as a byte stream (`state`: the reader's) that reads only when its reader asks. */
export function readerStream(body: BodyReader, state: BodyState): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: Uint8Array | null;
      try {
        chunk = await body.readChunk();
      } catch (err) {
        controller.error(err);
        return;
      }
      if (chunk === null) controller.close();
      else {
        controller.enqueue(chunk);
        // The last bytes of a body of known length end the stream at once.
        if (state.done) controller.close();
      }
    },
  }, { highWaterMark: 0 });
}

const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** Header fields of a response the server sets itself. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "upgrade",
  "date",
]);

const encoder = new TextEncoder();
let dateSecond = -1;
let dateText = "";

/** The `Date` header's value, computed once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** How a response body goes on the wire. */
export type ResponseFraming =
  | { type: "length"; length: number }
  | { type: "chunked" }
  | { type: "close" }
  | { type: "none" };

/**
 * A response head: status line, the response's own fields (hop-by-hop ones dropped), then
 * `content-length` or `transfer-encoding`, `connection: close` when asked, `date`.
 */
export function responseHead(
  status: number,
  headers: Headers | Iterable<[string, string]>,
  framing: ResponseFraming,
  options: { close: boolean; extra?: Iterable<[string, string]> },
): Uint8Array {
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name)) continue;
    text += `${name}: ${value}\r\n`;
  }
  for (const [name, value] of options.extra ?? []) text += `${name}: ${value}\r\n`;
  if (framing.type === "length") text += `content-length: ${framing.length}\r\n`;
  else if (framing.type === "chunked") text += "transfer-encoding: chunked\r\n";
  if (options.close) text += "connection: close\r\n";
  text += `date: ${httpDate()}\r\n\r\n`;
  return encoder.encode(text);
}

/** One chunk of a chunked body: size line, data, CRLF, in one buffer (one write). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = encoder.encode(data.length.toString(16) + "\r\n");
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size);
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** The end of a chunked body. */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");
