/**
 * Frames a byte stream into whole lines without decoding it.
 *
 * Rules (the same for every input, whatever the read boundaries): lines end at byte 10; one
 * trailing CR is stripped; a line longer than `maxLine` is stored in pieces of `maxLine` bytes,
 * whatever its bytes, never dropped; a line of at most `maxLine` that is empty or whitespace-only
 * is skipped; invalid UTF-8 and NUL bytes pass through as received; the unterminated last line is
 * kept until {@linkcode LineFramer.end}.
 *
 * @module
 */

/** Whole lines framed from a stream, each ending with byte 10. */
export interface FramedLines {
  /**
   * The lines, newline-terminated. Borrowed: a view of the framer's own buffers, valid until the
   * next call on the framer. Copy what you keep (clean input is not copied at all).
   */
  data: Uint8Array;
  /** How many lines `data` holds. */
  lines: number;
  /**
   * Each line's end in `data` (the offset after its newline), when the framer was asked for them
   * ({@linkcode LineFramer.lineEnds}). Borrowed like `data`.
   */
  ends?: Uint32Array;
}

/** Options of {@linkcode LineFramer}. */
export interface LineFramerOptions {
  /** Longer lines are split into pieces of this many bytes. Default 1 MiB. */
  maxLine?: number;
  /**
   * Largest read buffer for ordinary traffic. The buffer starts at 16 KiB (or this, if smaller)
   * and doubles each time a read fills it, so idle connections stay small and busy ones make few
   * reads. It also grows to hold a partial line of up to `maxLine`, and shrinks back afterwards.
   * Default 256 KiB.
   */
  bufferSize?: number;
}

const LF = 10;
const CR = 13;
const SPACE = 32;
const DEFAULT_MAX_LINE = 1024 * 1024;
const DEFAULT_BUFFER_SIZE = 256 * 1024;
const INITIAL_BUFFER_SIZE = 16 * 1024;

function isWhitespace(byte: number): boolean {
  return byte === SPACE || (byte >= 9 && byte <= 13);
}

/**
 * A line splitter that owns its read buffer, so a socket reads straight into it and the partial
 * last line never has to be copied into a separate carry buffer.
 *
 * @example Reading a Deno connection
 * ```ts
 * const framer = new LineFramer({ maxLine: 1024 * 1024 });
 * for (;;) {
 *   const n = await conn.read(framer.buffer);
 *   const framed = n === null ? framer.end() : framer.commit(n);
 *   if (framed) handle(framed.data, framed.lines);
 *   if (n === null) break;
 * }
 * ```
 */
export class LineFramer {
  /** Longer lines are split into pieces of this many bytes. */
  readonly maxLine: number;
  readonly #bufferSize: number;
  /** The size the buffer returns to: grows toward `#bufferSize` while reads fill it. */
  #target: number;
  #buf: Uint8Array;
  /** `#buf` as 32-bit words, for the newline search. */
  #words: Uint32Array;
  /** Bytes held in `#buf`: the partial line carried over, then newly committed bytes. */
  #len = 0;
  /** Bytes at the front of `#buf` already framed; moved out lazily, as the caller may still read them. */
  #consumed = 0;
  /** Whether the line at the front of `#buf` continues one whose first pieces were stored. */
  #continued = false;
  /** Where lines are rewritten when input needs changes (CR, blank lines, splits); reused. */
  #scratch: Uint8Array = new Uint8Array(0);
  /** Where line ends are written while {@linkcode lineEnds} is on; reused, grown when full. */
  #ends: Uint32Array = new Uint32Array(0);
  /**
   * Whether framed lines come with their ends (`FramedLines.ends`), for a consumer that cuts
   * batches at line counts (the nats sink): one store per line, so off unless asked for.
   */
  lineEnds = false;

  /** @param options see {@linkcode LineFramerOptions} for the defaults. */
  constructor(options: LineFramerOptions = {}) {
    const { maxLine = DEFAULT_MAX_LINE, bufferSize = DEFAULT_BUFFER_SIZE } = options;
    if (!Number.isSafeInteger(maxLine) || maxLine < 1) {
      throw new RangeError(`Max line must be a positive integer, got "${maxLine}"`);
    }
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(`Buffer size must be a positive integer, got "${bufferSize}"`);
    }
    this.maxLine = maxLine;
    this.#bufferSize = bufferSize;
    this.#target = Math.min(INITIAL_BUFFER_SIZE, bufferSize);
    this.#buf = new Uint8Array(this.#target);
    this.#words = wordsOf(this.#buf);
  }

  /** The free part of the read buffer: read into it, then call {@linkcode commit}. */
  get buffer(): Uint8Array {
    this.#compact();
    return this.#buf.subarray(this.#len);
  }

  /** Bytes of the unterminated last line held so far. */
  get pending(): number {
    return this.#len - this.#consumed;
  }

  /** Takes `n` bytes just read into {@linkcode buffer}; returns the lines they completed. */
  commit(n: number): FramedLines | undefined {
    this.#compact();
    if (!Number.isSafeInteger(n) || n < 0 || this.#len + n > this.#buf.length) {
      throw new RangeError(`Commit of "${n}" bytes exceeds the free buffer`);
    }
    if (n > 0 && this.#len + n === this.#buf.length && this.#target < this.#bufferSize) {
      this.#target = Math.min(this.#target * 2, this.#bufferSize);
    }
    this.#len += n;
    return this.#frame(false);
  }

  /**
   * Copies `chunk` in and frames it; for inputs that receive chunks rather than read. The result
   * is borrowed when the chunk fit the buffer in one go, and a fresh array otherwise.
   */
  push(chunk: Uint8Array): FramedLines | undefined {
    const free = this.buffer;
    if (chunk.length <= free.length) {
      free.set(chunk);
      return this.commit(chunk.length);
    }
    const parts: FramedLines[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const room = this.buffer;
      const n = Math.min(room.length, chunk.length - offset);
      room.set(chunk.subarray(offset, offset + n));
      offset += n;
      const framed = this.commit(n);
      if (framed) parts.push({ data: framed.data.slice(), lines: framed.lines });
    }
    return concat(parts);
  }

  /** Ends the stream: the unterminated last line, if any, becomes a line of its own. */
  end(): FramedLines | undefined {
    this.#compact();
    return this.#frame(true);
  }

  #frame(final: boolean): FramedLines | undefined {
    const maxLine = this.maxLine;
    const view = this.#buf.subarray(0, this.#len);
    const words = this.#words;
    const len = view.length;
    // Clean input is returned as a view of the read buffer, not copied; only a stripped CR, a
    // skipped line or a split forces the runs of untouched bytes through the scratch array.
    let out: Uint8Array | undefined;
    let w = 0;
    let runStart = 0;
    let pos = 0;
    let lines = 0;
    const wantEnds = this.lineEnds;
    let ends = this.#ends;
    const copyRun = (end: number, newline: boolean) => {
      if (out === undefined) {
        const size = len + Math.ceil(len / maxLine) + 1;
        if (this.#scratch.length < size) this.#scratch = new Uint8Array(size);
        out = this.#scratch;
      }
      out.set(view.subarray(runStart, end), w);
      w += end - runStart;
      if (newline) out[w++] = LF;
    };
    const pieces = (from: number, to: number) => {
      copyRun(from, false);
      for (let p = from; p < to; p += maxLine) {
        runStart = p;
        copyRun(Math.min(p + maxLine, to), true);
        if (wantEnds) {
          if (lines === ends.length) ends = this.#growEnds();
          ends[lines] = w;
        }
        lines++;
      }
    };
    while (pos < len) {
      let nl = nextNewline(view, words, pos);
      if (nl === -1) {
        const held = len - pos;
        // A partial line past maxLine is stored as pieces now, so memory stays bounded. It is
        // surely over-long once it holds maxLine + 1 bytes, unless that last byte is a CR the
        // next byte may prove to be its line's end.
        if (held > maxLine && !(held === maxLine + 1 && view[len - 1] === CR && !final)) {
          const cut = pos + maxLine * Math.floor((held - 1) / maxLine);
          pieces(pos, cut);
          pos = cut;
          runStart = pos;
          this.#continued = true;
          continue;
        }
        if (!final) break;
        nl = len;
      }
      let end = nl;
      if (end > pos && view[end - 1] === CR) end--;
      if (this.#continued) {
        // The rest of a line already stored in pieces: stored too, unless nothing is left.
        this.#continued = false;
        pieces(pos, end);
      } else if (end - pos > maxLine) {
        pieces(pos, end);
      } else {
        let blank = true;
        // A line that starts with a visible byte is not blank: the usual case costs one test.
        for (let i = pos; i < end && blank; i++) blank = isWhitespace(view[i]);
        if (blank) {
          copyRun(pos, false);
        } else if (end !== nl || nl === len) {
          copyRun(end, true);
          if (wantEnds) {
            if (lines === ends.length) ends = this.#growEnds();
            ends[lines] = w;
          }
          lines++;
        } else {
          // Untouched: part of the run copied later (at `w`), or of `view` itself.
          if (wantEnds) {
            if (lines === ends.length) ends = this.#growEnds();
            ends[lines] = w + nl + 1 - runStart;
          }
          lines++;
          pos = nl + 1;
          continue;
        }
      }
      pos = nl + 1;
      runStart = pos;
    }
    let data: Uint8Array | undefined;
    if (out === undefined) {
      if (pos > 0) data = view.subarray(0, pos);
    } else {
      if (runStart < pos) copyRun(pos, false);
      if (w > 0) data = out.subarray(0, w);
    }
    this.#consumed = Math.min(pos, len);
    if (data === undefined) return undefined;
    return wantEnds ? { data, lines, ends: ends.subarray(0, lines) } : { data, lines };
  }

  /** `#ends` twice as large (at least 1,024), what it held kept. */
  #growEnds(): Uint32Array {
    const grown = new Uint32Array(Math.max(1024, this.#ends.length * 2));
    grown.set(this.#ends);
    return this.#ends = grown;
  }

  /** Moves the partial line to the front; grows the buffer when it is full of one partial line. */
  #compact(): void {
    const consumed = this.#consumed;
    this.#consumed = 0;
    const rest = this.#len - consumed;
    if (rest > 0 && consumed > 0) this.#buf.copyWithin(0, consumed, this.#len);
    this.#len = rest;
    let size = this.#buf.length;
    // Room for a partial line of maxLine + 1 bytes ending in CR, and one more byte to read.
    if (rest === size) size = Math.min(size * 2, this.maxLine + this.#bufferSize + 2);
    else if (size < this.#target) size = this.#target;
    else if (size > this.#target && rest < this.#target / 2) {
      size = this.#target;
      this.#scratch = new Uint8Array(0);
    }
    if (size !== this.#buf.length) {
      const resized = new Uint8Array(size);
      resized.set(this.#buf.subarray(0, rest));
      this.#buf = resized;
      this.#words = wordsOf(resized);
    }
  }
}

function wordsOf(buf: Uint8Array): Uint32Array {
  return new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
}

/**
 * The index of the next byte 10 in `bytes` from `from`, or -1. Tests four bytes at a time with
 * the "has a zero byte" bit trick on `word ^ 0x0a0a0a0a`, about twice as fast as
 * `Uint8Array.prototype.indexOf` for log-sized lines. `words` views the same buffer from byte 0.
 */
function nextNewline(bytes: Uint8Array, words: Uint32Array, from: number): number {
  const end = bytes.length;
  let i = from;
  for (; (i & 3) !== 0; i++) {
    // Ran out before reaching a word boundary: the word scan below would start behind `from`.
    if (i >= end) return -1;
    if (bytes[i] === LF) return i;
  }
  let w = i >>> 2;
  const lastWord = end >>> 2;
  for (; w < lastWord; w++) {
    const v = words[w] ^ 0x0a0a0a0a;
    if (((v - 0x01010101) & ~v & 0x80808080) !== 0) break;
  }
  for (i = w << 2; i < end; i++) if (bytes[i] === LF) return i;
  return -1;
}

function concat(parts: FramedLines[]): FramedLines | undefined {
  if (parts.length <= 1) return parts[0];
  let size = 0;
  let lines = 0;
  for (const part of parts) {
    size += part.data.length;
    lines += part.lines;
  }
  const data = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    offset += part.data.length;
  }
  return { data, lines };
}
