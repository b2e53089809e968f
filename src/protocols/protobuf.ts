/**
 * A protobuf wire-format reader, written by hand for the two messages logboom receives (OTLP
 * logs, Loki push): varints, 64-bit integers, fixed32/fixed64, length-delimited fields and
 * skipping of unknown fields. Every length is checked against the end of the enclosing message
 * before anything is read or allocated, so malformed input throws a {@linkcode ProtobufError}
 * (never a `RangeError`, never an out-of-bounds read) and memory stays within the input's size.
 *
 * The decoders walk a message as a loop over `tag()` with a `switch` on the field, calling
 * `enter()` for an embedded message and `leave()` after it.
 *
 * @module
 */

/** Malformed protobuf input: what was wrong and at which byte. */
export class ProtobufError extends Error {
  /** The byte of the input where the problem was found. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = "ProtobufError";
    this.offset = offset;
  }
}

/** Wire types. */
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

const TWO_32 = 4294967296;
const decoder = new TextDecoder();

/**
 * Reads one protobuf message (and the messages inside it) from a byte array. `pos` is the next
 * byte, `end` the end of the message being read.
 */
export class ProtoReader {
  readonly buf: Uint8Array;
  pos: number;
  end: number;
  #view: DataView | undefined;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** Whether bytes of the current message are left. */
  more(): boolean {
    return this.pos < this.end;
  }

  /** The next field's tag (`field << 3 | wireType`); throws on field number 0 or a bad wire type. */
  tag(): number {
    const at = this.pos;
    if (at < this.end) {
      const b = this.buf[at];
      if (b < 0x80 && b >= 8 && (b & 7) !== 3 && (b & 7) !== 4 && (b & 7) <= 5) {
        this.pos = at + 1;
        return b;
      }
    }
    const tag = this.uint32();
    const wire = tag & 7;
    if (tag < 8 || wire === 3 || wire === 4 || wire > 5) {
      throw new ProtobufError(
        `Invalid field tag ${tag} (field ${tag >>> 3}, wire type ${wire})`,
        at,
      );
    }
    return tag;
  }

  /** A varint as an unsigned number of at most 32 bits (tags, lengths, enums, `uint32`). */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos < this.end) {
      const b = buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= this.end) throw new ProtobufError("Truncated varint", pos);
      const b = buf[pos++];
      // Bits past the 32nd are dropped, as protobuf does for 32-bit fields.
      if (shift < 32) value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        this.pos = pos;
        return value % TWO_32;
      }
    }
    throw new ProtobufError("Varint longer than 10 bytes", this.pos);
  }

  /**
   * A varint as a signed 64-bit integer (`int64`, `int32`): a number when it is a safe integer,
   * else a `bigint`.
   */
  int64(): number | bigint {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new ProtobufError("Truncated varint", pos);
      const b = buf[pos++];
      if (i < 4) lo |= (b & 0x7f) << (i * 7);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (i * 7 - 32);
      if (b < 0x80) {
        this.pos = pos;
        return combine(lo >>> 0, hi >>> 0, true);
      }
    }
    throw new ProtobufError("Varint longer than 10 bytes", start);
  }

  /** A varint as a boolean. */
  bool(): boolean {
    return this.uint32() !== 0;
  }

  /** A little-endian 64-bit float. */
  double(): number {
    const pos = this.#take(8);
    this.#view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.#view.getFloat64(pos, true);
  }

  /** A fixed32 as an unsigned number. */
  fixed32(): number {
    const pos = this.#take(4);
    const b = this.buf;
    return (b[pos] | b[pos + 1] << 8 | b[pos + 2] << 16 | b[pos + 3] << 24) >>> 0;
  }

  /**
   * A fixed64 count of nanoseconds as whole milliseconds, exactly (a double of the nanoseconds
   * would lose the last bits); 0 stays 0.
   */
  fixed64NanosToMs(): number {
    const pos = this.#take(8);
    const b = this.buf;
    const lo = (b[pos] | b[pos + 1] << 8 | b[pos + 2] << 16 | b[pos + 3] << 24) >>> 0;
    const hi = (b[pos + 4] | b[pos + 5] << 8 | b[pos + 6] << 16 | b[pos + 7] << 24) >>> 0;
    // hi * 2^32 = hi * 4294 * 1e6 + hi * 967296, and hi * 967296 + lo < 2^53.
    return hi * 4294 + Math.floor((hi * 967296 + lo) / 1e6);
  }

  /**
   * Reads a length prefix and checks that many bytes are left in the current message; returns the
   * offset where they end and leaves `pos` at their start.
   */
  length(): number {
    const at = this.pos;
    const len = this.uint32();
    if (len > this.end - this.pos) {
      throw new ProtobufError(
        `Length ${len} runs past the end of its message (${this.end - this.pos} bytes left)`,
        at,
      );
    }
    return this.pos + len;
  }

  /** A length-delimited field's bytes, as a view into the input. */
  bytes(): Uint8Array {
    const end = this.length();
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** A length-delimited field as UTF-8 text (invalid sequences become U+FFFD). */
  string(): string {
    const end = this.length();
    const out = utf8(this.buf, this.pos, end);
    this.pos = end;
    return out;
  }

  /**
   * Starts reading an embedded message: reads its length and makes its end the reader's `end`.
   * Returns the outer `end`, to hand back to {@linkcode ProtoReader.leave}.
   */
  enter(): number {
    const end = this.length();
    const outer = this.end;
    this.end = end;
    return outer;
  }

  /** Finishes an embedded message: checks it was read to its end and restores the outer `end`. */
  leave(outer: number): void {
    if (this.pos !== this.end) throw new ProtobufError("Embedded message overran", this.pos);
    this.end = outer;
  }

  /** Skips a field's value of the given wire type. */
  skip(wire: number): void {
    switch (wire) {
      case VARINT: {
        const buf = this.buf;
        let pos = this.pos;
        for (let i = 0;; i++) {
          if (i === 10) throw new ProtobufError("Varint longer than 10 bytes", this.pos);
          if (pos >= this.end) throw new ProtobufError("Truncated varint", pos);
          if (buf[pos++] < 0x80) break;
        }
        this.pos = pos;
        return;
      }
      case I64:
        this.#take(8);
        return;
      case LEN:
        this.pos = this.length();
        return;
      case I32:
        this.#take(4);
        return;
      default:
        throw new ProtobufError(`Cannot skip wire type ${wire}`, this.pos);
    }
  }

  /** Expects wire type `want` for a known field; throws otherwise. */
  expect(tag: number, want: number): void {
    if ((tag & 7) !== want) {
      throw new ProtobufError(
        `Field ${tag >>> 3} has wire type ${tag & 7}, expected ${want}`,
        this.pos,
      );
    }
  }

  #take(n: number): number {
    const pos = this.pos;
    if (n > this.end - pos) {
      throw new ProtobufError(`Truncated ${n}-byte value (${this.end - pos} bytes left)`, pos);
    }
    this.pos = pos + n;
    return pos;
  }
}

function combine(lo: number, hi: number, signed: boolean): number | bigint {
  if (signed && hi >= 0x80000000) {
    // Two's complement: the magnitude is ~value + 1.
    const nlo = (~lo + 1) >>> 0;
    const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
    if (nhi < 0x200000) return -(nhi * TWO_32 + nlo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
  }
  if (hi < 0x200000) return hi * TWO_32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

// Short strings repeat (attribute keys, severity texts, label values): they are kept in a small
// direct-mapped cache keyed by a hash of their bytes, held in one pool (no allocation per entry).
const CACHE_SLOTS = 4096;
const CACHE_MAX = 32;
const cachePool = new Uint8Array(CACHE_SLOTS * CACHE_MAX);
const cacheLengths = new Int32Array(CACHE_SLOTS).fill(-1);
const cacheStrings: string[] = new Array(CACHE_SLOTS).fill("");

/**
 * UTF-8 text of `buf[start, end)` (invalid sequences become U+FFFD). ASCII strings of up to 32
 * bytes come from a cache of recent ones or are built in JavaScript (a `TextDecoder` call costs
 * 2-4 times more for them, measured 2026-11-30); anything else takes one `TextDecoder.decode`.
 */
export function utf8(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) return "";
  if (n <= CACHE_MAX) {
    // A cheap hash: the length and the first, middle and last two bytes.
    const last = end - 1;
    const mid = start + (n >> 1);
    const h = Math.imul(
      n ^ buf[start] << 8 ^ buf[last] << 16 ^ buf[mid] << 24 ^
        buf[start + 1 <= last ? start + 1 : last] ^
        buf[last - 1 >= start ? last - 1 : start] << 4,
      0x9e3779b1,
    );
    const slot = (h >>> 20) & (CACHE_SLOTS - 1);
    const base = slot * CACHE_MAX;
    if (cacheLengths[slot] === n) {
      let i = 0;
      while (i < n && cachePool[base + i] === buf[start + i]) i++;
      if (i === n) return cacheStrings[slot];
    }
    let s = "";
    let i = 0;
    for (; i < n; i++) {
      const b = buf[start + i];
      if (b >= 0x80) break;
      s += String.fromCharCode(b);
    }
    if (i === n) {
      cachePool.set(buf.subarray(start, end), base);
      cacheLengths[slot] = n;
      cacheStrings[slot] = s;
      return s;
    }
  }
  return decoder.decode(buf.subarray(start, end));
}
