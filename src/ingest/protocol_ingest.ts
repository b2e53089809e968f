/**
 * The inputs that agents people already run speak, on the HTTP API: OpenTelemetry logs
 * (`POST /v1/logs`), Loki push (`POST /loki/api/v1/push`) and Elasticsearch bulk (`POST /_bulk`,
 * `/<index>/_bulk`, with the probes clients make first). Each reads its body whole within the
 * limits `/api/v1/ingest` has (the same {@linkcode IngestGate}), decodes it with `protocols/`,
 * writes one line per record, grouped by (source, host), and answers only once the sinks
 * acknowledged what it wrote. Decoding (JSON parsed by the sliced parser, snappy, protobuf in
 * pieces), grouping, writing and the bulk answer all work a slice at a time, pausing on the gate's
 * turns, so that no request holds the event loop for more than a few milliseconds of its own work.
 *
 * - Source: OTLP's `service.name` resource attribute (else `otlp`); Loki's from its labels
 *   (`lokiSource`: `service_name`, `app`, `job`, ..., else `loki`); Elasticsearch's index.
 * - Host: the record's `host.name`, `host` or `hostname` field (`record_batches.ts`), else the
 *   peer's address.
 * - Lines: see `record_batches.ts` (one record, one line; line breaks inside written as `\n`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { HttpError } from "../net/http_error.ts";
import {
  type BulkItem,
  bulkPath,
  bulkResponseStream,
  decodeBulkSliced,
  esErrorResponse,
  type EsInfo,
  esProbe,
} from "../protocols/es_bulk.ts";
import { DEFAULT_MAX_RECORDS, tooManyRecords } from "../protocols/fields.ts";
import {
  decodeLokiProtobuf,
  decodeLokiSliced,
  type LokiRecord,
  lokiResponse,
} from "../protocols/loki.ts";
import {
  decodeOtlpJsonSliced,
  decodeOtlpProtobuf,
  type OtlpFormat,
  otlpFormat,
  type OtlpRecord,
  otlpResponse,
} from "../protocols/otlp.ts";
import { ProtobufError } from "../protocols/protobuf.ts";
import { decompressSnappySliced } from "../protocols/snappy.ts";
import type { Turns } from "./json_record.ts";
import { splitRepeatedSliced } from "./proto_split.ts";
import { isGzip, readWholeBody } from "./http_body.ts";
import type { IngestGate, Reservation } from "./ingest_gate.ts";
import {
  type DecodedRecord,
  hostOf,
  MAX_NAME_LENGTH,
  RecordGroups,
  writeRecordBatches,
} from "./record_batches.ts";

/** Options of {@linkcode ProtocolIngest}. */
export interface ProtocolIngestOptions {
  /** Longer lines are stored in pieces of this many bytes. Default 1 MiB. */
  maxLine?: number;
  /** Most records one request may hold; more is a 413. Default 100,000. */
  maxRecords?: number;
  /** What `GET /` tells Elasticsearch clients. */
  esInfo?: EsInfo;
}

/** The routes, as named in metrics. */
export type ProtocolRoute = "/v1/logs" | "/loki/api/v1/push" | "/_bulk" | "elasticsearch";

/** The source of OTLP records without a `service.name` resource attribute. */
export const OTLP_DEFAULT_SOURCE = "otlp";

const DEFAULT_MAX_LINE = 1024 * 1024;
/**
 * Protobuf requests are decoded in pieces of about this many records, with turns for others
 * between them: 1.5-4 ms of decoding each on the project's shared 2-core machine (2,048 took 3.5-8
 * ms, 2026-11-30). Each piece is decoded afresh (its resource, its string cache).
 */
const RECORDS_PER_PIECE = 1024;
/** Records grouped between two looks at the clock. */
const RECORDS_PER_CHECK = 1024;
/** `resource_logs` (1), `scope_logs` (2), `log_records` (2). */
const OTLP_RECORDS_PATH = [1, 2, 2];
/** `streams` (1), `entries` (2). */
const LOKI_ENTRIES_PATH = [1, 2];
const log = getLogger(["logboom", "ingest", "protocols"]);

/**
 * Which protocol route a request is for, or `undefined` when none: `/v1/logs`,
 * `/loki/api/v1/push`, a bulk path (`/_bulk`, `/<index>/_bulk`), or an Elasticsearch probe
 * (`GET /`, `/_license`, templates, ILM policies, `_refresh`). `GET /` from a browser (one that
 * accepts `text/html`) is not a probe: it is the web page's.
 */
export function protocolRoute(req: Request, pathname: string): ProtocolRoute | undefined {
  if (pathname === "/v1/logs") return "/v1/logs";
  if (pathname === "/loki/api/v1/push") return "/loki/api/v1/push";
  if (bulkPath(pathname) !== undefined) return "/_bulk";
  if (pathname === "/" && (req.headers.get("accept") ?? "").includes("text/html")) {
    return undefined;
  }
  // The probes' answers are cheap and have no side effects: asked once to tell the route.
  return esProbe(req.method, pathname) === undefined ? undefined : "elasticsearch";
}

/**
 * The protocol routes of one API, sharing `/api/v1/ingest`'s gate (limits, queue, counters).
 *
 * @example
 * ```ts
 * const protocols = new ProtocolIngest(httpIngest.gate);
 * const route = protocolRoute(req, new URL(req.url).pathname);
 * if (route) return await protocols.handle(req, route, { hostname: "10.0.0.5" });
 * ```
 */
export class ProtocolIngest {
  readonly #gate: IngestGate;
  #maxLine: number;
  readonly #maxRecords: number;
  readonly #esInfo: EsInfo;

  /**
   * @param gate limits, queue and counters, shared with `/api/v1/ingest`.
   * @param options see {@linkcode ProtocolIngestOptions}.
   */
  constructor(gate: IngestGate, options: ProtocolIngestOptions = {}) {
    this.#gate = gate;
    this.#maxLine = options.maxLine ?? DEFAULT_MAX_LINE;
    this.#maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    this.#esInfo = options.esInfo ?? {};
  }

  /** A new line limit (a config reload) for the requests that start from now on. */
  setMaxLine(maxLine: number | undefined): void {
    this.#maxLine = maxLine ?? DEFAULT_MAX_LINE;
  }

  /** Answers a request of `route` (see {@linkcode protocolRoute}); never throws. */
  handle(req: Request, route: ProtocolRoute, peer: { hostname: string }): Promise<Response> {
    switch (route) {
      case "/v1/logs":
        return this.#otlp(req, peer);
      case "/loki/api/v1/push":
        return this.#loki(req, peer);
      case "/_bulk":
        return this.#bulk(req, peer);
      case "elasticsearch":
        return this.#probe(req);
    }
  }

  async #otlp(req: Request, peer: { hostname: string }): Promise<Response> {
    // The OTLP spec: an unknown Content-Type is 415; errors come as a google.rpc.Status in the
    // request's encoding, JSON when that is unknown.
    const format = otlpFormat(req.headers.get("content-type"));
    try {
      onlyPost(req);
      if (format === undefined) {
        throw new HttpError(
          415,
          "Content-Type must be application/x-protobuf or application/json",
        );
      }
      const maxRecords = this.#maxRecords;
      let rejected = 0;
      let errorMessage = "";
      await this.#ingest(req, peer, "otlp", async (body, _reserve, turns) => {
        if (format === "json") {
          const decoded = await decodeOtlpJsonSliced(body, { maxRecords }, turns);
          rejected = decoded.rejected;
          errorMessage = decoded.errorMessage;
          return decoded.records;
        }
        // resource_logs[].scope_logs[].log_records[], a piece at a time.
        const records: OtlpRecord[] = [];
        const pieces = splitRepeatedSliced(body, OTLP_RECORDS_PATH, RECORDS_PER_PIECE, turns);
        for await (const piece of malformedAs("OTLP protobuf", pieces)) {
          const left = maxRecords - records.length - rejected;
          const decoded = withinBound(
            maxRecords,
            () => decodeOtlpProtobuf(piece, { maxRecords: left }),
          );
          for (const record of decoded.records) records.push(record);
          rejected += decoded.rejected;
          if (errorMessage === "") errorMessage = decoded.errorMessage;
          if (turns.due()) await turns.pause();
        }
        return records;
      }, otlpSource);
      return otlpResponse(format, rejected, errorMessage);
    } catch (err) {
      const refusal = this.#refusal(err, "/v1/logs");
      await req.body?.cancel().catch(() => {});
      return otlpStatusResponse(format ?? "json", refusal);
    }
  }

  async #loki(req: Request, peer: { hostname: string }): Promise<Response> {
    try {
      onlyPost(req);
      const contentType = req.headers.get("content-type");
      const maxBytes = this.#gate.maxBody;
      const maxRecords = this.#maxRecords;
      await this.#ingest(req, peer, "loki", (body, reserve, turns) => {
        const protobuf = async (body: Uint8Array) => {
          // A snappy block states its uncompressed size first: counted before it is made.
          reserve(snappyLength(body, maxBytes));
          const bytes = await decompressSnappySliced(body, maxBytes, turns);
          // streams[].entries[], a piece at a time.
          const records: LokiRecord[] = [];
          const pieces = splitRepeatedSliced(bytes, LOKI_ENTRIES_PATH, RECORDS_PER_PIECE, turns);
          for await (const piece of malformedAs("Loki protobuf", pieces)) {
            const left = maxRecords - records.length;
            const decoded = withinBound(maxRecords, () => decodeLokiProtobuf(piece, left));
            for (const record of decoded) records.push(record);
            if (turns.due()) await turns.pause();
          }
          return records;
        };
        return decodeLokiSliced(body, { contentType, maxBytes, maxRecords }, turns, protobuf);
      }, (record) => record.source);
      return lokiResponse();
    } catch (err) {
      await req.body?.cancel().catch(() => {});
      return this.#refusal(err, "/loki/api/v1/push").response();
    }
  }

  async #bulk(req: Request, peer: { hostname: string }): Promise<Response> {
    const started = performance.now();
    try {
      if (req.method !== "POST" && req.method !== "PUT") {
        throw new HttpError(405, "Use POST", { headers: { allow: "POST, PUT" } });
      }
      const defaultIndex = bulkPath(new URL(req.url).pathname)?.index;
      const maxRecords = this.#maxRecords;
      let items: BulkItem[] = [];
      await this.#ingest(req, peer, "elasticsearch", async (body, _reserve, turns) => {
        const decoded = await decodeBulkSliced(body, { defaultIndex, maxRecords }, turns);
        items = decoded.items;
        return decoded.records;
      }, (record) => record.index);
      return bulkResponseStream(items, performance.now() - started, this.#gate.turns());
    } catch (err) {
      await req.body?.cancel().catch(() => {});
      const refusal = this.#refusal(err, "/_bulk");
      const res = esErrorResponse(refusal.status, refusal.message);
      return withHeaders(res, refusal.headers);
    }
  }

  async #probe(req: Request): Promise<Response> {
    await req.body?.cancel().catch(() => {});
    const pathname = new URL(req.url).pathname;
    return esProbe(req.method, pathname, this.#esInfo) ??
      esErrorResponse(404, `no handler found for uri [${pathname}] and method [${req.method}]`);
  }

  /**
   * Reads, decodes, groups and writes one request, and waits for the acknowledgement. An error
   * anywhere before the writes stores nothing.
   */
  async #ingest<R extends DecodedRecord>(
    req: Request,
    peer: { hostname: string },
    input: string,
    decode: (
      body: Uint8Array,
      reserve: (bytes: number) => void,
      turns: Turns,
    ) => R[] | Promise<R[]>,
    sourceOf: (record: R) => string,
  ): Promise<void> {
    const gate = this.#gate;
    const gzip = isGzip(req.headers.get("content-encoding"));
    gate.checkLength(req);
    gate.checkRoom();
    const reservation: Reservation = { bytes: 0 };
    try {
      const reserve = (bytes: number) => gate.reserve(reservation, bytes);
      const body = await readWholeBody(req, { maxBody: gate.maxBody, gzip, reserve });
      // Decoded records take about as much memory as their body again.
      reserve(body.length);
      const turns = gate.turns();
      const records = await decode(body, reserve, turns);
      const groups = new RecordGroups<R>(input);
      for (let i = 0; i < records.length; i++) {
        const record = records[i];
        const source = sourceOf(record);
        const host = hostOf(record.fields) ?? peer.hostname;
        checkName("source", source);
        checkName("host", host);
        groups.add(source, host, record);
        if (i % RECORDS_PER_CHECK === RECORDS_PER_CHECK - 1 && turns.due()) await turns.pause();
      }
      if (groups.size === 0) return;
      gate.checkBlocked(groups.metas());
      const { batches, lines } = await writeRecordBatches(
        groups,
        (batch) => gate.sink.write(batch),
        { maxLine: this.#maxLine, receivedAt: Date.now(), turns },
      );
      await gate.acknowledge(batches, lines);
    } finally {
      gate.release(reservation);
    }
  }

  /** The refusal `err` stands for, counted, and logged when it is logboom's fault. */
  #refusal(err: unknown, route: ProtocolRoute): HttpError {
    if (err instanceof HttpError) {
      log.debug("{route} request refused with {status}: {error}", {
        route,
        status: err.status,
        error: err.message,
      });
      this.#gate.refused(err.status);
      return err;
    }
    log.error("{route} request failed: {error}", { route, error: describe(err) });
    this.#gate.refused(500);
    return new HttpError(500, `Ingest failed: ${describe(err)}`);
  }
}

/**
 * `decode()` of one piece, with its bound on records (what is left of `max`) reported as the
 * request's: a 413 names the request's bound, not the piece's.
 */
function withinBound<T>(max: number, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof HttpError && err.status === 413) throw tooManyRecords(max);
    throw err;
  }
}

/**
 * The pieces of a split, with a `ProtobufError` (bytes not well-formed along the split's path)
 * turned into the 400 the decoder gives: `Malformed <what>: ...`.
 */
async function* malformedAs(
  what: string,
  pieces: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  try {
    yield* pieces;
  } catch (err) {
    if (err instanceof ProtobufError) throw new HttpError(400, `Malformed ${what}: ${err.message}`);
    throw err;
  }
}

/** An OTLP record's source: its `service.name` resource attribute, else `otlp`. */
function otlpSource(record: DecodedRecord): string {
  const name = Object.hasOwn(record.fields, "service.name")
    ? record.fields["service.name"]
    : undefined;
  return typeof name === "string" && name !== "" ? name : OTLP_DEFAULT_SOURCE;
}

function onlyPost(req: Request): void {
  if (req.method !== "POST") throw new HttpError(405, "Use POST", { headers: { allow: "POST" } });
}

function checkName(what: string, value: string): void {
  if (value.length > MAX_NAME_LENGTH) {
    throw new HttpError(400, `A record's ${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
}

/** The uncompressed size a snappy block states (its leading varint), at most `max`. */
function snappyLength(body: Uint8Array, max: number): number {
  let n = 0;
  for (let i = 0, shift = 1; i < 5 && i < body.length; i++, shift *= 128) {
    n += (body[i] & 0x7f) * shift;
    if (body[i] < 0x80) break;
  }
  return Math.min(n, max);
}

/** `google.rpc.Status` codes for the HTTP statuses OTLP refusals use. */
const GRPC_CODES: Readonly<Record<number, number>> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  405: 12, // UNIMPLEMENTED
  413: 8, // RESOURCE_EXHAUSTED
  415: 3,
  503: 14, // UNAVAILABLE
};

/**
 * An OTLP refusal: the status, and a `google.rpc.Status` (`code`, `message`) in the request's
 * encoding, as the OTLP/HTTP spec asks; its headers (`Retry-After`) kept.
 */
function otlpStatusResponse(format: OtlpFormat, refusal: HttpError): Response {
  const code = GRPC_CODES[refusal.status] ?? 13; // INTERNAL
  if (format === "protobuf") {
    return new Response(encodeStatus(code, refusal.message), {
      status: refusal.status,
      headers: { "content-type": "application/x-protobuf", ...refusal.headers },
    });
  }
  return new Response(JSON.stringify({ code, message: refusal.message }), {
    status: refusal.status,
    headers: { "content-type": "application/json", ...refusal.headers },
  });
}

/** A `google.rpc.Status` in protobuf: `code` (field 1), `message` (field 2). */
function encodeStatus(code: number, message: string): Uint8Array<ArrayBuffer> {
  const text = new TextEncoder().encode(message);
  const out: number[] = [0x08, code, 0x12];
  let n = text.length;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  const bytes = new Uint8Array(out.length + text.length);
  bytes.set(out);
  bytes.set(text, out.length);
  return bytes;
}

function withHeaders(res: Response, headers: Readonly<Record<string, string>>): Response {
  if (Object.keys(headers).length === 0) return res;
  const merged = new Headers(res.headers);
  for (const [name, value] of Object.entries(headers)) merged.set(name, value);
  return new Response(res.body, { status: res.status, headers: merged });
}
