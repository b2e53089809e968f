/**
 * The live hub's memory of recent lines, for backfill and resume: copied byte chunks, bounded in
 * lines and bytes, never decoded until a subscriber asks.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";

/** Options of {@linkcode LineRing}. */
export interface LineRingOptions {
  /** Most lines kept; `0` keeps none. Default 10,000. */
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
}

interface Chunk {
  firstId: number;
  lines: number;
  data: Uint8Array;
  readonly source: string;
  readonly host: string;
  readonly receivedAt: number;
}

const NEWLINE = 10;

/**
 * Numbers every line pushed and keeps the most recent ones within both bounds. A batch is copied
 * once into its own chunk (only the tail that fits), so pushing costs one copy and no decoding;
 * evicting trims the oldest chunk line by line so the line bound is exact. Memory held is at
 * most about twice `maxBytes`, because a trimmed chunk keeps its buffer until it is evicted.
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

  /** Bytes held (newlines included). */
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
   * reused at once). Returns the id of the batch's first line, whether kept or not.
   */
  push(batch: Batch): number {
    const firstId = this.#nextId;
    this.#nextId += batch.lines;
    if (this.maxLines === 0 || this.maxBytes === 0 || batch.lines === 0) return firstId;
    let data = batch.data;
    let lines = batch.lines;
    if (lines > this.maxLines || data.length > this.maxBytes) {
      const start = this.#tailStart(data);
      data = data.subarray(start.offset);
      lines = start.lines;
      if (lines === 0) return firstId;
    }
    const { source, host } = batch.meta;
    this.#chunks.push({
      firstId: this.#nextId - lines,
      lines,
      data: data.slice(),
      source,
      host,
      receivedAt: batch.receivedAt,
    });
    this.#lines += lines;
    this.#bytes += data.length;
    this.#evict();
    return firstId;
  }

  /** The chunks held, newest first: backfill reads backwards and stops once it has enough. */
  *newestFirst(): IterableIterator<RingChunk> {
    for (let i = this.#chunks.length - 1; i >= this.#head; i--) yield this.#chunks[i];
  }

  /** Where the longest run of whole trailing lines within both bounds starts. */
  #tailStart(data: Uint8Array): { offset: number; lines: number } {
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

  #evict(): void {
    while (this.#lines > this.maxLines || this.#bytes > this.maxBytes) {
      const oldest = this.#chunks[this.#head];
      const excessLines = this.#lines - this.maxLines;
      const excessBytes = this.#bytes - this.maxBytes;
      if (oldest.lines <= excessLines || oldest.data.length <= excessBytes) {
        this.#dropOldest();
        continue;
      }
      let cut = 0;
      let trimmed = 0;
      while ((trimmed < excessLines || cut < excessBytes) && trimmed < oldest.lines) {
        const end = oldest.data.indexOf(NEWLINE, cut);
        // Fewer newlines than the batch claimed: give up on the chunk rather than loop.
        if (end === -1) break;
        cut = end + 1;
        trimmed++;
      }
      if (trimmed === oldest.lines || trimmed < excessLines || cut < excessBytes) {
        this.#dropOldest();
        continue;
      }
      oldest.data = oldest.data.subarray(cut);
      oldest.firstId += trimmed;
      oldest.lines -= trimmed;
      this.#lines -= trimmed;
      this.#bytes -= cut;
    }
  }

  #dropOldest(): void {
    const oldest = this.#chunks[this.#head];
    this.#lines -= oldest.lines;
    this.#bytes -= oldest.data.length;
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
