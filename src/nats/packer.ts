/**
 * Packs batches into messages: the lines of one origin (source, host, input, labels) gathered up
 * to `maxLines` lines and `maxBytes` bytes, each line's level, time and fields with it. A batch
 * longer than a message is cut at line ends; a line longer than a message into pieces of
 * `maxBytes`, each ended with a newline (as `-maxLine` cuts long lines). A batch of an idempotent
 * stream (its `mark`) gets messages of its own with ids from the mark, so that a resend is cut
 * the same way and gets the same ids.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Fields } from "../pipeline/record.ts";
import type { LineExtras } from "./message.ts";

/** A message's worth of lines of one origin, ready to publish. */
export interface Packed {
  readonly meta: BatchMeta;
  /** Whole lines (owned: a copy of the batches' bytes). */
  readonly data: Uint8Array;
  readonly lines: number;
  /** The first batch's receive time. */
  readonly receivedAt: number;
  readonly extras: LineExtras;
  /** For a marked batch: `<stream>:<offset>:<part>:<skipped>:<piece>`, the same on a resend. */
  readonly id?: string;
}

/** Options of {@linkcode Packer}. */
export interface PackerOptions {
  /** Most lines per message. */
  maxLines: number;
  /** Most bytes per message. */
  maxBytes: number;
  /** Most origins gathered at once; past it the oldest is sealed. Default 64. */
  maxOpen?: number;
}

/** Lines of one origin being gathered into a message. */
interface Gathering {
  readonly meta: BatchMeta;
  readonly receivedAt: number;
  /** The message's bytes so far, at the front; grown (doubled) up to `maxBytes` when full. */
  buf: Uint8Array;
  bytes: number;
  lines: number;
  extras: LineExtras;
}

/**
 * See the module's notes. Each byte is copied once, into the message it goes to; a message is
 * cut where its line or byte bound falls by counting newlines a word at a time.
 *
 * @example
 * ```ts
 * const packer = new Packer({ maxLines: 1000, maxBytes: 512 * 1024 }, (m) => publish(m));
 * packer.add(batch); // seals full messages
 * packer.sealAll(); // and the rest, at an acknowledgement or after a linger
 * ```
 */
export class Packer {
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #maxOpen: number;
  readonly #sealed: (packed: Packed) => void;
  readonly #gathering = new Map<string, Gathering>();
  readonly #cut: Cut = { end: 0, lines: 0 };
  readonly #pool = new BufferPool();
  #bytes = 0;

  /** @param sealed called with each message as it is sealed. */
  constructor(options: PackerOptions, sealed: (packed: Packed) => void) {
    this.#maxLines = options.maxLines;
    this.#maxBytes = options.maxBytes;
    this.#maxOpen = options.maxOpen ?? 64;
    this.#sealed = sealed;
  }

  /** Bytes gathered and not sealed. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Origins with lines gathered and not sealed. */
  get open(): number {
    return this.#gathering.size;
  }

  /**
   * Gives back the bytes of a message sealed earlier (its `data`, or a copy of it) that nothing
   * refers to any more (published and acknowledged), for the next messages: large buffers are
   * reused rather than allocated, zeroed and collected for every message.
   */
  release(data: Uint8Array): void {
    this.#pool.give(data);
  }

  /** Adds `batch`'s lines (copied): sealed at once when marked, else gathered. */
  add(batch: Batch): void {
    if (batch.mark !== undefined) {
      this.#marked(batch);
      return;
    }
    const { data, meta } = batch;
    const id = keyOf(meta as unknown as object);
    const cut = this.#cut;
    let start = 0;
    let line = 0;
    while (start < data.length) {
      const g = this.#gathering.get(id) ?? this.#open(id, batch, data.length - start);
      if (!this.#next(batch, start, line, this.#maxLines - g.lines, this.#maxBytes - g.bytes)) {
        // The next line does not fit: sealed, and the line starts the next message.
        this.#sealGathering(id, g);
        continue;
      }
      const k = cut.lines;
      const piece = cut.end - start;
      if (g.bytes + piece > g.buf.length) this.#grow(g, g.bytes + piece);
      const next = copyPiece(data, start, cut, g.buf, g.bytes);
      addExtras(g.extras, g.lines, extrasOf(batch, line, k), k);
      g.bytes += piece;
      g.lines += k;
      this.#bytes += piece;
      start = next;
      if (!cut.split) line += k;
      if (g.lines >= this.#maxLines || g.bytes >= this.#maxBytes) this.#sealGathering(id, g);
    }
  }

  /** Seals every message being gathered. */
  sealAll(): void {
    for (const [id, g] of [...this.#gathering]) this.#sealGathering(id, g);
  }

  /** A marked batch: messages of its own, with ids from its mark. */
  #marked(batch: Batch): void {
    const mark = batch.mark!;
    const base = `${mark.stream}:${mark.offset}:${mark.part}:${mark.skipped}`;
    const { data } = batch;
    const cut = this.#cut;
    let piece = 0;
    let start = 0;
    let line = 0;
    while (start < data.length) {
      this.#next(batch, start, line, this.#maxLines, this.#maxBytes);
      const bytes = new Uint8Array(cut.end - start);
      const next = copyPiece(data, start, cut, bytes, 0);
      this.#sealed({
        meta: batch.meta,
        data: bytes,
        lines: cut.lines,
        receivedAt: batch.receivedAt,
        extras: extrasOf(batch, line, cut.lines),
        id: `${base}:${piece++}`,
      });
      start = next;
      if (!cut.split) line += cut.lines;
    }
  }

  /**
   * The next piece of `batch` from byte `start` (line `line`) that fits in `roomLines` lines and
   * `roomBytes` bytes, into {@linkcode #cut}: whole lines, or, when one line is longer than a
   * whole message, its next `maxBytes - 1` bytes to be ended with a newline (`split`, one line).
   * False when the next line does not fit the room left (a message already part filled).
   */
  #next(batch: Batch, start: number, line: number, roomLines: number, roomBytes: number): boolean {
    const { data } = batch;
    const cut = this.#cut;
    cut.split = false;
    if (batch.lines - line <= roomLines && data.length - start <= roomBytes) {
      cut.end = data.length;
      cut.lines = batch.lines - line;
      return true;
    }
    if (batch.ends !== undefined) {
      endsCut(batch.ends, start, line, batch.lines - line, roomLines, roomBytes, cut);
    } else cutLines(data, start, roomLines, roomBytes, cut);
    if (cut.lines > 0) return true;
    if (roomBytes < this.#maxBytes) return false;
    cut.end = start + this.#maxBytes;
    cut.lines = 1;
    cut.split = true;
    return true;
  }

  /**
   * A new message for `batch`'s origin, its buffer sized for a full message of lines as long as
   * the batch's on average, or for twice the `rest` of the batch when that is less.
   */
  #open(id: string, batch: Batch, rest: number): Gathering {
    if (this.#gathering.size >= this.#maxOpen) {
      const [oldest, first] = this.#gathering.entries().next().value!;
      this.#sealGathering(oldest, first);
    }
    const perLine = batch.data.length / Math.max(1, batch.lines);
    const size = Math.min(
      this.#maxBytes,
      Math.ceil(perLine * this.#maxLines),
      Math.max(MIN_BUFFER, 2 * rest),
    );
    const g: Gathering = {
      meta: batch.meta,
      receivedAt: batch.receivedAt,
      buf: this.#pool.take(size),
      bytes: 0,
      lines: 0,
      extras: {},
    };
    this.#gathering.set(id, g);
    return g;
  }

  /** Grows `g`'s buffer to hold at least `need` bytes: doubled, at most `maxBytes`. */
  #grow(g: Gathering, need: number): void {
    const buf = this.#pool.take(Math.min(this.#maxBytes, Math.max(need, 2 * g.buf.length)));
    buf.set(g.buf.subarray(0, g.bytes));
    this.#pool.give(g.buf);
    g.buf = buf;
  }

  #sealGathering(id: string, g: Gathering): void {
    this.#gathering.delete(id);
    // A message sealed well short of its buffer (a linger, an acknowledgement) gives it back.
    let data = g.buf.subarray(0, g.bytes);
    if (g.bytes * 2 < g.buf.length) {
      data = data.slice();
      this.#pool.give(g.buf);
    }
    this.#bytes -= g.bytes;
    this.#sealed({
      meta: g.meta,
      data,
      lines: g.lines,
      receivedAt: g.receivedAt,
      extras: g.extras,
    });
  }
}

/**
 * Copies the piece `cut` describes, from byte `start` of `data`, into `into` at `at` (a split
 * piece ends with a newline of its own); returns where the next piece starts in `data`.
 */
function copyPiece(
  data: Uint8Array,
  start: number,
  cut: Cut,
  into: Uint8Array,
  at: number,
): number {
  if (cut.split) {
    into.set(data.subarray(start, cut.end - 1), at);
    into[at + cut.end - start - 1] = 10;
    return cut.end - 1;
  }
  into.set(data.subarray(start, cut.end), at);
  return cut.end;
}

/** Smallest buffer a message starts with. */
const MIN_BUFFER = 4096;

/** Where a message's piece of a batch ends. */
interface Cut {
  /** Byte after the piece. */
  end: number;
  /** Lines in it. */
  lines: number;
  /** Part of one line longer than a message, to be ended with a newline. */
  split?: boolean;
}

/**
 * Buffers of 64 KiB and more, by size (a multiple of 4 KiB), reused; at most 4 MiB of them kept.
 * Sizes are rounded to pages, not powers of two: 100 KB of lines take 100 KiB, under the C
 * allocator's threshold (128 KiB) above which each buffer is a fresh mapping, its pages faulted
 * in and zeroed (measured here with 640 live: 27 us for 100,000 bytes, 92 us for 131,072).
 */
class BufferPool {
  static readonly MIN = 64 * 1024;
  static readonly PAGE = 4096;
  static readonly MAX_KEPT = 4 * 1024 * 1024;
  readonly #free = new Map<number, ArrayBuffer[]>();
  #kept = 0;

  /** A buffer of at least `size` bytes (contents undefined). */
  take(size: number): Uint8Array {
    if (size < BufferPool.MIN) return new Uint8Array(size);
    const fit = Math.ceil(size / BufferPool.PAGE) * BufferPool.PAGE;
    const reused = this.#free.get(fit)?.pop();
    if (reused === undefined) return new Uint8Array(fit);
    this.#kept -= fit;
    return new Uint8Array(reused);
  }

  /** Keeps `data`'s buffer for {@linkcode take} when it is one of the pool's sizes. */
  give(data: Uint8Array): void {
    const buffer = data.buffer;
    const size = buffer.byteLength;
    if (
      !(buffer instanceof ArrayBuffer) || size < BufferPool.MIN || size % BufferPool.PAGE !== 0 ||
      this.#kept + size > BufferPool.MAX_KEPT
    ) return;
    let free = this.#free.get(size);
    if (free === undefined) this.#free.set(size, free = []);
    free.push(buffer);
    this.#kept += size;
  }
}

/**
 * `cutLines` from the lines' known ends (`Batch.ends`): the lines from `line` (of `left` lines
 * left, the first starting at or before byte `start`) that fit in `maxLines` lines and `maxBytes`
 * bytes, into `out`, by a binary search rather than a scan.
 */
export function endsCut(
  ends: Uint32Array,
  start: number,
  line: number,
  left: number,
  maxLines: number,
  maxBytes: number,
  out: Cut,
): void {
  let k = Math.min(left, maxLines);
  if (k > 0 && ends[line + k - 1] - start > maxBytes) {
    // The most lines whose end is within maxBytes: lo fits (0 always does), hi does not.
    let lo = 0;
    let hi = k;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (ends[line + mid - 1] - start <= maxBytes) lo = mid;
      else hi = mid;
    }
    k = lo;
  }
  out.end = k > 0 ? ends[line + k - 1] : start;
  out.lines = k;
}

/**
 * The whole lines of `data` from `start` that fit in `maxLines` lines and `maxBytes` bytes, into
 * `out`. Counts newlines four bytes at a time: a word with none (most, for lines of log size)
 * costs one test; in one with some, each is found exactly.
 */
export function cutLines(
  data: Uint8Array,
  start: number,
  maxLines: number,
  maxBytes: number,
  out: Cut,
): void {
  const off = data.byteOffset;
  const limit = Math.min(data.length, start + maxBytes);
  let end = start;
  let lines = 0;
  out.end = start;
  out.lines = 0;
  if (maxLines <= 0) return;
  let i = start;
  for (; i < limit && ((off + i) & 3) !== 0; i++) {
    if (data[i] === 10) {
      end = i + 1;
      if (++lines === maxLines) break;
    }
  }
  if (lines < maxLines && i < limit) {
    const words = new Uint32Array(data.buffer, 0, (off + limit) >>> 2);
    const last = (off + limit) >>> 2;
    let w = (off + i) >>> 2;
    for (; w < last && lines < maxLines; w++) {
      const v = words[w] ^ 0x0a0a0a0a;
      if (((v - 0x01010101) & ~v & 0x80808080) === 0) continue;
      // Exactly the zero bytes (the test above can flag a byte after a zero one).
      let z = ~(((v & 0x7f7f7f7f) + 0x7f7f7f7f) | v) & 0x80808080;
      while (z !== 0) {
        const bit = z & -z;
        end = (w << 2) - off + ((31 - Math.clz32(bit)) >>> 3) + 1;
        if (++lines === maxLines) break;
        z ^= bit;
      }
    }
    for (i = Math.max(i, (w << 2) - off); i < limit && lines < maxLines; i++) {
      if (data[i] === 10) {
        end = i + 1;
        lines++;
      }
    }
  }
  out.end = end;
  out.lines = lines;
}

const keys = new WeakMap<object, string>();
let nextKey = 0;
function keyOf(o: object): string {
  let k = keys.get(o);
  if (k === undefined) keys.set(o, k = String(nextKey++));
  return k;
}

/** The extras of `count` lines of `batch` from line `from`. */
export function extrasOf(batch: Batch, from: number, count: number): LineExtras {
  const extras: LineExtras = {};
  if (batch.levels !== undefined) {
    extras.levels = Array.from(batch.levels.subarray(from, from + count));
  }
  if (batch.times !== undefined) {
    extras.times = Array.from(
      batch.times.subarray(from, from + count),
      (t) => Number.isNaN(t) ? null : t,
    );
  }
  if (batch.fields !== undefined) {
    extras.fields = batch.fields.slice(from, from + count).map((f) =>
      f ?? null
    ) as (Readonly<Fields> | null)[];
  }
  return extras;
}

/** Appends `more` (of `lines` lines) to `into` (of `have` lines), filling gaps with nothing. */
function addExtras(into: LineExtras, have: number, more: LineExtras, lines: number): void {
  if (more.levels !== undefined || into.levels !== undefined) {
    into.levels ??= new Array(have).fill(0);
    into.levels.push(...(more.levels ?? new Array(lines).fill(0)));
  }
  if (more.times !== undefined || into.times !== undefined) {
    into.times ??= new Array(have).fill(null);
    into.times.push(...(more.times ?? new Array(lines).fill(null)));
  }
  if (more.fields !== undefined || into.fields !== undefined) {
    into.fields ??= new Array(have).fill(null);
    into.fields.push(...(more.fields ?? new Array(lines).fill(null)));
  }
}
