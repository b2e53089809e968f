/**
 * Loki push (`POST /loki/api/v1/push`): decodes a push request, JSON or snappy-compressed protobuf,
 * into neutral records.
 *
 * - Which encoding: a `Content-Type` of `application/json` is JSON; `application/x-protobuf` (or
 *   `application/protobuf`) is a snappy-compressed protobuf `PushRequest`. With any other type or
 *   none, the body is sniffed: its first non-whitespace byte `{` means JSON, anything else snappy
 *   protobuf. Only a snappy block of exactly 123 uncompressed bytes starts with `{` (its length
 *   varint), so when a sniffed "JSON" body does not parse, it is tried as snappy protobuf before
 *   the JSON error is returned. winston-loki sends snappy protobuf with no `Content-Encoding`
 *   header (Promtail, Alloy, Fluent Bit do the same, with the protobuf `Content-Type`), so a body
 *   is never taken for gzip unless the header says so.
 * - Each entry becomes a record: its time in milliseconds, its line as the message, the stream's
 *   labels and the entry's structured metadata as fields (string values; metadata wins over a
 *   label of the same name), a level from a `level`, `detected_level`, `severity` or `lvl` label or
 *   metadata key, and a source (see {@linkcode lokiSource}).
 *
 * @module
 */

import { HttpError } from "../net/http_error.ts";
import {
  DEFAULT_MAX_RECORDS,
  type Fields,
  type Level,
  nanosTextToMs,
  normalizeLevel,
  setField,
  tooManyRecords,
} from "./fields.ts";
import type { Turns } from "../ingest/json_record.ts";
import { JsonSliceError, parseJsonSliced } from "./json_slices.ts";
import { LEN, ProtobufError, ProtoReader, utf8, VARINT } from "./protobuf.ts";
import { decompressSnappy } from "./snappy.ts";

/** One Loki entry, decoded. */
export interface LokiRecord {
  /** Milliseconds since the epoch; `undefined` for a zero or missing timestamp. */
  timeMs: number | undefined;
  /** The log line. */
  message: string;
  /** The stream's labels and the entry's structured metadata. */
  fields: Fields;
  /** The label the source comes from, by {@linkcode lokiSource}. */
  source: string;
  /** The level a label or metadata key names, normalized. */
  level: Level | undefined;
}

/** The two encodings of a push. */
export type LokiFormat = "json" | "protobuf";

/**
 * Labels that name the source, first present wins: `service_name`, then the labels Loki itself
 * derives `service_name` from, in its order (its `discover_service_name` default). Without any of
 * them the source is {@linkcode LOKI_DEFAULT_SOURCE}.
 */
export const LOKI_SOURCE_LABELS: readonly string[] = [
  "service_name",
  "service",
  "app",
  "application",
  "app_name",
  "name",
  "app_kubernetes_io_name",
  "container",
  "container_name",
  "k8s_container_name",
  "component",
  "workload",
  "job",
  "k8s_job_name",
];

/** The source of streams with none of {@linkcode LOKI_SOURCE_LABELS}. */
export const LOKI_DEFAULT_SOURCE = "loki";

const LEVEL_KEYS = ["level", "detected_level", "severity", "lvl"];

/** The source of a stream: the first non-empty label of {@linkcode LOKI_SOURCE_LABELS}. */
export function lokiSource(labels: Fields): string {
  for (const name of LOKI_SOURCE_LABELS) {
    const v = Object.hasOwn(labels, name) ? labels[name] : undefined;
    if (v !== undefined && v !== "") return String(v);
  }
  return LOKI_DEFAULT_SOURCE;
}

/** Which encoding a push is in, by `Content-Type`, else by sniffing (see the module doc). */
export function lokiFormat(contentType: string | null | undefined, body: Uint8Array): LokiFormat {
  const declared = declaredFormat(contentType);
  if (declared !== undefined) return declared;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    return c === 0x7b ? "json" : "protobuf";
  }
  return "protobuf";
}

function declaredFormat(contentType: string | null | undefined): LokiFormat | undefined {
  if (!contentType) return undefined;
  const semi = contentType.indexOf(";");
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === "application/json") return "json";
  if (type === "application/x-protobuf" || type === "application/protobuf") return "protobuf";
  return undefined;
}

/** Options of {@linkcode decodeLoki}. */
export interface LokiDecodeOptions {
  /** The request's `Content-Type`. */
  contentType?: string | null;
  /** Largest uncompressed protobuf accepted; a snappy body declaring more is a 413. */
  maxBytes: number;
  /** Most entries one push may hold; more is a 413. Default 100,000. */
  maxRecords?: number;
}

/**
 * Decodes a push body (already freed of any gzip `Content-Encoding`).
 *
 * @throws {HttpError} 400 for malformed input, 413 for a snappy body declaring more than
 * `maxBytes`.
 */
export function decodeLoki(body: Uint8Array, options: LokiDecodeOptions): LokiRecord[] {
  const max = options.maxRecords ?? DEFAULT_MAX_RECORDS;
  const snappy = () => decodeLokiProtobuf(decompressSnappy(body, options.maxBytes), max);
  if (lokiFormat(options.contentType, body) === "protobuf") return snappy();
  try {
    return decodeLokiJson(body, max);
  } catch (err) {
    // Sniffed, not declared: a 123-byte snappy block also starts with `{`.
    if (declaredFormat(options.contentType) === "json" || !(err instanceof HttpError)) throw err;
    try {
      return snappy();
    } catch {
      throw err;
    }
  }
}

/**
 * {@linkcode decodeLoki} a step at a time, pausing whenever `turns.due()`: JSON through
 * {@linkcode decodeLokiJsonSliced}, snappy protobuf through `protobuf` (which the caller decodes
 * in pieces), with the same choice of encoding and the same fallback from sniffed JSON.
 */
export async function decodeLokiSliced(
  body: Uint8Array,
  options: LokiDecodeOptions,
  turns: Turns,
  protobuf: (body: Uint8Array) => Promise<LokiRecord[]>,
): Promise<LokiRecord[]> {
  if (lokiFormat(options.contentType, body) === "protobuf") return await protobuf(body);
  try {
    return await decodeLokiJsonSliced(body, options.maxRecords ?? DEFAULT_MAX_RECORDS, turns);
  } catch (err) {
    // Sniffed, not declared: a 123-byte snappy block also starts with `{`.
    if (declaredFormat(options.contentType) === "json" || !(err instanceof HttpError)) throw err;
    try {
      return await protobuf(body);
    } catch {
      throw err;
    }
  }
}

/** The answer to a push that was stored: 204, as Loki answers. */
export function lokiResponse(): Response {
  return new Response(null, { status: 204 });
}

// ---------------------------------------------------------------------------------------------
// Labels

/**
 * Parses a Prometheus label set, `{a="b", c="d"}`, as Loki's protobuf streams carry them. Values
 * take Go's escapes (`\"`, `\\`, `\n`, `\t`, `\r`, `\xHH`, `\uHHHH`, ...). Two things are read
 * leniently because real clients send them: an unknown escape keeps its backslash, and a `"` that
 * is not followed by `,` or `}` is part of the value (winston-loki does not escape its labels).
 * Names may be quoted (Prometheus 3's UTF-8 names).
 *
 * @throws {HttpError} 400 naming where the text went wrong.
 */
export function parseLabels(text: string): Fields {
  const labels: Fields = {};
  const n = text.length;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b) throw badLabels(text, i, "expected {");
  i = skipSpace(text, i + 1);
  while (i < n && text.charCodeAt(i) !== 0x7d) {
    let name: string;
    if (text.charCodeAt(i) === 0x22) {
      [name, i] = quoted(text, i + 1, true);
    } else {
      const start = i;
      while (i < n && isNameChar(text.charCodeAt(i))) i++;
      if (i === start) throw badLabels(text, i, "expected a label name");
      name = text.slice(start, i);
    }
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== 0x3d) throw badLabels(text, i, "expected =");
    i = skipSpace(text, i + 1);
    if (text.charCodeAt(i) !== 0x22) throw badLabels(text, i, "expected a quoted value");
    let value: string;
    [value, i] = quoted(text, i + 1, false);
    setField(labels, name, value);
    i = skipSpace(text, i);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
    else if (text.charCodeAt(i) !== 0x7d) throw badLabels(text, i, "expected , or }");
  }
  if (i >= n) throw badLabels(text, i, "expected }");
  if (skipSpace(text, i + 1) !== n) throw badLabels(text, i + 1, "text after }");
  return labels;
}

function badLabels(text: string, at: number, what: string): HttpError {
  const shown = text.length > 200 ? text.slice(0, 200) + "..." : text;
  return new HttpError(400, `Malformed Loki labels ${JSON.stringify(shown)}: ${what} at ${at}`);
}

function skipSpace(text: string, i: number): number {
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    i++;
  }
  return i;
}

function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x5f || c === 0x3a || c === 0x2e;
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
  "\\": "\\",
  '"': '"',
  "'": "'",
};

/** A quoted string starting after its `"`: the text and the index after the closing quote. */
function quoted(text: string, i: number, strict: boolean): [string, number] {
  const start = i - 1;
  let out = "";
  let run = i;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      if (!strict) {
        const next = text.charCodeAt(skipSpace(text, i + 1));
        if (next !== 0x2c && next !== 0x7d) {
          i++;
          continue; // an unescaped quote inside the value
        }
      }
      return [out + text.slice(run, i), i + 1];
    }
    if (c === 0x5c && i + 1 < n) {
      out += text.slice(run, i);
      const e = text[i + 1];
      const simple = ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else {
        const digits = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
        const code = digits > 0 ? parseHex(text, i + 2, digits) : -1;
        if (code >= 0 && code <= 0x10ffff) {
          out += String.fromCodePoint(code);
          i += 2 + digits;
        } else {
          out += "\\"; // unknown escape: kept as written
          i += 1;
        }
      }
      run = i;
      continue;
    }
    i++;
  }
  throw badLabels(text, start, "unterminated quoted string");
}

function parseHex(text: string, i: number, digits: number): number {
  if (i + digits > text.length) return -1;
  let v = 0;
  for (let k = 0; k < digits; k++) {
    const c = text.charCodeAt(i + k) | 0x20;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Records

/** The records of a push, at most `max` of them. */
class Bounded {
  readonly records: LokiRecord[] = [];
  constructor(readonly max: number) {}
  push(record: LokiRecord): void {
    if (this.records.length >= this.max) throw tooManyRecords(this.max);
    this.records.push(record);
  }
}

interface Stream {
  labels: Fields;
  source: string;
  level: Level | undefined;
}

function stream(labels: Fields): Stream {
  return { labels, source: lokiSource(labels), level: levelOf(labels) };
}

function levelOf(fields: Fields): Level | undefined {
  for (const key of LEVEL_KEYS) {
    if (Object.hasOwn(fields, key)) {
      const level = normalizeLevel(fields[key]);
      if (level !== undefined) return level;
    }
  }
  return undefined;
}

function record(
  s: Stream,
  timeMs: number | undefined,
  message: string,
  metadata: Fields | undefined,
): LokiRecord {
  const fields = { ...s.labels };
  let level = s.level;
  if (metadata !== undefined) {
    for (const key in metadata) setField(fields, key, metadata[key]);
    level = levelOf(metadata) ?? level;
  }
  return { timeMs, message, fields, source: s.source, level };
}

// ---------------------------------------------------------------------------------------------
// Protobuf

const T1_LEN = 1 << 3 | LEN;
const T2_LEN = 2 << 3 | LEN;
const T3_LEN = 3 << 3 | LEN;

/** Decodes an uncompressed protobuf `PushRequest` of at most `maxRecords` entries. */
export function decodeLokiProtobuf(
  bytes: Uint8Array,
  maxRecords = DEFAULT_MAX_RECORDS,
): LokiRecord[] {
  const out = new Bounded(maxRecords);
  const r = new ProtoReader(bytes);
  try {
    while (r.more()) {
      const tag = r.tag();
      if (tag === T1_LEN) {
        const outer = r.enter();
        streamProto(r, out);
        r.leave(outer);
      } else r.skip(tag & 7);
    }
  } catch (err) {
    if (err instanceof ProtobufError) {
      throw new HttpError(400, `Malformed Loki protobuf: ${err.message}`);
    }
    throw err;
  }
  return out.records;
}

function streamProto(r: ProtoReader, out: Bounded): void {
  let s: Stream | undefined;
  let deferred: number[] | undefined;
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) s = stream(parseLabels(r.string()));
    else if (tag === T2_LEN) {
      const end = r.length();
      if (s !== undefined) entryAt(r, r.pos, end, s, out);
      else (deferred ??= []).push(r.pos, end);
      r.pos = end;
    } else r.skip(tag & 7);
  }
  if (deferred !== undefined) {
    const st = s ?? stream({});
    for (let i = 0; i < deferred.length; i += 2) entryAt(r, deferred[i], deferred[i + 1], st, out);
  }
}

function entryAt(r: ProtoReader, start: number, end: number, s: Stream, out: Bounded): void {
  const pos = r.pos;
  const outer = r.end;
  r.pos = start;
  r.end = end;
  let timeMs: number | undefined;
  let line = "";
  let metadata: Fields | undefined;
  while (r.more()) {
    const tag = r.tag();
    if (tag === T1_LEN) {
      const o = r.enter();
      timeMs = timestamp(r);
      r.leave(o);
    } else if (tag === T2_LEN) {
      const e = r.length();
      line = utf8(r.buf, r.pos, e);
      r.pos = e;
    } else if (tag === T3_LEN) {
      const o = r.enter();
      let name = "";
      let value = "";
      while (r.more()) {
        const t = r.tag();
        if (t === T1_LEN) name = r.string();
        else if (t === T2_LEN) value = r.string();
        else r.skip(t & 7);
      }
      r.leave(o);
      setField(metadata ??= {}, name, value);
    } else r.skip(tag & 7);
  }
  out.push(record(s, timeMs, line, metadata));
  r.pos = pos;
  r.end = outer;
}

/** A `google.protobuf.Timestamp` already entered, as milliseconds; `undefined` when zero. */
function timestamp(r: ProtoReader): number | undefined {
  let seconds: number | bigint = 0;
  let nanos: number | bigint = 0;
  while (r.more()) {
    const tag = r.tag();
    if (tag === (1 << 3 | VARINT)) seconds = r.int64();
    else if (tag === (2 << 3 | VARINT)) nanos = r.int64();
    else r.skip(tag & 7);
  }
  if (typeof seconds !== "number" || typeof nanos !== "number" || seconds < 0 || nanos < 0) {
    throw new ProtobufError("Timestamp out of range", r.pos);
  }
  const ms = seconds * 1000 + Math.floor(nanos / 1e6);
  return ms === 0 ? undefined : ms;
}

// ---------------------------------------------------------------------------------------------
// JSON

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function badJson(what: string): HttpError {
  return new HttpError(400, `Malformed Loki JSON: ${what}`);
}

/**
 * Decodes a JSON push, in one go: `{"streams":[{"stream":{labels},"values":[["<ns>","line"(,
 * {metadata})]]}]}`. The older form with `"labels":"{...}"` and
 * `"entries":[{"ts":"<RFC 3339>","line":"..."}]` is read too.
 */
export function decodeLokiJson(
  body: Uint8Array | string,
  maxRecords = DEFAULT_MAX_RECORDS,
): LokiRecord[] {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
  } catch (err) {
    throw badJson((err as Error).message);
  }
  const out = new Bounded(maxRecords);
  for (const _ of entriesFromJson(doc, out));
  return out.records;
}

/**
 * Decodes a JSON push a step at a time, pausing whenever `turns.due()`: the body is parsed by
 * `parseJsonSliced`, the records are made {@linkcode RECORDS_PER_PAUSE} at a time. Gives what
 * {@linkcode decodeLokiJson} gives.
 */
export async function decodeLokiJsonSliced(
  body: Uint8Array,
  maxRecords: number,
  turns: Turns,
): Promise<LokiRecord[]> {
  let doc: unknown;
  try {
    doc = await parseJsonSliced(body, turns);
  } catch (err) {
    if (err instanceof JsonSliceError) throw badJson(err.message);
    throw err;
  }
  const out = new Bounded(maxRecords);
  for (const _ of entriesFromJson(doc, out)) {
    if (turns.due()) await turns.pause();
  }
  return out.records;
}

/** Records made between two chances to pause. */
export const RECORDS_PER_PAUSE = 256;

/** Puts the entries of a parsed push into `out`, yielding every few hundred entries. */
function* entriesFromJson(doc: unknown, out: Bounded): Generator<void> {
  if (!isObj(doc)) throw badJson("the body is not an object");
  const streams = doc.streams;
  if (!Array.isArray(streams)) throw badJson("streams is not an array");
  for (let si = 0; si < streams.length; si++) {
    const st = streams[si];
    if (!isObj(st)) throw badJson(`streams[${si}] is not an object`);
    let labels: Fields;
    if (typeof st.labels === "string") labels = parseLabels(st.labels);
    else labels = stringMap(st.stream ?? {}, `streams[${si}].stream`);
    const s = stream(labels);
    if (Array.isArray(st.values)) yield* valuesJson(st.values, s, si, out);
    else if (Array.isArray(st.entries)) yield* entriesJson(st.entries, s, si, out);
    else throw badJson(`streams[${si}] has no values array`);
    yield;
  }
}

function stringMap(v: unknown, where: string): Fields {
  if (!isObj(v)) throw badJson(`${where} is not an object`);
  const fields: Fields = {};
  for (const key in v) {
    const x = v[key];
    if (typeof x === "string" || typeof x === "number" || typeof x === "boolean") {
      setField(fields, key, x);
    } else if (x !== null) throw badJson(`${where}.${key} is not a string`);
  }
  return fields;
}

function* valuesJson(values: unknown[], s: Stream, si: number, out: Bounded): Generator<void> {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const where = `streams[${si}].values[${i}]`;
    if (!Array.isArray(v) || v.length < 2 || v.length > 3) {
      throw badJson(`${where} is not ["<ns>", "line"] or ["<ns>", "line", {metadata}]`);
    }
    const [ts, line, meta] = v;
    let timeMs: number | undefined;
    if (typeof ts === "string") timeMs = nanosTextToMs(ts);
    else if (typeof ts === "number" && Number.isFinite(ts) && ts >= 0) {
      timeMs = Math.floor(ts / 1e6);
    }
    if (timeMs === undefined) throw badJson(`${where}[0] is not a count of nanoseconds`);
    if (typeof line !== "string") throw badJson(`${where}[1] is not a string`);
    const metadata = meta === undefined || meta === null
      ? undefined
      : stringMap(meta, `${where}[2]`);
    out.push(record(s, timeMs === 0 ? undefined : timeMs, line, metadata));
    if (i % RECORDS_PER_PAUSE === RECORDS_PER_PAUSE - 1) yield;
  }
}

function* entriesJson(entries: unknown[], s: Stream, si: number, out: Bounded): Generator<void> {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const where = `streams[${si}].entries[${i}]`;
    if (!isObj(e) || typeof e.line !== "string") throw badJson(`${where} has no line`);
    const ts = e.ts ?? e.timestamp;
    const timeMs = typeof ts === "string" ? Date.parse(ts) : NaN;
    if (Number.isNaN(timeMs)) throw badJson(`${where}.ts is not an RFC 3339 time`);
    out.push(record(s, timeMs, e.line, undefined));
    if (i % RECORDS_PER_PAUSE === RECORDS_PER_PAUSE - 1) yield;
  }
}
