/**
 * Snappy block-format decompression (what Loki push bodies are compressed with), written by hand:
 * the format is a varint of the uncompressed length followed by literal and copy elements, about
 * fifty lines to read. The declared length is checked against a limit before the output is
 * allocated, every element is checked against the input and the output, and the output must come
 * out exactly as long as declared. Malformed input throws an `HttpError` 400; a declared length
 * over the limit an `HttpError` 413.
 *
 * @module
 */

import type { Turns } from "../ingest/json_record.ts";
import { HttpError } from "../net/http_error.ts";

/** The first bytes of the snappy framing format (a stream identifier chunk), which is refused. */
const FRAMING_MAGIC = [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59];

/**
 * The uncompressed length a snappy block declares, without decompressing it; throws a 400 when
 * the preamble is malformed.
 */
export function snappyLength(input: Uint8Array): number {
  return preamble(input)[0];
}

function preamble(input: Uint8Array): [number, number] {
  let length = 0;
  let pos = 0;
  for (let shift = 0;; shift += 7) {
    if (pos >= input.length) {
      throw malformed(input.length === 0 ? "the body is empty" : "its length is truncated");
    }
    if (shift > 28) throw malformed("its length is longer than 32 bits");
    const b = input[pos++];
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length > 0xffffffff) throw malformed("its length is longer than 32 bits");
  return [length, pos];
}

function malformed(why: string): HttpError {
  return new HttpError(400, `Malformed snappy block: ${why}`);
}

/**
 * Output bytes one {@linkcode SnappyDecoder.step} makes by default: about 0.1-0.5 ms of copying
 * (more for tiny elements).
 */
export const SNAPPY_STEP_BYTES = 256 * 1024;

/**
 * Decompresses a snappy block of at most `maxBytes` uncompressed bytes, in one go.
 *
 * @throws {HttpError} 413 when the block declares more than `maxBytes`, before allocating; 400
 * when it is malformed (or is the snappy framing format, which Loki does not use).
 */
export function decompressSnappy(input: Uint8Array, maxBytes: number): Uint8Array {
  const decoder = new SnappyDecoder(input, maxBytes);
  while (!decoder.step(Infinity));
  return decoder.output;
}

/**
 * Decompresses a snappy block of at most `maxBytes` uncompressed bytes,
 * {@linkcode SNAPPY_STEP_BYTES} of output a step, pausing between steps whenever `turns.due()`:
 * 16 MiB in one go held the event loop for 45-105 ms (2026-11-30).
 *
 * @throws {HttpError} as {@linkcode decompressSnappy}.
 */
export async function decompressSnappySliced(
  input: Uint8Array,
  maxBytes: number,
  turns: Turns,
): Promise<Uint8Array> {
  const decoder = new SnappyDecoder(input, maxBytes);
  while (!decoder.step(SNAPPY_STEP_BYTES)) {
    if (turns.due()) await turns.pause();
  }
  return decoder.output;
}

/**
 * A snappy block decompressed a step at a time: the format is a sequence of literal and copy
 * elements, each read whole, so a step ends between two of them. The output is allocated once, at
 * the declared length, after that length is checked against the limit.
 */
export class SnappyDecoder {
  /** The output: complete once {@linkcode step} returned true. */
  readonly output: Uint8Array;
  readonly #input: Uint8Array;
  #ip: number;
  #op = 0;

  /**
   * @throws {HttpError} 413 when the block declares more than `maxBytes`; 400 for a malformed
   * length or the framing format.
   */
  constructor(input: Uint8Array, maxBytes: number) {
    if (input.length >= FRAMING_MAGIC.length && FRAMING_MAGIC.every((b, i) => input[i] === b)) {
      throw malformed("this is the snappy framing format; send the block format, as Loki expects");
    }
    const [length, start] = preamble(input);
    if (length > maxBytes) {
      throw new HttpError(
        413,
        `The snappy body declares ${length} uncompressed bytes, over the limit of ${maxBytes}`,
      );
    }
    this.#input = input;
    this.#ip = start;
    this.output = new Uint8Array(length);
  }

  /**
   * Decodes elements until about `budget` more output bytes are made; true once the block is
   * decoded whole.
   *
   * @throws {HttpError} 400 when the block is malformed.
   */
  step(budget: number): boolean {
    const input = this.#input;
    const out = this.output;
    const length = out.length;
    const n = input.length;
    let ip = this.#ip;
    let op = this.#op;
    const stop = Math.min(length, op + budget);
    while (ip < n && op < stop) {
      const tag = input[ip++];
      let len: number;
      let offset: number;
      switch (tag & 3) {
        case 0: { // literal
          len = tag >>> 2;
          if (len >= 60) {
            const bytes = len - 59;
            if (ip + bytes > n) throw malformed(`a literal's length is truncated at byte ${ip}`);
            len = 0;
            for (let i = 0; i < bytes; i++) len += input[ip + i] * 2 ** (8 * i);
            ip += bytes;
          }
          len += 1;
          if (len > n - ip) throw malformed(`a literal runs past the input at byte ${ip}`);
          if (len > length - op) throw malformed("a literal overflows the declared length");
          out.set(input.subarray(ip, ip + len), op);
          ip += len;
          op += len;
          continue;
        }
        case 1: // copy, 1-byte offset
          if (ip >= n) throw malformed("a copy is truncated");
          len = ((tag >>> 2) & 7) + 4;
          offset = ((tag >>> 5) << 8) | input[ip++];
          break;
        case 2: // copy, 2-byte offset
          if (ip + 2 > n) throw malformed("a copy is truncated");
          len = (tag >>> 2) + 1;
          offset = input[ip] | input[ip + 1] << 8;
          ip += 2;
          break;
        default: // copy, 4-byte offset
          if (ip + 4 > n) throw malformed("a copy is truncated");
          len = (tag >>> 2) + 1;
          offset = (input[ip] | input[ip + 1] << 8 | input[ip + 2] << 16 | input[ip + 3] << 24) >>>
            0;
          ip += 4;
      }
      if (offset === 0 || offset > op) {
        throw malformed(`a copy refers to offset ${offset} before the start at byte ${ip}`);
      }
      if (len > length - op) throw malformed("a copy overflows the declared length");
      let from = op - offset;
      if (offset >= len) {
        out.copyWithin(op, from, from + len);
        op += len;
      } else {
        // Overlapping: the copy repeats the last `offset` bytes.
        for (const end = op + len; op < end;) out[op++] = out[from++];
      }
    }
    this.#ip = ip;
    this.#op = op;
    if (ip < n && op < length) return false;
    // A literal or copy of zero bytes cannot be written, so input left over means too much.
    if (ip < n) throw malformed(`it holds more than the ${length} bytes it declares`);
    if (op !== length) throw malformed(`it declares ${length} bytes but holds ${op}`);
    return true;
  }
}
