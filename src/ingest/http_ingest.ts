/**
 * HTTP ingest: `POST /api/v1/ingest`, acknowledged and idempotent. A body of text lines or NDJSON
 * records (optionally gzip-compressed) is read whole within its limits, framed with the same rules
 * as TCP, written to the router, and answered 200 only once the sinks acknowledged it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import type { StreamMarks } from "../store/stream_marks.ts";
import { type FramedLines, LineFramer } from "./framing.ts";
import {
  type JsonField,
  type JsonRecord,
  JsonRecordError,
  type KeyUse,
  LARGE_RECORD_BYTES,
  readJsonRecord,
} from "./json_record.ts";

/** Options of {@linkcode HttpIngest}. */
export interface HttpIngestOptions {
  /** High-water marks of `X-Stream-Id` streams; without it, stream headers are refused (400). */
  marks?: StreamMarks;
  /** Largest body, compressed and decompressed alike, in bytes. Default 16 MiB. */
  maxBody?: number;
  /** Longer lines are split into pieces of this many bytes. Default 1 MiB. */
  maxLine?: number;
  /**
   * Bytes of bodies being read at once, over all requests; past it, requests get 503 so that many
   * large uploads cannot exhaust memory. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** Seconds a client is asked to wait in `Retry-After` when the server is saturated. Default 1. */
  retryAfterSeconds?: number;
}

/** Counters of HTTP ingest, for metrics. */
export interface HttpIngestStats {
  /** Bodies acknowledged (not counting duplicates). */
  batches: number;
  /** Lines acknowledged. */
  lines: number;
  /** Batches answered `duplicate` and not written. */
  duplicates: number;
  /** Requests refused, by HTTP status. */
  refused: Record<number, number>;
}

/** The peer of a request, as the HTTP server knows it. */
export interface IngestPeer {
  /** The client's IP address: the host of lines whose record does not name one. */
  hostname: string;
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/**
 * Compressed input is fed to gunzip in slices this small: deflate expands at most about 1,032
 * times, so one slice becomes at most about 16 MiB before the size check sees it (smaller slices
 * cost throughput: 8 KiB halved it).
 */
const GZIP_SLICE_BYTES = 16 * 1024;
/** Longest `source`, `host` or stream id accepted, in UTF-16 code units. */
const MAX_NAME_LENGTH = 256;
const STREAM_ID = /^[\x21-\x7e]{1,256}$/;
const NDJSON_TYPES = new Set([
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/x-jsonlines",
  "application/json",
]);
const TEXT_TYPES = new Set(["", "application/octet-stream", "application/x-www-form-urlencoded"]);
/** Work on one request runs at most this long before it lets others run. */
const SLICE_MS = 4;
/** Text bodies are framed this many bytes at a time (a gunzipped chunk can be 16 MiB). */
const SLICE_BYTES = 1024 * 1024;
const NEWLINE = new Uint8Array([10]);
/** What HTTP ingest reads of a large record. */
const RECORD_KEYS: ReadonlyMap<string, KeyUse> = new Map<string, KeyUse>([
  ["line", "utf8"],
  ["source", "text"],
  ["host", "text"],
  ["ts", "type"],
]);
/** A large record's line goes to the framer this many bytes at a time. */
const LINE_SLICE_BYTES = 256 * 1024;
const encoder = new TextEncoder();
const log = getLogger(["logboom", "ingest", "http"]);

/** A request this input answers with a 4xx or 5xx status, and why. */
class Refusal extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "Refusal";
    this.status = status;
    this.headers = headers;
  }
}

/**
 * Handles ingest requests for one router.
 *
 * @example
 * ```ts
 * const ingest = new HttpIngest(router, { marks, maxBody: 16 * 1024 * 1024 });
 * Deno.serve((req, info) => ingest.handle(req, info.remoteAddr));
 * ```
 */
export class HttpIngest {
  readonly #sink: Sink;
  readonly #marks: StreamMarks | undefined;
  readonly #maxBody: number;
  readonly #maxLine: number | undefined;
  readonly #maxBuffered: number;
  readonly #retryAfter: string;
  readonly #locks = new KeyedLock();
  #buffered = 0;
  #closed = false;
  readonly #stats: HttpIngestStats = { batches: 0, lines: 0, duplicates: 0, refused: {} };

  /**
   * @param sink where batches go: the router.
   * @param options limits; see {@linkcode HttpIngestOptions} for defaults.
   */
  constructor(sink: Sink, options: HttpIngestOptions = {}) {
    const {
      marks,
      maxBody = DEFAULT_MAX_BODY,
      maxLine,
      maxBufferedBytes = 64 * 1024 * 1024,
      retryAfterSeconds = 1,
    } = options;
    this.#sink = sink;
    this.#marks = marks;
    this.#maxBody = positive("Body limit", maxBody);
    this.#maxLine = maxLine;
    this.#maxBuffered = positive("Buffered byte limit", maxBufferedBytes);
    this.#retryAfter = String(positive("Retry-After", retryAfterSeconds));
  }

  /** Counters for metrics (a live object: read, do not keep). */
  get stats(): Readonly<HttpIngestStats> {
    return this.#stats;
  }

  /** Refuses new requests from now on (503), for shutdown; requests under way complete. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Answers one ingest request: `200 {"accepted": N, "duplicate": false}` once every line is
   * acknowledged by the sinks, `200 {"accepted": 0, "duplicate": true}` for a batch at or below its
   * stream's mark, and 400, 405, 413, 415 or 503 with `{"error": "..."}`.
   */
  async handle(req: Request, peer: IngestPeer): Promise<Response> {
    try {
      return await this.#handle(req, peer);
    } catch (err) {
      await req.body?.cancel().catch(() => {});
      if (err instanceof Refusal) {
        this.#stats.refused[err.status] = (this.#stats.refused[err.status] ?? 0) + 1;
        return json(err.status, { error: err.message }, err.headers);
      }
      log.error("Ingest request failed: {error}", { error: describe(err) });
      this.#stats.refused[500] = (this.#stats.refused[500] ?? 0) + 1;
      return json(500, { error: `Ingest failed: ${describe(err)}` });
    }
  }

  async #handle(req: Request, peer: IngestPeer): Promise<Response> {
    if (req.method !== "POST") throw new Refusal(405, "Use POST", { allow: "POST" });
    const url = new URL(req.url);
    const source = url.searchParams.get("source") ?? "http";
    checkName("source", source);
    const format = bodyFormat(req.headers.get("content-type"));
    const gzip = isGzip(req.headers.get("content-encoding"));
    const stream = streamHeaders(req.headers);
    if (stream !== undefined && this.#marks === undefined) {
      throw new Refusal(400, "Stream headers are not supported here");
    }
    const length = req.headers.get("content-length");
    if (length !== null && Number(length) > this.#maxBody) {
      throw new Refusal(413, `Body of ${length} bytes is over the limit of ${this.#maxBody}`);
    }
    this.#checkRoom();
    const run = () => this.#ingest(req, { source, host: peer.hostname, format, gzip, stream });
    return stream === undefined ? await run() : await this.#locks.run(stream.id, run);
  }

  #checkRoom(): void {
    if (this.#closed) {
      throw new Refusal(503, "The server is shutting down", { "retry-after": this.#retryAfter });
    }
    if (this.#sink.full || this.#buffered >= this.#maxBuffered) {
      throw new Refusal(503, "The ingest queue is full", { "retry-after": this.#retryAfter });
    }
  }

  async #ingest(req: Request, request: ParsedRequest): Promise<Response> {
    const { stream } = request;
    if (stream !== undefined) {
      const mark = this.#marks!.get(stream.id);
      if (mark !== undefined && stream.offset <= mark) {
        await req.body?.cancel();
        this.#stats.duplicates++;
        return json(200, { accepted: 0, duplicate: true });
      }
      // A resend queued behind the original found nothing to refuse, but the queue may be full now.
      this.#checkRoom();
    }
    const reservation = { bytes: 0 };
    try {
      // The whole body is read and checked before anything is written: an error stores nothing.
      const groups = await this.#read(req, request, reservation);
      const batches = this.#batches(groups, stream);
      let lines = 0;
      for (const group of groups.values()) lines += group.lines;
      let clock = performance.now();
      for (const batch of batches) {
        this.#sink.write(batch);
        if (performance.now() - clock > SLICE_MS) {
          // Thousands of sources in one body: let other requests run between them.
          await nextTurn();
          clock = performance.now();
        }
      }
      // The acknowledgement: these batches are stored (and fsynced under -fsync batch), waiting
      // only for the files they went to.
      await this.#sink.flush(batches);
      if (stream !== undefined) this.#marks!.advance(stream.id, stream.offset);
      this.#stats.batches++;
      this.#stats.lines += lines;
      return json(200, { accepted: lines, duplicate: false });
    } finally {
      this.#buffered -= reservation.bytes;
    }
  }

  /**
   * One batch per (source, host) group of the body; with stream headers each carries its mark,
   * and the lines a crashed run stored already (see `StreamMarks.stored`) are left out.
   */
  #batches(groups: Map<string, Group>, stream: StreamHeaders | undefined): Batch[] {
    const receivedAt = Date.now();
    const parts = [...groups.values()].filter((group) => group.lines > 0);
    const stored = stream && this.#marks!.stored(stream.id, stream.offset);
    const batches: Batch[] = [];
    parts.forEach((group, part) => {
      const skipped = Math.min(stored?.get(part) ?? 0, group.lines);
      if (skipped === group.lines) return;
      batches.push({
        data: skipped === 0 ? group.bytes() : afterLines(group.bytes(), skipped),
        lines: group.lines - skipped,
        meta: group.meta,
        receivedAt,
        mark: stream && {
          stream: stream.id,
          offset: stream.offset,
          part,
          parts: parts.length,
          total: group.lines,
          skipped,
        },
      });
    });
    return batches;
  }

  /**
   * Reads and frames the whole body, grouped by (source, host). Time and memory are linear in the
   * body: records are cut on newline bytes and each decoded once, groups hold only their lines,
   * and work yields to other requests every few milliseconds.
   */
  async #read(
    req: Request,
    request: ParsedRequest,
    reservation: { bytes: number },
  ): Promise<Map<string, Group>> {
    const groups = new Map<string, Group>();
    // Every group's lines go to one arena, in arrival order: no buffer per source.
    const arena = new ByteBuilder(64 * 1024);
    const groupFor = (source: string, host: string): Group => {
      const key = `${source}\n${host}`;
      let group = groups.get(key);
      if (group === undefined) {
        group = new Group({ source, host, input: "http" }, arena);
        groups.set(key, group);
      }
      return group;
    };
    const reserve = (n: number) => {
      reservation.bytes += n;
      this.#buffered += n;
      if (this.#buffered > this.#maxBuffered) {
        throw new Refusal(503, "The ingest queue is full", { "retry-after": this.#retryAfter });
      }
    };
    // One framer serves every group: NDJSON records reach it whole, so it never holds a partial.
    const framer = new LineFramer({ maxLine: this.#maxLine });
    let clock = performance.now();
    const due = () => performance.now() - clock > SLICE_MS;
    const pause = async () => {
      await nextTurn();
      clock = performance.now();
    };
    const chunks = readBody(req, { maxBody: this.#maxBody, gzip: request.gzip });
    if (request.format === "text") {
      const group = groupFor(request.source, request.host);
      for await (const chunk of chunks) {
        reserve(chunk.length);
        for (let at = 0; at < chunk.length; at += SLICE_BYTES) {
          group.add(framer.push(chunk.subarray(at, at + SLICE_BYTES)));
          if (due()) await pause();
        }
      }
      group.add(framer.end());
      return groups;
    }
    const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    const partial = new ByteBuilder(0);
    let number = 0;
    const invalid = () => new Refusal(400, `Record ${number} of the body is not valid UTF-8`);
    const record = (bytes: Uint8Array) => {
      number++;
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        throw invalid();
      }
      const { line, source, host } = parseRecord(text, number, request);
      if (line === "") return;
      groupFor(source, host).add(framer.push(encoder.encode(line + "\n")));
    };
    /** A record over LARGE_RECORD_BYTES: parsed and framed a slice at a time, with turns for others. */
    const largeRecord = async (bytes: Uint8Array) => {
      number++;
      let parsed: JsonRecord;
      try {
        parsed = await readJsonRecord(bytes, RECORD_KEYS, { due, pause });
      } catch (err) {
        if (!(err instanceof JsonRecordError)) throw err;
        throw err.reason === "utf8" ? invalid() : notJson(number, err);
      }
      if (parsed.kind === "blank") return;
      const { source, host } = checkRecord(asParsed(parsed), number, request);
      const line = parsed.kind === "object" ? parsed.fields.get("line")!.utf8! : [];
      if (line.every((piece) => piece.length === 0)) return;
      const group = groupFor(source, host);
      for (const piece of line) {
        for (let at = 0; at < piece.length; at += LINE_SLICE_BYTES) {
          group.add(framer.push(piece.subarray(at, at + LINE_SLICE_BYTES)));
          if (due()) await pause();
        }
      }
      group.add(framer.push(NEWLINE));
    };
    for await (const chunk of chunks) {
      reserve(chunk.length);
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        let bytes = chunk.subarray(start, nl);
        if (partial.length > 0) {
          partial.append(bytes);
          bytes = partial.bytes();
        }
        if (bytes.length > LARGE_RECORD_BYTES) await largeRecord(bytes);
        else record(bytes);
        partial.clear();
        start = nl + 1;
        if (due()) await pause();
      }
      partial.append(chunk.subarray(start));
      if (due()) await pause();
    }
    const last = partial.bytes();
    if (last.length > LARGE_RECORD_BYTES) await largeRecord(last);
    else record(last);
    return groups;
  }
}

interface StreamHeaders {
  id: string;
  offset: number;
}

interface ParsedRequest {
  source: string;
  host: string;
  format: "text" | "ndjson";
  gzip: boolean;
  stream: StreamHeaders | undefined;
}

/** Lines bound for one batch: one (source, host) pair of the body, as ranges of a shared arena. */
class Group {
  readonly meta: BatchMeta;
  readonly #arena: ByteBuilder;
  /** Start and end of each run of this group's lines in the arena. */
  readonly #ranges: number[] = [];
  lines = 0;

  constructor(meta: BatchMeta, arena: ByteBuilder) {
    this.meta = meta;
    this.#arena = arena;
  }

  /** Copies framed lines in: the framer's output is borrowed. */
  add(framed: FramedLines | undefined): void {
    if (framed === undefined) return;
    const start = this.#arena.length;
    this.#arena.append(framed.data);
    const ranges = this.#ranges;
    if (ranges.at(-1) === start) ranges[ranges.length - 1] = this.#arena.length;
    else ranges.push(start, this.#arena.length);
    this.lines += framed.lines;
  }

  /** The group's lines: a view of the arena when they arrived in one run. Call once all is read. */
  bytes(): Uint8Array {
    const arena = this.#arena.bytes();
    const ranges = this.#ranges;
    if (ranges.length === 2) return arena.subarray(ranges[0], ranges[1]);
    let size = 0;
    for (let i = 0; i < ranges.length; i += 2) size += ranges[i + 1] - ranges[i];
    const out = new Uint8Array(size);
    for (let i = 0, at = 0; i < ranges.length; i += 2) {
      out.set(arena.subarray(ranges[i], ranges[i + 1]), at);
      at += ranges[i + 1] - ranges[i];
    }
    return out;
  }
}

/** Lets timers and other requests run: a macrotask turn of the event loop. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** `data` after its first `lines` lines. */
function afterLines(data: Uint8Array, lines: number): Uint8Array {
  let at = 0;
  for (let i = 0; i < lines; i++) at = data.indexOf(10, at) + 1;
  return data.subarray(at);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function positive(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive integer, got "${value}"`);
  }
  return value;
}

function checkName(what: string, value: string): void {
  if (value.length > MAX_NAME_LENGTH) {
    throw new Refusal(400, `The ${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
}

function bodyFormat(contentType: string | null): "text" | "ndjson" {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (NDJSON_TYPES.has(type)) return "ndjson";
  // `curl --data-binary` labels bodies as a form unless told otherwise: they are lines all the same.
  if (TEXT_TYPES.has(type) || type.startsWith("text/")) return "text";
  throw new Refusal(415, `Content-Type "${type}" is not text lines or NDJSON`);
}

function isGzip(contentEncoding: string | null): boolean {
  const encoding = (contentEncoding ?? "").trim().toLowerCase();
  if (encoding === "gzip" || encoding === "x-gzip") return true;
  if (encoding === "" || encoding === "identity") return false;
  throw new Refusal(415, `Content-Encoding "${encoding}" is not supported; use gzip`);
}

function streamHeaders(headers: Headers): StreamHeaders | undefined {
  const id = headers.get("x-stream-id");
  const rawOffset = headers.get("x-stream-offset");
  if (id === null && rawOffset === null) return undefined;
  if (id === null || rawOffset === null) {
    throw new Refusal(400, "X-Stream-Id and X-Stream-Offset go together");
  }
  if (!STREAM_ID.test(id)) {
    throw new Refusal(400, "X-Stream-Id must be 1 to 256 visible ASCII characters");
  }
  const offset = /^\d{1,16}$/.test(rawOffset) ? Number(rawOffset) : NaN;
  if (!Number.isSafeInteger(offset)) {
    throw new Refusal(400, `X-Stream-Offset must be a byte offset, got "${rawOffset}"`);
  }
  return { id, offset };
}

function parseRecord(
  text: string,
  number: number,
  request: ParsedRequest,
): { line: string; source: string; host: string } {
  if (text.trim() === "") return { line: "", source: request.source, host: request.host };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw notJson(number, err);
  }
  return checkRecord(value, number, request);
}

function notJson(number: number, err: unknown): Refusal {
  return new Refusal(400, `Record ${number} of the body is not JSON: ${describe(err)}`);
}

/** The checks of a record's value, whichever parser read it, in one order with one wording. */
function checkRecord(
  value: unknown,
  number: number,
  request: ParsedRequest,
): { line: string; source: string; host: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Refusal(400, `Record ${number} of the body is not a JSON object`);
  }
  const { line, source = request.source, host = request.host, ts } = value as Record<
    string,
    unknown
  >;
  if (typeof line !== "string") {
    throw new Refusal(400, `Record ${number} of the body has no "line" string`);
  }
  if (typeof source !== "string" || typeof host !== "string") {
    throw new Refusal(
      400,
      `Record ${number} of the body has a "source" or "host" that is not a string`,
    );
  }
  if (ts !== undefined && typeof ts !== "string" && typeof ts !== "number") {
    throw new Refusal(
      400,
      `Record ${number} of the body has a "ts" that is not a string or number`,
    );
  }
  checkName("source", source);
  checkName("host", host);
  return { line, source, host };
}

/**
 * What `JSON.parse` would have given for a large record, as far as `checkRecord` looks: each key
 * read holds a value of its type, and a string its text. A string without text (the line, whose
 * bytes are kept apart; `ts`; a name too long to keep as text, so at least 682 characters) stands
 * in as one just over the name limit, which `checkName` refuses as it would the real one.
 */
function asParsed(record: Exclude<JsonRecord, { kind: "blank" }>): unknown {
  if (record.kind === "other") return null;
  const value: Record<string, unknown> = {};
  for (const [key, field] of record.fields) value[key] = standIn(field);
  return value;
}

const TOO_LONG_NAME = "x".repeat(MAX_NAME_LENGTH + 1);

function standIn(field: JsonField): unknown {
  switch (field.type) {
    case "string":
      return field.text ?? TOO_LONG_NAME;
    case "number":
      return 0;
    case "boolean":
      return false;
    case "null":
      return null;
    case "object":
      return {};
    case "array":
      return [];
  }
}

/**
 * The body's bytes, decompressed when `gzip`, with both sizes bounded by `maxBody` (413 past it,
 * so a gzip bomb expands by at most one slice before it is refused).
 */
async function* readBody(
  req: Request,
  options: { maxBody: number; gzip: boolean },
): AsyncGenerator<Uint8Array> {
  const { maxBody, gzip } = options;
  if (req.body === null) return;
  const tooLarge = () => new Refusal(413, `Body is over the limit of ${maxBody} bytes`);
  let stream: ReadableStream<Uint8Array> = req.body;
  let compressedTooLarge = false;
  if (gzip) {
    let raw = 0;
    const slicer = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        raw += chunk.length;
        if (raw > maxBody) {
          compressedTooLarge = true;
          controller.error(tooLarge());
          return;
        }
        for (let at = 0; at < chunk.length; at += GZIP_SLICE_BYTES) {
          controller.enqueue(chunk.subarray(at, at + GZIP_SLICE_BYTES));
        }
      },
    });
    const gunzip = new DecompressionStream("gzip") as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >;
    stream = stream.pipeThrough(slicer).pipeThrough(gunzip);
  }
  const reader = stream.getReader();
  let size = 0;
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (err) {
        if (compressedTooLarge) throw tooLarge();
        if (gzip) throw new Refusal(400, `Body is not valid gzip: ${describe(err)}`);
        throw err;
      }
      if (result.done) return;
      size += result.value.length;
      if (size > maxBody) throw tooLarge();
      yield result.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** A growable byte array: framed lines are copied in, as the framer's output is borrowed. */
class ByteBuilder {
  readonly #initial: number;
  #buf: Uint8Array;
  #len = 0;

  constructor(initial: number) {
    this.#initial = initial;
    this.#buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.#len;
  }

  append(data: Uint8Array): void {
    if (this.#len + data.length > this.#buf.length) {
      const size = Math.max(this.#initial, this.#len + data.length, this.#buf.length * 2);
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(data, this.#len);
    this.#len += data.length;
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Empties it, and lets a large buffer go. */
  clear(): void {
    this.#len = 0;
    if (this.#buf.length > 1024 * 1024) this.#buf = new Uint8Array(this.#initial);
  }
}

/** Runs tasks one at a time per key: a resend waits for the original before checking the mark. */
class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const tail = previous.then(() => new Promise<void>((resolve) => release = resolve));
    this.#tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
