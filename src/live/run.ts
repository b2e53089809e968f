/**
 * Runs: what a subscriber's queue holds. A run is consecutive lines of one batch kept as bytes,
 * decoded only when a reader takes them; between runs, counts of the lines missed there.
 *
 * @module
 */

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
}

/** What a subscriber's queue holds: runs of lines and, at the gaps, counts of missed lines. */
export type Queued = Run | { dropped: number };

/** What a run costs its queue: each line's bytes, without the newline, plus the overhead. */
export function runCost(run: Run): number {
  return run.data.length + run.count * (LINE_OVERHEAD_BYTES - 1);
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

/** Appends a run's lines as records: the run is decoded at once, split at its newlines. */
export function decodeRun(run: Run, into: LiveLine[]): void {
  const texts = decoder.decode(run.data).split("\n");
  const { firstId, source, host, ts } = run;
  for (let i = 0; i < run.count; i++) {
    into.push({ id: firstId + i, source, host, ts, line: texts[i] });
  }
}
