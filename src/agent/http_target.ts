/**
 * The agent's {@linkcode StreamTarget}: a batch is shipped over HTTP by the {@linkcode Shipper},
 * gzipped first (node's zlib, at a low level by default: several times faster than
 * `CompressionStream`'s fixed level) unless compression is off. `"auto"` compresses only when a
 * server is on another machine: on loopback there is no network to save, and gzip costs both ends
 * CPU (about 6 s per GB of ordinary log lines at level 1 for the agent, and gunzip for the server).
 *
 * Uncompressed batches are copied into buffers kept for reuse, so shipping allocates nothing per
 * batch.
 *
 * A stream has up to `inFlight` batches in flight (default 2): the next batch is on its way while
 * the server stores the one before it, which the server's `X-Stream-Start` check keeps in order
 * (see {@linkcode Shipper.send}).
 *
 * @module
 */

import { gzip } from "node:zlib";
import type { Shipper } from "./shipper.ts";
import type { DeliveredBatch, PreparedBatch, StreamTarget } from "../files/tailer.ts";

/** Gzips at once, over every input: about the cores there are to run them. */
const MAX_GZIPS = 2;
let active = 0;
const waiting: (() => void)[] = [];
/** Spare buffers kept per target. */
const MAX_SPARE = 4;
/** Batches of a stream in flight at once, by default. */
export const DEFAULT_IN_FLIGHT = 2;

/** gzip level 1-9, 0 for none, or `"auto"`: level 1 unless every server is on loopback. */
export type CompressionLevel = number | "auto";

/** A prepared batch: the body, and the buffer it lives in when that is to be reused. */
interface Payload {
  body: Uint8Array;
  encoding: string | undefined;
  buffer?: Uint8Array;
}

/**
 * Ships the batches of one input under its source.
 *
 * @example
 * ```ts
 * const target = new HttpTarget(shipper, { source: "nginx", level: "auto" });
 * ```
 */
export class HttpTarget implements StreamTarget {
  readonly #shipper: Shipper;
  readonly #source: string;
  readonly #level: CompressionLevel;
  readonly #spare: Uint8Array[] = [];
  /** Batches of one stream in flight at once. */
  readonly inFlight: number;

  /**
   * @param shipper sends with retries and failover.
   * @param options `source`: the source lines are filed under; `level`: gzip level 1-9, 0 for
   * none, or `"auto"` (the default); `inFlight`: batches of a stream in flight at once, 1 to 8
   * (default 2).
   */
  constructor(
    shipper: Shipper,
    options: { source: string; level?: CompressionLevel; inFlight?: number },
  ) {
    const { source, level = "auto", inFlight = DEFAULT_IN_FLIGHT } = options;
    if (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > 8) {
      throw new RangeError(`Batches in flight must be 1 to 8, got "${inFlight}"`);
    }
    this.inFlight = inFlight;
    if (level !== "auto" && (!Number.isInteger(level) || level < 0 || level > 9)) {
      throw new RangeError(`Gzip level must be 0 to 9 or "auto", got "${level}"`);
    }
    this.#shipper = shipper;
    this.#source = source;
    this.#level = level;
  }

  /** Gzips `data` or copies it: it is borrowed, valid until this resolves. */
  async prepare(data: Uint8Array, _batch: PreparedBatch): Promise<unknown> {
    const level = this.#level === "auto" ? (this.#shipper.allLoopback ? 0 : 1) : this.#level;
    if (level === 0) {
      let buffer = this.#spare.pop();
      if (buffer === undefined || buffer.length < data.length) buffer = new Uint8Array(data.length);
      buffer.set(data);
      return { body: buffer.subarray(0, data.length), encoding: undefined, buffer } as Payload;
    }
    // Each gzip holds a few hundred KiB of zlib state: thousands of files sealing batches at
    // once must not hold it all at the same time.
    while (active >= MAX_GZIPS) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      const body = await new Promise<Uint8Array>((resolve, reject) => {
        gzip(data, { level }, (err, out) => err ? reject(err) : resolve(out));
      });
      return { body, encoding: "gzip" } as Payload;
    } finally {
      active--;
      waiting.shift()?.();
    }
  }

  /** Ships until a server acknowledges. */
  async deliver(payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void> {
    const { body, encoding, buffer } = payload as Payload;
    try {
      await this.#shipper.send({
        source: this.#source,
        stream: batch.stream,
        offset: batch.offset,
        start: batch.previous === undefined ? undefined : batch.start,
        body,
        encoding,
        lines: batch.lines,
        bytes: batch.bytes,
        server: batch.server,
      }, { signal, onTry: batch.onTry, previous: batch.previous });
    } finally {
      // The request is over (answered or abandoned): its buffer can take the next batch.
      if (buffer !== undefined && this.#spare.length < MAX_SPARE) this.#spare.push(buffer);
    }
  }
}
