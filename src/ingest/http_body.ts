/**
 * Reading request bodies within their limits: gzip through node:zlib a bounded piece at a time,
 * the compressed and decompressed sizes both bounded, and a whole body into one buffer for the
 * decoders that need it (OTLP, Loki, Elasticsearch bulk), each byte counted as it arrives.
 *
 * @module
 */

import { createGunzip } from "node:zlib";
import { describe } from "../_util.ts";
import { bodyReaderOf } from "../net/http1.ts";
import { HttpError } from "../net/http_error.ts";

/**
 * gunzip's output comes in pieces of at most this, each one uninterruptible step (0.1-0.6 ms),
 * made only when the one before was read: a gzip bomb expands by one piece per step, at the
 * reader's pace. Web `DecompressionStream` expands a whole input chunk per step, 16 MiB (40-55
 * ms) for 16 KiB of a bomb, and ran 4x slower on log lines (2026-11-30).
 */
const GUNZIP_PIECE_BYTES = 256 * 1024;
/** A whole body of unknown length starts in a buffer of this size, doubled as it fills. */
const WHOLE_FIRST_BYTES = 64 * 1024;

/**
 * Whether `Content-Encoding` says gzip; 415 for an encoding other than gzip or identity.
 */
export function isGzip(contentEncoding: string | null): boolean {
  const encoding = (contentEncoding ?? "").trim().toLowerCase();
  if (encoding === "gzip" || encoding === "x-gzip") return true;
  if (encoding === "" || encoding === "identity") return false;
  throw new HttpError(415, `Content-Encoding "${encoding}" is not supported; use gzip`);
}

/** The 413 of a body over `maxBody`. */
export function bodyTooLarge(maxBody: number): HttpError {
  return new HttpError(413, `Body is over the limit of ${maxBody} bytes`);
}

/**
 * The body's bytes, decompressed when `gzip`, with both sizes bounded by `maxBody` (413 past it,
 * so a gzip bomb expands by at most one piece before it is refused).
 */
export async function* readBody(
  req: Request,
  options: { maxBody: number; gzip: boolean },
): AsyncGenerator<Uint8Array> {
  const { maxBody, gzip } = options;
  if (req.body === null) return;
  if (gzip) {
    yield* gunzipped(req.body, maxBody);
    return;
  }
  const reader = req.body.getReader();
  try {
    let size = 0;
    for (;;) {
      const result = await reader.read();
      if (result.done) return;
      size += result.value.length;
      if (size > maxBody) throw bodyTooLarge(maxBody);
      yield result.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * `body` gunzipped (gzip members one after another, as `gzip -c a b` makes), in pieces of at most
 * {@linkcode GUNZIP_PIECE_BYTES}: node:zlib's stream expands only as its output is read.
 */
async function* gunzipped(
  body: ReadableStream<Uint8Array>,
  maxBody: number,
): AsyncGenerator<Uint8Array> {
  const gunzip = createGunzip({ chunkSize: GUNZIP_PIECE_BYTES });
  const reader = body.getReader();
  // Why feeding stopped early: the compressed body is too large, or reading it failed.
  let failure: unknown;
  const roomOrClosed = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        gunzip.off("drain", done);
        gunzip.off("close", done);
        resolve();
      };
      gunzip.on("drain", done);
      gunzip.on("close", done);
    });
  const feeding = (async () => {
    let fed = 0;
    try {
      for (;;) {
        const result = await reader.read();
        if (result.done) break;
        fed += result.value.length;
        if (fed > maxBody) throw bodyTooLarge(maxBody);
        if (gunzip.destroyed) return;
        if (!gunzip.write(result.value)) await roomOrClosed();
      }
      if (!gunzip.destroyed) gunzip.end();
    } catch (err) {
      failure = err;
      gunzip.destroy();
    }
  })();
  let size = 0;
  try {
    for await (const piece of gunzip as AsyncIterable<Uint8Array>) {
      size += piece.length;
      if (size > maxBody) throw bodyTooLarge(maxBody);
      // A plain view, not node's Buffer: its indexOf and subarray are several times slower.
      yield new Uint8Array(piece.buffer, piece.byteOffset, piece.length);
    }
    // A body cut short (a gzip stream without its end) ends the iteration without an error.
    if (failure !== undefined) throw failure;
  } catch (err) {
    if (failure !== undefined) throw failure;
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, `Body is not valid gzip: ${describe(err)}`);
  } finally {
    gunzip.destroy();
    await reader.cancel().catch(() => {});
    await feeding;
  }
}

/** Options of {@linkcode readWholeBody}. */
export interface WholeBodyOptions {
  /** Largest body, compressed and decompressed alike; 413 past it. */
  maxBody: number;
  /** Whether the body is gzip-compressed (`Content-Encoding: gzip`). */
  gzip: boolean;
  /**
   * Called with the size of each piece of memory the body takes before it is taken (the buffer,
   * and each growth of it), so the caller can count it against a bound and refuse (throw).
   */
  reserve(bytes: number): void;
}

/**
 * The whole body in one buffer (decompressed when `gzip`), for decoders that read a message
 * whole. A plain body of known length is read straight into a buffer of that length; any other
 * grows by doubling. The memory it takes is reported to `reserve` before it is taken.
 */
export async function readWholeBody(
  req: Request,
  options: WholeBodyOptions,
): Promise<Uint8Array> {
  const { maxBody, gzip, reserve } = options;
  if (req.body === null) return new Uint8Array(0);
  const length = Number(req.headers.get("content-length") ?? NaN);
  const readInto = gzip ? undefined : bodyReaderOf(req);
  if (readInto !== undefined && Number.isSafeInteger(length) && length >= 0) {
    if (length > maxBody) throw bodyTooLarge(maxBody);
    reserve(length);
    const buf = new Uint8Array(length);
    let at = 0;
    for (;;) {
      // A body longer than it said is the framing's to refuse; one byte of room finds it.
      const n = await readInto(at < length ? buf.subarray(at) : new Uint8Array(1));
      if (n === null) break;
      at += n;
      if (at > length) throw new HttpError(400, "The body is longer than its Content-Length");
    }
    return buf.subarray(0, at);
  }
  let buf = new Uint8Array(0);
  let at = 0;
  for await (const piece of readBody(req, { maxBody, gzip })) {
    if (at + piece.length > buf.length) {
      let size = Math.max(WHOLE_FIRST_BYTES, buf.length * 2);
      while (size < at + piece.length) size *= 2;
      size = Math.min(size, Math.max(maxBody, at + piece.length));
      reserve(size - buf.length);
      const grown = new Uint8Array(size);
      grown.set(buf.subarray(0, at));
      buf = grown;
    }
    buf.set(piece, at);
    at += piece.length;
  }
  return buf.subarray(0, at);
}
