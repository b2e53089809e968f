/**
 * Splits a protobuf request into smaller requests of the same type, so that a large OTLP export or
 * Loki push is decoded a piece at a time, with turns for other requests between pieces: decoding
 * runs about 1.3 ms per 1,000 OTLP records, so a collector's 8,192 records, or the 100,000 a
 * request may hold, would otherwise hold the event loop for 10 to 130 ms in one go.
 *
 * A repeated message field concatenated is the same message (protobuf merges repeated fields), so
 * `ExportLogsServiceRequest { resource_logs[] { resource, scope_logs[] { scope, log_records[] } } }`
 * splits along the path `[1, 2, 2]` into requests that each carry their records' resource and
 * scope, and a Loki `PushRequest { streams[] { labels, entries[] } }` along `[1, 2]`. Decoding the
 * pieces one after another gives the records decoding the whole gives, in the same order.
 *
 * The split itself works a step at a time: each message along the path is walked twice (its other
 * fields first, which its pieces all carry, then its entries), and the pieces are made one after
 * another as they are taken, so that no step walks more than a few thousand fields or copies more
 * than a piece. Walking the fields of a 16 MiB export in one go held the event loop for 20-40 ms
 * (2026-11-30). Fields are read as the decoders' `ProtoReader` reads them, so the split accepts
 * exactly the structure the decoders accept along the path, and refuses the rest with a
 * `ProtobufError`.
 *
 * @module
 */

import { I64, LEN, ProtobufError, VARINT } from "../protocols/protobuf.ts";
import type { Turns } from "./json_record.ts";

/** Default bytes of a piece: pieces end before they grow past this (a leaf is never split). */
export const PIECE_BYTES = 1024 * 1024;
/** Fields walked between two chances to pause. */
const FIELDS_PER_PAUSE = 4096;

/** A piece of a request, and how many leaf messages (records, entries) it holds. */
interface Fragment {
  parts: Uint8Array[];
  size: number;
  count: number;
}

/** Yielded between pieces of work: a chance to pause. */
const PAUSE = null;

/**
 * `message` split along `path` into requests of at most `max` leaves and about `maxBytes` bytes
 * each (at least one leaf a piece; a leaf is never split), in one go. Returns `[message]` when
 * one piece would hold it all.
 *
 * @throws {ProtobufError} when the messages along the path are not well-formed.
 *
 * @example
 * ```ts
 * for (const piece of splitRepeated(body, [1, 2, 2], 1024)) records.push(...decode(piece));
 * ```
 */
export function splitRepeated(
  message: Uint8Array,
  path: readonly number[],
  max: number,
  maxBytes: number = PIECE_BYTES,
): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (const piece of piecesOf(message, path, max, maxBytes)) {
    if (piece !== PAUSE) pieces.push(piece);
  }
  return pieces;
}

/**
 * The pieces of {@linkcode splitRepeated}, made one at a time as they are taken, pausing between
 * steps of the work whenever `turns.due()`.
 *
 * @throws {ProtobufError} when the messages along the path are not well-formed; pieces taken
 * before are well-formed.
 */
export async function* splitRepeatedSliced(
  message: Uint8Array,
  path: readonly number[],
  max: number,
  turns: Turns,
  maxBytes: number = PIECE_BYTES,
): AsyncGenerator<Uint8Array> {
  for (const piece of piecesOf(message, path, max, maxBytes)) {
    if (piece !== PAUSE) yield piece;
    else if (turns.due()) await turns.pause();
  }
}

/**
 * Fragments joined into pieces of at most `max` leaves (a fragment without leaves counts as one)
 * and about `maxBytes`; the message itself when it is one piece.
 */
function* piecesOf(
  message: Uint8Array,
  path: readonly number[],
  max: number,
  maxBytes: number,
): Generator<Uint8Array | typeof PAUSE> {
  let parts: Uint8Array[] = [];
  let size = 0;
  let weight = 0;
  let pieces = 0;
  const finish = () => {
    const piece = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      piece.set(part, at);
      at += part.length;
    }
    parts = [];
    size = 0;
    weight = 0;
    pieces++;
    return piece;
  };
  for (const fragment of fragmentsOf(message, path, max, maxBytes)) {
    if (fragment === PAUSE) {
      yield PAUSE;
      continue;
    }
    const w = Math.max(1, fragment.count);
    if (weight > 0 && (weight + w > max || size + fragment.size > maxBytes)) {
      yield finish();
      yield PAUSE;
    }
    for (const part of fragment.parts) parts.push(part);
    size += fragment.size;
    weight += w;
  }
  if (pieces === 0) yield message;
  else if (weight > 0) yield finish();
}

/**
 * The fragments of `message`, each a message of the same type: its fields other than `path[0]`
 * (the context) with some of its `path[0]` entries, themselves split along the rest of the path.
 */
function* fragmentsOf(
  message: Uint8Array,
  path: readonly number[],
  max: number,
  maxBytes: number,
): Generator<Fragment | typeof PAUSE> {
  const entryTag = path[0] << 3 | LEN;
  // First walk: the context, which every fragment carries.
  const context: Uint8Array[] = [];
  let contextSize = 0;
  let walked = 0;
  let entries = 0;
  for (let pos = 0; pos < message.length;) {
    const end = fieldEnd(message, pos);
    if (field.tag === entryTag) entries++;
    else {
      context.push(message.subarray(pos, end));
      contextSize += end - pos;
    }
    pos = end;
    if (++walked % FIELDS_PER_PAUSE === 0) yield PAUSE;
  }
  const withContext = (parts: Uint8Array[], size: number, count: number): Fragment => ({
    parts: context.length === 0 ? parts : [...context, ...parts],
    size: contextSize + size,
    count,
  });
  if (entries === 0) {
    yield withContext([], 0, 0);
    return;
  }
  // Second walk: the entries, in runs of consecutive bytes.
  const leaf = path.length === 1;
  let parts: Uint8Array[] = [];
  let size = 0;
  let count = 0;
  let runStart = -1;
  let runEnd = -1;
  const closeRun = () => {
    if (runStart < 0) return;
    parts.push(message.subarray(runStart, runEnd));
    size += runEnd - runStart;
    runStart = -1;
  };
  walked = 0;
  for (let start = 0; start < message.length;) {
    const end = fieldEnd(message, start);
    const value = field.value;
    if (field.tag === entryTag && leaf) {
      if (
        count > 0 && (count >= max || size + (runStart < 0 ? 0 : runEnd - runStart) +
                (end - start) > maxBytes)
      ) {
        closeRun();
        yield withContext(parts, size, count);
        parts = [];
        size = 0;
        count = 0;
      }
      // Entries follow one another in the bytes (encoders write a repeated field together): one
      // view for the run, not one per entry.
      if (runStart >= 0 && runEnd === start) runEnd = end;
      else {
        closeRun();
        runStart = start;
        runEnd = end;
      }
      count++;
    } else if (field.tag === entryTag) {
      const inner = message.subarray(value, end);
      for (const fragment of fragmentsOf(inner, path.slice(1), max, maxBytes)) {
        if (fragment === PAUSE) {
          yield PAUSE;
          continue;
        }
        const head = lengthHead(path[0], fragment.size);
        yield withContext(
          [head, ...fragment.parts],
          head.length + fragment.size,
          fragment.count,
        );
      }
    }
    // Other fields are the context, in every fragment already.
    start = end;
    if (++walked % FIELDS_PER_PAUSE === 0) yield PAUSE;
  }
  if (leaf && count > 0) {
    closeRun();
    yield withContext(parts, size, count);
  }
}

/** The field {@linkcode fieldEnd} read last: its tag, and where a length-delimited value starts. */
const field = { tag: 0, value: -1 };
const TWO_32 = 4294967296;
/** What the bytes of a varint weigh, up to the 5th (bits past the 32nd are dropped). */
const SCALE = [1, 2 ** 7, 2 ** 14, 2 ** 21, 2 ** 28];

/**
 * Reads the field at `pos` of `message` into {@linkcode field} and returns where it ends, accepting
 * what `ProtoReader`'s `tag()`, `length()` and `skip()` accept (and throwing the same
 * `ProtobufError`s): the decoders' reader, without its calls, walks twice as slowly.
 */
function fieldEnd(message: Uint8Array, pos: number): number {
  const start = pos;
  const end = message.length;
  let tag = message[pos];
  if (tag < 0x80) pos++;
  else {
    tag = varint32(message, pos);
    pos = varintEnd;
  }
  const wire = tag & 7;
  if (tag < 8 || wire === 3 || wire === 4 || wire > 5) {
    throw new ProtobufError(
      `Invalid field tag ${tag} (field ${tag >>> 3}, wire type ${wire})`,
      start,
    );
  }
  field.tag = tag;
  field.value = -1;
  if (wire === LEN) {
    const at = pos;
    // Most lengths take one or two bytes.
    let length = message[pos];
    if (length < 0x80) pos++;
    else if (message[pos + 1] < 0x80) {
      length = (length & 0x7f) | (message[pos + 1] << 7);
      pos += 2;
    } else {
      length = varint32(message, pos);
      pos = varintEnd;
    }
    if (length > end - pos) {
      throw new ProtobufError(
        `Length ${length} runs past the end of its message (${end - pos} bytes left)`,
        at,
      );
    }
    field.value = pos;
    return pos + length;
  }
  if (wire === VARINT) {
    for (let i = 0;; i++) {
      if (i === 10) throw new ProtobufError("Varint longer than 10 bytes", pos - i);
      if (pos >= end) throw new ProtobufError("Truncated varint", pos);
      if (message[pos++] < 0x80) return pos;
    }
  }
  const n = wire === I64 ? 8 : 4;
  if (n > end - pos) {
    throw new ProtobufError(`Truncated ${n}-byte value (${end - pos} bytes left)`, pos);
  }
  return pos + n;
}

/** Where the varint {@linkcode varint32} read last ends. */
let varintEnd = 0;

/** A varint as `ProtoReader.uint32` reads it: at most 10 bytes, bits past the 32nd dropped. */
function varint32(bytes: Uint8Array, pos: number): number {
  const start = pos;
  const end = bytes.length;
  let value = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new ProtobufError("Truncated varint", pos);
    const b = bytes[pos++];
    if (i < 5) value += (b & 0x7f) * SCALE[i];
    if (b < 0x80) {
      varintEnd = pos;
      return value % TWO_32;
    }
  }
  throw new ProtobufError("Varint longer than 10 bytes", start);
}

/** The tag and length of a length-delimited field `field` of `size` bytes. */
function lengthHead(field: number, size: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = field * 8 + 2;; v = Math.floor(v / 128)) {
    if (v < 128) {
      bytes.push(v);
      break;
    }
    bytes.push((v % 128) | 0x80);
  }
  for (let v = size;; v = Math.floor(v / 128)) {
    if (v < 128) {
      bytes.push(v);
      break;
    }
    bytes.push((v % 128) | 0x80);
  }
  return Uint8Array.from(bytes);
}
