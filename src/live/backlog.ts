/**
 * The backlog: lines still in the hub's ring that a new subscription starts with, for backfill
 * (the newest matching lines) or for a resume (every matching line after a cursor, and counts of
 * what it cannot have).
 *
 * @module
 */

import { BatchLines } from "./batch_lines.ts";
import { columnsMatch, columnsMayMatch } from "./filter.ts";
import type { LineRing } from "./line_ring.ts";
import { LINE_OVERHEAD_BYTES, type Queued } from "./run.ts";
import type { Subscriber } from "./subscriber.ts";

/** What {@linkcode recentLines} found. */
export interface Backlog {
  /** Runs (marked `backlog`) and counts of missed lines, oldest first. */
  items: Queued[];
  /** Lines counted as missed in `items`. */
  missed: number;
  /** Of those, lines the filter had no time to look at. */
  unfiltered: number;
}

/**
 * The newest lines of `ring` after `afterId` that match the subscriber's filter, up to `limit`
 * and the subscriber's queue bound, oldest first. For a resume (`limit` infinite), the lines it
 * cannot have are counted where they are: matching ones that did not fit (the oldest, first),
 * those the filter had no time for (`unfiltered`: they may not have matched), and those the ring
 * skipped over its rate (at the gap); `missed` is their sum.
 */
export function recentLines(
  ring: LineRing,
  sub: Pick<Subscriber, "filter" | "filterShare" | "limit">,
  afterId: number,
  limit: number,
): Backlog {
  const { filter, filterShare: share } = sub;
  const resume = limit === Infinity;
  // Newest first while scanning; reversed at the end.
  const items: Queued[] = [];
  const gap = (count: number) => {
    if (count <= 0) return;
    missed += count;
    const newest = items.at(-1);
    if (newest !== undefined && "dropped" in newest) newest.dropped += count;
    else items.push({ dropped: count });
  };
  let bytes = 0;
  let taken = 0;
  let missed = 0;
  let unfiltered = 0;
  let full = false;
  let last = share?.start() ?? 0;
  // The id just past the lines of the chunk seen before (newer): what lies between is a gap.
  let newerStart = ring.nextId;
  scan: for (const chunk of ring.newestFirst()) {
    const chunkEnd = chunk.firstId + chunk.lines;
    if (resume) gap(newerStart - Math.max(chunkEnd, afterId + 1));
    newerStart = chunk.firstId;
    if (chunkEnd - 1 <= afterId) break;
    if (filter.source !== undefined && filter.source !== chunk.source) continue;
    const { columns } = chunk;
    const levels = columns?.levels;
    const fields = columns?.fields;
    if (filter.columns && !columnsMayMatch(filter, levels, fields)) continue;
    const lines = new BatchLines(chunk.data, chunk.lines);
    // The run being gathered, backwards: lines start to end (excluded) of this chunk.
    let start = -1;
    let end = -1;
    const flush = () => {
      if (start >= 0) {
        const { firstId, source, host, receivedAt: ts } = chunk;
        const data = lines.bytes(start, end).slice();
        const count = end - start;
        const run = {
          data,
          firstId: firstId + start,
          count,
          source,
          host,
          ts,
          backlog: true as const,
        };
        items.push(
          columns === undefined ? run : {
            ...run,
            levels: columns.levelsOf(start, end),
            fields: columns.fieldsOf(start, end),
            fieldBytes: columns.bytes(start, end),
          },
        );
      }
      start = end = -1;
    };
    for (let i = chunk.lines - 1; i >= 0; i--) {
      if (chunk.firstId + i <= afterId) {
        flush();
        break scan;
      }
      if (filter.columns && !columnsMatch(filter, levels, fields, i)) continue;
      if (filter.test !== undefined) {
        if (share !== undefined && !share.allows()) {
          // Out of filter time: backfill ends here; a resume counts the rest as missed.
          if (!resume) {
            flush();
            break scan;
          }
          full = true;
          unfiltered++;
          flush();
          gap(1);
          continue;
        }
        const matched = filter.test(lines.text(i));
        if (share !== undefined) last = share.charge(last);
        if (!matched) continue;
      }
      const cost = lines.bytes(i, i + 1).length + LINE_OVERHEAD_BYTES - 1 +
        (columns?.bytes(i, i + 1) ?? 0);
      if (!full && taken < limit && (bytes + cost <= sub.limit || taken === 0)) {
        bytes += cost;
        taken++;
        if (i + 1 !== start) {
          flush();
          end = i + 1;
        }
        start = i;
        continue;
      }
      // Stop at the first line that does not fit, so what is delivered has no holes.
      flush();
      if (!resume) break scan;
      full = true;
      gap(1);
    }
    flush();
  }
  return { items: items.reverse(), missed, unfiltered };
}
