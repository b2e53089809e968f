/**
 * Scanning one stored file for a query: the time index picks the byte ranges the time range can
 * hold, each range is read backward in blocks of 4 MiB (newest line first), the text is found in
 * the raw bytes (`find_bytes.ts`) and only lines that hold it are decoded and checked against
 * the other filters. Memory is bounded by the block and the longest line held whole
 * ({@linkcode MAX_LINE}); a longer line is searched and shown in pieces of that size.
 *
 * @module
 */

import { levelCode, LEVELS } from "../pipeline/record.ts";
import { guessLevel } from "../transforms/level_guess.ts";
import type { StoredFile } from "./catalog.ts";
import { ByteFinder } from "./find_bytes.ts";
import type { SearchQuery } from "./query.ts";
import { openRandom, type RandomReader, streamGzip } from "./reader.ts";

/** Most text of hits held from one `.gz` file before they are answered. */
const MAX_HELD_BYTES = 64 * 1024 * 1024;
/** Bytes read at a time. */
export const BLOCK = 4 * 1024 * 1024;
/** The longest line held whole; longer ones are handled in pieces of this size. */
export const MAX_LINE = 1024 * 1024;
/**
 * Slack on the index's times when choosing what to read: lines of one file arrive in order to
 * within this (batches of different inputs racing to the file).
 */
const SLACK_MS = 2000;

/** A line found. */
export interface Hit {
  /** Receive time (ms), or `null` when unknown. */
  ts: number | null;
  source: string | null;
  level: string | null;
  line: string;
  /** The file, under the log folder. */
  file: string;
  /** Byte offset of the line in the uncompressed file. */
  offset: number;
}

/** What scanning read and skipped. */
export interface ScanStats {
  /** Bytes read (uncompressed). */
  scannedBytes: number;
  /** Bytes the time range let the scan skip (uncompressed, as far as known). */
  skippedBytes: number;
}

/** A stretch of a file whose lines were received within `[lo, hi]`; `ts` for raw lines. */
export interface Span {
  start: number;
  end: number;
  lo: number;
  hi: number;
  ts: number | null;
}

const JSON_PREFIX = new TextEncoder().encode('{"ts":"');
const decoder = new TextDecoder();

/** How a query is run over files; one per search (it owns the byte buffer). */
export class Scanner {
  readonly #query: SearchQuery;
  readonly #finder: ByteFinder | undefined;
  readonly #buffer: Uint8Array;
  /** Whether a line the needle was found in must still be checked for the whole text. */
  readonly #checkText: boolean;
  /** Whether lines must be decoded for the filters (beyond the answer itself). */
  readonly #filtersNeedText: boolean;
  readonly stats: ScanStats = { scannedBytes: 0, skippedBytes: 0 };
  /** Reading and searching pause for a turn of the event loop every few ms. */
  readonly #turns = clockTurns();

  constructor(query: SearchQuery) {
    this.#query = query;
    const needle = needleOf(query.q);
    const capacity = BLOCK + MAX_LINE;
    if (needle !== undefined) {
      this.#finder = new ByteFinder(needle, capacity);
      this.#buffer = this.#finder.buffer;
    } else this.#buffer = new Uint8Array(capacity);
    this.#checkText = query.q !== undefined && needle !== undefined &&
      needle.length !== new TextEncoder().encode(query.q).length;
    this.#filtersNeedText = query.regex !== undefined || query.minLevel > 0 ||
      query.fields.length > 0 || (query.q !== undefined && needle === undefined);
  }

  /** Whether the file may hold a line of the query, by its source and time bounds. */
  mayMatch(file: StoredFile): boolean {
    const { source, from, to } = this.#query;
    if (file.hi + SLACK_MS < from || file.lo - SLACK_MS > to) return false;
    // A file named by source holds that source's lines only (JSON lines name theirs too).
    if (source !== undefined && file.source !== undefined && !source.test(file.source)) {
      return false;
    }
    return true;
  }

  /**
   * The file's matching lines, newest first, in batches of up to a block's worth; `wanted` says how many more are wanted.
   * Stops when `signal` aborts; the file is closed however the caller stops.
   */
  async *scan(
    file: StoredFile,
    wanted: () => number,
    signal?: AbortSignal,
  ): AsyncGenerator<Hit[]> {
    const reader = await openRandom(file);
    if (reader === undefined) {
      yield* this.#scanStream(file, wanted, signal);
      return;
    }
    try {
      const spans = spansOf(file, reader.size);
      const ranges = this.#ranges(spans, reader.size);
      for (let r = ranges.length - 1; r >= 0; r--) {
        const [a, b] = ranges[r];
        yield* this.#scanBackward(file, reader, spans, a, b, wanted, signal);
        if (wanted() <= 0) return;
      }
    } finally {
      reader.close();
    }
  }

  /** The byte ranges whose spans the time range can hold, merged; counts what is skipped. */
  #ranges(spans: Span[], size: number): [number, number][] {
    const { from, to } = this.#query;
    const ranges: [number, number][] = [];
    let kept = 0;
    for (const span of spans) {
      if (span.hi + SLACK_MS < from || span.lo - SLACK_MS > to) continue;
      const last = ranges.at(-1);
      if (last !== undefined && last[1] === span.start) last[1] = span.end;
      else ranges.push([span.start, span.end]);
      kept += span.end - span.start;
    }
    if (Number.isFinite(size)) this.stats.skippedBytes += size - kept;
    return ranges;
  }

  async *#scanBackward(
    file: StoredFile,
    reader: RandomReader,
    spans: Span[],
    a: number,
    b: number,
    wanted: () => number,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Hit[]> {
    const buf = this.#buffer;
    let pos = b;
    let carry = 0;
    while (pos > a) {
      if (this.#turns.due()) await this.#turns.pause();
      signal?.throwIfAborted();
      const k = Math.min(BLOCK, pos - a);
      buf.copyWithin(k, 0, carry);
      await reader.readInto(buf.subarray(0, k), pos - k);
      this.stats.scannedBytes += k;
      pos -= k;
      let end = k + carry;
      let start = 0;
      carry = 0;
      if (pos > a) {
        const nl = buf.indexOf(10);
        if (nl === -1 || nl >= end) {
          if (end <= MAX_LINE) {
            carry = end;
            continue;
          }
          // One line longer than MAX_LINE: its last piece is taken as a line of its own.
          start = end - MAX_LINE;
          const hits = this.#lines(file, spans, buf, start, end, pos, wanted(), true);
          end = start;
          carry = end;
          if (carry > MAX_LINE) carry = 0;
          if (hits.length > 0) yield hits;
          continue;
        }
        start = nl + 1;
        carry = start;
      }
      const hits = this.#lines(file, spans, buf, start, end, pos, wanted(), true);
      if (hits.length > 0) yield hits;
      if (wanted() <= 0) return;
    }
  }

  /**
   * A `.gz` file: one gzip stream, decompressed from its start. Bytes before the first range the
   * time index allows are decompressed and passed over unsearched, and it stops after the last;
   * hits are kept (the newest `wanted()`, at most {@linkcode MAX_HELD_BYTES} of text) and
   * answered newest first at the end.
   */
  async *#scanStream(
    file: StoredFile,
    wanted: () => number,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Hit[]> {
    const buf = this.#buffer;
    const size = file.index?.end?.size ?? Infinity;
    const spans = spansOf(file, size);
    const ranges = this.#ranges(spans, size);
    if (ranges.length === 0) return;
    const a = ranges[0][0];
    const b = ranges[ranges.length - 1][1];
    const held: Hit[] = [];
    let heldBytes = 0;
    const hold = (hits: Hit[]) => {
      for (const hit of hits) {
        held.push(hit);
        heldBytes += hit.line.length;
      }
      let drop = 0;
      while (held.length - drop > wanted() || (heldBytes > MAX_HELD_BYTES && drop < held.length)) {
        heldBytes -= held[drop++].line.length;
      }
      if (drop > 0) held.splice(0, drop);
    };
    let carry = 0;
    let pos = 0; // file offset of buf[0]
    let streamed = 0; // uncompressed bytes decompressed so far
    for await (const chunk of streamGzip(file.path, signal)) {
      const from = Math.max(0, a - streamed);
      const to = Math.min(chunk.length, b - streamed);
      streamed += chunk.length;
      this.stats.scannedBytes += chunk.length;
      if (to <= from) {
        if (streamed >= b) break;
        pos = streamed;
        continue;
      }
      if (carry === 0) pos = streamed - chunk.length + from;
      for (let at = from; at < to;) {
        if (this.#turns.due()) await this.#turns.pause();
        const piece = chunk.subarray(at, at + Math.min(BLOCK, to - at));
        at += piece.length;
        buf.set(piece, carry);
        const end = carry + piece.length;
        let last = buf.lastIndexOf(10, end - 1);
        if (last === -1 && end > MAX_LINE) last = end - 1;
        if (last !== -1) {
          hold(this.#lines(file, spans, buf, 0, last + 1, pos, Infinity, false));
        }
        const done = last + 1;
        buf.copyWithin(0, done, end);
        carry = end - done;
        pos += done;
      }
      if (streamed >= b) break;
    }
    if (carry > 0) hold(this.#lines(file, spans, buf, 0, carry, pos, Infinity, false));
    if (held.length > 0) yield held.reverse();
  }

  /**
   * The matching lines among the whole lines of `buf[start, end)` (which is the file from
   * offset `pos + start` on), at most `max`: the newest when `newestFirst`, else the first.
   */
  #lines(
    file: StoredFile,
    spans: Span[],
    buf: Uint8Array,
    start: number,
    end: number,
    pos: number,
    max: number,
    newestFirst: boolean,
  ): Hit[] {
    const hits: Hit[] = [];
    if (max <= 0) return hits;
    const finder = this.#finder;
    if (finder !== undefined) {
      // Lines holding the needle, in file order; checked newest first when asked.
      const found: number[] = [];
      for (let at = start; at < end;) {
        const p = finder.find(at, end);
        if (p === -1) break;
        const lineStart = p === start ? start : buf.lastIndexOf(10, p - 1) + 1;
        let lineEnd = buf.indexOf(10, p);
        if (lineEnd === -1 || lineEnd >= end) lineEnd = end;
        found.push(Math.max(lineStart, start), lineEnd);
        at = lineEnd + 1;
      }
      const count = found.length / 2;
      for (let n = 0; n < count && hits.length < max; n++) {
        const i = newestFirst ? count - 1 - n : n;
        const hit = this.#check(file, spans, buf, found[2 * i], found[2 * i + 1], pos);
        if (hit !== undefined) hits.push(hit);
      }
      return hits;
    }
    if (newestFirst) {
      let lineEnd = end;
      if (lineEnd > start && buf[lineEnd - 1] === 10) lineEnd--;
      while (lineEnd >= start && hits.length < max) {
        const nl = lineEnd > start ? buf.lastIndexOf(10, lineEnd - 1) : -1;
        const lineStart = nl < start ? start : nl + 1;
        if (lineEnd > lineStart) {
          const hit = this.#check(file, spans, buf, lineStart, lineEnd, pos);
          if (hit !== undefined) hits.push(hit);
        }
        if (lineStart === start) break;
        lineEnd = lineStart - 1;
      }
      return hits;
    }
    return this.#inOrder(file, spans, buf, start, end, pos, max);
  }

  /** The lines of `buf[start, end)` that pass every filter, in file order, at most `max`. */
  #inOrder(
    file: StoredFile,
    spans: Span[],
    buf: Uint8Array,
    start: number,
    end: number,
    pos: number,
    max: number,
  ): Hit[] {
    const hits: Hit[] = [];
    for (let lineStart = start; lineStart < end && hits.length < max;) {
      let lineEnd = buf.indexOf(10, lineStart);
      if (lineEnd === -1 || lineEnd > end) lineEnd = end;
      if (lineEnd > lineStart) {
        const hit = this.#check(file, spans, buf, lineStart, lineEnd, pos);
        if (hit !== undefined) hits.push(hit);
      }
      lineStart = lineEnd + 1;
    }
    return hits;
  }

  /** The line `buf[start, end)` as a hit when it passes every filter. */
  #check(
    file: StoredFile,
    spans: Span[],
    buf: Uint8Array,
    start: number,
    end: number,
    pos: number,
  ): Hit | undefined {
    const query = this.#query;
    const offset = pos + start;
    if (isJsonLine(buf, start, end)) {
      const hit = this.#checkJson(file, decoder.decode(buf.subarray(start, end)), offset);
      if (hit !== null) return hit;
      // Not a JSON line after all: a raw one.
    }
    const span = spanAt(spans, offset);
    const ts = span?.ts ?? null;
    if (ts !== null && (ts < query.from || ts > query.to)) return undefined;
    if (query.fields.length > 0) return undefined;
    const line = decoder.decode(buf.subarray(start, end));
    if (this.#checkText && !line.includes(query.q!)) return undefined;
    if (query.q !== undefined && this.#finder === undefined && !line.includes(query.q)) {
      return undefined;
    }
    if (query.regex !== undefined && !query.regex.test(line)) return undefined;
    const level = guessLevel(line) ?? null;
    if (query.minLevel > 0 && levelCode(level ?? undefined) < query.minLevel) return undefined;
    return { ts, source: file.source ?? null, level, line, file: file.name, offset };
  }

  /** A JSON-format line as a hit when it passes; `null` when it is not one. */
  #checkJson(file: StoredFile, text: string, offset: number): Hit | undefined | null {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(text);
    } catch {
      return null;
    }
    if (typeof record !== "object" || record === null || typeof record.ts !== "string") {
      return null;
    }
    const query = this.#query;
    const ts = Date.parse(record.ts);
    if (Number.isNaN(ts)) return null;
    if (ts < query.from || ts > query.to) return undefined;
    const source = typeof record.source === "string" ? record.source : file.source ?? null;
    if (query.source !== undefined && (source === null || !query.source.test(source))) {
      return undefined;
    }
    const line = typeof record.line === "string" ? record.line : String(record.line ?? "");
    if (query.q !== undefined && !line.includes(query.q)) return undefined;
    if (query.regex !== undefined && !query.regex.test(line)) return undefined;
    const stated = typeof record.level === "string" &&
        (LEVELS as readonly string[]).includes(record.level)
      ? record.level as typeof LEVELS[number]
      : undefined;
    const level = stated ?? guessLevel(line) ?? null;
    if (query.minLevel > 0 && levelCode(level ?? undefined) < query.minLevel) return undefined;
    if (query.fields.length > 0) {
      const fields = record.fields;
      if (typeof fields !== "object" || fields === null) return undefined;
      for (const [name, value] of query.fields) {
        const own = (fields as Record<string, unknown>)[name];
        if (own === undefined || own === null || String(own) !== value) return undefined;
      }
    }
    return { ts, source, level, line, file: file.name, offset };
  }

  /** Whether lines must be decoded to be counted (the histogram's fast path when not). */
  get decodes(): boolean {
    return this.#filtersNeedText;
  }

  /**
   * The lines of `buf[start, end)` (the file from offset `pos + start`) as hits, whatever the
   * query: for the context of a hit.
   */
  describeLines(
    file: StoredFile,
    spans: Span[],
    buf: Uint8Array,
    start: number,
    end: number,
    pos: number,
  ): Hit[] {
    return this.#inOrder(file, spans, buf, start, end, pos, Infinity);
  }
}

/**
 * Work between two turns of the event loop, in ms. A turn is a zero timeout, which lets I/O in
 * (`setImmediate` and `MessageChannel` do not: `/healthz` waited up to 1-2.5 s behind a search
 * pausing with them) but costs about 2.3 ms here (nested timeouts are clamped), so slices are
 * longer than ingestion's 4 ms: 1 GB takes about 10 turns.
 */
const SLICE_MS = 20;

function clockTurns(): { due(): boolean; pause(): Promise<void> } {
  let clock = performance.now();
  return {
    due: () => performance.now() - clock > SLICE_MS,
    pause: async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      clock = performance.now();
    },
  };
}

/** The bytes searched for `q` in the raw file: `q` itself, or for text JSON would escape, its
 * longest piece that JSON keeps as it is (lines are then checked for the whole text). */
function needleOf(q: string | undefined): Uint8Array | undefined {
  if (q === undefined) return undefined;
  if (JSON.stringify(q) === `"${q}"`) return new TextEncoder().encode(q);
  // deno-lint-ignore no-control-regex
  const pieces = q.split(/["\\\u0000-\u001f\u2028\u2029]/);
  const longest = pieces.reduce((a, b) => (b.length > a.length ? b : a), "");
  return longest === "" ? undefined : new TextEncoder().encode(longest);
}

function isJsonLine(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < JSON_PREFIX.length + 2 || buf[end - 1] !== 0x7d) return false;
  for (let i = 0; i < JSON_PREFIX.length; i++) if (buf[start + i] !== JSON_PREFIX[i]) return false;
  return true;
}

/** The file's spans, from its index marks (one span for the whole file without them). */
export function spansOf(file: StoredFile, size: number): Span[] {
  const marks = (file.index?.marks ?? []).filter((m) => m.offset < size);
  if (marks.length === 0) return [{ start: 0, end: size, lo: file.lo, hi: file.hi, ts: null }];
  const spans: Span[] = [];
  if (marks[0].offset > 0) {
    spans.push({ start: 0, end: marks[0].offset, lo: file.lo, hi: marks[0].time, ts: null });
  }
  for (let i = 0; i < marks.length; i++) {
    const next = marks[i + 1];
    spans.push({
      start: marks[i].offset,
      end: next?.offset ?? size,
      lo: marks[i].time,
      hi: next?.time ?? Math.max(file.hi, marks[i].time),
      ts: marks[i].time,
    });
  }
  return spans;
}

function spanAt(spans: Span[], offset: number): Span | undefined {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (spans[mid].start <= offset) lo = mid;
    else hi = mid - 1;
  }
  return spans[lo];
}
