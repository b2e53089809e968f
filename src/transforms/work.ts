/**
 * A batch while transform steps run on it, column by column ({@linkcode Work}): the lines' bytes
 * stay as received; their text is decoded once, for the whole batch, only when a step asks for a
 * line's text; `levels`, `fields` and `times` are copied from the input only when a step writes
 * them; a dropped line is only marked, and the batch is compacted once, at the end (or before a
 * step that joins lines). The input batch is never changed: it is borrowed, like every batch.
 *
 * @module
 */

import type { Batch, BatchMark } from "../pipeline/batch.ts";
import type { Fields } from "../pipeline/record.ts";
import type { FieldNeeds } from "./step.ts";

const decoder = new TextDecoder();
const LF = 10;

/** What the rules tester records of each line's fate (`tryout.ts`); absent on the hot path. */
export interface Trace {
  /** Input line `id` was dropped by `step`. */
  dropped(id: number, step: string): void;
  /** Input line `id` was joined into input line `into`'s event by `step`. */
  joined(id: number, into: number, step: string): void;
}

/**
 * A byte buffer reused from batch to batch for the lines a batch keeps: a batch's bytes are
 * borrowed by the sinks for the `write` call only (they copy what they keep), so the stage needs
 * one buffer, not one per batch (a new 256 KiB array costs about a third of the copy into it).
 */
export class ScratchBytes {
  #buffer = new Uint8Array(0);

  /** A view of `n` bytes, valid until the next call. */
  take(n: number): Uint8Array {
    if (this.#buffer.length < n) {
      this.#buffer = new Uint8Array(Math.max(n, 2 * this.#buffer.length));
    }
    return this.#buffer.subarray(0, n);
  }
}

/** One batch under transformation. */
export class Work {
  /** The batch as the input wrote it (borrowed: read during this write only). */
  readonly input: Batch;
  /** The lines' bytes: the input's, until lines are dropped or joined. */
  data: Uint8Array;
  /** Lines in `data`, dropped ones included until {@linkcode compact}. */
  lines: number;
  /** Lines not dropped. */
  live: number;
  /** Lines dropped by the steps so far (for the step counters). */
  dropped = 0;
  /** Lines a step could not process (a parse that failed), for the step counters. */
  errors = 0;
  /** The step running, for the trace: `app.steps[2] (filter)`. */
  step = "";
  /**
   * The fields read after the step running (by the steps after it, the sinks, the live tails):
   * what it must give. Set by the pipeline before each step; `"all"` unless told.
   */
  wanted: FieldNeeds = "all";
  /** Set by the rules tester only. */
  readonly trace: Trace | undefined;
  /** Each line's input line number, with a trace only. */
  #ids: Int32Array | undefined;
  #texts: string[] | undefined;
  #decoded: string | undefined;
  #ends: Int32Array | undefined;
  #keep: Uint8Array | undefined;
  #levels: Uint8Array | undefined;
  #times: Float64Array | undefined;
  #fields: (Fields | undefined)[] | undefined;
  /** Which columns are this run's own copies (may be written). */
  #ownLevels = false;
  #ownTimes = false;
  #ownFields = false;
  /** Per line, whether its fields object was made here; undefined when all were. */
  #ownObjects: Uint8Array | undefined;
  /** Whether anything differs from the input. */
  #changed = false;
  readonly #scratch: ScratchBytes | undefined;

  /**
   * @param batch the batch to transform.
   * @param trace records what happens to each line (the rules tester).
   * @param scratch where the kept lines' bytes go (reused: valid until the next batch); default
   * a new array.
   */
  constructor(batch: Batch, trace?: Trace, scratch?: ScratchBytes) {
    this.#scratch = scratch;
    this.input = batch;
    this.data = batch.data;
    this.lines = batch.lines;
    this.live = batch.lines;
    this.#levels = batch.levels;
    this.#times = batch.times;
    this.#fields = batch.fields as (Fields | undefined)[] | undefined;
    this.trace = trace;
    if (trace !== undefined) this.#ids = Int32Array.from({ length: batch.lines }, (_, i) => i);
  }

  /** Whether line `i` is still there (not dropped). */
  isLive(i: number): boolean {
    return this.#keep === undefined || this.#keep[i] === 1;
  }

  /** The text of line `i`, without its newline (the batch is decoded once, on first call). */
  text(i: number): string {
    return (this.#texts ??= this.decoded().split("\n"))[i];
  }

  /** The text of every line, each ending with `\n`: the batch decoded once. */
  decoded(): string {
    return this.#decoded ??= decoder.decode(this.data);
  }

  /** Byte offset where line `i` ends (its newline). */
  end(i: number): number {
    return (this.#ends ??= this.#lineEnds())[i];
  }

  /**
   * The offset of each line's newline. Read from the decoded text when it is there and has one
   * character per byte (ASCII: offsets are the same; a string search is five times faster than
   * one on bytes).
   */
  #lineEnds(): Int32Array {
    const text = this.#decoded;
    if (text === undefined || text.length !== this.data.length) {
      return lineEnds(this.data, this.lines);
    }
    const ends = new Int32Array(this.lines);
    let at = 0;
    for (let i = 0; i < this.lines; i++) at = (ends[i] = text.indexOf("\n", at)) + 1;
    return ends;
  }

  /** Byte offset where line `i` starts. */
  start(i: number): number {
    return i === 0 ? 0 : this.end(i - 1) + 1;
  }

  /** Line `i`'s input line number (0-based), with a trace; else `i`. */
  id(i: number): number {
    return this.#ids?.[i] ?? i;
  }

  /** The levels column as it is (codes, 0 for none); `undefined` when no line has one. */
  get levels(): Uint8Array | undefined {
    return this.#levels;
  }

  /** The levels column, to write: this run's own copy. */
  writeLevels(): Uint8Array {
    if (!this.#ownLevels) {
      const levels = new Uint8Array(this.lines);
      if (this.#levels !== undefined) levels.set(this.#levels.subarray(0, this.lines));
      this.#levels = levels;
      this.#ownLevels = true;
      this.#changed = true;
    }
    return this.#levels!;
  }

  /** The times column as it is (ms, `NaN` for none); `undefined` when no line has one. */
  get times(): Float64Array | undefined {
    return this.#times;
  }

  /** The times column, to write: this run's own copy. */
  writeTimes(): Float64Array {
    if (!this.#ownTimes) {
      const times = new Float64Array(this.lines).fill(NaN);
      if (this.#times !== undefined) times.set(this.#times.subarray(0, this.lines));
      this.#times = times;
      this.#ownTimes = true;
      this.#changed = true;
    }
    return this.#times!;
  }

  /** Whether the batch has a fields column (some line may have fields). */
  get hasFields(): boolean {
    return this.#fields !== undefined;
  }

  /** Line `i`'s fields, to read; `undefined` when it has none. */
  fields(i: number): Readonly<Fields> | undefined {
    return this.#fields?.[i];
  }

  /** Line `i`'s fields, to write: an object of this run's own (a copy of the input's). */
  ownFields(i: number): Fields {
    const column = this.#fieldsColumn();
    const fields = column[i];
    if (fields === undefined) {
      if (this.#ownObjects !== undefined) this.#ownObjects[i] = 1;
      return column[i] = {};
    }
    if (this.#ownObjects === undefined || this.#ownObjects[i] === 1) return fields;
    this.#ownObjects[i] = 1;
    return column[i] = { ...fields };
  }

  /**
   * Makes `column` (new objects, one per line, not shared) the fields of every line, when no line
   * had any: one parse of the whole batch gives them at once.
   */
  adoptFields(column: (Fields | undefined)[]): void {
    if (this.#fields !== undefined || column.length !== this.lines) {
      throw new TypeError("Fields are adopted whole, by a batch without any");
    }
    this.#fields = column;
    this.#ownFields = true;
    this.#changed = true;
  }

  /** Makes `fields` (a new object, not shared) line `i`'s fields. */
  setFields(i: number, fields: Fields): void {
    this.#fieldsColumn()[i] = fields;
    if (this.#ownObjects !== undefined) this.#ownObjects[i] = 1;
  }

  #fieldsColumn(): (Fields | undefined)[] {
    if (!this.#ownFields) {
      const input = this.#fields;
      if (input === undefined) this.#fields = new Array(this.lines);
      else {
        this.#fields = input.slice(0, this.lines) as (Fields | undefined)[];
        this.#ownObjects = new Uint8Array(this.lines);
      }
      this.#ownFields = true;
      this.#changed = true;
    }
    return this.#fields as (Fields | undefined)[];
  }

  /** Drops line `i` (once). */
  drop(i: number): void {
    if (!this.isLive(i)) return;
    (this.#keep ??= new Uint8Array(this.lines).fill(1))[i] = 0;
    this.live--;
    this.dropped++;
    this.trace?.dropped(this.id(i), this.step);
  }

  /** Removes the dropped lines from the bytes and every column. */
  compact(): void {
    const keep = this.#keep;
    if (keep === undefined) return;
    this.#keep = undefined;
    const n = this.lines;
    const source = this.data;
    const ends = this.#ends ??= this.#lineEnds();
    let bytes = 0;
    for (let i = 0, start = 0; i < n; i++) {
      const next = ends[i] + 1;
      if (keep[i] === 1) bytes += next - start;
      start = next;
    }
    const data = this.#scratch?.take(bytes) ?? new Uint8Array(bytes);
    const kept = new Int32Array(this.live);
    // Runs of kept lines are copied at once.
    let at = 0;
    let k = 0;
    let run = -1;
    let start = 0;
    for (let i = 0; i < n; i++) {
      if (keep[i] === 1) {
        kept[k++] = i;
        if (run < 0) run = start;
      } else if (run >= 0) {
        data.set(source.subarray(run, start), at);
        at += start - run;
        run = -1;
      }
      start = ends[i] + 1;
    }
    if (run >= 0) data.set(source.subarray(run, start), at);
    this.#regroup(kept, data, undefined);
  }

  /**
   * Replaces the lines by `data` (`lines` of them, newline-terminated), where new line `j` takes
   * the columns of old line `first[j]`: how lines are joined. `texts` are the new lines' texts
   * when the caller has them. Call after {@linkcode compact}.
   */
  regroup(first: Int32Array, data: Uint8Array, texts?: string[]): void {
    this.#regroup(first, data, texts);
    this.live = first.length;
  }

  #regroup(first: Int32Array, data: Uint8Array, texts: string[] | undefined): void {
    const n = first.length;
    // One loop per column type, so each stays monomorphic.
    if (this.#levels !== undefined) {
      const from = this.#levels;
      const to = new Uint8Array(n);
      for (let j = 0; j < n; j++) to[j] = from[first[j]];
      this.#levels = to;
    }
    if (this.#times !== undefined) {
      const from = this.#times;
      const to = new Float64Array(n);
      for (let j = 0; j < n; j++) to[j] = from[first[j]];
      this.#times = to;
    }
    if (this.#fields !== undefined) {
      const from = this.#fields;
      const to: (Fields | undefined)[] = [];
      for (let j = 0; j < n; j++) to.push(from[first[j]]);
      this.#fields = to;
    }
    if (this.#ownObjects !== undefined) this.#ownObjects = pickInts(this.#ownObjects, first);
    if (this.#ids !== undefined) this.#ids = Int32Array.from(first, (i) => this.#ids![i]);
    if (texts === undefined && this.#texts !== undefined) {
      const from = this.#texts;
      texts = [];
      for (let j = 0; j < n; j++) texts.push(from[first[j]]);
      texts.push("");
    }
    this.#texts = texts;
    this.#decoded = undefined;
    this.#ends = undefined;
    this.#ownLevels = this.#levels !== undefined;
    this.#ownTimes = this.#times !== undefined;
    this.#ownFields = this.#fields !== undefined;
    this.data = data;
    this.lines = n;
    this.#changed = true;
  }

  /**
   * The batch the steps made: the input itself when nothing changed, `undefined` when every
   * line was dropped. A batch with a stream mark whose line count changed keeps counting the
   * input's lines in its mark (see {@linkcode markOf}).
   *
   * @param options `ownFields: false`: leave out the fields the steps made (when the input had
   *   none): nothing after the stage reads them.
   */
  finish(options: { ownFields?: boolean } = {}): Batch | undefined {
    this.compact();
    if (this.live === 0) return undefined;
    if (!this.#changed) return this.input;
    const input = this.input;
    const batch: {
      -readonly [K in keyof Batch]: Batch[K];
    } = {
      data: this.data,
      lines: this.lines,
      meta: input.meta,
      receivedAt: input.receivedAt,
    };
    if (input.mark !== undefined) batch.mark = markOf(input.mark, input.lines, this.lines);
    if (this.#times !== undefined) batch.times = this.#times;
    if (this.#levels !== undefined) batch.levels = this.#levels;
    // Fields the steps made only for themselves (nothing after the stage reads any) are left
    // behind: the live ring would otherwise keep them alive, for a backfill that shows only what
    // was read anyway.
    const made = input.fields === undefined;
    if (this.#fields !== undefined && (options.ownFields !== false || !made)) {
      batch.fields = this.#fields;
    }
    return batch;
  }
}

/**
 * The stream mark of a batch made from a marked batch of `before` lines that now holds `after`:
 * the file writer journals `skipped + lines` as the part's lines stored once the batch is
 * written, and a resend after a crash skips that many input lines; so the lines the steps
 * dropped or joined count as skipped, and the journal goes on counting input lines. This is
 * exact when the batch is written in one piece. A batch written in pieces (a size-rotated file
 * and a batch over a page, or a template that files lines by their fields) journals its first
 * pieces with up to `before - after` lines too many: a `kill -9` between two of its pieces can
 * make the resend skip that many lines it should have stored.
 */
export function markOf(mark: BatchMark, before: number, after: number): BatchMark {
  return before === after ? mark : { ...mark, skipped: mark.skipped + before - after };
}

/** `from[first[j]]` for each `j`. */
function pickInts(from: Uint8Array, first: Int32Array): Uint8Array {
  const to = new Uint8Array(first.length);
  for (let j = 0; j < first.length; j++) to[j] = from[first[j]];
  return to;
}

/** The offset of each line's newline. */
function lineEnds(data: Uint8Array, lines: number): Int32Array {
  const ends = new Int32Array(lines);
  let at = 0;
  for (let i = 0; i < lines; i++) {
    const nl = data.indexOf(LF, at);
    ends[i] = nl < 0 ? data.length - 1 : nl;
    at = ends[i] + 1;
  }
  return ends;
}
