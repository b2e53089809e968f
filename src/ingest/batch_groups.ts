/**
 * Groups lines by their batch metadata (host and labels), so that one read or burst of datagrams
 * that mixes senders or syslog apps still becomes a few large batches, not one per line.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";

/** Options of {@linkcode BatchGroups}. */
export interface BatchGroupsOptions {
  /**
   * Most groups open at once. A line for another group first writes the group opened longest
   * ago. Default 16.
   */
  maxGroups?: number;
  /** Whether each line carries its own time ({@linkcode Batch.times}). Default false. */
  times?: boolean;
  /** Whether each line carries its level code ({@linkcode Batch.levels}). Default false. */
  levels?: boolean;
}

interface Group {
  meta: BatchMeta;
  buf: Uint8Array;
  len: number;
  lines: number;
  times: Float64Array | undefined;
  levels: Uint8Array | undefined;
  receivedAt: number;
}

const INITIAL_BYTES = 16 * 1024;
/** A buffer grown past this by one big burst is not kept for the next. */
const KEEP_BYTES = 1024 * 1024;

/**
 * Lines copied into one growing buffer per {@linkcode BatchMeta} (by identity: build each
 * distinct meta once and reuse it), written as one batch per group by {@linkcode flush}. Buffers
 * are reused from flush to flush, as a batch's bytes are only lent for the sink's `write`.
 *
 * @example
 * ```ts
 * const groups = new BatchGroups();
 * groups.add(metaOfNginx, data, 0, 20, 1, Date.now()); // bytes [0, 20): one line with its LF
 * groups.flush((batch) => sink.write(batch));
 * ```
 */
export class BatchGroups {
  readonly #maxGroups: number;
  readonly #times: boolean;
  readonly #levels: boolean;
  /** Open groups, oldest first. */
  readonly #open = new Map<BatchMeta, Group>();
  readonly #spare: Group[] = [];
  #bytes = 0;

  /** @param options see {@linkcode BatchGroupsOptions}. */
  constructor(options: BatchGroupsOptions = {}) {
    const { maxGroups = 16, times = false, levels = false } = options;
    if (!Number.isSafeInteger(maxGroups) || maxGroups < 1) {
      throw new RangeError(`Max groups must be a positive integer, got ${maxGroups}`);
    }
    this.#maxGroups = maxGroups;
    this.#times = times;
    this.#levels = levels;
  }

  /** Bytes held, not yet written. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Groups open now. */
  get groups(): number {
    return this.#open.size;
  }

  /**
   * Copies `lines` whole lines, `data[from, to)` (each ending with byte 10), into `meta`'s group.
   * When that group is new and `maxGroups` are open, the oldest is written first with `write`.
   *
   * @param time the lines' own time (ms since the epoch, `NaN` for none), with `times` on: one
   *   for all, or one per line.
   * @param receivedAt when they arrived; a group keeps the time of its first lines.
   * @param level the lines' level codes (0 for none), with `levels` on: one for all, or one per
   *   line.
   */
  add(
    meta: BatchMeta,
    data: Uint8Array,
    from: number,
    to: number,
    lines: number,
    write: (batch: Batch) => void,
    time: number | ArrayLike<number> = NaN,
    receivedAt = Date.now(),
    level: number | ArrayLike<number> = 0,
  ): void {
    let group = this.#open.get(meta);
    if (group === undefined) {
      if (this.#open.size >= this.#maxGroups) {
        const oldest = this.#open.values().next().value!;
        this.#write(oldest, write);
      }
      group = this.#spare.pop() ?? {
        meta,
        buf: new Uint8Array(INITIAL_BYTES),
        len: 0,
        lines: 0,
        times: this.#times ? new Float64Array(64) : undefined,
        levels: this.#levels ? new Uint8Array(64) : undefined,
        receivedAt,
      };
      group.meta = meta;
      group.receivedAt = receivedAt;
      this.#open.set(meta, group);
    }
    const n = to - from;
    if (group.len + n > group.buf.length) {
      const grown = new Uint8Array(Math.max(group.buf.length * 2, group.len + n));
      grown.set(group.buf.subarray(0, group.len));
      group.buf = grown;
    }
    group.buf.set(data.subarray(from, to), group.len);
    group.len += n;
    if (group.times !== undefined) group.times = append(group.times, group.lines, lines, time);
    if (group.levels !== undefined) {
      group.levels = append(group.levels, group.lines, lines, level);
    }
    group.lines += lines;
    this.#bytes += n;
  }

  /** Writes every open group as one batch, oldest first. */
  flush(write: (batch: Batch) => void): void {
    for (const group of this.#open.values()) this.#write(group, write);
  }

  #write(group: Group, write: (batch: Batch) => void): void {
    this.#open.delete(group.meta);
    this.#bytes -= group.len;
    const batch: Batch = {
      data: group.buf.subarray(0, group.len),
      lines: group.lines,
      meta: group.meta,
      receivedAt: group.receivedAt,
      times: group.times?.subarray(0, group.lines),
      levels: group.levels?.subarray(0, group.lines),
    };
    try {
      write(batch);
    } finally {
      group.len = 0;
      group.lines = 0;
      if (group.buf.length <= KEEP_BYTES && this.#spare.length < this.#maxGroups) {
        this.#spare.push(group);
      }
    }
  }
}

/**
 * `column` with `lines` more values from line `at` on (one for all, or one per line): the same
 * array, or a copy twice as large when it is full.
 */
function append<T extends Float64Array | Uint8Array>(
  column: T,
  at: number,
  lines: number,
  value: number | ArrayLike<number>,
): T {
  let out = column;
  if (at + lines > column.length) {
    out = new (column.constructor as new (n: number) => T)(Math.max(column.length * 2, at + lines));
    out.set(column.subarray(0, at));
  }
  if (typeof value === "number") out.fill(value, at, at + lines);
  else for (let i = 0; i < lines; i++) out[at + i] = value[i];
  return out;
}
