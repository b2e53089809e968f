/**
 * Offering a batch to one subscriber: which of its lines go into the subscriber's queue (those
 * that match and fit) and how many it misses, and the runs those lines are queued as.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import type { BatchColumns } from "./batch_columns.ts";
import type { BatchLines } from "./batch_lines.ts";
import { columnsMatch } from "./filter.ts";
import { LINE_OVERHEAD_BYTES, type Run } from "./run.ts";
import type { Subscriber } from "./subscriber.ts";

/** Makes the run of lines `from` to `to` (excluded) of the batch being offered. */
export type RunMaker = (from: number, to: number) => Run;

/**
 * The runs of one batch, numbered from `firstId`. The batch is borrowed: queued lines are copied.
 * A run of a quarter of the batch or more shares one copy of it with the other subscribers (a
 * hundred tails taking the same lines cost one copy, not a hundred); a smaller run gets a copy of
 * its own, so that what a queue keeps alive stays within four times its bound. With `columns`,
 * a run carries its lines' levels (a copy) and fields (the batch's objects, never changed).
 */
export function runMaker(
  batch: Batch,
  lines: BatchLines,
  firstId: number,
  columns?: BatchColumns,
): RunMaker {
  const { source, host } = batch.meta;
  let shared: Uint8Array | undefined;
  return (from: number, to: number): Run => {
    const view = lines.bytes(from, to);
    let data: Uint8Array;
    if (view.length * 4 >= batch.data.length) {
      shared ??= batch.data.slice();
      const at = view.byteOffset - batch.data.byteOffset;
      data = shared.subarray(at, at + view.length);
    } else {
      data = view.slice();
    }
    const run = {
      data,
      firstId: firstId + from,
      count: to - from,
      source,
      host,
      ts: batch.receivedAt,
    };
    if (columns === undefined) return run;
    return {
      ...run,
      levels: columns.levelsOf(from, to),
      fields: columns.fieldsOf(from, to),
      fieldBytes: columns.bytes(from, to),
    };
  };
}

/**
 * Queues the batch's lines from its start as far as they fit (at least one into an empty
 * queue), their fields' cost included; returns how many did not.
 */
export function offerAll(
  sub: Subscriber,
  lines: BatchLines,
  run: RunMaker,
  columns?: BatchColumns,
): number {
  let fit = 0;
  if (sub.fullSince === undefined && lines.count > 0) {
    const room = sub.limit - sub.queuedBytes;
    fit = lines.fitting(0, room, LINE_OVERHEAD_BYTES - 1);
    if (columns?.fields !== undefined) {
      // Fields cost too: fewer lines fit (costs grow with the count, so step back).
      const cost = (n: number) =>
        lines.bytes(0, n).length + n * (LINE_OVERHEAD_BYTES - 1) + columns.bytes(0, n);
      while (fit > 0 && cost(fit) > room) fit--;
    }
    if (fit === 0 && sub.queuedBytes === 0) fit = 1;
  }
  if (fit > 0) sub.push(run(0, fit));
  return lines.count - fit;
}

/**
 * Queues the batch's lines that match the subscriber's filter as far as they fit; returns how
 * many matching lines did not. Once one does not fit, the rest are only counted: what a
 * subscriber receives between two dropped notices has no holes. Lines its regex had no time for
 * are added to `sub.unfiltered`. A level or fields filter is checked first, on `columns`.
 */
export function offerMatching(
  sub: Subscriber,
  lines: BatchLines,
  run: RunMaker,
  columns?: BatchColumns,
): number {
  const { filter } = sub;
  const { needle, test, grepOnly } = filter;
  const levels = columns?.levels;
  const fields = columns?.fields;
  const share = sub.filterShare;
  const next = (i: number) => needle === undefined ? i + 1 : lines.find(i + 1, needle);
  let full = sub.fullSince !== undefined;
  let dropped = 0;
  let last = share?.start() ?? 0;
  // The run being gathered: lines start to end (excluded), costing pending bytes.
  let start = -1;
  let end = -1;
  let pending = 0;
  for (let i = next(-1); i < lines.count; i = next(i)) {
    if (filter.columns && !columnsMatch(filter, levels, fields, i)) continue;
    if (full && grepOnly) {
      dropped++;
      continue;
    }
    // A grep alone decided already: find() only stops at lines holding the text.
    if (!grepOnly) {
      if (share !== undefined && !share.allows()) {
        // Out of filter time: the rest may match, so it is counted as missed, never looked at.
        if (needle === undefined) {
          sub.unfiltered += lines.count - i;
          break;
        }
        sub.unfiltered++;
        continue;
      }
      if (test !== undefined) {
        const matched = test(lines.text(i));
        if (share !== undefined) last = share.charge(last);
        if (!matched) continue;
      }
    }
    if (!full) {
      const cost = lines.bytes(i, i + 1).length + LINE_OVERHEAD_BYTES - 1 +
        (columns?.bytes(i, i + 1) ?? 0);
      const used = sub.queuedBytes + pending;
      if (used === 0 || used + cost <= sub.limit) {
        if (i !== end) {
          if (start >= 0) sub.push(run(start, end));
          start = i;
          pending = 0;
        }
        end = i + 1;
        pending += cost;
        continue;
      }
      full = true;
    }
    dropped++;
  }
  if (start >= 0) sub.push(run(start, end));
  return dropped;
}
