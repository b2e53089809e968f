/**
 * Packs batches into messages: the lines of one origin (source, host, input, labels) gathered up
 * to `maxLines` lines and `maxBytes` bytes, each line's level, time and fields with it. A batch
 * longer than a message is cut at line ends; a line longer than a message into pieces of
 * `maxBytes`, each ended with a newline (as `-maxLine` cuts long lines). A batch of an idempotent
 * stream (its `mark`) gets messages of its own with ids from the mark, so that a resend is cut
 * the same way and gets the same ids.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Fields } from "../pipeline/record.ts";
import type { LineExtras } from "./message.ts";

/** A message's worth of lines of one origin, ready to publish. */
export interface Packed {
  readonly meta: BatchMeta;
  /** Whole lines (owned: a copy of the batches' bytes). */
  readonly data: Uint8Array;
  readonly lines: number;
  /** The first batch's receive time. */
  readonly receivedAt: number;
  readonly extras: LineExtras;
  /** For a marked batch: `<stream>:<offset>:<part>:<skipped>:<piece>`, the same on a resend. */
  readonly id?: string;
}

/** Options of {@linkcode Packer}. */
export interface PackerOptions {
  /** Most lines per message. */
  maxLines: number;
  /** Most bytes per message. */
  maxBytes: number;
  /** Most origins gathered at once; past it the oldest is sealed. Default 64. */
  maxOpen?: number;
}

/** Lines of one origin being gathered into a message. */
interface Gathering {
  readonly meta: BatchMeta;
  readonly receivedAt: number;
  readonly parts: Uint8Array[];
  bytes: number;
  lines: number;
  extras: LineExtras;
}

/**
 * See the module's notes.
 *
 * @example
 * ```ts
 * const packer = new Packer({ maxLines: 1000, maxBytes: 512 * 1024 }, (m) => publish(m));
 * packer.add(batch); // seals full messages
 * packer.sealAll(); // and the rest, at an acknowledgement or after a linger
 * ```
 */
export class Packer {
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #maxOpen: number;
  readonly #sealed: (packed: Packed) => void;
  readonly #gathering = new Map<string, Gathering>();
  #bytes = 0;

  /** @param sealed called with each message as it is sealed. */
  constructor(options: PackerOptions, sealed: (packed: Packed) => void) {
    this.#maxLines = options.maxLines;
    this.#maxBytes = options.maxBytes;
    this.#maxOpen = options.maxOpen ?? 64;
    this.#sealed = sealed;
  }

  /** Bytes gathered and not sealed. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Origins with lines gathered and not sealed. */
  get open(): number {
    return this.#gathering.size;
  }

  /** Adds `batch`'s lines (copied): sealed at once when marked, else gathered. */
  add(batch: Batch): void {
    if (batch.mark !== undefined) this.#marked(batch);
    else {
      this.#pieces(batch, (data, lines, extras) => {
        this.#fill(batch.meta, batch.receivedAt, data, lines, extras);
      }, true);
    }
  }

  /** Seals every message being gathered. */
  sealAll(): void {
    for (const [id, g] of [...this.#gathering]) this.#sealGathering(id, g);
  }

  /** A marked batch: messages of its own, with ids from its mark. */
  #marked(batch: Batch): void {
    const mark = batch.mark!;
    const base = `${mark.stream}:${mark.offset}:${mark.part}:${mark.skipped}`;
    let piece = 0;
    this.#pieces(batch, (data, lines, extras) => {
      this.#sealed({
        meta: batch.meta,
        data,
        lines,
        receivedAt: batch.receivedAt,
        extras,
        id: `${base}:${piece++}`,
      });
    });
  }

  /**
   * Adds whole lines of `data` (borrowed) to the message gathering for `meta`, filling it up to
   * `maxLines` and `maxBytes` and sealing it when full, so messages are as large as allowed.
   */
  #fill(
    meta: BatchMeta,
    receivedAt: number,
    data: Uint8Array,
    lines: number,
    extras: LineExtras,
  ): void {
    const id = keyOf(meta as unknown as object);
    let start = 0;
    let line = 0;
    while (line < lines) {
      const g = this.#gathering.get(id) ?? this.#open(id, meta, receivedAt);
      const roomLines = this.#maxLines - g.lines;
      const roomBytes = this.#maxBytes - g.bytes;
      let end = start;
      let k = 0;
      if (lines - line <= roomLines && data.length - start <= roomBytes) {
        end = data.length;
        k = lines - line;
      } else {
        while (k < roomLines && line + k < lines) {
          const next = data.indexOf(10, end) + 1;
          if (next - start > roomBytes) break;
          end = next;
          k++;
        }
      }
      if (k > 0) {
        const whole = k === lines && start === 0;
        addExtras(g.extras, g.lines, whole ? extras : sliceExtras(extras, line, k), k);
        g.parts.push(data.slice(start, end));
        g.bytes += end - start;
        g.lines += k;
        this.#bytes += end - start;
        start = end;
        line += k;
      }
      // Full (or the next line does not fit): sealed, and the rest starts the next message.
      if (k === 0 || g.lines >= this.#maxLines || g.bytes >= this.#maxBytes) {
        this.#sealGathering(id, g);
      }
    }
  }

  #open(id: string, meta: BatchMeta, receivedAt: number): Gathering {
    if (this.#gathering.size >= this.#maxOpen) {
      const [oldest, first] = this.#gathering.entries().next().value!;
      this.#sealGathering(oldest, first);
    }
    const g: Gathering = { meta, receivedAt, parts: [], bytes: 0, lines: 0, extras: {} };
    this.#gathering.set(id, g);
    return g;
  }

  /**
   * Cuts `batch` into pieces of at most `maxLines` lines and `maxBytes` bytes at line ends (a
   * longer line into pieces of `maxBytes`, each ended with a newline) and calls `take` for each,
   * with each piece's own extras. `borrowed`: the piece's bytes are copied by `take`.
   */
  #pieces(
    batch: Batch,
    take: (data: Uint8Array, lines: number, extras: LineExtras) => void,
    borrowed = false,
  ): void {
    const { data } = batch;
    if (batch.lines <= this.#maxLines && data.length <= this.#maxBytes) {
      take(borrowed ? data : data.slice(), batch.lines, extrasOf(batch, 0, batch.lines));
      return;
    }
    let start = 0;
    let line = 0;
    while (start < data.length) {
      let end = start;
      let lines = 0;
      while (end < data.length && lines < this.#maxLines) {
        const nl = data.indexOf(10, end);
        const next = nl + 1;
        if (next - start > this.#maxBytes) break;
        end = next;
        lines++;
      }
      if (lines === 0) {
        // One line longer than a message: a piece of it, ended with a newline.
        const piece = new Uint8Array(this.#maxBytes);
        piece.set(data.subarray(start, start + this.#maxBytes - 1));
        piece[this.#maxBytes - 1] = 10;
        take(piece, 1, extrasOf(batch, line, 1));
        start += this.#maxBytes - 1;
        continue;
      }
      const slice = data.subarray(start, end);
      take(borrowed ? slice : slice.slice(), lines, extrasOf(batch, line, lines));
      start = end;
      line += lines;
    }
  }

  #sealGathering(id: string, g: Gathering): void {
    this.#gathering.delete(id);
    const data = g.parts.length === 1 ? g.parts[0] : concat(g.parts, g.bytes);
    this.#bytes -= g.bytes;
    this.#sealed({
      meta: g.meta,
      data,
      lines: g.lines,
      receivedAt: g.receivedAt,
      extras: g.extras,
    });
  }
}

const keys = new WeakMap<object, string>();
let nextKey = 0;
function keyOf(o: object): string {
  let k = keys.get(o);
  if (k === undefined) keys.set(o, k = String(nextKey++));
  return k;
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The extras of `count` lines of `batch` from line `from`. */
export function extrasOf(batch: Batch, from: number, count: number): LineExtras {
  const extras: LineExtras = {};
  if (batch.levels !== undefined) {
    extras.levels = Array.from(batch.levels.subarray(from, from + count));
  }
  if (batch.times !== undefined) {
    extras.times = Array.from(
      batch.times.subarray(from, from + count),
      (t) => Number.isNaN(t) ? null : t,
    );
  }
  if (batch.fields !== undefined) {
    extras.fields = batch.fields.slice(from, from + count).map((f) =>
      f ?? null
    ) as (Readonly<Fields> | null)[];
  }
  return extras;
}

/** Lines `from` to `from + count` of `extras`. */
function sliceExtras(extras: LineExtras, from: number, count: number): LineExtras {
  const out: LineExtras = {};
  if (extras.levels !== undefined) out.levels = extras.levels.slice(from, from + count);
  if (extras.times !== undefined) out.times = extras.times.slice(from, from + count);
  if (extras.fields !== undefined) out.fields = extras.fields.slice(from, from + count);
  return out;
}

/** Appends `more` (of `lines` lines) to `into` (of `have` lines), filling gaps with nothing. */
function addExtras(into: LineExtras, have: number, more: LineExtras, lines: number): void {
  if (more.levels !== undefined || into.levels !== undefined) {
    into.levels ??= new Array(have).fill(0);
    into.levels.push(...(more.levels ?? new Array(lines).fill(0)));
  }
  if (more.times !== undefined || into.times !== undefined) {
    into.times ??= new Array(have).fill(null);
    into.times.push(...(more.times ?? new Array(lines).fill(null)));
  }
  if (more.fields !== undefined || into.fields !== undefined) {
    into.fields ??= new Array(have).fill(null);
    into.fields.push(...(more.fields ?? new Array(lines).fill(null)));
  }
}
