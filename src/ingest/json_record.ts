/**
 * A JSON parser for one large NDJSON record that runs a slice at a time, so that a record of
 * megabytes never holds the event loop for long. Read with `JSON.parse`, a 15 MiB record held it
 * for one uninterruptible 25-30 ms of plain text, about 100 ms of escapes, and 0.5-0.8 s of
 * nested arrays (main-thread CPU, 2026-11-30).
 *
 * It accepts exactly what `TextDecoder("utf-8", { fatal: true })` followed by `JSON.parse`
 * accepts, and gives the same values for what it is asked to keep: a few keys of the top-level
 * object (the last of duplicate keys wins, as with `JSON.parse`). Everything else, nested objects
 * and arrays included, is checked and skipped without building values, so memory stays near the
 * record's size.
 *
 * @module
 */

// Checks UTF-8 without making a string: 15 MiB of ASCII in 1.4 ms, against 25 ms to decode it.
import { isUtf8 } from "node:buffer";

/** The type of a JSON value, as the record holds it. */
export type JsonType = "string" | "number" | "boolean" | "null" | "object" | "array";

/**
 * What to keep of a top-level key's value: its `type` only; a string's `text` (when its JSON form
 * is at most {@linkcode MAX_TEXT_BYTES}); or a string's `utf8` bytes however long.
 */
export type KeyUse = "type" | "text" | "utf8";

/** The last value of a key asked for. */
export interface JsonField {
  type: JsonType;
  /**
   * With use `text`: the string, when its JSON form (quotes and escapes included) is at most
   * {@linkcode MAX_TEXT_BYTES} bytes. A longer string has more than `MAX_TEXT_BYTES / 6` UTF-16
   * code units.
   */
  text?: string;
  /**
   * With use `utf8`: the string as `TextEncoder` encodes it (a lone surrogate escape becomes
   * U+FFFD), in pieces that may be views of the record's bytes.
   */
  utf8?: Uint8Array[];
}

/** A record read whole. */
export type JsonRecord =
  /** Nothing but whitespace (as `String.prototype.trim` sees it). */
  | { kind: "blank" }
  /** An object, with the keys asked for that it holds. */
  | { kind: "object"; fields: Map<string, JsonField> }
  /** Valid JSON that is not an object. */
  | { kind: "other"; type: JsonType };

/** Why a record could not be read: `utf8` when its bytes are not UTF-8, else `json`. */
export class JsonRecordError extends Error {
  readonly reason: "utf8" | "json";
  /** The byte of the record where it went wrong (for `utf8`, the start of the slice). */
  readonly offset: number;
  constructor(reason: "utf8" | "json", message: string, offset: number) {
    super(message);
    this.name = "JsonRecordError";
    this.reason = reason;
    this.offset = offset;
  }
}

/**
 * Records longer than this are better read with {@linkcode readJsonRecord} than with `JSON.parse`:
 * at this size `JSON.parse` (with the decoding and encoding around it) takes at most about 0.5 ms
 * even for the slowest shapes (deep nesting, many keys), and this parser is as fast or faster
 * from here up (measured on the project's 2-core machine, 2026-11-30: 64 KiB took `JSON.parse`
 * 0.1 ms for plain text, 1.3 ms for 5,000 keys and 2.8 ms for deep nesting).
 */
export const LARGE_RECORD_BYTES = 16 * 1024;
/** Longest JSON form of a string kept as `text`. */
export const MAX_TEXT_BYTES = 4096;
/**
 * Bytes one step works through: on the project's machine (2026-11-30) 0.1 ms of plain text,
 * 0.4 ms of escapes, 0.5 ms of tiny objects and 0.9 ms of deep nesting.
 */
export const STEP_BYTES = 64 * 1024;

/** How a long task shares the event loop. */
export interface Turns {
  /** Whether the current turn has run long enough to let others run. */
  due(): boolean;
  /** Lets others run; resolves on a later turn. */
  pause(): Promise<void>;
}

/**
 * Reads one record of `bytes` (without its newline), {@linkcode STEP_BYTES} at a time, pausing
 * between steps whenever `turns.due()`.
 *
 * @throws {JsonRecordError} when the record is not UTF-8 or not JSON.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode('{"line": "hello", "source": "web"}');
 * const keys = new Map<string, KeyUse>([["line", "utf8"], ["source", "text"]]);
 * const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
 * const record = await readJsonRecord(bytes, keys, { due: () => true, pause });
 * if (record.kind === "object") console.log(record.fields.get("source")?.text); // "web"
 * ```
 */
export async function readJsonRecord(
  bytes: Uint8Array,
  keys: ReadonlyMap<string, KeyUse>,
  turns: Turns,
  stepBytes: number = STEP_BYTES,
): Promise<JsonRecord> {
  const parser = new JsonRecordParser(bytes, keys);
  while (!parser.step(stepBytes)) {
    if (turns.due()) await turns.pause();
  }
  return parser.result();
}

// Phases: the UTF-8 check, the parse, and, only after a JSON error, the check for a blank record.
const VALIDATE = 0;
const PARSE = 1;
const BLANK = 2;
const DONE = 3;

// What the parser expects next.
const S_VALUE = 0;
const S_ARRAY_FIRST = 1;
const S_OBJECT_FIRST = 2;
const S_KEY = 3;
const S_COLON = 4;
const S_AFTER = 5;
const S_STRING = 6;
const S_NUMBER = 7;

// Where a number is: after its `-`, its leading `0`, in its integer digits, after `.`, in the
// fraction, after `e`, after the exponent's sign, in the exponent.
const N_MINUS = 0;
const N_ZERO = 1;
const N_INT = 2;
const N_DOT = 3;
const N_FRACTION = 4;
const N_E = 5;
const N_E_SIGN = 6;
const N_EXPONENT = 7;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Bytes that end a run of plain string content: `"`, `\` and the control characters. */
const STRING_STOP = new Uint8Array(256);
STRING_STOP.fill(1, 0, 0x20);
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;
/** JSON's whitespace. */
const JSON_SPACE = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0d]) JSON_SPACE[b] = 1;
/** The one-letter escapes and what they stand for (0: not an escape). */
const ESCAPES = new Uint16Array(256);
for (const [c, unit] of [['"', 0x22], ["\\", 0x5c], ["/", 0x2f], ["b", 8], ["f", 12]] as const) {
  ESCAPES[c.charCodeAt(0)] = unit;
}
for (const [c, unit] of [["n", 10], ["r", 13], ["t", 9]] as const) ESCAPES[c.charCodeAt(0)] = unit;
const LITERALS = new Map<number, { bytes: Uint8Array; type: JsonType }>([
  [0x74, { bytes: new TextEncoder().encode("true"), type: "boolean" }],
  [0x66, { bytes: new TextEncoder().encode("false"), type: "boolean" }],
  [0x6e, { bytes: new TextEncoder().encode("null"), type: "null" }],
]);
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * The resumable parser behind {@linkcode readJsonRecord}: each {@linkcode step} works through at
 * most about `budget` bytes (an escape, a literal or a UTF-8 character can overrun it by up to 5).
 */
export class JsonRecordParser {
  readonly #bytes: Uint8Array;
  readonly #keys: { name: string; bytes: Uint8Array; use: KeyUse }[];
  #phase = VALIDATE;
  #pos = 0;
  #work = 0;
  #state = S_VALUE;
  /** One bit per open container, 1 for an object. */
  #stack = new Uint8Array(64);
  #depth = 0;
  #topType: JsonType | undefined;
  readonly #fields = new Map<string, JsonField>();
  /** The key asked for whose value comes next (in a top-level member), if any. */
  #key: { name: string; use: KeyUse } | undefined;
  // The string being read.
  #stringStart = 0;
  #stringIsKey = false;
  #escaped = false;
  /** Whether the string is a top-level member's key, read to see whether its value is kept. */
  #readKey = false;
  /** Where the string goes when it is a value kept, and how. */
  #stringField: JsonField | undefined;
  #stringUse: KeyUse | undefined;
  /** Its bytes, when kept as `utf8`. */
  #utf8: Utf8Builder | undefined;
  #number = N_MINUS;
  #jsonError: JsonRecordError | undefined;
  #result: JsonRecord | undefined;

  /**
   * @param bytes the record, without its newline; kept and read in place until the end.
   * @param keys the top-level keys to keep, and how.
   */
  constructor(bytes: Uint8Array, keys: ReadonlyMap<string, KeyUse>) {
    this.#bytes = bytes;
    this.#keys = [...keys].map(([name, use]) => ({ name, bytes: encoder.encode(name), use }));
  }

  /** Bytes worked through so far, over all passes. */
  get work(): number {
    return this.#work;
  }

  /**
   * Works through about `budget` more bytes; true once the record is read.
   *
   * @throws {JsonRecordError} when the record is not UTF-8 or not JSON.
   */
  step(budget: number): boolean {
    budget = Math.max(1, Math.floor(budget));
    if (this.#phase === VALIDATE) this.#validate(budget);
    else if (this.#phase === PARSE) this.#parseStep(budget);
    else if (this.#phase === BLANK) this.#blankStep(budget);
    return this.#phase === DONE;
  }

  /** The record, once {@linkcode step} returned true. */
  result(): JsonRecord {
    if (this.#result === undefined) throw new Error("The record is not read yet");
    return this.#result;
  }

  #validate(budget: number): void {
    const bytes = this.#bytes;
    const start = this.#pos;
    let end = Math.min(start + Math.max(4, budget), bytes.length);
    // Cut before a lead byte, so that every character lies whole in one slice.
    for (let back = 0; back < 3 && end < bytes.length && (bytes[end] & 0xc0) === 0x80; back++) {
      end--;
    }
    if (!isUtf8(bytes.subarray(start, end))) {
      throw new JsonRecordError("utf8", "The record is not valid UTF-8", start);
    }
    this.#work += end - start;
    this.#pos = end;
    if (end === bytes.length) {
      this.#phase = PARSE;
      this.#pos = 0;
    }
  }

  #parseStep(budget: number): void {
    const from = this.#pos;
    const limit = Math.min(from + budget, this.#bytes.length);
    try {
      this.#parse(limit);
      this.#work += this.#pos - from;
    } catch (err) {
      if (!(err instanceof JsonRecordError)) throw err;
      this.#work += Math.max(0, Math.min(err.offset, limit) - from);
      // A record of nothing but whitespace beyond JSON's (U+00A0, U+FEFF, ...) is blank, not bad.
      this.#jsonError = err;
      this.#phase = BLANK;
      this.#pos = 0;
    }
  }

  /** Whether the record is all whitespace as `String.prototype.trim` sees it. */
  #blankStep(budget: number): void {
    const bytes = this.#bytes;
    const n = bytes.length;
    const limit = Math.min(this.#pos + budget, n);
    let i = this.#pos;
    while (i < limit) {
      const size = trimSpaceAt(bytes, i);
      if (size === 0) {
        this.#pos = i;
        throw this.#jsonError!;
      }
      i += size;
    }
    this.#work += i - this.#pos;
    this.#pos = i;
    if (i >= n) this.#finish({ kind: "blank" });
  }

  #finish(result: JsonRecord): void {
    this.#result = result;
    this.#phase = DONE;
  }

  #fail(message: string, at: number): JsonRecordError {
    return new JsonRecordError("json", `${message} at byte ${at}`, at);
  }

  #unexpected(at: number): JsonRecordError {
    const b = this.#bytes[at];
    const what = b >= 0x21 && b <= 0x7e ? `"${String.fromCharCode(b)}"` : `byte 0x${hex2(b)}`;
    return this.#fail(`Unexpected ${what}`, at);
  }

  /** Parses up to `limit`, or to the end of the record when `limit` is its length. */
  #parse(limit: number): void {
    const bytes = this.#bytes;
    const n = bytes.length;
    let i = this.#pos;
    for (;;) {
      if (this.#state === S_STRING) {
        this.#pos = i;
        if (!this.#string(limit)) return;
        i = this.#pos;
        continue;
      }
      if (this.#state === S_NUMBER) {
        this.#pos = i;
        if (!this.#numberPart(limit)) return;
        i = this.#pos;
        continue;
      }
      while (i < limit && JSON_SPACE[bytes[i]] === 1) i++;
      if (i >= limit) {
        this.#pos = i;
        if (limit === n) this.#end();
        return;
      }
      const b = bytes[i];
      switch (this.#state) {
        case S_ARRAY_FIRST:
          if (b === 0x5d) {
            i++;
            this.#close();
            break;
          }
          i = this.#value(i);
          break;
        case S_VALUE:
          i = this.#value(i);
          break;
        case S_OBJECT_FIRST:
          if (b === 0x7d) {
            i++;
            this.#close();
            break;
          }
          if (b !== QUOTE) throw this.#unexpected(i);
          i = this.#startString(i, true);
          break;
        case S_KEY:
          if (b !== QUOTE) throw this.#unexpected(i);
          i = this.#startString(i, true);
          break;
        case S_COLON:
          if (b !== 0x3a) throw this.#unexpected(i);
          this.#state = S_VALUE;
          i++;
          break;
        default: // S_AFTER
          if (this.#depth === 0) {
            throw this.#fail("Unexpected non-whitespace character after JSON", i);
          }
          if (this.#inObject()) {
            if (b === 0x2c) this.#state = S_KEY;
            else if (b === 0x7d) this.#close();
            else throw this.#unexpected(i);
          } else {
            if (b === 0x2c) this.#state = S_VALUE;
            else if (b === 0x5d) this.#close();
            else throw this.#unexpected(i);
          }
          i++;
      }
    }
  }

  /** The record ended between tokens. */
  #end(): void {
    if (this.#state === S_AFTER && this.#depth === 0) {
      const fields = this.#fields;
      this.#finish(
        this.#topType === "object"
          ? { kind: "object", fields }
          : { kind: "other", type: this.#topType! },
      );
    } else if (this.#topType === undefined) {
      this.#finish({ kind: "blank" });
    } else {
      throw this.#fail("Unexpected end of JSON input", this.#bytes.length);
    }
  }

  /** Starts the value at `i`; returns where parsing goes on. */
  #value(i: number): number {
    const bytes = this.#bytes;
    const b = bytes[i];
    let type: JsonType;
    let next = i + 1;
    if (b === 0x7b) type = "object";
    else if (b === 0x5b) type = "array";
    else if (b === QUOTE) type = "string";
    else if (b === 0x2d || (b >= 0x30 && b <= 0x39)) type = "number";
    else {
      const literal = LITERALS.get(b);
      if (literal === undefined) throw this.#unexpected(i);
      const want = literal.bytes;
      for (let k = 1; k < want.length; k++) {
        if (i + k >= bytes.length) throw this.#fail("Unexpected end of JSON input", bytes.length);
        if (bytes[i + k] !== want[k]) throw this.#unexpected(i + k);
      }
      type = literal.type;
      next = i + want.length;
    }
    const key = this.#key;
    this.#key = undefined;
    let field: JsonField | undefined;
    if (this.#depth === 0) this.#topType = type;
    else if (key !== undefined) {
      field = { type };
      this.#fields.set(key.name, field);
    }
    switch (type) {
      case "object":
      case "array":
        this.#open(type === "object");
        break;
      case "string":
        return this.#startString(i, false, field, key?.use);
      case "number":
        this.#number = b === 0x2d ? N_MINUS : b === 0x30 ? N_ZERO : N_INT;
        this.#state = S_NUMBER;
        break;
      default:
        this.#state = S_AFTER;
    }
    return next;
  }

  #open(object: boolean): void {
    const depth = this.#depth;
    if (depth >>> 3 >= this.#stack.length) {
      const grown = new Uint8Array(this.#stack.length * 2);
      grown.set(this.#stack);
      this.#stack = grown;
    }
    const bit = 1 << (depth & 7);
    if (object) this.#stack[depth >>> 3] |= bit;
    else this.#stack[depth >>> 3] &= ~bit;
    this.#depth = depth + 1;
    this.#state = object ? S_OBJECT_FIRST : S_ARRAY_FIRST;
  }

  #close(): void {
    this.#depth--;
    this.#state = S_AFTER;
  }

  #inObject(): boolean {
    const top = this.#depth - 1;
    return (this.#stack[top >>> 3] & (1 << (top & 7))) !== 0;
  }

  /**
   * Starts the string whose quote is at `i`: a key, or a value kept in `field` as `use` says.
   * A top-level member's key is read to see whether its value is kept.
   */
  #startString(i: number, isKey: boolean, field?: JsonField, use?: KeyUse): number {
    this.#state = S_STRING;
    this.#stringStart = i;
    this.#stringIsKey = isKey;
    this.#escaped = false;
    this.#readKey = isKey && this.#depth === 1 && this.#topType === "object";
    this.#stringField = field;
    this.#stringUse = use;
    this.#utf8 = use === "utf8" ? new Utf8Builder(this.#bytes) : undefined;
    return i + 1;
  }

  /** Reads string content up to `limit`; true once its closing quote is read. */
  #string(limit: number): boolean {
    const bytes = this.#bytes;
    const n = bytes.length;
    const out = this.#utf8;
    let i = this.#pos;
    for (;;) {
      const run = i;
      while (i < limit && STRING_STOP[bytes[i]] === 0) i++;
      if (out !== undefined && i > run) out.raw(run, i);
      if (i >= limit) {
        this.#pos = i;
        if (limit < n) return false;
        throw this.#fail("Unterminated string", this.#stringStart);
      }
      const b = bytes[i];
      if (b === QUOTE) {
        this.#pos = i + 1;
        this.#endString(i + 1);
        return true;
      }
      if (b !== BACKSLASH) throw this.#fail("Bad control character in string", i);
      this.#escaped = true;
      if (i + 1 >= n) throw this.#fail("Unterminated string", this.#stringStart);
      const e = bytes[i + 1];
      if (e === 0x75) {
        const unit = i + 6 <= n ? hex4(bytes, i + 2) : -1;
        if (unit < 0) throw this.#fail("Bad Unicode escape in string", i);
        out?.unit(unit);
        i += 6;
      } else {
        const unit = ESCAPES[e];
        if (unit === 0) throw this.#fail("Bad escaped character in string", i);
        out?.unit(unit);
        i += 2;
      }
    }
  }

  /** The string that began at `#stringStart` ends before `end`. */
  #endString(end: number): void {
    if (this.#stringIsKey) {
      this.#state = S_COLON;
      if (this.#readKey) this.#key = this.#keyAt(this.#stringStart, end);
      return;
    }
    this.#state = S_AFTER;
    const field = this.#stringField;
    if (field === undefined) return;
    this.#stringField = undefined;
    if (this.#utf8 !== undefined) {
      field.utf8 = this.#utf8.finish();
      this.#utf8 = undefined;
    } else if (this.#stringUse === "text" && end - this.#stringStart <= MAX_TEXT_BYTES) {
      field.text = this.#text(this.#stringStart, end);
    }
  }

  /** The key asked for that the string token `start`..`end` names, if any. */
  #keyAt(start: number, end: number): { name: string; use: KeyUse } | undefined {
    const bytes = this.#bytes;
    if (!this.#escaped) {
      const length = end - start - 2;
      for (const key of this.#keys) {
        if (key.bytes.length === length && sameBytes(bytes, start + 1, key.bytes)) return key;
      }
      return undefined;
    }
    if (end - start > MAX_TEXT_BYTES) return undefined;
    const name = this.#text(start, end);
    return this.#keys.find((key) => key.name === name);
  }

  /** The text of the string token `start`..`end`, short and already checked. */
  #text(start: number, end: number): string {
    const token = this.#bytes.subarray(start, end);
    if (!this.#escaped) return decoder.decode(token.subarray(1, -1));
    return JSON.parse(decoder.decode(token));
  }

  /** Reads number characters up to `limit`; true once the number ended. */
  #numberPart(limit: number): boolean {
    const bytes = this.#bytes;
    const n = bytes.length;
    let i = this.#pos;
    let state = this.#number;
    while (i < limit) {
      const b = bytes[i];
      const digit = b >= 0x30 && b <= 0x39;
      if (digit && (state === N_INT || state === N_FRACTION || state === N_EXPONENT)) {
        i++;
        while (i < limit && bytes[i] >= 0x30 && bytes[i] <= 0x39) i++;
        continue;
      }
      if (state === N_MINUS) {
        if (!digit) throw this.#fail("No number after minus sign", i);
        state = b === 0x30 ? N_ZERO : N_INT;
      } else if (state === N_DOT) {
        if (!digit) throw this.#fail("Unterminated fractional number", i);
        state = N_FRACTION;
      } else if (state === N_E || state === N_E_SIGN) {
        if (state === N_E && (b === 0x2b || b === 0x2d)) state = N_E_SIGN;
        else if (digit) state = N_EXPONENT;
        else throw this.#fail("Exponent part is missing a number", i);
      } else if (b === 0x2e && (state === N_ZERO || state === N_INT)) {
        state = N_DOT;
      } else if ((b === 0x65 || b === 0x45) && state !== N_EXPONENT) {
        state = N_E;
      } else {
        // Any other byte ends a complete number; the parser then judges it.
        this.#pos = i;
        this.#state = S_AFTER;
        return true;
      }
      i++;
    }
    this.#pos = i;
    this.#number = state;
    if (limit < n) return false;
    if (state === N_ZERO || state === N_INT || state === N_FRACTION || state === N_EXPONENT) {
      this.#state = S_AFTER;
      return true;
    }
    throw this.#fail("Unexpected end of JSON input", n);
  }
}

/**
 * A string's UTF-8 as `TextEncoder` gives it, built from runs of the record's bytes (kept as
 * views when long) and decoded escapes (copied into chunks).
 */
class Utf8Builder {
  readonly #source: Uint8Array;
  readonly #pieces: Uint8Array[] = [];
  /** The open piece: bytes `#start` to `#end` of `#buf` (the source or the current chunk). */
  #buf: Uint8Array | undefined;
  #start = 0;
  #end = 0;
  #chunk = new Uint8Array(0);
  #fill = 0;
  /** A high surrogate waiting for its low half. */
  #high = 0;

  constructor(source: Uint8Array) {
    this.#source = source;
  }

  /** Adds bytes `start` to `end` of the source, which are valid UTF-8. */
  raw(start: number, end: number): void {
    this.#settle();
    if (this.#buf === this.#source && this.#end === start) {
      this.#end = end;
    } else if (end - start >= MIN_VIEW) {
      this.#closePiece();
      this.#buf = this.#source;
      this.#start = start;
      this.#end = end;
    } else {
      this.#room(end - start);
      this.#chunk.set(this.#source.subarray(start, end), this.#fill);
      this.#grow(end - start);
    }
  }

  /** Adds one UTF-16 code unit from an escape. */
  unit(unit: number): void {
    if (this.#high !== 0) {
      const high = this.#high;
      this.#high = 0;
      if (unit >= 0xdc00 && unit <= 0xdfff) {
        this.#codePoint(0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
        return;
      }
      this.#codePoint(0xfffd);
    }
    if (unit >= 0xd800 && unit <= 0xdbff) this.#high = unit;
    else if (unit >= 0xdc00 && unit <= 0xdfff) this.#codePoint(0xfffd);
    else this.#codePoint(unit);
  }

  /** The pieces, once the string ended. */
  finish(): Uint8Array[] {
    this.#settle();
    this.#closePiece();
    return this.#pieces;
  }

  /** A lone high surrogate: U+FFFD, as `TextEncoder` writes it. */
  #settle(): void {
    if (this.#high === 0) return;
    this.#high = 0;
    this.#codePoint(0xfffd);
  }

  #codePoint(cp: number): void {
    this.#room(4);
    const chunk = this.#chunk;
    let at = this.#fill;
    if (cp < 0x80) chunk[at++] = cp;
    else if (cp < 0x800) {
      chunk[at++] = 0xc0 | (cp >> 6);
      chunk[at++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      chunk[at++] = 0xe0 | (cp >> 12);
      chunk[at++] = 0x80 | ((cp >> 6) & 0x3f);
      chunk[at++] = 0x80 | (cp & 0x3f);
    } else {
      chunk[at++] = 0xf0 | (cp >> 18);
      chunk[at++] = 0x80 | ((cp >> 12) & 0x3f);
      chunk[at++] = 0x80 | ((cp >> 6) & 0x3f);
      chunk[at++] = 0x80 | (cp & 0x3f);
    }
    this.#grow(at - this.#fill);
  }

  /** Makes room for `n` bytes at the end of the chunk, so that they join the open piece. */
  #room(n: number): void {
    if (
      this.#buf === this.#chunk && this.#end === this.#fill && this.#fill + n <= this.#chunk.length
    ) {
      return;
    }
    this.#closePiece();
    if (this.#fill + n > this.#chunk.length) {
      this.#chunk = new Uint8Array(Math.max(CHUNK_BYTES, n));
      this.#fill = 0;
    }
    this.#buf = this.#chunk;
    this.#start = this.#end = this.#fill;
  }

  /** `n` bytes were written at the end of the chunk, in the open piece. */
  #grow(n: number): void {
    this.#fill += n;
    this.#end = this.#fill;
  }

  #closePiece(): void {
    if (this.#buf !== undefined && this.#end > this.#start) {
      this.#pieces.push(this.#buf.subarray(this.#start, this.#end));
    }
    this.#buf = undefined;
  }
}

/** Shorter runs of a string with escapes are copied rather than kept as views. */
const MIN_VIEW = 512;
const CHUNK_BYTES = 64 * 1024;

/**
 * The size of the whitespace character (as `String.prototype.trim` sees it) at `i` of valid
 * UTF-8, or 0 when there is none: U+0009-000D, U+0020, U+00A0, U+1680, U+2000-200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000, U+FEFF.
 */
function trimSpaceAt(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) return 1;
  if (b < 0xc2 || i + 1 >= bytes.length) return 0;
  const b1 = bytes[i + 1];
  if (b === 0xc2) return b1 === 0xa0 ? 2 : 0;
  if (i + 2 >= bytes.length) return 0;
  const b2 = bytes[i + 2];
  if (b === 0xe1) return b1 === 0x9a && b2 === 0x80 ? 3 : 0;
  if (b === 0xe2 && b1 === 0x80) {
    return b2 <= 0x8a || b2 === 0xa8 || b2 === 0xa9 || b2 === 0xaf ? 3 : 0;
  }
  if (b === 0xe2) return b1 === 0x81 && b2 === 0x9f ? 3 : 0;
  if (b === 0xe3) return b1 === 0x80 && b2 === 0x80 ? 3 : 0;
  if (b === 0xef) return b1 === 0xbb && b2 === 0xbf ? 3 : 0;
  return 0;
}

/** The four hex digits at `i` as a number, or -1. */
function hex4(bytes: Uint8Array, i: number): number {
  let value = 0;
  for (let k = i; k < i + 4; k++) {
    const b = bytes[k];
    let digit: number;
    if (b >= 0x30 && b <= 0x39) digit = b - 0x30;
    else if (b >= 0x61 && b <= 0x66) digit = b - 0x57;
    else if (b >= 0x41 && b <= 0x46) digit = b - 0x37;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function sameBytes(bytes: Uint8Array, at: number, want: Uint8Array): boolean {
  for (let k = 0; k < want.length; k++) if (bytes[at + k] !== want[k]) return false;
  return true;
}
