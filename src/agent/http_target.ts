/**
 * The agent's {@linkcode StreamTarget}: a batch is gzipped (node's zlib, at a low level by
 * default: it is several times faster than `CompressionStream`'s fixed level, and log lines still
 * shrink several-fold) and shipped over HTTP by the {@linkcode Shipper}.
 *
 * @module
 */

import { gzip } from "node:zlib";
import type { Shipper } from "./shipper.ts";
import type { DeliveredBatch, PreparedBatch, StreamTarget } from "./tailer.ts";

/** Gzips at once, over every input: about the cores there are to run them. */
const MAX_GZIPS = 2;
let active = 0;
const waiting: (() => void)[] = [];

/**
 * Ships the batches of one input under its source.
 *
 * @example
 * ```ts
 * const target = new HttpTarget(shipper, { source: "nginx", level: 1 });
 * ```
 */
export class HttpTarget implements StreamTarget {
  readonly #shipper: Shipper;
  readonly #source: string;
  readonly #level: number;

  /**
   * @param shipper sends with retries and failover.
   * @param options `source`: the source lines are filed under; `level`: gzip level 1-9 (default 1).
   */
  constructor(shipper: Shipper, options: { source: string; level?: number }) {
    const { source, level = 1 } = options;
    if (!Number.isInteger(level) || level < 1 || level > 9) {
      throw new RangeError(`Gzip level must be 1 to 9, got "${level}"`);
    }
    this.#shipper = shipper;
    this.#source = source;
    this.#level = level;
  }

  /** Gzips `data` (zlib works on it in the background; it stays valid until this resolves). */
  async prepare(data: Uint8Array, _batch: PreparedBatch): Promise<unknown> {
    // Each gzip holds a few hundred KiB of zlib state: thousands of files sealing batches at
    // once must not hold it all at the same time.
    while (active >= MAX_GZIPS) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await new Promise((resolve, reject) => {
        gzip(data, { level: this.#level }, (err, out) => err ? reject(err) : resolve(out));
      });
    } finally {
      active--;
      waiting.shift()?.();
    }
  }

  /** Ships until a server acknowledges. */
  async deliver(payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void> {
    await this.#shipper.send({
      source: this.#source,
      stream: batch.stream,
      offset: batch.offset,
      body: payload as Uint8Array,
      lines: batch.lines,
      bytes: batch.bytes,
      server: batch.server,
    }, { signal, onTry: batch.onTry });
  }
}
