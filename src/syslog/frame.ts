/**
 * Frames syslog messages out of a TCP byte stream (RFC 6587) or UDP datagrams, without decoding
 * them: each message becomes one newline-terminated line, and the lines of a read are returned
 * together in one batch, as {@linkcode ../text/framing.ts} does for raw lines.
 *
 * TCP framing is decided per frame, as rsyslog and Vector do:
 *
 * - A frame whose first byte is `1`-`9` is octet counted: `LEN SP MSG`, LEN in decimal with at
 *   most {@linkcode MAX_LEN_DIGITS} digits, MSG exactly LEN bytes.
 * - Any other frame is a line ending at LF; a CR just before the LF is stripped.
 * - A frame that starts with `0` is a line too, and a framing error when it looks like a count
 *   (`0 msg`, `012 msg`: LEN 0 or a leading zero).
 *
 * Rules, the same whatever the read boundaries:
 *
 * - One trailing LF (or CRLF) inside an octet-counted frame is dropped: syslog-ng and rsyslog put
 *   the LF inside the count.
 * - Any other LF, CR or NUL inside a message is written as `#012`, `#015` or `#000`, as rsyslog's
 *   `escapeControlCharactersOnReceive` does, so that one message is always one stored line.
 *   Other bytes (tabs, invalid UTF-8) pass through as received.
 * - A frame that starts with `1`-`9` but whose header is not `LEN SP` with LEN of at most
 *   {@linkcode MAX_LEN_DIGITS} digits (say a raw line `2026-11-30 ...`) is a framing error: it
 *   is counted in {@linkcode SyslogFramer.errors} and read as a line ending at the next LF,
 *   stored whole, so neither it nor the good frames after it are lost.
 * - A message longer than `maxMessage` is stored as pieces of `maxMessage` received bytes
 *   (counted once per message in {@linkcode SyslogFramer.split}); it is streamed out as it
 *   arrives, never buffered whole, whatever LEN announces. A framer holds a read region of at
 *   most `maxMessage + bufferSize` (+ 12) bytes and an output region about as large, which grows
 *   only for escapes (at most four bytes per byte read) and shrinks back when traffic calms.
 * - A message that is empty or only whitespace is skipped (an LF after an octet-counted frame,
 *   say): batches hold no blank lines.
 * - {@linkcode SyslogFramer.end} stores the unterminated last line; an octet-counted frame cut
 *   short by the end of the stream is stored as far as it came and counted as a framing error.
 *
 * @module
 */

/** Messages framed from a stream or from datagrams, each a line ending with byte 10. */
export interface SyslogFrames {
  /**
   * The messages, newline-terminated. Borrowed: a view of the framer's own buffer, valid until
   * the next call on the framer. Copy what you keep.
   */
  data: Uint8Array;
  /** How many messages `data` holds. */
  lines: number;
  /**
   * Where each message ends: `ends[i]` is the offset in `data` of the LF that ends message `i`,
   * so message `i` is `data.subarray(i === 0 ? 0 : ends[i - 1] + 1, ends[i])`. Borrowed too.
   * It saves a second search for the newlines when each message is parsed.
   */
  ends: Uint32Array;
}

/** Options of {@linkcode SyslogFramer} and {@linkcode DatagramFramer}. */
export interface SyslogFramerOptions {
  /**
   * Longer messages are stored as pieces of this many bytes. Default 64 KiB
   * ({@linkcode DEFAULT_MAX_MESSAGE}); at least 1 KiB, at most 16 MiB.
   */
  maxMessage?: number;
  /**
   * Largest read buffer for ordinary traffic (TCP only). The buffer starts at 16 KiB (or this, if
   * smaller) and doubles each time a read fills it; it also grows to hold a partial message of up
   * to `maxMessage`, and shrinks back afterwards. Default 256 KiB.
   */
  bufferSize?: number;
}

/** Default largest message: longer ones are split. */
export const DEFAULT_MAX_MESSAGE = 64 * 1024;
/** Smallest `maxMessage` allowed. */
export const MIN_MAX_MESSAGE = 1024;
/** Largest `maxMessage` allowed. */
export const MAX_MAX_MESSAGE = 16 * 1024 * 1024;
/**
 * Most digits an octet count may have: LEN up to 99,999,999. A longer run of digits is not a
 * count but a line that starts with a number.
 */
export const MAX_LEN_DIGITS = 8;

const LF = 10;
const CR = 13;
const SPACE = 32;
const HASH = 0x23;
const ZERO = 0x30;
const DEFAULT_BUFFER_SIZE = 256 * 1024;
const INITIAL_BUFFER_SIZE = 16 * 1024;
/** Room for `LEN SP` in front of a frame. */
const HEADER_ROOM = MAX_LEN_DIGITS + 2;

/** Checks `maxMessage` against its bounds; returns the default when it is undefined. */
export function checkMaxMessage(maxMessage: number | undefined): number {
  const max = maxMessage ?? DEFAULT_MAX_MESSAGE;
  if (!Number.isSafeInteger(max) || max < MIN_MAX_MESSAGE || max > MAX_MAX_MESSAGE) {
    throw new RangeError(
      `Max message must be an integer from ${MIN_MAX_MESSAGE} to ${MAX_MAX_MESSAGE} bytes, got "${max}"`,
    );
  }
  return max;
}

/**
 * A streaming syslog framer for TCP (and TLS) connections. It owns its read buffer, so a socket
 * reads straight into it; the framed messages are written into a second region of the same
 * memory, so framing allocates nothing per message.
 *
 * @example Reading a Deno connection
 * ```ts
 * const framer = new SyslogFramer({ maxMessage: 64 * 1024 });
 * for (;;) {
 *   const n = await conn.read(framer.buffer);
 *   const framed = n === null ? framer.end() : framer.commit(n);
 *   if (framed) handle(framed.data, framed.lines, framed.ends);
 *   if (n === null) break;
 * }
 * // framer.errors and framer.split count bad headers and split messages.
 * ```
 */
export class SyslogFramer {
  /** Longer messages are stored as pieces of this many bytes. */
  readonly maxMessage: number;
  readonly #bufferSize: number;
  /** The most the read region may need: a frame of `maxMessage` with header, plus a read. */
  readonly #hardCap: number;
  /** The size the read region returns to: grows toward `#bufferSize` while reads fill it. */
  #target: number;
  /** Read region `[0, #cap)`, then the output region `[#cap, #mem.length)`. */
  #mem: Uint8Array;
  /** `#mem` as 32-bit words, for the byte searches. */
  #words: Uint32Array;
  #cap: number;
  /** Bytes held in the read region: the partial frame carried over, then newly read bytes. */
  #len = 0;
  /** Bytes at the front of the read region already framed; moved out on the next call. */
  #consumed = 0;
  /** Content bytes still to come of an octet-counted frame above `maxMessage`. */
  #octetLeft = 0;
  /** Whether the current LF frame continues one whose first pieces were stored. */
  #lfContinued = false;
  /** Whether the frame at the front is read as a line although it starts with 1-9 (bad LEN). */
  #asLine = false;
  /** Whether pieces of the current long frame were stored (it is counted in `split` once). */
  #splitting = false;
  #ends = new Uint32Array(256);
  #errors = 0;
  #split = 0;
  #messages = 0;

  // State of one #frame call.
  #pos = 0;
  #lines = 0;
  /** Whether output goes to the output region (else it is the read region's `[0, #pos)`). */
  #copying = false;
  /** Bytes written to the output region. */
  #w = 0;
  /** Start of the read bytes that are output unchanged and not yet copied. */
  #runStart = 0;
  /** The first message of that run: its `ends` are read-region offsets until copied. */
  #runLine = 0;

  /** @param options see {@linkcode SyslogFramerOptions} for the defaults. */
  constructor(options: SyslogFramerOptions = {}) {
    const { bufferSize = DEFAULT_BUFFER_SIZE } = options;
    this.maxMessage = checkMaxMessage(options.maxMessage);
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(`Buffer size must be a positive integer, got "${bufferSize}"`);
    }
    this.#bufferSize = bufferSize;
    this.#hardCap = this.maxMessage + HEADER_ROOM + 2 + bufferSize;
    this.#target = Math.min(INITIAL_BUFFER_SIZE, bufferSize);
    this.#cap = this.#target;
    this.#mem = new Uint8Array(this.#cap + outputRoom(this.#cap));
    this.#words = wordsOf(this.#mem);
  }

  /** Frames whose header was not a valid `LEN SP`, or that the stream's end cut short. */
  get errors(): number {
    return this.#errors;
  }

  /** Messages longer than `maxMessage`, stored in pieces. */
  get split(): number {
    return this.#split;
  }

  /** Messages (pieces counted one each) framed so far. */
  get messages(): number {
    return this.#messages;
  }

  /** The free part of the read buffer: read into it, then call {@linkcode commit}. */
  get buffer(): Uint8Array {
    this.#compact();
    return this.#mem.subarray(this.#len, this.#cap);
  }

  /** Bytes of the unfinished last frame held so far. */
  get pending(): number {
    return this.#len - this.#consumed;
  }

  /** Bytes of memory this framer holds now (read and output regions). */
  get memory(): number {
    return this.#mem.length + this.#ends.byteLength;
  }

  /** Takes `n` bytes just read into {@linkcode buffer}; returns the messages they completed. */
  commit(n: number): SyslogFrames | undefined {
    this.#compact();
    if (!Number.isSafeInteger(n) || n < 0 || this.#len + n > this.#cap) {
      throw new RangeError(`Commit of "${n}" bytes exceeds the free buffer`);
    }
    if (n > 0 && this.#len + n === this.#cap && this.#target < this.#bufferSize) {
      this.#target = Math.min(this.#target * 2, this.#bufferSize);
    }
    this.#len += n;
    return this.#frame(false);
  }

  /**
   * Copies `chunk` in and frames it; for inputs that receive chunks rather than read. The result
   * is borrowed when the chunk fit the buffer in one go, and a fresh copy otherwise.
   */
  push(chunk: Uint8Array): SyslogFrames | undefined {
    const parts: SyslogFrames[] = [];
    let offset = 0;
    do {
      const room = this.buffer;
      const n = Math.min(room.length, chunk.length - offset);
      room.set(chunk.subarray(offset, offset + n));
      offset += n;
      const framed = this.commit(n);
      if (framed) parts.push(offset < chunk.length ? copyFrames(framed) : framed);
    } while (offset < chunk.length);
    return concatFrames(parts);
  }

  /** Ends the stream: the unfinished last frame, if any, is stored as far as it came. */
  end(): SyslogFrames | undefined {
    this.#compact();
    return this.#frame(true);
  }

  #frame(final: boolean): SyslogFrames | undefined {
    this.#pos = 0;
    this.#lines = 0;
    this.#copying = false;
    this.#w = 0;
    this.#runStart = 0;
    this.#runLine = 0;
    const len = this.#len;
    while (this.#pos < len) {
      let more: boolean;
      if (this.#octetLeft > 0) more = this.#octetPiece(final);
      else {
        const first = this.#mem[this.#pos];
        if (first >= ZERO && first <= ZERO + 9 && !this.#lfContinued && !this.#asLine) {
          more = this.#octetFrame(final);
        } else more = this.#lineFrame(final);
      }
      if (!more) break;
    }
    const pos = this.#pos;
    this.#consumed = pos;
    const lines = this.#lines;
    if (lines === 0) return undefined;
    let data: Uint8Array;
    if (this.#copying) {
      this.#flushRun(pos);
      data = this.#mem.subarray(this.#cap, this.#cap + this.#w);
    } else {
      data = this.#mem.subarray(0, pos);
    }
    return { data, lines, ends: this.#ends.subarray(0, lines) };
  }

  /**
   * Frames the octet-counted frame at `#pos`, whose first byte is a digit. A frame that starts
   * with 0 is a line, and a framing error when it looks like a count (`0 `, `012 `). Returns false
   * when it must wait for more bytes.
   */
  #octetFrame(final: boolean): boolean {
    const mem = this.#mem;
    const len = this.#len;
    const start = this.#pos;
    const limit = Math.min(len, start + MAX_LEN_DIGITS + 1);
    let i = start;
    let count = 0;
    for (; i < limit; i++) {
      const c = mem[i] - ZERO;
      if (c < 0 || c > 9) break;
      count = count * 10 + c;
    }
    if (i === len && i - start <= MAX_LEN_DIGITS && !final) return false;
    const header = i < len && i - start <= MAX_LEN_DIGITS && mem[i] === SPACE;
    if (!header || mem[start] === ZERO) {
      if (header || mem[start] !== ZERO) this.#errors++;
      this.#asLine = true;
      return this.#lineFrame(final);
    }
    const from = i + 1;
    if (count > this.maxMessage) {
      // Streamed out in pieces as it arrives.
      this.#flushRun(start);
      this.#pos = from;
      this.#runStart = from;
      this.#octetLeft = count;
      this.#splitting = false;
      return true;
    }
    let to = from + count;
    if (to > len) {
      if (!final) return false;
      this.#errors++;
      to = len;
    }
    this.#flushRun(start);
    this.#octetContent(from, to);
    this.#pos = to;
    this.#runStart = to;
    return true;
  }

  /** Stores the next piece of an octet-counted frame above `maxMessage`. */
  #octetPiece(final: boolean): boolean {
    const max = this.maxMessage;
    const pos = this.#pos;
    const left = this.#octetLeft;
    const avail = this.#len - pos;
    if (left >= max + 3) {
      // Not the last piece, and surely longer than max once a trailing CRLF is dropped.
      if (avail < max) {
        if (!final) return false;
        this.#errors++;
        this.#octetLeft = 0;
        this.#octetTail(pos, pos + avail);
        return true;
      }
      this.#flushRun(pos);
      if (!this.#splitting) this.#split++;
      this.#splitting = true;
      this.#put(pos, pos + max);
      this.#pos = this.#runStart = pos + max;
      this.#octetLeft = left - max;
      return true;
    }
    let to = pos + left;
    if (avail < left) {
      if (!final) return false;
      this.#errors++;
      to = pos + avail;
    }
    this.#octetLeft = 0;
    this.#octetTail(pos, to);
    return true;
  }

  /** Stores the last part of a long octet-counted frame, `[from, to)`, and consumes it. */
  #octetTail(from: number, to: number): void {
    this.#flushRun(from);
    this.#pos = this.#runStart = to;
    const mem = this.#mem;
    let end = to;
    if (end > from && mem[end - 1] === LF) {
      end--;
      if (end > from && mem[end - 1] === CR) end--;
    }
    const whole = !this.#splitting;
    this.#splitting = false;
    if (end - from > this.maxMessage) {
      if (whole) this.#split++;
    } else if (whole && isBlank(mem, from, end)) {
      // No piece stored before: a blank message, skipped like any other.
      return;
    }
    this.#pieces(from, end);
  }

  /** Stores the content `[from, to)` of an octet-counted frame of at most `maxMessage` bytes. */
  #octetContent(from: number, to: number): void {
    const mem = this.#mem;
    if (to > from && mem[to - 1] === LF) {
      to--;
      if (to > from && mem[to - 1] === CR) to--;
    }
    if (isBlank(mem, from, to)) return;
    this.#put(from, to);
  }

  /**
   * Frames the line at `#pos`, which ends at the next LF. Returns false when it must wait for
   * more bytes.
   */
  #lineFrame(final: boolean): boolean {
    const mem = this.#mem;
    const len = this.#len;
    const max = this.maxMessage;
    const pos = this.#pos;
    let nl = nextControl(mem, this.#words, pos, len);
    let dirty = false;
    while (nl !== -1 && mem[nl] !== LF) {
      if (mem[nl] === CR || mem[nl] === 0) dirty = true;
      nl = nextControl(mem, this.#words, nl + 1, len);
    }
    if (nl === -1) {
      const held = len - pos;
      if (held >= max + 2) {
        // Surely longer than max, whatever comes: store whole pieces now, keep at least two
        // bytes (a CR of a CRLF may be among them).
        const cut = pos + max * Math.floor((held - 2) / max);
        this.#flushRun(pos);
        if (!this.#lfContinued) this.#split++;
        this.#lfContinued = true;
        this.#pieces(pos, cut);
        this.#pos = this.#runStart = cut;
        return true;
      }
      if (!final) return false;
      nl = len;
    }
    this.#asLine = false;
    let end = nl;
    if (end > pos && mem[end - 1] === CR) end--;
    const next = Math.min(nl + 1, len);
    if (this.#lfContinued || end - pos > max) {
      if (!this.#lfContinued) this.#split++;
      this.#lfContinued = false;
      this.#flushRun(pos);
      this.#pieces(pos, end);
      this.#pos = this.#runStart = next;
      return true;
    }
    if (!dirty && nl < len && !isBlank(mem, pos, end)) {
      // Stored as received: stays in the run of unchanged bytes.
      this.#note(nl);
      this.#pos = next;
      return true;
    }
    this.#flushRun(pos);
    if (!isBlank(this.#mem, pos, end)) this.#put(pos, end);
    this.#pos = this.#runStart = next;
    return true;
  }

  /** Stores `[from, to)` as pieces of at most `maxMessage` bytes. */
  #pieces(from: number, to: number): void {
    const max = this.maxMessage;
    for (let p = from; p < to; p += max) this.#put(p, Math.min(p + max, to));
  }

  /**
   * Notes a message ending at `end`: a read-region offset for a message in the run (shifted when
   * the run is copied), an output offset for one written by {@linkcode #put}.
   */
  #note(end: number): void {
    const lines = this.#lines;
    if (lines === this.#ends.length) {
      const grown = new Uint32Array(lines * 2);
      grown.set(this.#ends);
      this.#ends = grown;
    }
    this.#ends[lines] = end;
    this.#lines = lines + 1;
    this.#messages++;
  }

  /** Copies the pending run of unchanged bytes, `[#runStart, to)`, to the output region. */
  #flushRun(to: number): void {
    if (!this.#copying) {
      this.#copying = true;
      this.#w = 0;
    }
    const from = this.#runStart;
    if (to > from) {
      this.#reserve(to - from);
      const at = this.#w;
      this.#mem.copyWithin(this.#cap + at, from, to);
      const ends = this.#ends;
      const shift = at - from;
      for (let i = this.#runLine; i < this.#lines; i++) ends[i] += shift;
      this.#w = at + to - from;
    }
    this.#runStart = to;
    this.#runLine = this.#lines;
  }

  /** Writes the message `[from, to)` of the read region to the output, escaped, with an LF. */
  #put(from: number, to: number): void {
    this.#reserve(to - from + 1);
    let mem = this.#mem;
    const base = this.#cap;
    let w = this.#w;
    let ctl = nextControl(mem, this.#words, from, to);
    while (ctl !== -1) {
      const c = mem[ctl];
      if (c === LF || c === CR || c === 0) break;
      ctl = nextControl(mem, this.#words, ctl + 1, to);
    }
    if (ctl === -1) {
      mem.copyWithin(base + w, from, to);
      w += to - from;
    } else {
      // Each escaped byte takes 4: room for the worst case, then byte by byte.
      this.#reserve(4 * (to - from) + 1);
      mem = this.#mem;
      for (let i = from; i < to; i++) {
        const c = mem[i];
        if (c === LF || c === CR || c === 0) {
          mem[base + w] = HASH;
          mem[base + w + 1] = ZERO;
          mem[base + w + 2] = ZERO + (c >> 3);
          mem[base + w + 3] = ZERO + (c & 7);
          w += 4;
        } else {
          mem[base + w++] = c;
        }
      }
    }
    mem[base + w] = LF;
    this.#w = w + 1;
    this.#note(w);
    // Not part of a run: its end is an output offset already.
    this.#runLine = this.#lines;
  }

  /** Makes room for `n` more output bytes, growing the output region (never the read one). */
  #reserve(n: number): void {
    const need = this.#cap + this.#w + n;
    if (need <= this.#mem.length) return;
    const grown = new Uint8Array(Math.max(need, this.#cap + 2 * (this.#mem.length - this.#cap)));
    grown.set(this.#mem.subarray(0, this.#len));
    grown.set(this.#mem.subarray(this.#cap, this.#cap + this.#w), this.#cap);
    this.#mem = grown;
    this.#words = wordsOf(grown);
  }

  /** Moves the partial frame to the front; resizes the read region as traffic asks. */
  #compact(): void {
    const consumed = this.#consumed;
    this.#consumed = 0;
    const rest = this.#len - consumed;
    if (rest > 0 && consumed > 0) this.#mem.copyWithin(0, consumed, this.#len);
    this.#len = rest;
    let size = this.#cap;
    const outSize = this.#mem.length - size;
    if (rest === size) size = Math.min(size * 2, this.#hardCap);
    else if (size < this.#target) size = this.#target;
    else if (size > this.#target && rest < this.#target / 2) size = this.#target;
    if (size !== this.#cap || outSize > 2 * outputRoom(size)) {
      const resized = new Uint8Array(size + outputRoom(size));
      resized.set(this.#mem.subarray(0, rest));
      this.#mem = resized;
      this.#words = wordsOf(resized);
      this.#cap = size;
    }
  }
}

/**
 * Frames UDP datagrams into a batch: {@linkcode addMessage} for syslog (one datagram is one
 * message), {@linkcode addLines} for raw lines (one or more LF-separated lines per datagram).
 * The batch grows until {@linkcode take}; the caller bounds it by taking when {@linkcode size}
 * is large enough.
 *
 * @example
 * ```ts
 * const framer = new DatagramFramer();
 * for (const datagram of received) framer.addMessage(datagram);
 * const batch = framer.take(); // borrowed until the next add
 * ```
 */
export class DatagramFramer {
  /** Longer messages are stored as pieces of this many bytes. */
  readonly maxMessage: number;
  #out = new Uint8Array(16 * 1024);
  #w = 0;
  #ends = new Uint32Array(64);
  #lines = 0;
  #split = 0;
  #taken = false;

  /** @param options only `maxMessage` applies. */
  constructor(options: SyslogFramerOptions = {}) {
    this.maxMessage = checkMaxMessage(options.maxMessage);
  }

  /** Bytes of the batch so far. */
  get size(): number {
    return this.#taken ? 0 : this.#w;
  }

  /** Messages of the batch so far. */
  get lines(): number {
    return this.#taken ? 0 : this.#lines;
  }

  /** Messages or lines longer than `maxMessage`, stored in pieces. */
  get split(): number {
    return this.#split;
  }

  /**
   * Adds one syslog datagram as one message: one trailing LF (or CRLF) is dropped, other LF, CR
   * and NUL bytes are escaped as `#012`, `#015`, `#000`; an empty or whitespace-only datagram
   * adds nothing. Returns how many lines were added (more than one when split).
   */
  addMessage(datagram: Uint8Array): number {
    this.#reset();
    let to = datagram.length;
    if (to > 0 && datagram[to - 1] === LF) {
      to--;
      if (to > 0 && datagram[to - 1] === CR) to--;
    }
    if (isBlank(datagram, 0, to)) return 0;
    return this.#pieces(datagram, 0, to, true);
  }

  /**
   * Adds the lines of one raw datagram, as the raw TCP input frames them: lines end at LF, one
   * trailing CR is stripped, empty and whitespace-only lines are skipped, other bytes pass
   * through as received, an unterminated last line is a line. Returns how many lines were added.
   */
  addLines(datagram: Uint8Array): number {
    this.#reset();
    let added = 0;
    let pos = 0;
    const len = datagram.length;
    while (pos < len) {
      let nl = datagram.indexOf(LF, pos);
      if (nl === -1) nl = len;
      let end = nl;
      if (end > pos && datagram[end - 1] === CR) end--;
      if (!isBlank(datagram, pos, end)) added += this.#pieces(datagram, pos, end, false);
      pos = nl + 1;
    }
    return added;
  }

  /** The batch so far, or undefined when empty; borrowed until the next add. */
  take(): SyslogFrames | undefined {
    if (this.#taken || this.#lines === 0) {
      this.#taken = true;
      return undefined;
    }
    this.#taken = true;
    return {
      data: this.#out.subarray(0, this.#w),
      lines: this.#lines,
      ends: this.#ends.subarray(0, this.#lines),
    };
  }

  #reset(): void {
    if (!this.#taken) return;
    this.#taken = false;
    this.#w = 0;
    this.#lines = 0;
    if (this.#out.length > 1024 * 1024) this.#out = new Uint8Array(16 * 1024);
  }

  #pieces(bytes: Uint8Array, from: number, to: number, escape: boolean): number {
    const max = this.maxMessage;
    if (to - from > max) this.#split++;
    let n = 0;
    for (let p = from; p < to; p += max) {
      this.#put(bytes, p, Math.min(p + max, to), escape);
      n++;
    }
    return n;
  }

  #put(bytes: Uint8Array, from: number, to: number, escape: boolean): void {
    const worst = (escape ? 4 : 1) * (to - from) + 1;
    if (this.#w + worst > this.#out.length) {
      const grown = new Uint8Array(Math.max(this.#out.length * 2, this.#w + worst));
      grown.set(this.#out.subarray(0, this.#w));
      this.#out = grown;
    }
    const out = this.#out;
    let w = this.#w;
    if (escape) w = writeEscaped(bytes, from, to, out, w);
    else {
      out.set(bytes.subarray(from, to), w);
      w += to - from;
    }
    out[w] = LF;
    if (this.#lines === this.#ends.length) {
      const grown = new Uint32Array(this.#lines * 2);
      grown.set(this.#ends);
      this.#ends = grown;
    }
    this.#ends[this.#lines++] = w;
    this.#w = w + 1;
  }
}

/**
 * Writes `bytes[from, to)` to `out` at `w` with LF, CR and NUL escaped as rsyslog does (`#012`,
 * `#015`, `#000`); returns the offset after the last byte written. `out` must have room for
 * four bytes per input byte.
 */
export function writeEscaped(
  bytes: Uint8Array,
  from: number,
  to: number,
  out: Uint8Array,
  w: number,
): number {
  let run = from;
  for (let i = from; i < to; i++) {
    const c = bytes[i];
    if (c === LF || c === CR || c === 0) {
      if (i > run) {
        out.set(bytes.subarray(run, i), w);
        w += i - run;
      }
      out[w] = HASH;
      out[w + 1] = ZERO;
      out[w + 2] = ZERO + (c >> 3);
      out[w + 3] = ZERO + (c & 7);
      w += 4;
      run = i + 1;
    }
  }
  if (to > run) {
    out.set(bytes.subarray(run, to), w);
    w += to - run;
  }
  return w;
}

/** Room of the output region for a read region of `size`: enough for any unescaped input. */
function outputRoom(size: number): number {
  return size + Math.ceil(size / MIN_MAX_MESSAGE) + 64;
}

function isBlank(bytes: Uint8Array, from: number, to: number): boolean {
  // A message that starts with a visible byte is not blank: the usual case costs one test.
  for (let i = from; i < to; i++) {
    const c = bytes[i];
    if (c !== SPACE && (c < 9 || c > 13)) return false;
  }
  return true;
}

function wordsOf(buf: Uint8Array): Uint32Array {
  return new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
}

/**
 * The index of the next byte below 14 (LF, CR, NUL, tab and the like) in `bytes[from, to)`, or
 * -1. Tests four bytes at a time with the "has a byte less than n" bit trick; `words` views the
 * same buffer from byte 0.
 */
function nextControl(bytes: Uint8Array, words: Uint32Array, from: number, to: number): number {
  let i = from;
  for (; (i & 3) !== 0; i++) {
    if (i >= to) return -1;
    if (bytes[i] < 14) return i;
  }
  let w = i >>> 2;
  const lastWord = to >>> 2;
  for (; w < lastWord; w++) {
    const v = words[w];
    if (((v - 0x0e0e0e0e) & ~v & 0x80808080) !== 0) break;
  }
  for (i = w << 2; i < to; i++) if (bytes[i] < 14) return i;
  return -1;
}

function copyFrames(frames: SyslogFrames): SyslogFrames {
  return { data: frames.data.slice(), lines: frames.lines, ends: frames.ends.slice() };
}

function concatFrames(parts: SyslogFrames[]): SyslogFrames | undefined {
  if (parts.length <= 1) return parts[0];
  let size = 0;
  let lines = 0;
  for (const part of parts) {
    size += part.data.length;
    lines += part.lines;
  }
  const data = new Uint8Array(size);
  const ends = new Uint32Array(lines);
  let offset = 0;
  let line = 0;
  for (const part of parts) {
    data.set(part.data, offset);
    for (let i = 0; i < part.lines; i++) ends[line++] = part.ends[i] + offset;
    offset += part.data.length;
  }
  return { data, lines, ends };
}
