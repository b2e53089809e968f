/**
 * How batches travel through JetStream: one message holds the lines of one origin (source, host,
 * input, labels, receive time) as they were received, and, when a line had them, each line's
 * level, own time and fields. The ingest node packs them (`packer.ts`); the storage worker and
 * the cluster tail unpack a message back into one {@linkcode Batch}.
 *
 * A message's payload is the lines' bytes, followed, when any line has a time or fields, by one
 * JSON object `{"t":[...],"f":[...]}` whose offset the `Lb-Data` header gives. Headers:
 *
 * | header | value |
 * | --- | --- |
 * | `Lb-Origin` | JSON `[source, host, input, labels?]` |
 * | `Lb-Received` | receive time, ms since the epoch |
 * | `Lb-Lines` | lines in the message |
 * | `Lb-Node` | the publishing node's id (the cluster tail skips its own node's lines) |
 * | `Lb-Levels` | one digit per line (`record.ts`'s level codes), when any line has a level |
 * | `Lb-Data` | the byte length of the lines, when extras follow them |
 *
 * One subject of the stream holds no lines: `<subject>.probe`, where an ingest node that cannot
 * publish stores an empty message to learn whether JetStream stores again ({@linkcode
 * probeSubject}); storage workers read only the partitions' subjects and the cluster tail skips it.
 *
 * @module
 */

import { headers as newHeaders, type MsgHdrs } from "@nats-io/transport-node";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Fields } from "../pipeline/record.ts";

/** The subject of the empty messages that prove JetStream stores again (no partition's). */
export function probeSubject(subject: string): string {
  return `${subject}.probe`;
}

/** Header names. */
export const H_ORIGIN = "Lb-Origin";
export const H_RECEIVED = "Lb-Received";
export const H_LINES = "Lb-Lines";
export const H_NODE = "Lb-Node";
export const H_LEVELS = "Lb-Levels";
export const H_DATA = "Lb-Data";

/** What a message carries, ready to publish. */
export interface PackedMessage {
  /** The payload: lines, then extras when any. */
  readonly payload: Uint8Array;
  /** The headers. */
  readonly headers: MsgHdrs;
  /** Lines in it. */
  readonly lines: number;
}

/** Per-line extras of lines being packed. */
export interface LineExtras {
  levels?: number[];
  times?: (number | null)[];
  fields?: (Readonly<Fields> | null)[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Metas already encoded: one JSON per distinct origin object, as metas are shared. */
const originCache = new WeakMap<BatchMeta, string>();

/** The `Lb-Origin` value of `meta`. */
export function originOf(meta: BatchMeta): string {
  let text = originCache.get(meta);
  if (text === undefined) {
    const value: unknown[] = [meta.source, meta.host, meta.input];
    if (meta.labels !== undefined && Object.keys(meta.labels).length > 0) value.push(meta.labels);
    text = JSON.stringify(value);
    originCache.set(meta, text);
  }
  return text;
}

/**
 * Builds a message from `data` (whole lines), its origin and extras.
 *
 * @param node the publishing node's id.
 */
export function packMessage(
  data: Uint8Array,
  lines: number,
  meta: BatchMeta,
  receivedAt: number,
  node: string,
  extras: LineExtras,
): PackedMessage {
  const h = newHeaders();
  h.set(H_ORIGIN, originOf(meta));
  h.set(H_RECEIVED, String(receivedAt));
  h.set(H_LINES, String(lines));
  h.set(H_NODE, node);
  if (extras.levels !== undefined) h.set(H_LEVELS, extras.levels.join(""));
  if (extras.times === undefined && extras.fields === undefined) {
    return { payload: data, headers: h, lines };
  }
  const tail = encoder.encode(JSON.stringify({ t: extras.times, f: extras.fields }));
  const payload = new Uint8Array(data.length + tail.length);
  payload.set(data);
  payload.set(tail, data.length);
  h.set(H_DATA, String(data.length));
  return { payload, headers: h, lines };
}

/** A message that cannot be read as a batch. */
export class MessageError extends Error {
  override name = "MessageError";
}

/** Origins already decoded, by their header text: batches of one origin share one meta. */
const metaCache = new Map<string, BatchMeta>();
const META_CACHE_SIZE = 4096;

/**
 * The batch a message holds. `data` is the message's own bytes (not copied).
 *
 * @throws {MessageError} when the headers are missing or malformed.
 */
export function unpackMessage(payload: Uint8Array, headers: MsgHdrs | undefined): Batch {
  if (headers === undefined) throw new MessageError("message has no logboom headers");
  const origin = headers.get(H_ORIGIN);
  const lines = Number(headers.get(H_LINES));
  const receivedAt = Number(headers.get(H_RECEIVED));
  if (origin === "" || !Number.isSafeInteger(lines) || lines < 1 || !Number.isFinite(receivedAt)) {
    throw new MessageError("message lacks Lb-Origin, Lb-Lines or Lb-Received");
  }
  const meta = metaOf(origin);
  const dataHeader = headers.get(H_DATA);
  const dataLength = dataHeader === "" ? payload.length : Number(dataHeader);
  if (!Number.isSafeInteger(dataLength) || dataLength < 0 || dataLength > payload.length) {
    throw new MessageError("message has a bad Lb-Data header");
  }
  const data = payload.subarray(0, dataLength);
  if (data.length === 0 || data[data.length - 1] !== 10) {
    throw new MessageError("message lines do not end with a newline");
  }
  const batch: {
    data: Uint8Array;
    lines: number;
    meta: BatchMeta;
    receivedAt: number;
    levels?: Uint8Array;
    times?: Float64Array;
    fields?: (Readonly<Fields> | undefined)[];
  } = { data, lines, meta, receivedAt };
  const levels = headers.get(H_LEVELS);
  if (levels !== "") {
    if (levels.length !== lines) throw new MessageError("Lb-Levels does not have one per line");
    const codes = new Uint8Array(lines);
    for (let i = 0; i < lines; i++) codes[i] = levels.charCodeAt(i) - 48;
    batch.levels = codes;
  }
  if (dataLength < payload.length) {
    let extras: { t?: (number | null)[]; f?: (Fields | null)[] };
    try {
      extras = JSON.parse(decoder.decode(payload.subarray(dataLength)));
    } catch (err) {
      throw new MessageError(`message extras are not JSON: ${(err as Error).message}`);
    }
    if (Array.isArray(extras.t) && extras.t.length === lines) {
      batch.times = Float64Array.from(extras.t, (t) => typeof t === "number" ? t : NaN);
    }
    if (Array.isArray(extras.f) && extras.f.length === lines) {
      batch.fields = extras.f.map((f) => f ?? undefined);
    }
  }
  return batch;
}

function metaOf(origin: string): BatchMeta {
  const known = metaCache.get(origin);
  if (known !== undefined) return known;
  let value: unknown;
  try {
    value = JSON.parse(origin);
  } catch {
    throw new MessageError("Lb-Origin is not JSON");
  }
  if (
    !Array.isArray(value) || typeof value[0] !== "string" || typeof value[1] !== "string" ||
    typeof value[2] !== "string"
  ) {
    throw new MessageError("Lb-Origin is not [source, host, input]");
  }
  const labels = value[3];
  const meta: BatchMeta = {
    source: value[0],
    host: value[1],
    input: value[2],
    ...(typeof labels === "object" && labels !== null
      ? { labels: Object.freeze({ ...labels as Record<string, string> }) }
      : {}),
  };
  if (metaCache.size >= META_CACHE_SIZE) metaCache.delete(metaCache.keys().next().value!);
  metaCache.set(origin, meta);
  return meta;
}
