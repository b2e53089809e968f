/**
 * OpenTelemetry logs over HTTP (`POST /v1/logs`): decodes an `ExportLogsServiceRequest` from
 * protobuf (`application/x-protobuf`, what collectors send) or JSON (`application/json`) into
 * neutral records, and builds the `ExportLogsServiceResponse` answers.
 *
 * - Time: `timeUnixNano`, else `observedTimeUnixNano`, in whole milliseconds; `undefined` when
 *   both are 0 or absent.
 * - Level: from `severityNumber` (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error,
 *   21-24 fatal), else from `severityText` (see `normalizeLevel`).
 * - Message: the body; a string body as it is, any other kind as JSON text (kvlists as objects,
 *   `bytes` as base64, 64-bit integers beyond 2^53 as exact JSON numbers); `""` without a body.
 * - Fields, later ones replacing earlier ones of the same key: resource attributes,
 *   `scope.name` and `scope.version`, the record's attributes, `event.name`, `trace_id` and
 *   `span_id` (lowercase hex). Kvlist values flatten into dotted keys (`http.request.method`),
 *   arrays become JSON text, `bytes` base64, integers beyond 2^53 decimal text.
 *
 * JSON is read as the OTLP spec maps it and as real exporters send it: `intValue` as a number (the
 * JS exporter) or a string (the spec), times as strings or numbers, `severityNumber` as a number
 * or an enum name, `traceId`/`spanId` as hex (base64 also accepted), snake_case field names also
 * accepted.
 *
 * Malformed input throws an `HttpError` 400 naming the problem. A record whose values nest deeper
 * than `MAX_DEPTH` (or, in JSON, whose values have the wrong types) is refused alone and counted in
 * `rejected`, for the answer's `partialSuccess`.
 *
 * @module
 */

import { HttpError } from "../net/http_error.ts";
import {
  DEFAULT_MAX_RECORDS,
  DepthError,
  type Fields,
  type Level,
  levelOfSeverityNumber,
  MAX_DEPTH,
  nanosTextToMs,
  normalizeLevel,
  setField,
  toBase64,
  toHex,
  tooManyRecords,
} from "./fields.ts";
import type { Turns } from "../ingest/json_record.ts";
import { JsonSliceError, parseJsonSliced } from "./json_slices.ts";
import { I32, I64, LEN, ProtobufError, ProtoReader, VARINT } from "./protobuf.ts";

/** One OpenTelemetry log record, decoded. */
export interface OtlpRecord {
  /** Milliseconds since the epoch: the record's time, else its observed time. */
  timeMs: number | undefined;
  /** `SeverityNumber`, 0 when unspecified. */
  severityNumber: number;
  /** `SeverityText`, `""` when absent. */
  severityText: string;
  /** The normalized level, when the severity says one. */
  level: Level | undefined;
  /** The body: a string as it is, other kinds as JSON text. */
  message: string;
  /** Resource, scope and record attributes, `event.name`, `trace_id`, `span_id`. */
  fields: Fields;
}

/** What a request held. */
export interface OtlpDecoded {
  records: OtlpRecord[];
  /** Records refused (too deeply nested, wrong types): the answer's `rejectedLogRecords`. */
  rejected: number;
  /** Why the first refused record was refused, `""` when none was. */
  errorMessage: string;
}

/** Options of the decoders. */
export interface OtlpDecodeOptions {
  /** Most records (kept and refused) one request may hold; more is a 413. Default 100,000. */
  maxRecords?: number;
}

/** What the decoders collect, with the bound on it. */
interface Collect extends OtlpDecoded {
  max: number;
}

function collect(options: OtlpDecodeOptions): Collect {
  return {
    records: [],
    rejected: 0,
    errorMessage: "",
    max: options.maxRecords ?? DEFAULT_MAX_RECORDS,
  };
}

function result(c: Collect): OtlpDecoded {
  return { records: c.records, rejected: c.rejected, errorMessage: c.errorMessage };
}

/** Counts one more record against the bound. */
function count(c: Collect): void {
  if (c.records.length + c.rejected >= c.max) throw tooManyRecords(c.max);
}

/** The two encodings of OTLP/HTTP. */
export type OtlpFormat = "protobuf" | "json";

/**
 * The encoding a `Content-Type` names: `application/x-protobuf` or `application/protobuf` is
 * protobuf, `application/json` JSON (parameters ignored); `undefined` for anything else (answer
 * 415, as the OTLP spec asks).
 */
export function otlpFormat(contentType: string | null | undefined): OtlpFormat | undefined {
  if (!contentType) return undefined;
  const semi = contentType.indexOf(";");
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === "application/x-protobuf" || type === "application/protobuf") return "protobuf";
  if (type === "application/json") return "json";
  return undefined;
}

/** Decodes a request body (already gunzipped) of the given encoding. */
export function decodeOtlp(
  body: Uint8Array,
  format: OtlpFormat,
  options: OtlpDecodeOptions = {},
): OtlpDecoded {
  return format === "protobuf" ? decodeOtlpProtobuf(body, options) : decodeOtlpJson(body, options);
}

/**
 * The answer to an export: an empty `ExportLogsServiceResponse`, or one with `partialSuccess`
 * when records were refused. Status 200, in the request's encoding.
 */
export function otlpResponse(format: OtlpFormat, rejected = 0, errorMessage = ""): Response {
  if (format === "protobuf") {
    return new Response(encodeExportLogsResponse(rejected, errorMessage), {
      status: 200,
      headers: { "content-type": "application/x-protobuf" },
    });
  }
  const body = rejected > 0 || errorMessage !== ""
    ? { partialSuccess: { rejectedLogRecords: String(rejected), errorMessage } }
    : {};
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}

/** An `ExportLogsServiceResponse` in protobuf: no bytes when nothing was refused. */
export function encodeExportLogsResponse(
  rejected = 0,
  errorMessage = "",
): Uint8Array<ArrayBuffer> {
  if (rejected <= 0 && errorMessage === "") return new Uint8Array(0);
  const inner: number[] = [];
  if (rejected > 0) {
    inner.push(0x08);
    pushVarint(inner, rejected);
  }
  if (errorMessage !== "") {
    const text = new TextEncoder().encode(errorMessage);
    inner.push(0x12);
    pushVarint(inner, text.length);
    for (const b of text) inner.push(b);
  }
  const out = [0x0a];
  pushVarint(out, inner.length);
  return Uint8Array.from([...out, ...inner]);
}

function pushVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

// ---------------------------------------------------------------------------------------------
// Values

/** A decoded `KeyValueList`. */
class KvList {
  constructor(readonly entries: [string, AnyJs][]) {}
}

/**
 * An `AnyValue` as JavaScript: `bytes` are a `Uint8Array` from protobuf and their base64 text
 * from JSON; an empty `AnyValue` is `null`.
 */
type AnyJs = string | number | bigint | boolean | Uint8Array | AnyJs[] | KvList | null;

/** JSON text of a value (the message of a non-string body, arrays in fields). */
function anyToJson(v: AnyJs): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
    case "bigint":
    case "boolean":
      return String(v);
  }
  if (v === null) return "null";
  if (v instanceof Uint8Array) return JSON.stringify(toBase64(v));
  if (v instanceof KvList) {
    let s = "{";
    for (let i = 0; i < v.entries.length; i++) {
      if (i > 0) s += ",";
      s += JSON.stringify(v.entries[i][0]) + ":" + anyToJson(v.entries[i][1]);
    }
    return s + "}";
  }
  let s = "[";
  for (let i = 0; i < v.length; i++) {
    if (i > 0) s += ",";
    s += anyToJson(v[i]);
  }
  return s + "]";
}

/** Puts a value into `fields` under `key`, kvlists flattened into dotted keys. */
function flattenAny(fields: Fields, key: string, v: AnyJs): void {
  switch (typeof v) {
    case "string":
    case "boolean":
      setField(fields, key, v);
      return;
    case "number":
      setField(fields, key, Number.isFinite(v) ? v : String(v));
      return;
    case "bigint":
      setField(fields, key, String(v));
      return;
  }
  if (v === null) return;
  if (v instanceof Uint8Array) setField(fields, key, toBase64(v));
  else if (v instanceof KvList) {
    if (v.entries.length === 0) setField(fields, key, "{}");
    for (const [k, sub] of v.entries) flattenAny(fields, key + "." + k, sub);
  } else setField(fields, key, anyToJson(v));
}

function bodyText(v: AnyJs): string {
  if (typeof v === "string") return v;
  return v === null ? "" : anyToJson(v);
}

// ---------------------------------------------------------------------------------------------
// Protobuf

// Tags (field << 3 | wire type) of the fields read.
const T1_LEN = 1 << 3 | LEN;
const T2_LEN = 2 << 3 | LEN;

/** Decodes an `ExportLogsServiceRequest` in protobuf. */
export function decodeOtlpProtobuf(body: Uint8Array, options: OtlpDecodeOptions = {}): OtlpDecoded {
  const out = collect(options);
  const r = new ProtoReader(body);
  try {
    while (r.more()) {
      const tag = r.tag();
      if (tag === T1_LEN) {
        const outer = r.enter();
        resourceLogs(r, out);
        r.leave(outer);
      } else r.skip(tag & 7);
    }
  } catch (err) {
    if (err instanceof ProtobufError || err instanceof DepthError) {
      throw new HttpError(400, `Malformed OTLP protobuf: ${err.message}`);
    }
    throw err;
  }
  return result(out);
}

/** Runs `each` over the embedded message [start, end) and puts the reader back where it was. */
function within(r: ProtoReader, start: number, end: number, each: () => void): void {
  const pos = r.pos;
  const outer = r.end;
  r.pos = start;
  r.end = end;
  each();
  r.pos = pos;
  r.end = outer;
}

function resourceLogs(r: ProtoReader, out: Collect): void {
  let base: Fields | undefined;
  let deferred: number[] | undefined;
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) {
      const outer = r.enter();
      base = attributesOnly(r);
      r.leave(outer);
    } else if (tag === T2_LEN) {
      const end = r.length();
      if (base !== undefined) within(r, r.pos, end, () => scopeLogs(r, base!, out));
      else (deferred ??= []).push(r.pos, end);
      r.pos = end;
    } else r.skip(tag & 7);
  }
  if (deferred !== undefined) {
    const b = base ?? {};
    for (let i = 0; i < deferred.length; i += 2) {
      within(r, deferred[i], deferred[i + 1], () => scopeLogs(r, b, out));
    }
  }
}

/** A `Resource`: its attributes (field 1) as fields. */
function attributesOnly(r: ProtoReader): Fields {
  const fields: Fields = {};
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) keyValueInto(r, fields, "");
    else r.skip(tag & 7);
  }
  return fields;
}

/** Reads a `KeyValue` (entered here) and flattens it into `fields` under `prefix + key`. */
function keyValueInto(r: ProtoReader, fields: Fields, prefix: string): void {
  const outer = r.enter();
  const [key, value] = keyValue(r, 1);
  r.leave(outer);
  flattenAny(fields, prefix + key, value);
}

/** The fields of a `KeyValue` already entered. */
function keyValue(r: ProtoReader, depth: number): [string, AnyJs] {
  let key = "";
  let value: AnyJs = null;
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) key = r.string();
    else if (tag === T2_LEN) {
      const outer = r.enter();
      value = anyValue(r, depth);
      r.leave(outer);
    } else r.skip(tag & 7);
  }
  return [key, value];
}

/** The fields of an `AnyValue` already entered. */
function anyValue(r: ProtoReader, depth: number): AnyJs {
  let v: AnyJs = null;
  while (r.more()) {
    const tag = r.tag();
    switch (tag) {
      case 1 << 3 | LEN:
        v = r.string();
        break;
      case 2 << 3 | VARINT:
        v = r.bool();
        break;
      case 3 << 3 | VARINT:
        v = r.int64();
        break;
      case 4 << 3 | I64:
        v = r.double();
        break;
      case 5 << 3 | LEN: {
        if (depth >= MAX_DEPTH) throw new DepthError();
        const outer = r.enter();
        const values: AnyJs[] = [];
        while (r.more()) {
          const t = r.tag();
          if (t === T1_LEN) {
            const o = r.enter();
            values.push(anyValue(r, depth + 1));
            r.leave(o);
          } else r.skip(t & 7);
        }
        r.leave(outer);
        v = values;
        break;
      }
      case 6 << 3 | LEN: {
        if (depth >= MAX_DEPTH) throw new DepthError();
        const outer = r.enter();
        const entries: [string, AnyJs][] = [];
        while (r.more()) {
          const t = r.tag();
          if (t === T1_LEN) {
            const o = r.enter();
            entries.push(keyValue(r, depth + 1));
            r.leave(o);
          } else r.skip(t & 7);
        }
        r.leave(outer);
        v = new KvList(entries);
        break;
      }
      case 7 << 3 | LEN:
        v = r.bytes();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return v;
}

function scopeLogs(r: ProtoReader, base: Fields, out: Collect): void {
  let scoped: Fields | undefined;
  let deferred: number[] | undefined;
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) {
      const outer = r.enter();
      scoped = scope(r, base);
      r.leave(outer);
    } else if (tag === T2_LEN) {
      const end = r.length();
      if (scoped !== undefined) logRecordAt(r, r.pos, end, scoped, out);
      else (deferred ??= []).push(r.pos, end);
      r.pos = end;
    } else r.skip(tag & 7);
  }
  if (deferred !== undefined) {
    const s = scoped ?? base;
    for (let i = 0; i < deferred.length; i += 2) {
      logRecordAt(r, deferred[i], deferred[i + 1], s, out);
    }
  }
}

/** An `InstrumentationScope`: the base fields plus `scope.name` and `scope.version`. */
function scope(r: ProtoReader, base: Fields): Fields {
  let name = "";
  let version = "";
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) name = r.string();
    else if (tag === T2_LEN) version = r.string();
    else r.skip(tag & 7);
  }
  const fields = { ...base };
  if (name !== "") setField(fields, "scope.name", name);
  if (version !== "") setField(fields, "scope.version", version);
  return fields;
}

/** Decodes the `LogRecord` at [start, end); a record nested too deep is counted as refused. */
function logRecordAt(
  r: ProtoReader,
  start: number,
  end: number,
  base: Fields,
  out: Collect,
): void {
  const pos = r.pos;
  const outer = r.end;
  r.pos = start;
  r.end = end;
  count(out);
  try {
    out.records.push(logRecord(r, base));
  } catch (err) {
    if (!(err instanceof DepthError)) throw err;
    out.rejected++;
    if (out.errorMessage === "") out.errorMessage = `A log record was refused: ${err.message}`;
  }
  r.pos = pos;
  r.end = outer;
}

function logRecord(r: ProtoReader, base: Fields): OtlpRecord {
  let time = 0;
  let observed = 0;
  let severityNumber = 0;
  let severityText = "";
  let body: AnyJs = null;
  let traceId: Uint8Array | undefined;
  let spanId: Uint8Array | undefined;
  let eventName = "";
  const fields: Fields = { ...base };
  while (r.more()) {
    const tag = r.tag();
    switch (tag) {
      case 1 << 3 | I64:
        time = r.fixed64NanosToMs();
        break;
      case 11 << 3 | I64:
        observed = r.fixed64NanosToMs();
        break;
      case 2 << 3 | VARINT:
        severityNumber = r.uint32();
        break;
      case 3 << 3 | LEN:
        severityText = r.string();
        break;
      case 5 << 3 | LEN: {
        const outer = r.enter();
        body = anyValue(r, 0);
        r.leave(outer);
        break;
      }
      case 6 << 3 | LEN:
        keyValueInto(r, fields, "");
        break;
      case 9 << 3 | LEN:
        traceId = r.bytes();
        break;
      case 10 << 3 | LEN:
        spanId = r.bytes();
        break;
      case 12 << 3 | LEN:
        eventName = r.string();
        break;
      case 8 << 3 | I32:
      default:
        r.skip(tag & 7);
    }
  }
  if (eventName !== "") setField(fields, "event.name", eventName);
  if (traceId !== undefined && traceId.length > 0) setField(fields, "trace_id", toHex(traceId));
  if (spanId !== undefined && spanId.length > 0) setField(fields, "span_id", toHex(spanId));
  return {
    timeMs: time !== 0 ? time : observed !== 0 ? observed : undefined,
    severityNumber,
    severityText,
    level: levelOfSeverityNumber(severityNumber) ?? normalizeLevel(severityText),
    message: bodyText(body),
    fields,
  };
}

// ---------------------------------------------------------------------------------------------
// JSON

/** A record refused in JSON for the wrong type of a value. */
class JsonShapeError extends Error {}

type Obj = Record<string, unknown>;

/** Decodes an `ExportLogsServiceRequest` in the OTLP JSON encoding, in one go. */
export function decodeOtlpJson(
  body: Uint8Array | string,
  options: OtlpDecodeOptions = {},
): OtlpDecoded {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
  } catch (err) {
    throw bad((err as Error).message);
  }
  const out = collect(options);
  for (const _ of recordsFromJson(doc, out));
  return result(out);
}

/**
 * Decodes an `ExportLogsServiceRequest` in the OTLP JSON encoding a step at a time, pausing
 * whenever `turns.due()`: the body is parsed by `parseJsonSliced`, the records are made
 * {@linkcode RECORDS_PER_PAUSE} at a time. Gives what {@linkcode decodeOtlpJson} gives.
 */
export async function decodeOtlpJsonSliced(
  body: Uint8Array,
  options: OtlpDecodeOptions,
  turns: Turns,
): Promise<OtlpDecoded> {
  let doc: unknown;
  try {
    doc = await parseJsonSliced(body, turns);
  } catch (err) {
    if (err instanceof JsonSliceError) throw bad(err.message);
    throw err;
  }
  const out = collect(options);
  for (const _ of recordsFromJson(doc, out)) {
    if (turns.due()) await turns.pause();
  }
  return result(out);
}

/** Records made between two chances to pause. */
export const RECORDS_PER_PAUSE = 256;

/** Puts the records of a parsed request into `out`, yielding every few hundred records. */
function* recordsFromJson(doc: unknown, out: Collect): Generator<void> {
  if (!isObj(doc)) throw bad("the body is not an object");
  let made = 0;
  for (const rl of listOf(doc, "resourceLogs", "resource_logs", "request")) {
    if (!isObj(rl)) throw bad("a resourceLogs entry is not an object");
    const resource = rl.resource;
    let base: Fields = {};
    if (resource !== undefined && resource !== null) {
      if (!isObj(resource)) throw bad("resource is not an object");
      base = attributesFromJson(resource.attributes, "resource.attributes");
    }
    for (const sl of listOf(rl, "scopeLogs", "scope_logs", "resourceLogs entry")) {
      if (!isObj(sl)) throw bad("a scopeLogs entry is not an object");
      const scoped = { ...base };
      const sc = sl.scope;
      if (sc !== undefined && sc !== null) {
        if (!isObj(sc)) throw bad("scope is not an object");
        if (typeof sc.name === "string" && sc.name !== "") {
          setField(scoped, "scope.name", sc.name);
        }
        if (typeof sc.version === "string" && sc.version !== "") {
          setField(scoped, "scope.version", sc.version);
        }
      }
      for (const lr of listOf(sl, "logRecords", "log_records", "scopeLogs entry")) {
        count(out);
        try {
          out.records.push(logRecordFromJson(lr, scoped));
        } catch (err) {
          if (!(err instanceof JsonShapeError || err instanceof DepthError)) throw err;
          out.rejected++;
          if (out.errorMessage === "") {
            out.errorMessage = `A log record was refused: ${err.message}`;
          }
        }
        if (++made % RECORDS_PER_PAUSE === 0) yield;
      }
    }
  }
}

function bad(what: string): HttpError {
  return new HttpError(400, `Malformed OTLP JSON: ${what}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function listOf(o: Obj, camel: string, snake: string, where: string): unknown[] {
  const v = o[camel] ?? o[snake];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`${camel} in ${where} is not an array`);
  return v;
}

function attributesFromJson(list: unknown, where: string): Fields {
  const fields: Fields = {};
  if (list === undefined || list === null) return fields;
  if (!Array.isArray(list)) throw bad(`${where} is not an array`);
  try {
    for (const kv of list) attributeFromJson(kv, fields);
  } catch (err) {
    if (err instanceof JsonShapeError || err instanceof DepthError) {
      throw bad(`${where}: ${err.message}`);
    }
    throw err;
  }
  return fields;
}

function attributeFromJson(kv: unknown, fields: Fields): void {
  if (!isObj(kv) || typeof kv.key !== "string") {
    throw new JsonShapeError("an attribute is not a {key, value} object");
  }
  flattenAny(fields, kv.key, anyFromJson(kv.value, 1));
}

function anyFromJson(v: unknown, depth: number): AnyJs {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw new JsonShapeError("an AnyValue is not an object");
  let x = v.stringValue ?? v.string_value;
  if (x !== undefined) {
    if (typeof x !== "string") throw new JsonShapeError("stringValue is not a string");
    return x;
  }
  x = v.intValue ?? v.int_value;
  if (x !== undefined) return int64FromJson(x);
  x = v.boolValue ?? v.bool_value;
  if (x !== undefined) {
    if (typeof x !== "boolean") throw new JsonShapeError("boolValue is not a boolean");
    return x;
  }
  x = v.doubleValue ?? v.double_value;
  if (x !== undefined) {
    if (typeof x === "number") return x;
    if (typeof x === "string") {
      const n = Number(x);
      if (!Number.isNaN(n) || x === "NaN") return n;
    }
    throw new JsonShapeError("doubleValue is not a number");
  }
  x = v.arrayValue ?? v.array_value;
  if (x !== undefined) {
    if (depth >= MAX_DEPTH) throw new DepthError();
    const values = isObj(x) ? x.values ?? [] : undefined;
    if (!Array.isArray(values)) throw new JsonShapeError("arrayValue.values is not an array");
    const out: AnyJs[] = new Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = anyFromJson(values[i], depth + 1);
    return out;
  }
  x = v.kvlistValue ?? v.kvlist_value;
  if (x !== undefined) {
    if (depth >= MAX_DEPTH) throw new DepthError();
    const values = isObj(x) ? x.values ?? [] : undefined;
    if (!Array.isArray(values)) throw new JsonShapeError("kvlistValue.values is not an array");
    const entries: [string, AnyJs][] = new Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const kv = values[i];
      if (!isObj(kv) || typeof kv.key !== "string") {
        throw new JsonShapeError("a kvlistValue entry is not a {key, value} object");
      }
      entries[i] = [kv.key, anyFromJson(kv.value, depth + 1)];
    }
    return new KvList(entries);
  }
  x = v.bytesValue ?? v.bytes_value;
  if (x !== undefined) {
    if (typeof x !== "string") throw new JsonShapeError("bytesValue is not base64 text");
    return x;
  }
  return null;
}

/** An `int64` in JSON: a number (JS exporter) or decimal text (the spec). */
function int64FromJson(x: unknown): number | bigint {
  if (typeof x === "number") {
    if (Number.isInteger(x)) return x;
  } else if (typeof x === "string" && x.length > 0 && x.length <= 20) {
    const n = Number(x);
    if (Number.isSafeInteger(n)) return n;
    if (Number.isInteger(n)) {
      try {
        return BigInt(x);
      } catch { /* not an integer's text */ }
    }
  }
  throw new JsonShapeError("intValue is not an integer");
}

const SEVERITY_NAMES: ReadonlyMap<string, number> = new Map(
  ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"].flatMap((name, i) =>
    [
      [`SEVERITY_NUMBER_${name}`, i * 4 + 1],
      [`SEVERITY_NUMBER_${name}2`, i * 4 + 2],
      [`SEVERITY_NUMBER_${name}3`, i * 4 + 3],
      [`SEVERITY_NUMBER_${name}4`, i * 4 + 4],
    ] as [string, number][]
  ).concat([["SEVERITY_NUMBER_UNSPECIFIED", 0]]),
);

function severityFromJson(x: unknown): number {
  if (x === undefined || x === null) return 0;
  if (typeof x === "number" && Number.isInteger(x) && x >= 0) return x;
  if (typeof x === "string") {
    const n = SEVERITY_NAMES.get(x);
    if (n !== undefined) return n;
    const num = Number(x);
    if (Number.isInteger(num) && num >= 0) return num;
  }
  throw new JsonShapeError("severityNumber is neither a number nor a SeverityNumber name");
}

function timeFromJson(x: unknown, name: string): number {
  if (x === undefined || x === null) return 0;
  if (typeof x === "string") {
    const ms = nanosTextToMs(x);
    if (ms !== undefined) return ms;
  } else if (typeof x === "number" && Number.isFinite(x) && x >= 0) {
    return Math.floor(x / 1e6);
  }
  throw new JsonShapeError(`${name} is not a count of nanoseconds`);
}

/** A trace or span id: hex as the OTLP JSON mapping says, or base64 as protojson writes bytes. */
function idFromJson(x: unknown, bytes: number, name: string): string {
  if (x === undefined || x === null || x === "") return "";
  if (typeof x === "string") {
    if (x.length === bytes * 2 && isHex(x)) return x.toLowerCase();
    try {
      const raw = atob(x);
      if (raw.length === bytes) {
        let s = "";
        for (let i = 0; i < raw.length; i++) s += raw.charCodeAt(i).toString(16).padStart(2, "0");
        return s;
      }
    } catch { /* not base64 */ }
  }
  throw new JsonShapeError(`${name} is not ${bytes} bytes of hex`);
}

function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function logRecordFromJson(lr: unknown, base: Fields): OtlpRecord {
  if (!isObj(lr)) throw new JsonShapeError("a log record is not an object");
  const time = timeFromJson(lr.timeUnixNano ?? lr.time_unix_nano, "timeUnixNano");
  const observed = timeFromJson(
    lr.observedTimeUnixNano ?? lr.observed_time_unix_nano,
    "observedTimeUnixNano",
  );
  const severityNumber = severityFromJson(lr.severityNumber ?? lr.severity_number);
  const text = lr.severityText ?? lr.severity_text ?? "";
  if (typeof text !== "string") throw new JsonShapeError("severityText is not a string");
  const body = anyFromJson(lr.body, 0);
  const fields: Fields = { ...base };
  const attributes = lr.attributes;
  if (attributes !== undefined && attributes !== null) {
    if (!Array.isArray(attributes)) throw new JsonShapeError("attributes is not an array");
    for (const kv of attributes) attributeFromJson(kv, fields);
  }
  const eventName = lr.eventName ?? lr.event_name;
  if (typeof eventName === "string" && eventName !== "") setField(fields, "event.name", eventName);
  const traceId = idFromJson(lr.traceId ?? lr.trace_id, 16, "traceId");
  if (traceId !== "") setField(fields, "trace_id", traceId);
  const spanId = idFromJson(lr.spanId ?? lr.span_id, 8, "spanId");
  if (spanId !== "") setField(fields, "span_id", spanId);
  return {
    timeMs: time !== 0 ? time : observed !== 0 ? observed : undefined,
    severityNumber,
    severityText: text,
    level: levelOfSeverityNumber(severityNumber) ?? normalizeLevel(text),
    message: bodyText(body),
    fields,
  };
}
