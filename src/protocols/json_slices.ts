/**
 * `JSON.parse` of a large body a slice at a time, so that a 16 MiB OTLP export, Loki push or
 * Elasticsearch document never holds the event loop in one go: `JSON.parse` of 16 MiB of OTLP JSON
 * took 60-200 ms in one step (2026-11-30).
 *
 * A scanner walks the bytes {@linkcode STEP_BYTES} at a time and checks the structure (brackets,
 * commas, colons, where strings and other tokens start and end); the values themselves are made by
 * `JSON.parse`, a run of whole elements at a time. At the end of each step, the containers that
 * have grown large so far are made (from the outside in), and the elements of the innermost one
 * that are complete are parsed into it: `[` + run + `]` (or `{` + members + `}`) is one
 * `JSON.parse` of about a step's bytes. Small containers stay inside their parent's run. A string
 * longer than a step is parsed in pieces cut between characters and outside escapes, and joined.
 *
 * The value is the one `JSON.parse(new TextDecoder(...).decode(bytes))` gives (same property order,
 * duplicate keys resolved the same way, `__proto__` an own property), and the input it accepts is
 * the same, with two bounds that no log sender comes near and that keep memory and each step
 * bounded: nesting deeper than {@linkcode MAX_NESTING} levels, and a key or a number longer than
 * {@linkcode MAX_TOKEN_BYTES} bytes, are refused.
 *
 * @module
 */

import type { Turns } from "../ingest/json_record.ts";

/** Bytes one step scans; each step also parses about this many. */
export const STEP_BYTES = 64 * 1024;
/** Deepest nesting of arrays and objects accepted. */
export const MAX_NESTING = 512;
/** Longest key, and longest number (or other bare token), in bytes. */
export const MAX_TOKEN_BYTES = 64 * 1024;

/** Why a body is not JSON (or not UTF-8 text, when decoding is fatal). */
export class JsonSliceError extends Error {
  /** The byte of the body where it went wrong, as near as known. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = "JsonSliceError";
    this.offset = offset;
  }
}

/** Options of {@linkcode SlicedJsonParser} and {@linkcode parseJsonSliced}. */
export interface SlicedJsonOptions {
  /**
   * Whether bytes that are not UTF-8 are an error (`TextDecoder`'s `fatal`), rather than read as
   * U+FFFD. Default false.
   */
  fatal?: boolean;
}

/**
 * The value of a JSON body, as `JSON.parse` of its UTF-8 text gives it; a body of at most
 * {@linkcode STEP_BYTES} is parsed at once, a larger one a step at a time, pausing whenever
 * `turns.due()`.
 *
 * @throws {JsonSliceError} when the body is not JSON.
 *
 * @example
 * ```ts
 * const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
 * const doc = await parseJsonSliced(new TextEncoder().encode('{"a":[1,2]}'), {
 *   due: () => false,
 *   pause,
 * });
 * ```
 */
export async function parseJsonSliced(
  bytes: Uint8Array,
  turns: Turns,
  options: SlicedJsonOptions = {},
): Promise<unknown> {
  if (bytes.length <= STEP_BYTES) return parseJsonWhole(bytes, options);
  const parser = new SlicedJsonParser(bytes, options);
  while (!parser.step(STEP_BYTES)) {
    if (turns.due()) await turns.pause();
  }
  return parser.result();
}

/** `JSON.parse` of the body's text, in one step; errors as {@linkcode JsonSliceError}. */
export function parseJsonWhole(bytes: Uint8Array, options: SlicedJsonOptions = {}): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: options.fatal ?? false }).decode(bytes);
  } catch {
    throw new JsonSliceError("The body is not valid UTF-8", 0);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new JsonSliceError((err as Error).message, 0);
  }
}

// Byte classes outside strings.
const C_OTHER = 0;
const C_SPACE = 1;
const C_QUOTE = 2;
const C_OPEN_OBJECT = 3;
const C_CLOSE_OBJECT = 4;
const C_OPEN_ARRAY = 5;
const C_CLOSE_ARRAY = 6;
const C_COMMA = 7;
const C_COLON = 8;
const CLASS = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0d]) CLASS[b] = C_SPACE;
CLASS[0x22] = C_QUOTE;
CLASS[0x7b] = C_OPEN_OBJECT;
CLASS[0x7d] = C_CLOSE_OBJECT;
CLASS[0x5b] = C_OPEN_ARRAY;
CLASS[0x5d] = C_CLOSE_ARRAY;
CLASS[0x2c] = C_COMMA;
CLASS[0x3a] = C_COLON;
/** Bytes that end a run of plain string content: `"` and `\`. */
const STRING_STOP = new Uint8Array(256);
STRING_STOP[0x22] = 1;
STRING_STOP[0x5c] = 1;
const BACKSLASH = 0x5c;

// What the scanner expects next, in the innermost container.
const S_VALUE = 0;
const S_ARRAY_FIRST = 1;
const S_OBJECT_FIRST = 2;
const S_KEY = 3;
const S_COLON = 4;
const S_AFTER = 5;
const S_STRING = 6;
const S_TOKEN = 7;
const S_DONE = 8;

const ARRAY = 0;
const OBJECT = 1;

/**
 * The resumable parser behind {@linkcode parseJsonSliced}. Level 0 holds the top-level value;
 * level `d` > 0 is the `d`-th open container. Per level it keeps where the run of elements not
 * parsed yet starts (`-1`: none), where the current element started, where the last one ended,
 * and (objects) the current member's key; a level that was made holds its value.
 */
export class SlicedJsonParser {
  readonly #bytes: Uint8Array;
  readonly #decoder: TextDecoder;
  #pos = 0;
  #state = S_VALUE;
  #depth = 0;
  readonly #kind = new Uint8Array(MAX_NESTING + 1);
  readonly #runStart = new Float64Array(MAX_NESTING + 1).fill(-1);
  readonly #elementStart = new Float64Array(MAX_NESTING + 1).fill(-1);
  readonly #lastEnd = new Float64Array(MAX_NESTING + 1).fill(-1);
  readonly #keyStart = new Float64Array(MAX_NESTING + 1);
  readonly #keyEnd = new Float64Array(MAX_NESTING + 1);
  /** The containers made so far, by level; level 0 is an array holding the top-level value. */
  readonly #values: (unknown[] | Record<string, unknown> | undefined)[] = [[]];
  /** Per object level that was made: the key of its member being made. */
  readonly #memberKey: string[] = [];
  // The string or bare token being scanned.
  #tokenStart = 0;
  #stringIsKey = false;
  #lastEscape = -1;
  /** A long string made piece by piece: what is parsed of it, and where the rest starts. */
  #long: string | undefined;
  #longFrom = 0;
  #largestParse = 0;

  /**
   * @param bytes the body, kept and read in place until the end.
   * @param options see {@linkcode SlicedJsonOptions}.
   */
  constructor(bytes: Uint8Array, options: SlicedJsonOptions = {}) {
    this.#bytes = bytes;
    this.#decoder = new TextDecoder("utf-8", { fatal: options.fatal ?? false, ignoreBOM: true });
    // TextDecoder drops a leading byte order mark; so does this parser.
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) this.#pos = 3;
  }

  /**
   * Scans about `budget` more bytes and parses what they completed; true once the body is read.
   *
   * @throws {JsonSliceError} when the body is not JSON.
   */
  step(budget: number): boolean {
    if (this.#state === S_DONE) return true;
    budget = Math.max(1, Math.floor(budget));
    const n = this.#bytes.length;
    const limit = Math.min(this.#pos + budget, n);
    this.#scan(limit);
    if (this.#pos >= n) {
      this.#end();
      return true;
    }
    this.#settle(budget);
    return false;
  }

  /** The most bytes given to one `JSON.parse` so far: the bound on a step's parsing work. */
  get largestParse(): number {
    return this.#largestParse;
  }

  /** The value, once {@linkcode step} returned true. */
  result(): unknown {
    if (this.#state !== S_DONE) throw new Error("The body is not read yet");
    return (this.#values[0] as unknown[])[0];
  }

  #scan(limit: number): void {
    const bytes = this.#bytes;
    const kind = this.#kind;
    const runStart = this.#runStart;
    const elementStart = this.#elementStart;
    const lastEnd = this.#lastEnd;
    let i = this.#pos;
    let state = this.#state;
    let depth = this.#depth;
    let tokenStart = this.#tokenStart;
    let isKey = this.#stringIsKey;
    while (i < limit) {
      let b = bytes[i];
      if (state === S_STRING) {
        while (STRING_STOP[b] === 0 && ++i < limit) b = bytes[i];
        if (i >= limit) break;
        if (b === BACKSLASH) {
          this.#lastEscape = i;
          i += 2;
          continue;
        }
        i++;
        if (isKey) {
          if (i - tokenStart > MAX_TOKEN_BYTES) throw this.#tooLong("A key", tokenStart);
          this.#keyStart[depth] = tokenStart;
          this.#keyEnd[depth] = i;
          state = S_COLON;
        } else {
          if (this.#long !== undefined) this.#endLong(depth, i);
          lastEnd[depth] = i;
          state = S_AFTER;
        }
        continue;
      }
      if (state === S_TOKEN) {
        while (CLASS[b] === C_OTHER && ++i < limit) b = bytes[i];
        if (i - tokenStart > MAX_TOKEN_BYTES) {
          throw this.#tooLong("A number or other token", tokenStart);
        }
        if (i >= limit) break;
        lastEnd[depth] = i;
        state = S_AFTER;
        continue;
      }
      const c = CLASS[b];
      if (c === C_SPACE) {
        i++;
        continue;
      }
      switch (state) {
        case S_AFTER:
          if (depth === 0) {
            throw new JsonSliceError(
              `Unexpected non-whitespace character after JSON at byte ${i}`,
              i,
            );
          }
          if (c === C_COMMA) {
            state = kind[depth] === OBJECT ? S_KEY : S_VALUE;
          } else if (c === (kind[depth] === OBJECT ? C_CLOSE_OBJECT : C_CLOSE_ARRAY)) {
            depth = this.#close(depth, i);
          } else {
            throw this.#unexpected(i);
          }
          break;
        case S_OBJECT_FIRST:
        case S_KEY:
          if (c === C_QUOTE) {
            if (runStart[depth] < 0) runStart[depth] = i;
            elementStart[depth] = i;
            tokenStart = i;
            isKey = true;
            state = S_STRING;
          } else if (c === C_CLOSE_OBJECT && state === S_OBJECT_FIRST) {
            depth = this.#close(depth, i);
            state = S_AFTER;
          } else {
            throw this.#unexpected(i);
          }
          break;
        case S_COLON:
          if (c !== C_COLON) throw this.#unexpected(i);
          state = S_VALUE;
          break;
        default: // S_VALUE, S_ARRAY_FIRST
          if (c === C_CLOSE_ARRAY && state === S_ARRAY_FIRST) {
            depth = this.#close(depth, i);
            state = S_AFTER;
            break;
          }
          if (kind[depth] === ARRAY) {
            if (runStart[depth] < 0) runStart[depth] = i;
            elementStart[depth] = i;
          }
          if (c === C_QUOTE) {
            tokenStart = i;
            isKey = false;
            state = S_STRING;
          } else if (c === C_OTHER) {
            tokenStart = i;
            state = S_TOKEN;
          } else if (c === C_OPEN_OBJECT || c === C_OPEN_ARRAY) {
            if (depth === MAX_NESTING) {
              throw new JsonSliceError(`Nested deeper than ${MAX_NESTING} levels at byte ${i}`, i);
            }
            depth++;
            runStart[depth] = -1;
            elementStart[depth] = -1;
            lastEnd[depth] = -1;
            if (c === C_OPEN_OBJECT) {
              kind[depth] = OBJECT;
              state = S_OBJECT_FIRST;
            } else {
              kind[depth] = ARRAY;
              state = S_ARRAY_FIRST;
            }
          } else {
            throw this.#unexpected(i);
          }
      }
      i++;
    }
    this.#pos = i;
    this.#state = state;
    this.#depth = depth;
    this.#tokenStart = tokenStart;
    this.#stringIsKey = isKey;
  }

  /** The long string being made at `level` ends before `end` (after its closing quote). */
  #endLong(level: number, end: number): void {
    const text = this.#long + this.#stringPiece(this.#longFrom, end - 1);
    this.#long = undefined;
    this.#attach(level, text);
  }

  #tooLong(what: string, at: number): JsonSliceError {
    return new JsonSliceError(`${what} longer than ${MAX_TOKEN_BYTES} bytes at byte ${at}`, at);
  }

  /** The container at `depth` ends with the bracket at `i`; returns the level around it. */
  #close(depth: number, i: number): number {
    const value = this.#values[depth];
    if (value !== undefined) {
      this.#flush(depth);
      this.#values[depth] = undefined;
      this.#attach(depth - 1, value);
    }
    this.#lastEnd[depth - 1] = i + 1;
    return depth - 1;
  }

  /** Puts `value`, a member made alone, into the container made at `level`. */
  #attach(level: number, value: unknown): void {
    const container = this.#values[level]!;
    if (this.#kind[level] === OBJECT) {
      setMember(container as Record<string, unknown>, this.#memberKey[level], value);
    } else {
      (container as unknown[]).push(value);
    }
  }

  /**
   * The end of a step: makes the containers that grew large, from the outside in, and parses the
   * complete elements of each made one into it. A container whose current element started less
   * than `budget` bytes ago keeps that element in its run (parsed with later ones).
   */
  #settle(budget: number): void {
    const pos = this.#pos;
    for (let level = 0;; level++) {
      if (this.#values[level] === undefined) {
        this.#values[level] = this.#kind[level] === OBJECT ? {} : [];
        this.#memberOpens(level - 1);
      }
      this.#flush(level);
      if (level === this.#depth) {
        this.#settleString(budget);
        return;
      }
      if (this.#values[level + 1] === undefined && pos - this.#elementStart[level] <= budget) {
        return;
      }
      // The current element is made on its own.
      this.#runStart[level] = -1;
    }
  }

  /** At the end of a step inside a string value: a long one is parsed so far, and goes on. */
  #settleString(budget: number): void {
    if (this.#state !== S_STRING || this.#stringIsKey) return;
    const depth = this.#depth;
    if (this.#long === undefined) {
      if (this.#pos - this.#tokenStart <= budget) return;
      this.#memberOpens(depth);
      this.#runStart[depth] = -1;
      this.#long = "";
      this.#longFrom = this.#tokenStart + 1;
    }
    const cut = this.#safeCut();
    if (cut > this.#longFrom) {
      this.#long += this.#stringPiece(this.#longFrom, cut);
      this.#longFrom = cut;
    }
  }

  /** The member of the object at `level` being made alone: its key is read now. */
  #memberOpens(level: number): void {
    if (level < 0 || this.#kind[level] !== OBJECT) return;
    const start = this.#keyStart[level];
    this.#memberKey[level] = this.#parse(start, this.#keyEnd[level], "", "") as string;
  }

  /**
   * Where the long string can be cut at the scan position or before it: not inside an escape, nor
   * where a UTF-8 decoder is inside a character: before a byte that is not a continuation byte, or
   * after three continuation bytes (no character has more).
   */
  #safeCut(): number {
    const bytes = this.#bytes;
    const from = this.#longFrom;
    const cut = Math.min(this.#pos, bytes.length);
    const escape = this.#lastEscape;
    if (escape >= from) {
      const length = bytes[escape + 1] === 0x75 ? 6 : 2;
      if (escape + length > cut) return escape;
    }
    for (let back = 0; back < 4; back++) {
      const at = cut - back;
      if (at <= from) return from;
      if ((bytes[at] & 0xc0) !== 0x80) return at;
    }
    return cut;
  }

  /** The string content between bytes `from` and `to`, parsed. */
  #stringPiece(from: number, to: number): string {
    return this.#parse(from, to, '"', '"') as string;
  }

  /** Parses the complete elements of the container made at `level` into it. */
  #flush(level: number): void {
    const start = this.#runStart[level];
    const end = this.#lastEnd[level];
    if (start < 0 || end <= start) return;
    const object = this.#kind[level] === OBJECT;
    const parsed = this.#parse(start, end, object ? "{" : "[", object ? "}" : "]");
    const container = this.#values[level]!;
    if (object) {
      const members = parsed as Record<string, unknown>;
      for (const key of Object.keys(members)) {
        setMember(container as Record<string, unknown>, key, members[key]);
      }
    } else {
      const list = container as unknown[];
      for (const value of parsed as unknown[]) list.push(value);
    }
    const current = this.#elementStart[level];
    this.#runStart[level] = current > end ? current : -1;
  }

  /** `JSON.parse(open + text of bytes [start, end) + close)`. */
  #parse(start: number, end: number, open: string, close: string): unknown {
    if (end - start > this.#largestParse) this.#largestParse = end - start;
    let text: string;
    try {
      text = this.#decoder.decode(this.#bytes.subarray(start, end));
    } catch {
      throw new JsonSliceError(`The body is not valid UTF-8 (bytes ${start}-${end})`, start);
    }
    try {
      return JSON.parse(open + text + close);
    } catch (err) {
      throw new JsonSliceError(`${(err as Error).message} (bytes ${start}-${end})`, start);
    }
  }

  /** The body ended. */
  #end(): void {
    if (this.#state === S_TOKEN) {
      this.#lastEnd[this.#depth] = this.#bytes.length;
      this.#state = S_AFTER;
    }
    if (this.#state === S_STRING && this.#pos > this.#bytes.length) {
      // A backslash was the last byte.
      this.#pos = this.#bytes.length;
    }
    if (this.#depth !== 0 || this.#state !== S_AFTER) {
      const at = this.#bytes.length;
      throw new JsonSliceError(`Unexpected end of JSON input at byte ${at}`, at);
    }
    this.#flush(0);
    this.#state = S_DONE;
  }

  #unexpected(at: number): JsonSliceError {
    const b = this.#bytes[at];
    const what = b >= 0x21 && b <= 0x7e
      ? `"${String.fromCharCode(b)}"`
      : `byte 0x${b.toString(16).padStart(2, "0")}`;
    return new JsonSliceError(`Unexpected ${what} at byte ${at}`, at);
  }
}

/** `object[key] = value`, also for `__proto__` (an own property, as `JSON.parse` makes it). */
function setMember(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    object[key] = value;
  }
}
