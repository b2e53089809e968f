/**
 * Runs: what a subscriber's queue holds. A run is consecutive lines of one batch kept as bytes,
 * decoded only when a reader takes them; between runs, counts of the lines missed there.
 *
 * @module
 */

import { levelOfCode } from "../pipeline/record.ts";
import type { FieldsColumn } from "./batch_columns.ts";
import type { LiveLine } from "./subscription.ts";

/** Bookkeeping a queued line costs beyond its text, so tiny lines cannot queue without bound. */
export const LINE_OVERHEAD_BYTES = 64;
// ignoreBOM: a line may start with U+FEFF and must reach subscribers as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Lines queued for a subscriber: consecutive lines of one batch, kept as bytes and decoded only
 * when the subscriber reads them, so a queue costs one copy (often shared), not a string and a
 * record per line.
 */
export interface Run {
  /** The lines, newline-terminated; a copy no one changes (possibly shared with other runs). */
  readonly data: Uint8Array;
  /** Id of the first line. */
  readonly firstId: number;
  /** How many lines `data` holds. */
  readonly count: number;
  /** The source of the batch the lines came in. */
  readonly source: string;
  /** The host that sent them. */
  readonly host: string;
  /** When they were received, in milliseconds since the epoch. */
  readonly ts: number;
  /** Whether the run is backfill or resume from the ring, which `keepLines` never drops. */
  readonly backlog?: true;
  /** Each line's level code, when its batch had levels; a copy no one changes. */
  readonly levels?: Uint8Array;
  /** Each line's fields, when its batch had fields (the batch's objects, never changed). */
  readonly fields?: FieldsColumn;
  /** What the lines' fields cost the queue, in bytes (see `batch_columns.ts`). Default 0. */
  readonly fieldBytes?: number;
}

/** What a subscriber's queue holds: runs of lines and, at the gaps, counts of missed lines. */
export type Queued = Run | { dropped: number };

/**
 * What a run costs its queue: each line's bytes, without the newline, plus the overhead, plus
 * what its fields cost.
 */
export function runCost(run: Run): number {
  return run.data.length + run.count * (LINE_OVERHEAD_BYTES - 1) + (run.fieldBytes ?? 0);
}

/**
 * Cuts a run after its first `count` lines (0 < `count` < `run.count`): both parts share its
 * bytes, and their costs add up to the run's (its fields' cost is shared by line count).
 */
export function splitRun(run: Run, count: number): [Run, Run] {
  const cut = endOfLines(run.data, count);
  const head: Run = { ...run, data: run.data.subarray(0, cut), count };
  const tail: Run = {
    ...run,
    data: run.data.subarray(cut),
    firstId: run.firstId + count,
    count: run.count - count,
  };
  if (run.levels !== undefined || run.fields !== undefined) {
    const fieldBytes = run.fieldBytes ?? 0;
    const headBytes = Math.round(fieldBytes * count / run.count);
    return [
      {
        ...head,
        levels: run.levels?.subarray(0, count),
        fields: run.fields?.slice(0, count),
        fieldBytes: headBytes,
      },
      {
        ...tail,
        levels: run.levels?.subarray(count),
        fields: run.fields?.slice(count),
        fieldBytes: fieldBytes - headBytes,
      },
    ];
  }
  return [head, tail];
}

/** The byte offset just past the `count`th newline of `data` (its end if there are fewer). */
export function endOfLines(data: Uint8Array, count: number): number {
  let at = 0;
  for (let i = 0; i < count; i++) {
    const nl = data.indexOf(10, at);
    if (nl === -1) return data.length;
    at = nl + 1;
  }
  return at;
}

/**
 * Appends a run's lines as records: the run is decoded at once, split at its newlines. A line
 * with a level or fields has them (`level`, `fields`); others have neither key.
 */
export function decodeRun(run: Run, into: LiveLine[]): void {
  const texts = decoder.decode(run.data).split("\n");
  const { firstId, source, host, ts, levels, fields } = run;
  if (levels === undefined && fields === undefined) {
    for (let i = 0; i < run.count; i++) {
      into.push({ id: firstId + i, source, host, ts, line: texts[i] });
    }
    return;
  }
  for (let i = 0; i < run.count; i++) {
    const line: { -readonly [K in keyof LiveLine]: LiveLine[K] } = {
      id: firstId + i,
      source,
      host,
      ts,
      line: texts[i],
    };
    const level = levels === undefined ? undefined : levelOfCode(levels[i]);
    if (level !== undefined) line.level = level;
    const own = fields?.[i];
    if (own !== undefined) line.fields = own;
    into.push(line);
  }
}
