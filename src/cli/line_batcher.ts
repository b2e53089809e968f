/**
 * Cuts a byte stream into batches of whole lines for `logboom send`, each with the stream offset
 * at its end (what `X-Stream-Offset` carries), so a resent batch is recognised by the server.
 *
 * @module
 */

const LF = 10;

/** A batch of whole lines and where it ends in the stream. */
export interface LineBatch {
  /** The lines; the last one is unterminated only in the final batch of a stream. */
  data: Uint8Array;
  /** The stream's byte offset just after `data`. */
  offset: number;
}

/** Options of {@linkcode LineBatcher}. */
export interface LineBatcherOptions {
  /** A batch is cut at the last line end before this many bytes. Default 1 MiB. */
  batchBytes?: number;
  /**
   * A line longer than `batchBytes` makes a batch of its own up to this size; past it, the line is
   * cut (the server splits long lines anyway). Default 8 x `batchBytes`.
   */
  maxBatchBytes?: number;
}

/**
 * Accumulates bytes and hands out batches that end at line ends.
 *
 * @example
 * ```ts
 * const batcher = new LineBatcher({ batchBytes: 1024 * 1024 });
 * for await (const chunk of file.readable) for (const b of batcher.push(chunk)) await send(b);
 * const last = batcher.end();
 * if (last) await send(last);
 * ```
 */
export class LineBatcher {
  readonly #batchBytes: number;
  readonly #maxBatchBytes: number;
  #buf = new Uint8Array(0);
  #len = 0;
  /** Stream offset of `#buf[0]`. */
  #base = 0;

  /** @param options see {@linkcode LineBatcherOptions}. */
  constructor(options: LineBatcherOptions = {}) {
    const { batchBytes = 1024 * 1024 } = options;
    const { maxBatchBytes = batchBytes * 8 } = options;
    if (!Number.isSafeInteger(batchBytes) || batchBytes < 1) {
      throw new RangeError(`Batch size must be a positive integer, got "${batchBytes}"`);
    }
    if (!Number.isSafeInteger(maxBatchBytes) || maxBatchBytes < batchBytes) {
      throw new RangeError(`Largest batch must be at least the batch size, got "${maxBatchBytes}"`);
    }
    this.#batchBytes = batchBytes;
    this.#maxBatchBytes = maxBatchBytes;
  }

  /** Bytes held that no batch carried yet. */
  get pending(): number {
    return this.#len;
  }

  /** Takes a chunk; returns the batches that are full now. */
  push(chunk: Uint8Array): LineBatch[] {
    if (this.#len + chunk.length > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#batchBytes, (this.#len + chunk.length) * 2));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    const batches: LineBatch[] = [];
    while (this.#len >= this.#batchBytes) {
      const view = this.#buf.subarray(0, this.#len);
      let end = view.lastIndexOf(LF, this.#batchBytes - 1) + 1;
      if (end === 0) {
        const nl = view.subarray(0, Math.min(this.#len, this.#maxBatchBytes)).indexOf(LF);
        if (nl !== -1) end = nl + 1;
        else if (this.#len >= this.#maxBatchBytes) end = this.#maxBatchBytes;
        else break;
      }
      batches.push(this.#take(end));
    }
    return batches;
  }

  /** The whole lines held, as a batch (for a stream that paused); `undefined` if none. */
  complete(): LineBatch | undefined {
    const end = this.#buf.subarray(0, this.#len).lastIndexOf(LF) + 1;
    return end === 0 ? undefined : this.#take(end);
  }

  /** Ends the stream: everything held, the unterminated last line included; `undefined` if none. */
  end(): LineBatch | undefined {
    return this.#len === 0 ? undefined : this.#take(this.#len);
  }

  #take(end: number): LineBatch {
    const data = this.#buf.slice(0, end);
    this.#buf.copyWithin(0, end, this.#len);
    this.#len -= end;
    this.#base += end;
    return { data, offset: this.#base };
  }
}
