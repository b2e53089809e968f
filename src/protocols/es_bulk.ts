/**
 * Elasticsearch `_bulk` (`POST /_bulk`, `/<index>/_bulk`): decodes the NDJSON of action and
 * document lines into neutral records, and builds the answers Elasticsearch clients accept: the
 * bulk answer with one item per action, and the probes clients make before they send (`GET /`,
 * `/_license`, index templates, ILM policies, `_refresh`).
 *
 * - Actions: `index` and `create` (with `_index`, an optional `_id`, and the `_type` that rsyslog's
 *   omelasticsearch and Fluent Bit still send, ignored) each take the next line as their document.
 *   `update` (its document line is consumed) and `delete` are refused per item with status 400,
 *   as is a document that is not a JSON object, an action without an index, or an index name
 *   Elasticsearch would refuse; the other items go on. A malformed action line refuses the whole
 *   request (400), as Elasticsearch does.
 * - Each document becomes a record: `index` (the action's `_index`, else the URL's), a time from
 *   `@timestamp`, `timestamp` or `time` (ISO text or epoch numbers), a level from `level`,
 *   `log.level`, `severity`, `lvl`, `loglevel` and their capitalized forms (names or pino's
 *   numbers), the message from `message`, `msg` or `log` (the first that is a string; that key is
 *   then left out of the fields), else the document line as it came; fields are the document
 *   flattened to dotted keys (`flattenJson`).
 * - Every answer carries `x-elastic-product: Elasticsearch`: the official clients (used by
 *   pino-elasticsearch) refuse any 2xx response without it.
 *
 * @module
 */

import { isUtf8 } from "node:buffer";
import type { Turns } from "../ingest/json_record.ts";
import { HttpError } from "../net/http_error.ts";
import {
  DEFAULT_MAX_RECORDS,
  DepthError,
  type Fields,
  flattenJson,
  type Level,
  normalizeLevel,
  timeMsOf,
  tooManyRecords,
} from "./fields.ts";
import { JsonSliceError, parseJsonSliced, parseJsonWhole } from "./json_slices.ts";

/** One document, decoded. */
export interface EsRecord {
  /** The index it was sent to: logboom's source for it. */
  index: string;
  /** Milliseconds since the epoch, from `@timestamp`, `timestamp` or `time`. */
  timeMs: number | undefined;
  /** The normalized level, when a level field says one. */
  level: Level | undefined;
  /** `message`, `msg` or `log`, else the document's JSON line. */
  message: string;
  /** The document flattened, less the key the message came from. */
  fields: Fields;
}

/** The bulk actions. */
export type BulkAction = "index" | "create" | "update" | "delete";

/** The outcome of one action, for the bulk answer. */
export interface BulkItem {
  action: BulkAction;
  index: string;
  id: string;
  /** 201 when accepted, 400 when refused. */
  status: number;
  /** Why it was refused. */
  error?: { type: string; reason: string };
  /** Position of its record in `records`, when accepted. */
  record?: number;
}

/** What a bulk request held. */
export interface BulkDecoded {
  records: EsRecord[];
  /** One per action, in order. */
  items: BulkItem[];
}

/** Options of {@linkcode decodeBulk}. */
export interface BulkOptions {
  /** The index of the URL (`/<index>/_bulk`), for actions without `_index`. */
  defaultIndex?: string;
  /** Makes the `_id` of a document sent without one. Default: 20 characters, unique. */
  newId?: () => string;
  /** Most actions one request may hold; more is a 413. Default 100,000. */
  maxRecords?: number;
}

const MESSAGE_KEYS = ["message", "msg", "log"];
const TIME_KEYS = ["@timestamp", "timestamp", "time"];
const LEVEL_KEYS = [
  "level",
  "log.level",
  "severity",
  "lvl",
  "loglevel",
  "Level",
  "LEVEL",
  "Severity",
  "SEVERITY",
];

let idCounter = 0;
const ID_PREFIX = crypto.randomUUID().replaceAll("-", "").slice(0, 8);

/** A new document id: a per-process random prefix and a counter, 20 characters. */
function defaultId(): string {
  return ID_PREFIX + (idCounter++).toString(36).padStart(12, "0");
}

/**
 * The index a bulk URL names: `{ index: undefined }` for `/_bulk`, `{ index }` for `/<index>/_bulk`
 * and `/<index>/<type>/_bulk` (the type ignored), `undefined` when the path is not a bulk path.
 */
export function bulkPath(pathname: string): { index: string | undefined } | undefined {
  const parts = pathname.split("/").filter((p) => p !== "");
  if (parts.length === 0 || parts.length > 3 || parts[parts.length - 1] !== "_bulk") {
    return undefined;
  }
  if (parts.length === 1) return { index: undefined };
  let index: string;
  try {
    index = decodeURIComponent(parts[0]);
  } catch {
    return undefined;
  }
  return { index };
}

/**
 * Why Elasticsearch would refuse an index name, or `undefined` when it is valid: lowercase, not
 * `.` or `..`, not starting with `-`, `_` or `+`, none of `\ / * ? " < > | , # :` or spaces, at most
 * 255 bytes.
 */
export function esIndexNameError(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (name === "." || name === "..") return "must not be '.' or '..'";
  const first = name[0];
  if (first === "-" || first === "_" || first === "+") return "must not start with '_', '-' or '+'";
  if (name.length > 255 || (name.length > 85 && new TextEncoder().encode(name).length > 255)) {
    return "must be at most 255 bytes";
  }
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if ('\\/*?"<>|,#: '.includes(c) || c.charCodeAt(0) < 0x20) {
      return `must not contain ${JSON.stringify(c)}`;
    }
  }
  if (name !== name.toLowerCase()) return "must be lowercase";
  return undefined;
}

/**
 * Decodes a bulk body (already gunzipped), in one go.
 *
 * @throws {HttpError} 400 for a body that is not UTF-8 text or an action line that is not an
 * object with one known action; refused documents are items with status 400, not errors.
 */
export function decodeBulk(body: Uint8Array | string, options: BulkOptions = {}): BulkDecoded {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const out: BulkDecoded = { records: [], items: [] };
  const work = decodeLines(bytes, options, out);
  for (let step = work.next(); !step.done;) {
    const ask = step.value;
    step = ask === null ? work.next() : work.next(
      ask.kind === "parse"
        ? parseLong(() => parseJsonWhole(ask.bytes))
        : new TextDecoder("utf-8", { ignoreBOM: true }).decode(ask.bytes),
    );
  }
  return out;
}

/**
 * {@linkcode decodeBulk} a step at a time, pausing whenever `turns.due()`: the body is decoded as
 * text {@linkcode CHUNK_BYTES} at a time, {@linkcode LINES_PER_PAUSE} lines between chances to
 * pause, and a line longer than {@linkcode CHUNK_BYTES} is checked, parsed (`parseJsonSliced`) and
 * read as text a slice at a time. Gives what {@linkcode decodeBulk} gives.
 */
export async function decodeBulkSliced(
  body: Uint8Array,
  options: BulkOptions,
  turns: Turns,
): Promise<BulkDecoded> {
  const out: BulkDecoded = { records: [], items: [] };
  const work = decodeLines(body, options, out);
  for (let step = work.next(); !step.done;) {
    const ask = step.value;
    if (ask === null) {
      if (turns.due()) await turns.pause();
      step = work.next();
    } else if (ask.kind === "parse") {
      const parsed = await parseLongSliced(ask.bytes, turns);
      step = work.next(parsed);
    } else {
      step = work.next(await utf8Sliced(ask.bytes, turns));
    }
  }
  return out;
}

/**
 * Lines longer than this are not decoded with the text around them: they are checked and parsed
 * a slice at a time. The text of shorter lines is decoded this many bytes at a time.
 */
export const CHUNK_BYTES = 64 * 1024;
/** Lines read between two chances to pause. */
export const LINES_PER_PAUSE = 256;

/**
 * What the line loop asks of its driver for a long line, or `null` for a chance to pause: `parse`
 * is answered with the line's JSON value (or why it is not JSON), `text` with its text.
 */
type LongLineAsk = { kind: "parse"; bytes: Uint8Array } | { kind: "text"; bytes: Uint8Array };
/** A long line's JSON value, or why it is not JSON. */
type Parsed = { value: unknown } | { error: string };

function parseLong(parse: () => unknown): Parsed {
  try {
    return { value: parse() };
  } catch (err) {
    if (err instanceof JsonSliceError) return { error: err.message };
    throw err;
  }
}

async function parseLongSliced(bytes: Uint8Array, turns: Turns): Promise<Parsed> {
  try {
    return { value: await parseJsonSliced(bytes, turns) };
  } catch (err) {
    if (err instanceof JsonSliceError) return { error: err.message };
    throw err;
  }
}

/** Text of valid UTF-8, decoded a slice at a time. */
async function utf8Sliced(bytes: Uint8Array, turns: Turns): Promise<string> {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let text = "";
  for (let at = 0; at < bytes.length; at += TEXT_SLICE_BYTES) {
    text += decoder.decode(bytes.subarray(at, at + TEXT_SLICE_BYTES), { stream: true });
    if (turns.due()) await turns.pause();
  }
  return text + decoder.decode();
}

/** Bytes of a long line checked or decoded as text in one step. */
const TEXT_SLICE_BYTES = 1024 * 1024;

/**
 * The action and document lines of a bulk body into `out`, asking its driver to parse or decode
 * the long ones; yields `null` every {@linkcode LINES_PER_PAUSE} lines.
 */
function* decodeLines(
  body: Uint8Array,
  options: BulkOptions,
  out: BulkDecoded,
): Generator<LongLineAsk | null, void, Parsed | string | undefined> {
  // The whole body is checked first, as decoding it whole did: no line is read from a body that
  // is not text.
  yield* checkUtf8(body);
  const lines = new Lines(body);
  const newId = options.newId ?? defaultId;
  const max = options.maxRecords ?? DEFAULT_MAX_RECORDS;
  // Senders repeat the same action line and index: each is read once per request.
  const seen: Seen = { actionLine: "", action: undefined, validIndex: "" };
  let read = 0;
  for (let line = lines.next(); line !== undefined; line = lines.next()) {
    if (++read % LINES_PER_PAUSE === 0) yield null;
    if (typeof line === "string" ? line.trim() === "" : yield* isBlankLong(line)) continue;
    if (out.items.length >= max) throw tooManyRecords(max);
    const at = lines.lineNo;
    if (typeof line !== "string") {
      seen.action = actionOf(yield { kind: "parse", bytes: line }, at);
      seen.actionLine = "";
    } else if (seen.action === undefined || line !== seen.actionLine) {
      seen.action = actionOf(parseShort(line), at);
      seen.actionLine = line;
    }
    const [action, meta] = seen.action;
    const item: BulkItem = {
      action: action === "index" && meta.op_type === "create" ? "create" : action,
      index: typeof meta._index === "string" ? meta._index : options.defaultIndex ?? "",
      id: typeof meta._id === "string" || typeof meta._id === "number" ? String(meta._id) : "",
      status: 201,
    };
    const doc = action === "delete" ? "" : lines.next();
    if (doc === undefined) {
      throw new HttpError(400, `The ${action} action on line ${at} has no document line after it`);
    }
    const refusal = action === "update" || action === "delete"
      ? ["illegal_argument_exception", NOT_STORED]
      : indexRefusal(seen, item.index);
    let record: EsRecord | string | undefined;
    if (refusal === undefined) {
      const parsed = typeof doc === "string"
        ? parseShort(doc)
        : yield { kind: "parse", bytes: doc };
      const made = documentOf(parsed as Parsed, item.index, lines.lineNo);
      // A document without a message key has the line as it came as its message.
      if (typeof made !== "string" && made.message === undefined) {
        made.message = typeof doc === "string"
          ? doc.trim()
          : (yield { kind: "text", bytes: trimmed(doc) }) as string;
      }
      record = made as EsRecord | string;
    }
    if (refusal !== undefined || typeof record === "string") {
      const [type, reason] = refusal ?? ["document_parsing_exception", record as string];
      item.status = 400;
      item.error = { type, reason };
    } else {
      if (item.id === "") item.id = newId();
      item.record = out.records.push(record!) - 1;
    }
    out.items.push(item);
  }
}

/** Throws a 400 when `bytes` are not UTF-8; a chance to pause after every megabyte checked. */
function* checkUtf8(bytes: Uint8Array): Generator<null> {
  for (let at = 0; at < bytes.length;) {
    // Cut before a lead byte, so that every character lies whole in one slice.
    let to = Math.min(at + TEXT_SLICE_BYTES, bytes.length);
    for (let back = 0; back < 3 && to < bytes.length && (bytes[to] & 0xc0) === 0x80; back++) to--;
    if (!isUtf8(bytes.subarray(at, to))) throw notUtf8();
    at = to;
    yield null;
  }
}

/** A short line's JSON value, or why it is not JSON. */
function parseShort(line: string): Parsed {
  try {
    return { value: JSON.parse(line) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/**
 * Whether a long line is blank as `String.prototype.trim` sees it: all ASCII white space, or,
 * when the first other byte is not ASCII, text that trims to nothing.
 */
function* isBlankLong(
  line: Uint8Array,
): Generator<LongLineAsk | null, boolean, Parsed | string | undefined> {
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) continue;
    if (b < 0x80) return false;
    return ((yield { kind: "text", bytes: line }) as string).trim() === "";
  }
  return true;
}

/** A JSON line without the JSON white space around it (all `trim()` removes from a JSON value). */
function trimmed(line: Uint8Array): Uint8Array {
  let start = 0;
  let end = line.length;
  while (start < end && JSON_SPACE.has(line[start])) start++;
  while (end > start && JSON_SPACE.has(line[end - 1])) end--;
  return line.subarray(start, end);
}

const JSON_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** What one request has already read. */
interface Seen {
  actionLine: string;
  action: [BulkAction, Record<string, unknown>] | undefined;
  validIndex: string;
}

/**
 * The lines of a body (checked to be UTF-8), without their `\r\n` or `\n`: as text, decoded
 * {@linkcode CHUNK_BYTES} at a time, or, when longer than that, as bytes.
 */
class Lines {
  readonly #bytes: Uint8Array;
  readonly #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  /** The next byte not decoded yet. */
  #at = 0;
  #text = "";
  #pos = 0;
  /** The number of the line `next()` returned last, from 1. */
  lineNo = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    // TextDecoder drops a leading byte order mark: so does the reader.
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) this.#at = 3;
  }

  /** The next line; `undefined` at the end. */
  next(): string | Uint8Array | undefined {
    if (this.#pos >= this.#text.length && !this.#decodeMore()) {
      return this.#at < this.#bytes.length ? this.#long() : undefined;
    }
    const text = this.#text;
    const pos = this.#pos;
    let end = text.indexOf("\n", pos);
    if (end < 0) end = text.length;
    const stop = end > pos && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end;
    this.#pos = end + 1;
    this.lineNo++;
    return text.slice(pos, stop);
  }

  /**
   * Decodes the next run of whole lines of at most CHUNK_BYTES; false when the next line is longer
   * (or the body ended).
   */
  #decodeMore(): boolean {
    const bytes = this.#bytes;
    const at = this.#at;
    if (at >= bytes.length) return false;
    let end: number;
    if (bytes.length - at <= CHUNK_BYTES) end = bytes.length;
    else {
      const last = bytes.lastIndexOf(0x0a, at + CHUNK_BYTES - 1);
      if (last < at) return false;
      end = last + 1;
    }
    this.#text = this.#decoder.decode(bytes.subarray(at, end));
    this.#pos = 0;
    this.#at = end;
    return true;
  }

  /** A line longer than CHUNK_BYTES, as bytes. */
  #long(): Uint8Array {
    const bytes = this.#bytes;
    const at = this.#at;
    let end = bytes.indexOf(0x0a, at);
    if (end < 0) end = bytes.length;
    const stop = end > at && bytes[end - 1] === 0x0d ? end - 1 : end;
    this.#at = end + 1;
    this.lineNo++;
    return bytes.subarray(at, stop);
  }
}

function notUtf8(): HttpError {
  return new HttpError(400, "The bulk body is not UTF-8 text");
}

/** Why an item's index is refused, as Elasticsearch's error type and reason. */
function indexRefusal(seen: Seen, index: string): [string, string] | undefined {
  if (index === "") {
    return ["action_request_validation_exception", "Validation Failed: 1: index is missing;"];
  }
  if (index === seen.validIndex) return undefined;
  const invalid = esIndexNameError(index);
  if (invalid === undefined) {
    seen.validIndex = index;
    return undefined;
  }
  return ["invalid_index_name_exception", `Invalid index name [${index}], ${invalid}`];
}

const NOT_STORED = "logboom stores log documents: only the index and create actions are accepted";

function actionOf(
  line: Parsed | string | undefined,
  at: number,
): [BulkAction, Record<string, unknown>] {
  const result = line as Parsed;
  if ("error" in result) {
    throw new HttpError(400, `Malformed action/metadata line [${at}]: ${result.error}`);
  }
  const parsed = result.value;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, `Malformed action/metadata line [${at}], expected an object`);
  }
  const keys = Object.keys(parsed);
  const action = keys[0];
  if (
    keys.length !== 1 ||
    (action !== "index" && action !== "create" && action !== "update" && action !== "delete")
  ) {
    throw new HttpError(
      400,
      `Malformed action/metadata line [${at}], expected one of [create], [delete], [index] or ` +
        `[update] but found [${keys.join("], [")}]`,
    );
  }
  const meta = (parsed as Record<string, unknown>)[action];
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw new HttpError(
      400,
      `Malformed action/metadata line [${at}], [${action}] is not an object`,
    );
  }
  return [action, meta as Record<string, unknown>];
}

/**
 * The record of a parsed document line, or why it is refused; its message is `undefined` when the
 * document has no message key.
 */
function documentOf(
  parsed: Parsed,
  index: string,
  at: number,
): Omit<EsRecord, "message"> & { message: string | undefined } | string {
  if ("error" in parsed) return `failed to parse the document on line ${at}: ${parsed.error}`;
  const doc = parsed.value;
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return `failed to parse the document on line ${at}: it is not a JSON object`;
  }
  const object = doc as Record<string, unknown>;
  let message: string | undefined;
  let messageKey = "";
  for (const key of MESSAGE_KEYS) {
    const v = Object.hasOwn(object, key) ? object[key] : undefined;
    if (typeof v === "string") {
      message = v;
      messageKey = key;
      break;
    }
  }
  const fields: Fields = {};
  try {
    for (const key in object) {
      if (key !== messageKey) flattenJson(fields, key, object[key], 1);
    }
  } catch (err) {
    if (err instanceof DepthError) {
      return `failed to parse the document on line ${at}: ${err.message}`;
    }
    throw err;
  }
  let timeMs: number | undefined;
  for (const key of TIME_KEYS) {
    if (Object.hasOwn(fields, key)) {
      timeMs = timeMsOf(fields[key]);
      if (timeMs !== undefined) break;
    }
  }
  let level: Level | undefined;
  for (const key of LEVEL_KEYS) {
    if (Object.hasOwn(fields, key)) {
      level = normalizeLevel(fields[key]);
      if (level !== undefined) break;
    }
  }
  return { index, timeMs, level, message, fields };
}

// ---------------------------------------------------------------------------------------------
// Answers

/** Headers of every Elasticsearch answer. */
export const ES_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json; charset=UTF-8",
  "x-elastic-product": "Elasticsearch",
};

/**
 * The version logboom answers `GET /` with. Filebeat refuses an Elasticsearch older than itself
 * unless `allow_older_versions` is set, so it is the last 8.x minor; Elasticsearch's own clients
 * and Vector read the major (8: no `_type`).
 */
export const ES_VERSION = "8.19.0";

/** What `GET /` tells about the "cluster". */
export interface EsInfo {
  /** Default {@linkcode ES_VERSION}. */
  version?: string;
  /** Node and cluster name, default `logboom`. */
  name?: string;
}

function json(status: number, body: unknown, head = false): Response {
  return new Response(head ? null : JSON.stringify(body), { status, headers: ES_HEADERS });
}

/**
 * The bulk answer: `{"took":N,"errors":bool,"items":[{"<action>":{...,"status":201}}]}`, status
 * 200 even when items were refused (as Elasticsearch answers).
 *
 * @param tookMs the time the request took, as Elasticsearch reports it.
 */
export function bulkResponse(items: readonly BulkItem[], tookMs: number): Response {
  const answer = bulkAnswer(items, tookMs);
  const parts: Uint8Array[] = [];
  for (let part = answer.next(); !part.done; part = answer.next()) parts.push(part.value);
  return json200(parts);
}

/**
 * {@linkcode bulkResponse}, whose body is made {@linkcode ITEMS_PER_PART} items at a time as it is
 * read: the answer to 100,000 items is about 20 MB of JSON, which made and copied whole held the
 * event loop for 25-45 ms. An answer of one part is made at once (and goes with its length); a
 * longer one streams (chunked in HTTP/1.1), pausing between parts whenever `turns.due()`.
 */
export function bulkResponseStream(
  items: readonly BulkItem[],
  tookMs: number,
  turns: Turns,
): Response {
  if (items.length <= ITEMS_PER_PART) return bulkResponse(items, tookMs);
  const parts = bulkAnswer(items, tookMs);
  const body = new ReadableStream<Uint8Array>({
    // A reader that takes parts as fast as they come (no write between) still lets others run.
    async pull(controller) {
      if (turns.due()) await turns.pause();
      const part = parts.next();
      if (part.done) controller.close();
      else controller.enqueue(part.value);
    },
  });
  return new Response(body, { status: 200, headers: ES_HEADERS });
}

/** Items of the bulk answer encoded together. */
export const ITEMS_PER_PART = 1024;

/** The bulk answer's bytes, in parts of {@linkcode ITEMS_PER_PART} items (the last with its end). */
function* bulkAnswer(items: readonly BulkItem[], tookMs: number): Generator<Uint8Array> {
  const encoder = new TextEncoder();
  const errors = items.some((item) => item.status >= 300);
  const took = Math.max(0, Math.round(tookMs));
  let seq = 0;
  let text = `{"took":${took},"errors":${errors},"items":[`;
  for (let from = 0; from < items.length; from += ITEMS_PER_PART) {
    const to = Math.min(from + ITEMS_PER_PART, items.length);
    const out = new Array(to - from);
    for (let i = from; i < to; i++) {
      const item = items[i];
      out[i - from] = item.status >= 300
        ? {
          [item.action]: {
            _index: item.index,
            _id: item.id === "" ? null : item.id,
            status: item.status,
            error: item.error ?? { type: "exception", reason: "refused" },
          },
        }
        : {
          [item.action]: {
            _index: item.index,
            _id: item.id,
            _version: 1,
            result: "created",
            _shards: { total: 1, successful: 1, failed: 0 },
            _seq_no: seq++,
            _primary_term: 1,
            status: item.status,
          },
        };
    }
    const list = JSON.stringify(out);
    text += (from > 0 ? "," : "") + list.slice(1, -1);
    if (to === items.length) text += "]}";
    yield encoder.encode(text);
    text = "";
  }
  if (items.length === 0) yield encoder.encode(text + "]}");
}

/** A 200 answer whose JSON body is `parts` joined. */
function json200(parts: Uint8Array[]): Response {
  let size = 0;
  for (const part of parts) size += part.length;
  const body = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  return new Response(body, { status: 200, headers: ES_HEADERS });
}

/** An Elasticsearch-shaped error: `{"error":{"root_cause":[...],"type","reason"},"status"}`. */
export function esErrorResponse(
  status: number,
  reason: string,
  type = status === 404 ? "resource_not_found_exception" : "illegal_argument_exception",
): Response {
  const cause = { type, reason };
  return json(status, { error: { root_cause: [cause], ...cause }, status });
}

/** `GET /` (and `HEAD /`): the node's name, cluster and version. */
export function esRootResponse(method: string, info: EsInfo = {}): Response {
  const name = info.name ?? "logboom";
  return json(200, {
    name,
    cluster_name: name,
    cluster_uuid: "bG9nYm9vbS1sb2dib29t",
    version: {
      number: info.version ?? ES_VERSION,
      build_flavor: "default",
      build_type: "docker",
      build_hash: "logboom",
      build_date: "2026-01-01T00:00:00.000Z",
      build_snapshot: false,
      lucene_version: "9.12.0",
      minimum_wire_compatibility_version: "7.17.0",
      minimum_index_compatibility_version: "7.0.0",
    },
    tagline: "You Know, for Search",
  }, method === "HEAD");
}

/** `GET /_license`: an active basic license. */
export function esLicenseResponse(method = "GET"): Response {
  return json(200, {
    license: {
      status: "active",
      uid: "6c6f6762-6f6f-6d00-0000-000000000000",
      type: "basic",
      issue_date: "2026-01-01T00:00:00.000Z",
      issue_date_in_millis: 1767225600000,
      max_nodes: 1000,
      max_resource_units: null,
      issued_to: "logboom",
      issuer: "elasticsearch",
      start_date_in_millis: -1,
    },
  }, method === "HEAD");
}

/** `GET /_xpack`: the same license, in the older form Beats read. */
export function esXpackResponse(method = "GET"): Response {
  return json(200, {
    build: { hash: "logboom", date: "2026-01-01T00:00:00.000Z" },
    license: {
      uid: "6c6f6762-6f6f-6d00-0000-000000000000",
      type: "basic",
      mode: "basic",
      status: "active",
    },
    features: {},
  }, method === "HEAD");
}

/** The kinds of template-like resources clients install before sending. */
export type EsSetupKind = "index_template" | "template" | "component_template" | "ilm_policy";

/**
 * A template or ILM policy probe: `HEAD` and `GET` say it exists (so clients do not try to
 * install theirs), `PUT`/`POST` acknowledge it, `DELETE` too. Nothing is stored: logboom has no
 * mappings.
 */
export function esSetupResponse(method: string, kind: EsSetupKind, name: string): Response {
  if (method === "HEAD") return json(200, null, true);
  if (method === "PUT" || method === "POST" || method === "DELETE") {
    return json(200, { acknowledged: true });
  }
  switch (kind) {
    case "index_template":
      return json(200, {
        index_templates: [{
          name,
          index_template: { index_patterns: [`${name}*`], template: {}, composed_of: [] },
        }],
      });
    case "component_template":
      return json(200, { component_templates: [{ name, component_template: { template: {} } }] });
    case "template":
      return json(200, {
        [name]: { order: 0, index_patterns: [`${name}*`], settings: {}, mappings: {}, aliases: {} },
      });
    case "ilm_policy":
      return json(200, {
        [name]: {
          version: 1,
          modified_date: "2026-01-01T00:00:00.000Z",
          policy: { phases: { hot: { min_age: "0ms", actions: {} } } },
        },
      });
  }
}

/** `POST /<index>/_refresh` and `/_refresh`: every "shard" refreshed. */
export function esRefreshResponse(): Response {
  return json(200, { _shards: { total: 1, successful: 1, failed: 0 } });
}

/**
 * The answer to a probe an Elasticsearch client makes, or `undefined` when `pathname` is not one
 * (`_bulk` included: decode it with {@linkcode decodeBulk}). Handles `GET|HEAD /`, `/_license`,
 * `/_xpack`, `/_index_template/<name>`, `/_template/<name>`, `/_component_template/<name>`,
 * `/_ilm/policy/<name>`, `/_refresh` and `/<index>/_refresh`.
 */
export function esProbe(method: string, pathname: string, info: EsInfo = {}): Response | undefined {
  const parts = pathname.split("/").filter((p) => p !== "");
  const readOnly = method === "GET" || method === "HEAD";
  if (parts.length === 0) return readOnly ? esRootResponse(method, info) : undefined;
  const [first, second, third] = parts;
  if (parts.length === 1 && first === "_license" && readOnly) return esLicenseResponse(method);
  if (parts.length === 1 && first === "_xpack" && readOnly) return esXpackResponse(method);
  if (
    parts.length === 2 &&
    (first === "_index_template" || first === "_template" || first === "_component_template")
  ) {
    return esSetupResponse(method, first.slice(1) as EsSetupKind, safeDecode(second));
  }
  if (parts.length === 3 && first === "_ilm" && second === "policy") {
    return esSetupResponse(method, "ilm_policy", safeDecode(third));
  }
  if (
    parts[parts.length - 1] === "_refresh" && parts.length <= 2 &&
    (method === "POST" || method === "GET")
  ) {
    return esRefreshResponse();
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
