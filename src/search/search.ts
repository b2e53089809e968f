/**
 * Searches over the stored files: matching lines newest file first, a histogram of them over
 * time, and the neighbours of one line.
 *
 * @module
 */

import { listStoredFiles, type StoredFile, type StoreLayout } from "./catalog.ts";
import type { SearchQuery } from "./query.ts";
import { openRandom, streamGzip } from "./reader.ts";
import { type Hit, Scanner, spansOf } from "./scan.ts";

/** What a search did, the last line of its answer. */
export interface SearchSummary {
  matched: number;
  files: number;
  scannedBytes: number;
  skippedBytes: number;
  truncated: boolean;
}

/** A summary of nothing done yet, for a search to count into. */
export function emptySummary(): SearchSummary {
  return { matched: 0, files: 0, scannedBytes: 0, skippedBytes: 0, truncated: false };
}

/** Searches running now, for tests and metrics. */
export const searchGauge = { active: 0 };

/**
 * The query's hits, newest file first, in batches; ends with the summary. Stops reading when
 * `signal` aborts (every file it opened is closed).
 */
export async function* search(
  layout: StoreLayout,
  query: SearchQuery,
  signal?: AbortSignal,
): AsyncGenerator<Hit[], SearchSummary> {
  searchGauge.active++;
  try {
    const scanner = new Scanner(query);
    const summary = emptySummary();
    const files = await listStoredFiles(layout);
    const wanted = () => query.limit - summary.matched;
    for (let i = 0; i < files.length; i++) {
      const file = files[i];
      signal?.throwIfAborted();
      if (wanted() <= 0) {
        summary.truncated = true;
        break;
      }
      if (!scanner.mayMatch(file)) {
        scanner.stats.skippedBytes += file.index?.end?.size ?? file.size;
        continue;
      }
      summary.files++;
      try {
        for await (const hits of scanner.scan(file, wanted, signal)) {
          const take = hits.length > wanted() ? hits.slice(0, wanted()) : hits;
          summary.matched += take.length;
          yield take;
          if (wanted() <= 0) summary.truncated = true;
        }
      } catch (err) {
        if (signal?.aborted || !(err instanceof Deno.errors.NotFound)) throw err;
        // Deleted by retention (or compressed away) since it was listed: go on.
      }
    }
    summary.scannedBytes = scanner.stats.scannedBytes;
    summary.skippedBytes = scanner.stats.skippedBytes;
    return summary;
  } finally {
    searchGauge.active--;
  }
}

/** Counts of matching lines per bucket of time. */
export interface Histogram {
  from: number;
  to: number;
  stepMs: number;
  counts: number[];
  /** Matching lines whose time is not known (files without an index). */
  unplaced: number;
}

/** Counts the query's matching lines in `buckets` equal buckets over its time range. */
export async function histogram(
  layout: StoreLayout,
  query: SearchQuery,
  buckets: number,
  signal?: AbortSignal,
  now = Date.now(),
): Promise<Histogram> {
  searchGauge.active++;
  try {
    const files = await listStoredFiles(layout);
    let from = query.from;
    let to = query.to;
    if (!Number.isFinite(to)) to = Math.min(now, Math.max(...files.map((f) => f.hi), now));
    if (!Number.isFinite(from)) {
      const known = files.map((f) => f.index?.marks[0]?.time ?? f.lo).filter(Number.isFinite);
      from = known.length > 0 ? Math.min(...known) : to - 3_600_000;
    }
    if (from >= to) from = to - 1;
    const stepMs = Math.max(1, Math.ceil((to - from) / buckets));
    const counts = new Array<number>(buckets).fill(0);
    let unplaced = 0;
    const scanner = new Scanner({ ...query, from, to, limit: Infinity });
    for (const file of files) {
      signal?.throwIfAborted();
      if (!scanner.mayMatch(file)) continue;
      try {
        for await (const hits of scanner.scan(file, () => Infinity, signal)) {
          for (const hit of hits) {
            if (hit.ts === null) unplaced++;
            else counts[Math.min(buckets - 1, Math.floor((hit.ts - from) / stepMs))]++;
          }
        }
      } catch (err) {
        if (signal?.aborted || !(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return { from, to, stepMs, counts, unplaced };
  } finally {
    searchGauge.active--;
  }
}

/** The lines around one line: `before` lines, the line itself (`hit`), `after` lines. */
export async function context(
  layout: StoreLayout,
  name: string,
  offset: number,
  before: number,
  after: number,
  signal?: AbortSignal,
): Promise<(Hit & { hit?: true })[] | undefined> {
  const files = await listStoredFiles(layout);
  const file = files.find((f) => f.name === name);
  if (file === undefined) return undefined;
  const window = Math.min(8 * 1024 * 1024, (before + after + 1) * 64 * 1024);
  const { bytes, start } = await readWindow(file, offset, window, signal);
  if (bytes === undefined) return [];
  const scanner = new Scanner({ from: -Infinity, to: Infinity, minLevel: 0, fields: [], limit: 1 });
  const spans = spansOf(file, Infinity);
  // Whole lines of the window only: from after its first newline (unless it starts the file).
  let from = 0;
  if (start > 0) from = bytes.indexOf(10) + 1;
  let to = bytes.length;
  if (start + bytes.length < (file.index?.end?.size ?? Infinity)) to = bytes.lastIndexOf(10) + 1;
  const lines = scanner.describeLines(
    file,
    spans,
    bytes,
    Math.max(0, from),
    Math.max(0, to),
    start,
  );
  const at = lines.findIndex((hit) => hit.offset === offset);
  if (at === -1) return [];
  return [
    ...lines.slice(Math.max(0, at - before), at),
    { ...lines[at], hit: true as const },
    ...lines.slice(at + 1, at + 1 + after),
  ];
}

/** The uncompressed bytes of `file` from `offset - window` to `offset + window`. */
async function readWindow(
  file: StoredFile,
  offset: number,
  window: number,
  signal?: AbortSignal,
): Promise<{ bytes: Uint8Array | undefined; start: number }> {
  const start = Math.max(0, offset - window);
  const reader = await openRandom(file);
  if (reader !== undefined) {
    try {
      const end = Math.min(reader.size, offset + window);
      if (offset >= end) return { bytes: undefined, start };
      const bytes = new Uint8Array(end - start);
      await reader.readInto(bytes, start);
      return { bytes, start };
    } finally {
      reader.close();
    }
  }
  // A .gz without an index of members: from its start.
  const bytes = new Uint8Array(2 * window);
  let at = 0;
  let pos = 0;
  for await (const chunk of streamGzip(file.path, signal)) {
    const from = Math.max(0, start - pos);
    const piece = chunk.subarray(from, Math.min(chunk.length, from + bytes.length - at));
    if (pos + chunk.length > start) {
      bytes.set(piece, at);
      at += piece.length;
    }
    pos += chunk.length;
    if (at >= bytes.length) break;
  }
  return { bytes: at > offset - start ? bytes.subarray(0, at) : undefined, start };
}
