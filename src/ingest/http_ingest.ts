/**
 * HTTP ingest: `POST /api/v1/ingest`, acknowledged and idempotent. A body of text lines or NDJSON
 * records (optionally gzip-compressed) is read whole within its limits, framed with the same rules
 * as TCP, written to the router, and answered 200 only once the sinks acknowledged it.
 *
 * @module
 */

import { bodyReaderOf } from "../net/http1.ts";
import { HttpError } from "../net/http_error.ts";
import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { bodyTooLarge, isGzip, readBody } from "./http_body.ts";
import { NdjsonFastReader } from "./ndjson_fast.ts";
import { IngestGate, type IngestGateOptions, type IngestStats } from "./ingest_gate.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
export { readBody } from "./http_body.ts";
import type { StreamMarks } from "../store/stream_marks.ts";
import { type FramedLines, LineFramer } from "../text/framing.ts";
import {
  type JsonField,
  type JsonRecord,
  JsonRecordError,
  type KeyUse,
  LARGE_RECORD_BYTES,
  readJsonRecord,
  type Turns,
} from "./json_record.ts";

/**
 * Options of {@linkcode HttpIngest}: the gate's (body limits, `Retry-After`, turns), and its own.
 */
export interface HttpIngestOptions extends IngestGateOptions {
  /** High-water marks of `X-Stream-Id` streams; without it, stream headers are refused (400). */
  marks?: StreamMarks;
  /** Longer lines are split into pieces of this many bytes. Default 1 MiB. */
  maxLine?: number;
  /**
   * How long a batch sent ahead (`X-Stream-Start`) that finds a gap before it waits for the batch
   * before it, in ms, before a 409. Default 1000.
   */
  inOrderWaitMs?: number;
}

/** Counters of HTTP ingest (every route), for metrics. */
export type HttpIngestStats = IngestStats;

/** The peer of a request, as the HTTP server knows it. */
export interface IngestPeer {
  /** The client's IP address: the host of lines whose record does not name one. */
  hostname: string;
}

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
/**
 * A batch sent ahead (`X-Stream-Start`) that finds a gap before it waits this long for the batch
 * before it (sent at about the same time on another connection, or resent after a failure) before
 * it is refused with 409.
 */
const IN_ORDER_WAIT_MS = 1000;
/** Bodies are read this many bytes at a time (a gunzipped chunk can be 16 MiB). */
const SLICE_BYTES = 1024 * 1024;
/**
 * A group's lines go to the sink in batches of about this size (the file writer's page), so that
 * no write copies more than this at once: one write of 16 MiB into fresh memory held the event
 * loop for 13 ms here (page faults cost 0.8 ms per MiB on the project's machine, 2026-11-30).
 * A line longer than this (with `-maxLine` over 1 MiB) is still one batch.
 */
const BATCH_BYTES = 1024 * 1024;
/** The arena's first chunk; later chunks double up to {@linkcode ARENA_CHUNK_BYTES}. */
const ARENA_FIRST_BYTES = 64 * 1024;
/** Chunks are filled, never moved: the arena makes no growth copies. */
const ARENA_CHUNK_BYTES = 4 * 1024 * 1024;
/**
 * Arena chunks of finished requests kept for the next ones, at most this many bytes: memory
 * touched for the first time costs a page fault per 4 KiB, and fresh chunks for every 1 MiB body
 * were a sixth of the server's CPU for HTTP ingest (2026-11-30).
 */
const SPARE_BYTES = 16 * 1024 * 1024;
/** Framers of finished requests kept for the next ones (their buffers grown already). */
const SPARE_FRAMERS = 4;
/** A record's buffer doubles up to this, then takes room for the largest body at once. */
const GROW_BYTES = 1024 * 1024;
/** NDJSON records read between two looks at the clock (a power of two). */
const RECORDS_PER_CHECK = 32;
/** While a group is gathered into a batch, the clock is read every this many runs. */
const RUNS_PER_CHECK = 64;
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
  /** The limits, the sink and the counters, shared with the protocol routes. */
  readonly gate: IngestGate;
  readonly #sink: Sink;
  readonly #marks: StreamMarks | undefined;
  #maxLine: number | undefined;
  readonly #inOrderWaitMs: number;
  readonly #locks = new KeyedLock();
  #spares: Spares;
  /** Requests waiting for their stream's mark to reach their start. */
  readonly #waiters = new Map<string, Set<() => void>>();

  /**
   * @param sink where batches go: the router.
   * @param options limits; see {@linkcode HttpIngestOptions} for defaults.
   */
  constructor(sink: Sink, options: HttpIngestOptions = {}) {
    const { marks, maxLine, inOrderWaitMs = IN_ORDER_WAIT_MS } = options;
    this.gate = new IngestGate(sink, options);
    this.#inOrderWaitMs = inOrderWaitMs;
    this.#sink = sink;
    this.#marks = marks;
    this.#maxLine = maxLine;
    this.#spares = new Spares(SPARE_BYTES, maxLine);
  }

  /** Counters for metrics (a live object: read, do not keep). */
  get stats(): Readonly<HttpIngestStats> {
    return this.gate.stats;
  }

  /**
   * New limits (a config reload) for the requests that start from now on; those under way keep
   * theirs.
   */
  setLimits(limits: Pick<HttpIngestOptions, "maxBody" | "maxLine" | "maxBufferedBytes">): void {
    const { maxBody, maxLine, maxBufferedBytes } = limits;
    this.gate.setLimits({ maxBody, maxBufferedBytes });
    if (maxLine !== this.#maxLine) {
      this.#maxLine = maxLine;
      // Spare framers have the old limit: requests under way give theirs back to the old spares.
      this.#spares = new Spares(SPARE_BYTES, maxLine);
    }
  }

  /** Refuses new requests from now on (503), for shutdown; requests under way complete. */
  close(): void {
    this.gate.close();
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
      // A refusal, or the transport giving up on the body (it stopped arriving, or broke its
      // framing): the client's doing, answered with its status and not logged as logboom's error.
      if (err instanceof HttpError) {
        log.debug("Ingest request refused with {status}: {error}", {
          status: err.status,
          error: err.message,
        });
        this.gate.refused(err.status);
        return err.response();
      }
      log.error("Ingest request failed: {error}", { error: describe(err) });
      this.gate.refused(500);
      return json(500, { error: `Ingest failed: ${describe(err)}` });
    }
  }

  async #handle(req: Request, peer: IngestPeer): Promise<Response> {
    if (req.method !== "POST") throw new HttpError(405, "Use POST", { headers: { allow: "POST" } });
    const url = new URL(req.url);
    const source = url.searchParams.get("source") ?? "http";
    checkName("source", source);
    const format = bodyFormat(req.headers.get("content-type"));
    const gzip = isGzip(req.headers.get("content-encoding"));
    const stream = streamHeaders(req.headers);
    if (stream !== undefined && this.#marks === undefined) {
      throw new HttpError(400, "Stream headers are not supported here");
    }
    this.gate.checkLength(req);
    this.gate.checkRoom();
    const parsed = { source, host: peer.hostname, format, gzip, stream };
    const run = () => this.#ingest(req, parsed);
    if (stream?.start !== undefined) return await this.#ingestInOrder(req, parsed, stream);
    return stream === undefined ? await run() : await this.#locks.run(stream.id, run);
  }

  /**
   * A batch sent before the one before it was acknowledged (`X-Stream-Start`: where it begins).
   * Its body is read while the stream's earlier requests are stored, then, in the order requests
   * arrived, it is a duplicate at or below the stream's mark, is stored if it begins at the mark
   * (or at 0 for a stream without one), and is otherwise refused with 409, storing nothing: the
   * batch before it is not stored (yet), and the client sends it again once it is. A batch that
   * came before the one before it (they race on two connections) first waits for the mark to
   * reach its start, up to {@linkcode IN_ORDER_WAIT_MS}, its place in line given up meanwhile.
   */
  async #ingestInOrder(
    req: Request,
    request: ParsedRequest,
    stream: StreamHeaders,
  ): Promise<Response> {
    const marks = this.#marks!;
    const start = stream.start ?? 0;
    const known = marks.get(stream.id);
    if (known !== undefined && stream.offset <= known) {
      await req.body?.cancel();
      this.gate.stats.duplicates++;
      return json(200, { accepted: 0, duplicate: true }, markHeader(known));
    }
    // The place in line is taken now, so that batches are stored in the order they came.
    let turn = this.#locks.enter(stream.id);
    const reservation = { bytes: 0 };
    let body: Body | undefined;
    try {
      const turns = this.gate.turns();
      // Read (and reserved in the buffered bytes) before its turn: an error stores nothing.
      body = await this.#read(req, request, reservation, turns);
      await turn.ready;
      let mark = marks.get(stream.id);
      const deadline = performance.now() + this.#inOrderWaitMs;
      while ((mark ?? 0) < start && !req.signal.aborted) {
        const wait = deadline - performance.now();
        if (wait <= 0) break;
        // Out of line until the stream's next request settles, then back at its end.
        turn.release();
        await this.#settled(stream.id, wait, req.signal);
        turn = this.#locks.enter(stream.id);
        await turn.ready;
        mark = marks.get(stream.id);
      }
      if (mark !== undefined && stream.offset <= mark) {
        this.gate.stats.duplicates++;
        return json(200, { accepted: 0, duplicate: true }, markHeader(mark));
      }
      if ((mark ?? 0) !== start) {
        this.gate.refused(409);
        const error = mark === undefined
          ? `Stream ${stream.id} has nothing stored here, and the batch begins at ` +
            `${start}: send the batches before it first`
          : `Stream ${stream.id} is stored to ${mark}, and the batch begins at ` +
            `${start}: send the batches before it first`;
        return json(409, { error }, markHeader(mark ?? -1));
      }
      const lines = await this.#store(body, stream, turns);
      return json(200, { accepted: lines, duplicate: false }, markHeader(stream.offset));
    } finally {
      turn.release();
      this.gate.release(reservation);
      if (body !== undefined) this.#spares.giveChunks(body.arena.chunks);
    }
  }

  /**
   * Resolves when a request of stream `id` settles (its mark may have moved), after `ms`, or when
   * `signal` aborts, whichever comes first.
   */
  #settled(id: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(id);
      if (waiters === undefined) this.#waiters.set(id, waiters = new Set());
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        const set = this.#waiters.get(id);
        set?.delete(done);
        if (set?.size === 0) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      waiters.add(done);
    });
  }

  /** Wakes the requests of stream `id` waiting for its mark to move. */
  #wake(id: string): void {
    const waiters = this.#waiters.get(id);
    if (waiters === undefined) return;
    for (const done of [...waiters]) done();
  }

  /**
   * Writes a body read whole and waits for the sinks to acknowledge it; advances the stream's
   * mark. Returns the lines stored.
   */
  async #store(body: Body, stream: StreamHeaders | undefined, turns: Turns): Promise<number> {
    this.gate.checkBlocked([...body.groups.values()].map((group) => group.meta));
    const batches = await this.#write(body, stream, turns);
    let lines = 0;
    for (const group of body.groups.values()) lines += group.lines;
    // The acknowledgement: these batches are stored (and fsynced under -fsync batch), waiting
    // only for the files they went to.
    await this.gate.acknowledge(batches, lines);
    if (stream !== undefined) {
      this.#marks!.advance(stream.id, stream.offset);
      this.#wake(stream.id);
    }
    return lines;
  }

  async #ingest(req: Request, request: ParsedRequest): Promise<Response> {
    const { stream } = request;
    if (stream !== undefined) {
      const mark = this.#marks!.get(stream.id);
      if (mark !== undefined && stream.offset <= mark) {
        await req.body?.cancel();
        this.gate.stats.duplicates++;
        return json(200, { accepted: 0, duplicate: true }, markHeader(mark));
      }
      // A resend queued behind the original found nothing to refuse, but the queue may be full now.
      this.gate.checkRoom();
    }
    const reservation = { bytes: 0 };
    let body: Body | undefined;
    try {
      const turns = this.gate.turns();
      // The whole body is read and checked before anything is written: an error stores nothing.
      body = await this.#read(req, request, reservation, turns);
      const lines = await this.#store(body, stream, turns);
      // The mark tells an agent this server checks `X-Stream-Start`.
      const headers = stream === undefined ? {} : markHeader(stream.offset);
      return json(200, { accepted: lines, duplicate: false }, headers);
    } finally {
      this.gate.release(reservation);
      // The sinks copied what they keep during `write`.
      if (body !== undefined) this.#spares.giveChunks(body.arena.chunks);
    }
  }

  /**
   * Writes each (source, host) group of the body, a part of it, in batches of about
   * {@linkcode BATCH_BYTES}, pausing between batches and while a batch is gathered from many
   * runs of the arena. With stream headers each batch carries its part's mark, and the lines a
   * crashed run stored already (see `StreamMarks.stored`) are left out.
   *
   * @returns the batches written, for `Sink.flush` (their bytes are only lent to `write`).
   */
  async #write(body: Body, stream: StreamHeaders | undefined, turns: Turns): Promise<Batch[]> {
    const { due, pause } = turns;
    const receivedAt = Date.now();
    const parts = [...body.groups.values()].filter((group) => group.lines > 0);
    const stored = stream && this.#marks!.stored(stream.id, stream.offset);
    const chunks = body.arena.chunks;
    const batches: Batch[] = [];
    // Where batches of several runs are gathered: the sink copies what it keeps during `write`.
    let scratch = new Uint8Array(0);
    for (let part = 0; part < parts.length; part++) {
      const group = parts[part];
      const runs = group.runs;
      let skip = Math.min(stored?.get(part) ?? 0, group.lines);
      // Lines of the part before the next batch: stored by an earlier run, or in earlier batches.
      let before = skip;
      let r = 0;
      while (r < runs.length && skip > 0 && runs[r + 3] <= skip) {
        skip -= runs[r + 3];
        r += 4;
      }
      // The first run left may start inside: after the lines a crashed run stored.
      let firstStart = r < runs.length ? runs[r + 1] : 0;
      if (skip > 0) {
        const chunk = chunks[runs[r]];
        firstStart = runs[r + 1] + afterLines(chunk.subarray(runs[r + 1], runs[r + 2]), skip);
      }
      let firstLines = r < runs.length ? runs[r + 3] - skip : 0;
      while (r < runs.length) {
        // One run, or as many more as keep the batch within BATCH_BYTES.
        let size = runs[r + 2] - firstStart;
        let lines = firstLines;
        let end = r + 4;
        while (end < runs.length && size + runs[end + 2] - runs[end + 1] <= BATCH_BYTES) {
          size += runs[end + 2] - runs[end + 1];
          lines += runs[end + 3];
          end += 4;
        }
        let data: Uint8Array;
        if (end === r + 4) {
          data = chunks[runs[r]].subarray(firstStart, runs[r + 2]);
        } else {
          if (scratch.length < size) scratch = new Uint8Array(Math.max(size, BATCH_BYTES));
          let at = 0;
          for (let i = r; i < end; i += 4) {
            const start = i === r ? firstStart : runs[i + 1];
            at = copyRange(scratch, at, chunks[runs[i]], start, runs[i + 2]);
            if ((i >> 2) % RUNS_PER_CHECK === 0 && due()) await pause();
          }
          data = scratch.subarray(0, size);
        }
        const batch: Batch = {
          data,
          lines,
          meta: group.meta,
          receivedAt,
          mark: stream && {
            stream: stream.id,
            offset: stream.offset,
            part,
            parts: parts.length,
            total: group.lines,
            skipped: before,
          },
        };
        this.#sink.write(batch);
        batches.push(batch);
        before += lines;
        r = end;
        if (r < runs.length) {
          firstStart = runs[r + 1];
          firstLines = runs[r + 3];
        }
        if (due()) await pause();
      }
    }
    return batches;
  }

  /**
   * Reads and frames the whole body, grouped by (source, host). Time and memory are linear in the
   * body: records are cut on newline bytes and each decoded once, every group's lines go to one
   * arena that is never copied to grow, and work yields to other requests every few milliseconds.
   */
  async #read(
    req: Request,
    request: ParsedRequest,
    reservation: { bytes: number },
    turns: Turns,
  ): Promise<Body> {
    const { due, pause } = turns;
    const groups = new Map<string, Group>();
    // Those of the limits this request started under (a reload may change them meanwhile).
    const spares = this.#spares;
    // One framer serves every group: NDJSON records reach it whole, so it never holds a partial.
    const framer = spares.framer();
    // Every group's lines go to one arena, in arrival order: no buffer per source. A plain text
    // body of known length becomes at most one byte more per line piece, and one.
    const length = Number(req.headers.get("content-length") ?? 0);
    const expected = request.format === "text" && !request.gzip
      ? length + Math.ceil(length / framer.maxLine) + 1
      : 0;
    const arena = new Arena(spares, expected);
    // Records mostly come from one (source, host) after another: that one is found without a key.
    let last: Group | undefined;
    const groupFor = (source: string, host: string): Group => {
      if (last !== undefined && last.meta.source === source && last.meta.host === host) return last;
      const key = `${source}\n${host}`;
      let group = groups.get(key);
      if (group === undefined) {
        group = new Group({ source, host, input: "http" }, arena);
        groups.set(key, group);
      }
      return last = group;
    };
    const reserve = (n: number) => this.gate.reserve(reservation, n);
    // The limit this request started under (a reload may change it meanwhile).
    const maxBody = this.gate.maxBody;
    const readInto = request.format === "text" && !request.gzip ? bodyReaderOf(req) : undefined;
    if (readInto !== undefined) {
      // Plain text from logboom's own HTTP server: socket -> framer buffer, as TCP reads, with
      // no buffer per read and no stream between them.
      const group = groupFor(request.source, request.host);
      let size = 0;
      for (;;) {
        const n = await readInto(framer.buffer);
        if (n === null) break;
        size += n;
        if (size > maxBody) throw bodyTooLarge(maxBody);
        reserve(n);
        group.add(framer.commit(n));
        if (due()) await pause();
      }
      group.add(framer.end());
      spares.giveFramer(framer);
      return { groups, arena };
    }
    const chunks = readBody(req, { maxBody, gzip: request.gzip });
    if (request.format === "text") {
      const group = groupFor(request.source, request.host);
      for await (const chunk of chunks) {
        reserve(chunk.length);
        // Straight into the framer's buffer, a buffer at a time: no copies of the chunk's lines
        // but the framer's and the arena's.
        for (let at = 0; at < chunk.length;) {
          const room = framer.buffer;
          const n = Math.min(room.length, chunk.length - at);
          room.set(chunk.subarray(at, at + n));
          at += n;
          group.add(framer.commit(n));
          if (due()) await pause();
        }
      }
      group.add(framer.end());
      spares.giveFramer(framer);
      return { groups, arena };
    }
    const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    // A record that spans chunks; one over 1 MiB gets room for the largest body at once (memory
    // is only taken as it fills), so that it is never copied to grow.
    const partial = new ByteBuilder(0, maxBody);
    let number = 0;
    const invalid = () => new HttpError(400, `Record ${number} of the body is not valid UTF-8`);
    // Lines of consecutive records of one group gather in the framer's free buffer and are framed
    // together: a framer call and an arena copy per buffer, not per record. The framer holds no
    // partial line between commits, so each commit's lines are the group's alone.
    const fast = new NdjsonFastReader();
    let pendingGroup: Group | undefined;
    let pending = 0;
    let room: Uint8Array | undefined;
    const commitPending = () => {
      if (pending > 0) pendingGroup!.add(framer.commit(pending));
      pending = 0;
      room = undefined;
    };
    const appendLine = (group: Group, line: Uint8Array) => {
      if (group !== pendingGroup) {
        commitPending();
        pendingGroup = group;
      }
      const size = line.length;
      room ??= framer.buffer;
      if (pending + size + 1 > room.length) {
        commitPending();
        room = framer.buffer;
        if (size + 1 > room.length) {
          group.add(framer.push(line));
          group.add(framer.push(NEWLINE));
          room = undefined;
          return;
        }
      }
      if (size < 32) {
        for (let k = 0; k < size; k++) room[pending + k] = line[k];
      } else {
        room.set(line, pending);
      }
      room[pending + size] = 10;
      pending += size + 1;
    };
    const record = (bytes: Uint8Array) => {
      number++;
      if (bytes.length === 0) return;
      if (fast.read(bytes)) {
        const source = fast.source ?? request.source;
        const host = fast.host ?? request.host;
        checkName("source", source);
        checkName("host", host);
        if (fast.line.length > 0) appendLine(groupFor(source, host), fast.line);
        return;
      }
      // Any other form, and every error, the general way.
      commitPending();
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
      commitPending();
      let parsed: JsonRecord;
      try {
        parsed = await readJsonRecord(bytes, RECORD_KEYS, turns);
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
    for await (const received of chunks) {
      reserve(received.length);
      for (let from = 0; from < received.length; from += SLICE_BYTES) {
        const chunk = received.subarray(from, from + SLICE_BYTES);
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
          if ((number & (RECORDS_PER_CHECK - 1)) === 0 && due()) await pause();
        }
        partial.append(chunk.subarray(start));
        if (due()) await pause();
      }
    }
    const rest = partial.bytes();
    if (rest.length > LARGE_RECORD_BYTES) await largeRecord(rest);
    else record(rest);
    commitPending();
    return { groups, arena };
  }
}

interface StreamHeaders {
  id: string;
  offset: number;
  /** `X-Stream-Start`: where the batch begins, when sent before the one before it is stored. */
  start?: number;
}

/** `X-Stream-Mark`: the stream's mark after the request (-1 for none), in stream answers. */
function markHeader(mark: number): Record<string, string> {
  return { "x-stream-mark": String(mark) };
}

interface ParsedRequest {
  source: string;
  host: string;
  format: "text" | "ndjson";
  gzip: boolean;
  stream: StreamHeaders | undefined;
}

/** A body read whole: its groups, whose lines are in the arena. */
interface Body {
  groups: Map<string, Group>;
  arena: Arena;
}

/**
 * Where the lines of one body are kept, in arrival order: chunks that are filled and never moved,
 * so that it never copies what it holds to grow (one 8 MiB growth copy held the event loop for
 * 5-11 ms). A piece of lines is kept whole in one chunk; the end of a chunk a piece did not fit
 * in stays unused, and untouched memory costs nothing until written.
 */
class Arena {
  readonly chunks: Uint8Array<ArrayBuffer>[] = [];
  readonly #spares: Spares | undefined;
  #current = new Uint8Array(0);
  #used = 0;
  #next = ARENA_FIRST_BYTES;

  /**
   * @param spares where chunks are taken from when there are some.
   * @param expected bytes the arena will likely hold (a text body's length): the first chunk
   *   holds them, so that the body's lines lie in runs that go to the sink uncopied.
   */
  constructor(spares?: Spares, expected = 0) {
    this.#spares = spares;
    while (this.#next < Math.min(expected, ARENA_CHUNK_BYTES)) this.#next *= 2;
  }

  /** The index of the chunk the last `put` went to. */
  get last(): number {
    return this.chunks.length - 1;
  }

  /** Copies `data` in, whole, into the last chunk; returns where it starts there. */
  put(data: Uint8Array): number {
    if (this.#current.length - this.#used < data.length) {
      const size = Math.max(this.#next, data.length);
      this.#current = this.#spares?.chunk(size) ?? new Uint8Array(size);
      this.chunks.push(this.#current);
      this.#used = 0;
      this.#next = Math.min(this.#next * 2, ARENA_CHUNK_BYTES);
    }
    const at = this.#used;
    this.#current.set(data, at);
    this.#used += data.length;
    return at;
  }
}

/**
 * Arena chunks and framers of finished requests, for the next ones to reuse rather than touch
 * fresh memory; chunks are kept up to a bound in bytes, and only of the sizes arenas ask for.
 */
class Spares {
  readonly #maxBytes: number;
  readonly #maxLine: number | undefined;
  readonly #chunks = new Map<number, Uint8Array<ArrayBuffer>[]>();
  #bytes = 0;
  readonly #framers: LineFramer[] = [];

  constructor(maxBytes: number, maxLine: number | undefined) {
    this.#maxBytes = maxBytes;
    this.#maxLine = maxLine;
  }

  /** A chunk of `size` bytes (its old contents left in it), or `undefined` when none is kept. */
  chunk(size: number): Uint8Array<ArrayBuffer> | undefined {
    const chunk = this.#chunks.get(size)?.pop();
    if (chunk !== undefined) this.#bytes -= size;
    return chunk;
  }

  /** Keeps what fits of `chunks`; their contents must no longer be needed. */
  giveChunks(chunks: Uint8Array<ArrayBuffer>[]): void {
    for (const chunk of chunks) {
      const size = chunk.length;
      const arenaSize = size >= ARENA_FIRST_BYTES && size <= ARENA_CHUNK_BYTES &&
        (size & (size - 1)) === 0;
      if (!arenaSize || this.#bytes + size > this.#maxBytes) continue;
      let list = this.#chunks.get(size);
      if (list === undefined) this.#chunks.set(size, list = []);
      list.push(chunk);
      this.#bytes += size;
    }
    chunks.length = 0;
  }

  /** A framer holding nothing. */
  framer(): LineFramer {
    return this.#framers.pop() ?? new LineFramer({ maxLine: this.#maxLine });
  }

  /** Keeps `framer` for another request, if it holds nothing (its input was ended). */
  giveFramer(framer: LineFramer): void {
    if (framer.pending === 0 && this.#framers.length < SPARE_FRAMERS) this.#framers.push(framer);
  }
}

/** Lines bound for one batch: one (source, host) pair of the body, as runs of a shared arena. */
class Group {
  readonly meta: BatchMeta;
  readonly #arena: Arena;
  /**
   * Runs of this group's lines, four numbers each: the arena chunk, start, end and lines. A piece
   * that follows the last run in its chunk joins it, up to {@linkcode BATCH_BYTES}. Kept out of
   * the JavaScript heap: as arrays, which the garbage collector copies and scans, its pauses over
   * five 16 MiB bodies of 170,000 records summed 130-220 ms, against 75-105 ms (2026-11-30).
   */
  #runs = new Float64Array(16);
  #used = 0;
  lines = 0;

  constructor(meta: BatchMeta, arena: Arena) {
    this.meta = meta;
    this.#arena = arena;
  }

  /** The runs, four numbers each. */
  get runs(): Float64Array {
    return this.#runs.subarray(0, this.#used);
  }

  /** Copies framed lines in: the framer's output is borrowed. */
  add(framed: FramedLines | undefined): void {
    if (framed === undefined) return;
    const { data, lines } = framed;
    const start = this.#arena.put(data);
    const chunk = this.#arena.last;
    let runs = this.#runs;
    const last = this.#used - 4;
    if (
      last >= 0 && runs[last] === chunk && runs[last + 2] === start &&
      start + data.length - runs[last + 1] <= BATCH_BYTES
    ) {
      runs[last + 2] = start + data.length;
      runs[last + 3] += lines;
    } else {
      if (this.#used === runs.length) {
        runs = new Float64Array(runs.length * 2);
        runs.set(this.#runs);
        this.#runs = runs;
      }
      runs[this.#used++] = chunk;
      runs[this.#used++] = start;
      runs[this.#used++] = start + data.length;
      runs[this.#used++] = lines;
    }
    this.lines += lines;
  }
}

/** Copies bytes `start` to `end` of `from` into `to` at `at`; returns where they end. */
function copyRange(
  to: Uint8Array,
  at: number,
  from: Uint8Array,
  start: number,
  end: number,
): number {
  // A loop beats `set` with the view it needs for the short runs of interleaved records.
  if (end - start < 128) {
    for (let i = start; i < end; i++) to[at++] = from[i];
    return at;
  }
  to.set(from.subarray(start, end), at);
  return at + end - start;
}

/** Where the line after the first `lines` lines of `data` starts. */
function afterLines(data: Uint8Array, lines: number): number {
  let at = 0;
  for (let i = 0; i < lines; i++) at = data.indexOf(10, at) + 1;
  return at;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function checkName(what: string, value: string): void {
  if (value.length > MAX_NAME_LENGTH) {
    throw new HttpError(400, `The ${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
}

function bodyFormat(contentType: string | null): "text" | "ndjson" {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (NDJSON_TYPES.has(type)) return "ndjson";
  // `curl --data-binary` labels bodies as a form unless told otherwise: they are lines all the same.
  if (TEXT_TYPES.has(type) || type.startsWith("text/")) return "text";
  throw new HttpError(415, `Content-Type "${type}" is not text lines or NDJSON`);
}

function streamHeaders(headers: Headers): StreamHeaders | undefined {
  const id = headers.get("x-stream-id");
  const rawOffset = headers.get("x-stream-offset");
  if (id === null && rawOffset === null) return undefined;
  if (id === null || rawOffset === null) {
    throw new HttpError(400, "X-Stream-Id and X-Stream-Offset go together");
  }
  if (!STREAM_ID.test(id)) {
    throw new HttpError(400, "X-Stream-Id must be 1 to 256 visible ASCII characters");
  }
  const offset = /^\d{1,16}$/.test(rawOffset) ? Number(rawOffset) : NaN;
  if (!Number.isSafeInteger(offset)) {
    throw new HttpError(400, `X-Stream-Offset must be a byte offset, got "${rawOffset}"`);
  }
  const rawStart = headers.get("x-stream-start");
  if (rawStart === null) return { id, offset };
  const start = /^\d{1,16}$/.test(rawStart) ? Number(rawStart) : NaN;
  if (!Number.isSafeInteger(start) || start > offset) {
    throw new HttpError(
      400,
      `X-Stream-Start must be a byte offset at most X-Stream-Offset, got "${rawStart}"`,
    );
  }
  return { id, offset, start };
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

function notJson(number: number, err: unknown): HttpError {
  return new HttpError(400, `Record ${number} of the body is not JSON: ${describe(err)}`);
}

/** The checks of a record's value, whichever parser read it, in one order with one wording. */
function checkRecord(
  value: unknown,
  number: number,
  request: ParsedRequest,
): { line: string; source: string; host: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, `Record ${number} of the body is not a JSON object`);
  }
  const { line, source = request.source, host = request.host, ts } = value as Record<
    string,
    unknown
  >;
  if (typeof line !== "string") {
    throw new HttpError(400, `Record ${number} of the body has no "line" string`);
  }
  if (typeof source !== "string" || typeof host !== "string") {
    throw new HttpError(
      400,
      `Record ${number} of the body has a "source" or "host" that is not a string`,
    );
  }
  if (ts !== undefined && typeof ts !== "string" && typeof ts !== "number") {
    throw new HttpError(
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
 * A growable byte array for a record that spans chunks. It doubles up to 1 MiB; past that it
 * takes room for `limit` bytes at once, so that a record of megabytes is copied to grow only
 * once, and at most 1 MiB of it (memory is only taken as it fills).
 */
class ByteBuilder {
  readonly #initial: number;
  readonly #limit: number;
  #buf: Uint8Array;
  #len = 0;

  constructor(initial: number, limit: number) {
    this.#initial = initial;
    this.#limit = limit;
    this.#buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.#len;
  }

  append(data: Uint8Array): void {
    const needed = this.#len + data.length;
    if (needed > this.#buf.length) {
      let size = Math.max(this.#initial, needed, this.#buf.length * 2);
      if (size > GROW_BYTES) size = Math.max(needed, this.#limit);
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(data, this.#len);
    this.#len = needed;
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Empties it, and lets a large buffer go. */
  clear(): void {
    this.#len = 0;
    if (this.#buf.length > GROW_BYTES) this.#buf = new Uint8Array(this.#initial);
  }
}

/** Runs tasks one at a time per key: a resend waits for the original before checking the mark. */
class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const turn = this.enter(key);
    try {
      await turn.ready;
      return await task();
    } finally {
      turn.release();
    }
  }

  /**
   * Takes a place in `key`'s line now: `ready` resolves when the tasks before it are done.
   * `release` must be called in every case, ready or not.
   */
  enter(key: string): { ready: Promise<void>; release: () => void } {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => done = resolve);
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    return {
      ready: previous,
      release: () => {
        done();
        if (this.#tails.get(key) === tail) this.#tails.delete(key);
      },
    };
  }
}
