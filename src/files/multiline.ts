/**
 * Multi-line events: a line that matches the `start` pattern begins an event, every other line
 * joins the event before it (a stack trace joins its error line). An event is sent as one line,
 * its lines joined with `join`, so it is stored, tailed and grepped whole.
 *
 * Lines are framed with the same rules as everywhere else (one trailing CR stripped, blank lines
 * skipped, lines longer than `maxLine` split), but here from raw file bytes, so the framer always
 * knows the file offset where the pending event begins: the checkpoint never passes it, and an
 * event is never split by a restart.
 *
 * @module
 */

import type { LinearRegex } from "../text/linear_regex.ts";
import type { FramedLines } from "../text/framing.ts";

/** How continuation lines join the line that starts an event. */
export interface MultilineConfig {
  /**
   * A line matching this starts an event; any other line joins the event before it. A config's
   * pattern runs on the linear-time engine, like every regex logboom is given.
   */
  start: LinearRegex;
  /** Put between joined lines, so an event stays one stored line. Default `\n` as two characters. */
  join: string;
  /** An event is cut after this many lines. Default 500. */
  maxLines: number;
  /** An event is cut at this many bytes. Default 1 MiB (the line limit). */
  maxBytes: number;
  /** A pending event is sent once no line came for this long, in ms. Default 1000. */
  timeoutMs: number;
}

const LF = 10;
const CR = 13;
/** The start pattern is tested against at most this many leading bytes of a line. */
const TEST_BYTES = 4096;
const INITIAL_BUFFER = 16 * 1024;
/** The read buffer doubles while reads fill it, up to this. */
const READ_BUFFER = 256 * 1024;

/**
 * Frames raw file bytes into events. Shaped like {@linkcode LineFramer}: read into
 * {@linkcode buffer}, then {@linkcode commit}; {@linkcode pending} is what the file offset must not
 * yet pass.
 *
 * @example
 * ```ts
 * const framer = new MultilineFramer({ start: compileLinearRegex("^\\d{4}-"), join: "\\n", maxLines: 500,
 *   maxBytes: 1 << 20, timeoutMs: 1000 }, { maxLine: 1 << 20 });
 * const n = await file.read(framer.buffer);
 * const events = framer.commit(n!); // whole events, each one line
 * ```
 */
export class MultilineFramer {
  readonly #start: LinearRegex;
  readonly #join: Uint8Array;
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #maxLine: number;
  readonly #decoder = new TextDecoder();
  /** Raw bytes held: the partial last line, at the front. */
  #buf = new Uint8Array(INITIAL_BUFFER);
  #len = 0;
  /** The last read filled the buffer: the next one gets a larger one. */
  #grow = false;
  /** The event being assembled (reused). */
  #event = new Uint8Array(0);
  #eventLen = 0;
  #eventLines = 0;
  /** Raw bytes of the complete lines that make up the pending event. */
  #eventRaw = 0;
  /** When the pending event last got a line, in ms. */
  #touched = 0;
  readonly #now: () => number;
  /** Events completed by the current call (reused). */
  #out = new Uint8Array(0);
  #outLen = 0;
  #outLines = 0;

  /**
   * @param config the start pattern, join string and limits.
   * @param options `maxLine`: longer raw lines are split (default 1 MiB); `now`: the clock, in
   * ms (default `Date.now`).
   */
  constructor(
    config: MultilineConfig,
    options: { maxLine?: number; now?: () => number } = {},
  ) {
    const { maxLine = 1024 * 1024, now = Date.now } = options;
    if (!Number.isSafeInteger(maxLine) || maxLine < 1) {
      throw new RangeError(`Max line must be a positive integer, got "${maxLine}"`);
    }
    this.#start = config.start;
    this.#join = new TextEncoder().encode(config.join);
    this.#maxLines = config.maxLines;
    this.#maxBytes = Math.max(1, config.maxBytes);
    this.#maxLine = maxLine;
    this.#now = now;
  }

  /** The free part of the read buffer. */
  get buffer(): Uint8Array {
    // Grows while reads fill it (a busy file) or a long partial line leaves little room.
    if (this.#grow || this.#buf.length - this.#len < INITIAL_BUFFER / 4) {
      this.#grow = false;
      const grown = new Uint8Array(this.#buf.length * 2);
      grown.set(this.#buf);
      this.#buf = grown;
    }
    return this.#buf.subarray(this.#len);
  }

  /** Raw bytes not yet part of an emitted event: the pending event's lines and the partial line. */
  get pending(): number {
    return this.#eventRaw + this.#len;
  }

  /** Whether an event is waiting for its next line. */
  get hasEvent(): boolean {
    return this.#eventLines > 0;
  }

  /** When the pending event last got a line, in ms since the epoch. */
  get touched(): number {
    return this.#touched;
  }

  /** Takes `n` bytes read into {@linkcode buffer}; returns the events they completed. */
  commit(n: number): FramedLines | undefined {
    if (!Number.isSafeInteger(n) || n < 0 || this.#len + n > this.#buf.length) {
      throw new RangeError(`Commit of "${n}" bytes exceeds the free buffer`);
    }
    this.#outLen = 0;
    this.#outLines = 0;
    if (this.#len + n === this.#buf.length && this.#buf.length < READ_BUFFER) this.#grow = true;
    const end = this.#len + n;
    const buf = this.#buf;
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl === -1 || nl >= end) {
        if (end - pos >= this.#maxLine) {
          // A partial line of maxLine bytes is a line of its own: memory stays bounded.
          this.#line(buf.subarray(pos, pos + this.#maxLine), this.#maxLine);
          pos += this.#maxLine;
          continue;
        }
        break;
      }
      let stop = nl;
      if (stop > pos && buf[stop - 1] === CR) stop--;
      this.#line(buf.subarray(pos, stop), nl + 1 - pos);
      pos = nl + 1;
    }
    if (pos > 0) buf.copyWithin(0, pos, end);
    this.#len = end - pos;
    return this.#result();
  }

  /** Emits the pending event now (its timeout passed); the partial line stays. */
  flushEvent(): FramedLines | undefined {
    this.#outLen = 0;
    this.#outLines = 0;
    this.#emit();
    return this.#result();
  }

  /** Ends the stream: the partial line is a line, and the pending event is emitted. */
  end(): FramedLines | undefined {
    this.#outLen = 0;
    this.#outLines = 0;
    if (this.#len > 0) {
      let stop = this.#len;
      if (this.#buf[stop - 1] === CR) stop--;
      this.#line(this.#buf.subarray(0, stop), this.#len);
      this.#len = 0;
    }
    this.#emit();
    return this.#result();
  }

  #result(): FramedLines | undefined {
    return this.#outLines === 0
      ? undefined
      : { data: this.#out.subarray(0, this.#outLen), lines: this.#outLines };
  }

  #line(line: Uint8Array, raw: number): void {
    if (isBlank(line)) {
      // Skipped, as everywhere; inside an event it still counts toward the event's raw bytes.
      if (this.#eventLines > 0) this.#eventRaw += raw;
      return;
    }
    this.#touched = this.#now();
    const starts = this.#eventLines === 0 || this.#isStart(line) ||
      this.#eventLines >= this.#maxLines ||
      this.#eventLen + this.#join.length + line.length > this.#maxBytes;
    if (starts) {
      this.#emit();
      this.#append(line);
      this.#eventLines = 1;
      this.#eventRaw = raw;
      return;
    }
    this.#append(this.#join);
    this.#append(line);
    this.#eventLines++;
    this.#eventRaw += raw;
  }

  #isStart(line: Uint8Array): boolean {
    const head = line.length > TEST_BYTES ? line.subarray(0, TEST_BYTES) : line;
    return this.#start.test(this.#decoder.decode(head));
  }

  #append(bytes: Uint8Array): void {
    const need = this.#eventLen + bytes.length;
    if (need > this.#event.length) {
      const grown = new Uint8Array(Math.max(need, this.#event.length * 2, 4096));
      grown.set(this.#event.subarray(0, this.#eventLen));
      this.#event = grown;
    }
    this.#event.set(bytes, this.#eventLen);
    this.#eventLen = need;
  }

  #emit(): void {
    if (this.#eventLines === 0) return;
    const need = this.#outLen + this.#eventLen + 1;
    if (need > this.#out.length) {
      const grown = new Uint8Array(Math.max(need, this.#out.length * 2, 64 * 1024));
      grown.set(this.#out.subarray(0, this.#outLen));
      this.#out = grown;
    }
    this.#out.set(this.#event.subarray(0, this.#eventLen), this.#outLen);
    this.#out[this.#outLen + this.#eventLen] = LF;
    this.#outLen = need;
    this.#outLines++;
    this.#eventLen = 0;
    this.#eventLines = 0;
    this.#eventRaw = 0;
  }
}

function isBlank(line: Uint8Array): boolean {
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    if (b !== 32 && (b < 9 || b > 13)) return false;
  }
  return true;
}
