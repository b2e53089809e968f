/**
 * The live hub's memory of recent lines, for backfill and resume: copied byte chunks, bounded in
 * lines and bytes, never decoded until a subscriber asks.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { BatchColumns } from "./batch_columns.ts";

/** Options of {@linkcode LineRing}. */
export interface LineRingOptions {
  /** Lines kept: at least this many (when they fit `maxBytes`), at most one batch more; `0` keeps none. Default 10,000. */
  maxLines?: number;
  /** Most line bytes kept (newlines included); `0` keeps none. Default 8 MiB. */
  maxBytes?: number;
  /** The id given to the first line ever pushed. Default 1. */
  firstId?: number;
}

/** Lines of one batch still held by the ring. */
export interface RingChunk {
  /** Id of the first line in `data`; the others follow one by one. */
  readonly firstId: number;
  /** How many lines `data` holds. */
  readonly lines: number;
  /** Newline-terminated lines; owned by the ring, so callers must not change them. */
  readonly data: Uint8Array;
  /** The batch's source. */
  readonly source: string;
  /** The batch's host. */
  readonly host: string;
  /** When the batch was received, in milliseconds since the epoch. */
  readonly receivedAt: number;
  /** The lines' levels and fields, when the batch had them (copied levels, shared fields). */
  readonly columns?: BatchColumns;
}

interface Chunk {
  firstId: number;
  lines: number;
  data: Uint8Array;
  readonly source: string;
  readonly host: string;
  readonly receivedAt: number;
  readonly columns?: BatchColumns;
  /** What the lines' fields cost, counted in the ring's bytes besides `data`. */
  readonly fieldBytes: number;
}

const NEWLINE = 10;

/**
 * Numbers every line pushed and keeps the most recent ones within both bounds. A batch is copied
 * once (only the tail that fits) into an arena of twice `maxBytes` allocated on first use, so
 * pushing costs one copy, no decoding and no garbage (a fresh buffer per batch would leave the
 * garbage collector hundreds of megabytes of dead buffers at full ingest rate); evicting drops
 * whole oldest chunks, so it costs nothing per line: the ring holds at least the newest
 * `maxLines` lines that fit `maxBytes`, and at most one batch more. Writing over the arena's
 * oldest region evicts the chunks there. Memory held is twice `maxBytes`.
 *
 * @example
 * ```ts
 * const ring = new LineRing({ maxLines: 1000 });
 * const firstId = ring.push(batch); // the batch's lines are firstId, firstId + 1, ...
 * for (const chunk of ring.newestFirst()) console.log(chunk.firstId, chunk.lines);
 * ```
 */
export class LineRing {
  /** The line bound. */
  readonly maxLines: number;
  /** The byte bound. */
  readonly maxBytes: number;
  #chunks: Chunk[] = [];
  /** Index of the oldest chunk in `#chunks`: evicting moves it instead of shifting the array. */
  #head = 0;
  #lines = 0;
  #bytes = 0;
  #nextId: number;
  /** Where chunks' bytes live; allocated on the first push. */
  #arena: Uint8Array | undefined;
  /** Where the next chunk's bytes go in `#arena`. */
  #write = 0;

  /**
   * Creates an empty ring.
   *
   * @param options the bounds; see {@linkcode LineRingOptions} for defaults.
   */
  constructor(options: LineRingOptions = {}) {
    const { maxLines = 10_000, maxBytes = 8 * 1024 * 1024, firstId = 1 } = options;
    this.maxLines = nonNegative("Ring line bound", maxLines);
    this.maxBytes = nonNegative("Ring byte bound", maxBytes);
    this.#nextId = nonNegative("First line id", firstId);
  }

  /** Lines held. */
  get lines(): number {
    return this.#lines;
  }

  /** Bytes held (newlines included), and what the fields of the lines held cost. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The id the next line pushed will get. */
  get nextId(): number {
    return this.#nextId;
  }

  /** Id of the oldest line held; {@linkcode LineRing.nextId} when the ring is empty. */
  get oldestId(): number {
    return this.#lines === 0 ? this.#nextId : this.#chunks[this.#head].firstId;
  }

  /**
   * Numbers the batch's lines and copies the newest of them that fit (so `batch.data` may be
   * reused at once). Returns the id of the batch's first line, whether kept or not. With
   * `columns` (the batch's levels and fields), the kept lines keep theirs: levels copied, fields
   * shared, and what the fields cost counts in the ring's byte bound.
   */
  push(batch: Batch, columns?: BatchColumns): number {
    const firstId = this.#nextId;
    this.#nextId += batch.lines;
    if (this.maxLines === 0 || this.maxBytes === 0 || batch.lines === 0) return firstId;
    let data = batch.data;
    let lines = batch.lines;
    if (lines > this.maxLines || data.length > this.maxBytes) {
      const start = this.#tailStart(data, lines);
      data = data.subarray(start.offset);
      lines = start.lines;
      if (lines === 0) return firstId;
    }
    const { source, host } = batch.meta;
    let kept: BatchColumns | undefined;
    let fieldBytes = 0;
    if (columns !== undefined) {
      let from = batch.lines - lines;
      fieldBytes = columns.bytes(from, batch.lines);
      // Fields count in the byte bound too: the oldest kept lines go until both fit.
      while (lines > 0 && data.length + fieldBytes > this.maxBytes) {
        data = data.subarray(data.indexOf(NEWLINE) + 1);
        fieldBytes -= columns.bytes(from, from + 1);
        from++;
        lines--;
      }
      if (lines === 0) return firstId;
      kept = new BatchColumns(
        columns.levelsOf(from, batch.lines),
        columns.fieldsOf(from, batch.lines),
      );
    }
    // Older lines make room first (the new ones alone fit both bounds), so the arena's free space
    // is known before the copy. Copied before the push: making room may replace the chunk array.
    this.#lines += lines;
    this.#bytes += data.length + fieldBytes;
    this.#evict();
    const copy = this.#copy(data);
    this.#chunks.push({
      firstId: this.#nextId - lines,
      lines,
      data: copy,
      source,
      host,
      receivedAt: batch.receivedAt,
      columns: kept,
      fieldBytes,
    });
    return firstId;
  }

  /**
   * Numbers `lines` lines without keeping them (the caller decided nobody will ask for them).
   * Returns the id of the first. The ring's ids then have a gap: a reader of
   * {@linkcode LineRing.newestFirst} sees it between two chunks.
   */
  skip(lines: number): number {
    const firstId = this.#nextId;
    this.#nextId += lines;
    return firstId;
  }

  /** The chunks held, newest first: backfill reads backwards and stops once it has enough. */
  *newestFirst(): IterableIterator<RingChunk> {
    for (let i = this.#chunks.length - 1; i >= this.#head; i--) yield this.#chunks[i];
  }

  /**
   * Copies `data` (at most `maxBytes`) into the arena after the previous chunk, wrapping to the
   * start when it does not fit before the end. Chunks whose bytes lie where it goes are dropped
   * first: in push order, they are the oldest, right after the write position. With the bounds
   * already enforced, what is kept spans less than the arena minus the new bytes, so this only
   * drops lines the bounds evicted anyway; it is the guard that makes overwriting safe.
   */
  #copy(data: Uint8Array): Uint8Array {
    const arena = this.#arena ??= new Uint8Array(this.maxBytes * 2);
    let start = this.#write;
    // When wrapping, the unused end counts as overwritten too, so eviction stays in push order.
    let deadEnd = start + data.length;
    if (deadEnd > arena.length) {
      deadEnd = arena.length + data.length;
      start = 0;
    }
    const from = this.#write;
    while (this.#head < this.#chunks.length) {
      const oldest = this.#chunks[this.#head];
      const at = oldest.data.byteOffset - arena.byteOffset;
      // The oldest chunk's place, counted circularly from the write position.
      const distance = at >= from ? at - from : at + arena.length - from;
      if (distance >= deadEnd - from) break;
      this.#dropOldest();
    }
    arena.set(data, start);
    this.#write = start + data.length;
    return arena.subarray(start, start + data.length);
  }

  /** Where the longest run of whole trailing lines (of `count` in all) within both bounds starts. */
  #tailStart(data: Uint8Array, count: number): { offset: number; lines: number } {
    const extra = count - this.maxLines;
    if (extra > 0 && extra < this.maxLines) {
      // Fewer lines to skip at the front than to keep (an agent's 1 MiB batch of 10,485 lines
      // against 10,000): found from the front, one search per skipped line.
      let offset = 0;
      for (let i = 0; i < extra; i++) offset = data.indexOf(NEWLINE, offset) + 1;
      if (data.length - offset <= this.maxBytes) return { offset, lines: this.maxLines };
    }
    let offset = data.length;
    let lines = 0;
    while (lines < this.maxLines && offset > 0) {
      // offset - 1 is the newline ending the line before; the one before that starts it.
      const start = offset >= 2 ? data.lastIndexOf(NEWLINE, offset - 2) + 1 : 0;
      if (data.length - start > this.maxBytes) break;
      offset = start;
      lines++;
    }
    return { offset, lines };
  }

  /**
   * Drops whole oldest chunks: while the bytes are over their bound, or while the lines without
   * the oldest chunk still reach theirs. So at least the newest `maxLines` lines are kept (when
   * they fit `maxBytes`), and at most one batch more: eviction costs nothing per line.
   */
  #evict(): void {
    while (this.#head < this.#chunks.length) {
      const oldest = this.#chunks[this.#head];
      if (this.#bytes <= this.maxBytes && this.#lines - oldest.lines < this.maxLines) return;
      this.#dropOldest();
    }
  }

  #dropOldest(): void {
    const oldest = this.#chunks[this.#head];
    this.#lines -= oldest.lines;
    this.#bytes -= oldest.data.length + oldest.fieldBytes;
    this.#head++;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}

function nonNegative(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got "${value}"`);
  }
  return value;
}
