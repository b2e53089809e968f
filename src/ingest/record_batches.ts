/**
 * Decoded records (OTLP, Loki, Elasticsearch) into batches: grouped by (source, host), each
 * record one stored line, with the `times`, `levels` and `fields` columns the records have.
 *
 * - One record is one line. A message's trailing line breaks are dropped (its terminator, as
 *   framing drops a line's LF and CR); a line break inside it (`\n` or `\r\n`) is written as the
 *   two characters `\n`, so a stack trace stays one line in `raw` files and one object in `json`
 *   ones. Backslashes are not escaped: a message that already holds `\n` reads the same.
 * - A message that is empty or only whitespace is stored as `-` (syslog's and the common log
 *   format's "nothing here"): the record still counts, and its time, level and fields are kept.
 * - A line longer than `maxLine` bytes is stored in pieces of `maxLine` bytes, as framing does,
 *   each piece with the record's time, level and fields.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { type Fields, type Level, levelCode } from "../pipeline/record.ts";
import type { Turns } from "./json_record.ts";

/** What every protocol decoder gives for one record. */
export interface DecodedRecord {
  /** Milliseconds since the epoch, as the sender stated it. */
  timeMs: number | undefined;
  /** The normalized level. */
  level: Level | undefined;
  /** The message: the stored line. */
  message: string;
  /** The fields. */
  fields: Fields;
}

/**
 * Fields that name the sending host, first non-empty string wins: OpenTelemetry's and ECS's
 * `host.name`, Loki's and Splunk's `host` label, pino's `hostname`. A record without any is from
 * the peer's address.
 */
export const HOST_FIELDS: readonly string[] = ["host.name", "host", "hostname"];

/** Longest `source` or `host` accepted, in UTF-16 code units (as `/api/v1/ingest`). */
export const MAX_NAME_LENGTH = 256;

/**
 * A group's lines go to the sink in batches of about this size (the file writer's page), as HTTP
 * ingest's do.
 */
const BATCH_BYTES = 1024 * 1024;
/**
 * Messages longer than this many UTF-16 code units are made into their line a slice of this many
 * at a time: a 16 MiB message in one go held the event loop for tens of milliseconds.
 */
export const LONG_MESSAGE_CHARS = 256 * 1024;
/** Records encoded between two looks at the clock. */
const RECORDS_PER_CHECK = 256;
const NEWLINE_INSIDE = /\r?\n/g;
const encoder = new TextEncoder();

/** The host a record names in its fields, or `undefined`. */
export function hostOf(fields: Fields): string | undefined {
  for (const key of HOST_FIELDS) {
    const value = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (typeof value === "string" && value !== "") return value;
  }
  return undefined;
}

/**
 * The stored line of a message (see the module doc): trailing line breaks dropped, inner ones
 * written as `\n`, an empty or blank message as `-`.
 *
 * @example
 * ```ts
 * messageLine("Error: boom\n    at f (a.js:1)\n"); // "Error: boom\\n    at f (a.js:1)"
 * messageLine("  "); // "-"
 * ```
 */
export function messageLine(message: string): string {
  let end = message.length;
  while (end > 0) {
    const c = message.charCodeAt(end - 1);
    if (c !== 10 && c !== 13) break;
    end--;
  }
  let line = end === message.length ? message : message.slice(0, end);
  if (line.includes("\n")) line = line.replace(NEWLINE_INSIDE, "\\n");
  // Most lines start with a visible ASCII character: not blank, and no need to trim.
  const first = line.charCodeAt(0);
  if (first > 0x20 && first < 0x7f) return line;
  return line.trim() === "" ? "-" : line;
}

/** Records grouped by (source, host), one {@linkcode BatchMeta} per group, built once. */
export class RecordGroups<R extends DecodedRecord> {
  readonly #input: string;
  readonly #groups = new Map<string, { meta: BatchMeta; records: R[] }>();
  /** The group of the last record: records mostly come from one group after another. */
  #last: { meta: BatchMeta; records: R[] } | undefined;

  /** @param input the input's name in each batch's meta, e.g. `otlp`. */
  constructor(input: string) {
    this.#input = input;
  }

  /** Adds a record of `source` from `host`. */
  add(source: string, host: string, record: R): void {
    let group = this.#last;
    if (group === undefined || group.meta.source !== source || group.meta.host !== host) {
      const key = `${source}\n${host}`;
      group = this.#groups.get(key);
      if (group === undefined) {
        group = { meta: { source, host, input: this.#input }, records: [] };
        this.#groups.set(key, group);
      }
      this.#last = group;
    }
    group.records.push(record);
  }

  /** How many records were added. */
  get size(): number {
    let n = 0;
    for (const group of this.#groups.values()) n += group.records.length;
    return n;
  }

  /** Each group's meta, for the blocked check. */
  metas(): BatchMeta[] {
    return [...this.#groups.values()].map((group) => group.meta);
  }

  /** The groups, in the order their first record came. */
  groups(): Iterable<{ meta: BatchMeta; records: R[] }> {
    return this.#groups.values();
  }
}

/** Options of {@linkcode writeRecordBatches}. */
export interface WriteRecordsOptions {
  /** Longer lines are stored in pieces of this many bytes. */
  maxLine: number;
  /** When the request arrived, for every batch. */
  receivedAt: number;
  /** How the work shares the event loop: it pauses between batches and every few records. */
  turns: Turns;
  /** Bytes of a batch. Default 1 MiB. For tests. */
  batchBytes?: number;
}

/**
 * Writes each group's records as batches of about 1 MiB, with the columns they have (`times`
 * where a record has a time, `levels` where one has a level, `fields` where one has fields).
 * The batches' bytes and columns are lent to `write` only.
 *
 * @returns the batches written, for `Sink.flush`, and the lines they hold.
 */
export async function writeRecordBatches(
  groups: RecordGroups<DecodedRecord>,
  write: (batch: Batch) => void,
  options: WriteRecordsOptions,
): Promise<{ batches: Batch[]; lines: number }> {
  const { maxLine, receivedAt, turns, batchBytes = BATCH_BYTES } = options;
  const batches: Batch[] = [];
  let total = 0;
  let buf = new Uint8Array(0);
  /** `buf` with room for `bytes` after `at`, what it holds kept. */
  const room = (at: number, bytes: number) => {
    if (at + bytes <= buf.length) return;
    const grown = new Uint8Array(Math.max(at + bytes, batchBytes * 3 + 1024));
    grown.set(buf.subarray(0, at));
    buf = grown;
  };
  for (const { meta, records } of groups.groups()) {
    // Lines short enough to need no split wait as strings and are encoded together, once per
    // batch: one encoder call per record was a fifth of this work.
    let parts: string[] = [];
    let partsLength = 0;
    let at = 0;
    let lines = 0;
    let times: number[] = [];
    let levels: number[] = [];
    let fields: (Fields | undefined)[] = [];
    let hasTime = false;
    let hasLevel = false;
    let hasFields = false;
    const encodeParts = () => {
      if (parts.length === 0) return;
      const text = parts.join("\n") + "\n";
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      room(at, text.length * 3);
      at += encoder.encodeInto(text, buf.subarray(at)).written;
      parts = [];
      partsLength = 0;
    };
    const emit = () => {
      encodeParts();
      const batch: Batch = {
        data: buf.subarray(0, at),
        lines,
        meta,
        receivedAt,
        times: hasTime ? Float64Array.from(times) : undefined,
        levels: hasLevel ? Uint8Array.from(levels) : undefined,
        fields: hasFields ? fields : undefined,
      };
      write(batch);
      batches.push(batch);
      total += lines;
      at = 0;
      lines = 0;
      times = [];
      levels = [];
      fields = [];
      hasTime = hasLevel = hasFields = false;
    };
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const line = record.message.length > LONG_MESSAGE_CHARS ? "" : messageLine(record.message);
      const time = record.timeMs ?? NaN;
      const level = levelCode(record.level);
      const own = isEmpty(record.fields) ? undefined : record.fields;
      hasTime ||= !Number.isNaN(time);
      hasLevel ||= level !== 0;
      hasFields ||= own !== undefined;
      let pieces = 1;
      if (record.message.length > LONG_MESSAGE_CHARS) {
        encodeParts();
        const chunks = await longMessageLine(record.message, turns);
        at = await writePieces(chunks, at, maxLine, room, () => buf, turns);
        pieces = piecesOf(chunks, maxLine);
      } else if (line.length * 3 <= maxLine) {
        parts.push(line);
        partsLength += line.length + 1;
      } else {
        encodeParts();
        room(at, line.length * 3 + 1);
        const written = encoder.encodeInto(line, buf.subarray(at)).written;
        // Pieces of maxLine bytes, each with a newline: moved from the end, so none is
        // overwritten.
        pieces = Math.max(1, Math.ceil(written / maxLine));
        room(at, written + pieces);
        for (let p = pieces - 1; p >= 0; p--) {
          const from = at + p * maxLine;
          const to = Math.min(from + maxLine, at + written);
          buf.copyWithin(from + p, from, to);
          buf[to + p] = 10;
        }
        at += written + pieces;
      }
      for (let p = 0; p < pieces; p++) {
        times.push(time);
        levels.push(level);
        fields.push(own);
      }
      lines += pieces;
      // A pause between batches, and every few hundred records within one.
      const full = at + partsLength >= batchBytes;
      if (full) emit();
      if ((full || i % RECORDS_PER_CHECK === RECORDS_PER_CHECK - 1) && turns.due()) {
        await turns.pause();
      }
    }
    if (lines > 0) emit();
    if (turns.due()) await turns.pause();
  }
  return { batches, lines: total };
}

/**
 * The stored line of a long message as {@linkcode messageLine} makes it, in UTF-8 chunks made a
 * slice of {@linkcode LONG_MESSAGE_CHARS} at a time (never between the halves of a surrogate pair
 * or of a CRLF), pausing between slices whenever `turns.due()`.
 */
export async function longMessageLine(message: string, turns: Turns): Promise<Uint8Array[]> {
  let end = message.length;
  while (end > 0) {
    const c = message.charCodeAt(end - 1);
    if (c !== 10 && c !== 13) break;
    end--;
  }
  const chunks: Uint8Array[] = [];
  let blank = true;
  for (let from = 0; from < end;) {
    let to = Math.min(from + LONG_MESSAGE_CHARS, end);
    if (to < end) {
      const last = message.charCodeAt(to - 1);
      if ((last >= 0xd800 && last <= 0xdbff) || (last === 13 && message.charCodeAt(to) === 10)) {
        to--;
      }
    }
    let piece = message.slice(from, to);
    if (piece.includes("\n")) piece = piece.replace(NEWLINE_INSIDE, "\\n");
    if (blank && piece.trim() !== "") blank = false;
    chunks.push(encoder.encode(piece));
    from = to;
    if (turns.due()) await turns.pause();
  }
  return blank ? [encoder.encode("-")] : chunks;
}

/** How many stored lines `chunks` make: pieces of `maxLine` bytes. */
function piecesOf(chunks: readonly Uint8Array[], maxLine: number): number {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  return Math.max(1, Math.ceil(total / maxLine));
}

/**
 * Writes `chunks` at `at` of the buffer `buffer()` (made roomy enough by `room`) as lines of at
 * most `maxLine` bytes, each with its newline, pausing between chunks whenever `turns.due()`;
 * returns where the next line goes.
 */
async function writePieces(
  chunks: readonly Uint8Array[],
  at: number,
  maxLine: number,
  room: (at: number, bytes: number) => void,
  buffer: () => Uint8Array,
  turns: Turns,
): Promise<number> {
  const pieces = piecesOf(chunks, maxLine);
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  room(at, total + pieces);
  const buf = buffer();
  // Bytes of the current piece written so far.
  let inPiece = 0;
  for (const chunk of chunks) {
    for (let from = 0; from < chunk.length;) {
      const n = Math.min(chunk.length - from, maxLine - inPiece);
      buf.set(chunk.subarray(from, from + n), at);
      at += n;
      from += n;
      inPiece += n;
      if (inPiece === maxLine) {
        buf[at++] = 10;
        inPiece = 0;
      }
    }
    if (turns.due()) await turns.pause();
  }
  if (inPiece > 0 || total === 0) buf[at++] = 10;
  return at;
}

function isEmpty(fields: Fields): boolean {
  for (const _ in fields) return false;
  return true;
}
