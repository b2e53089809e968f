/**
 * Per-source counters: lines, bytes and last seen, per input, and the lines and bytes of each of
 * the last {@linkcode HISTORY_SECONDS} seconds (rates and sparklines). A sink in the router, so
 * every input is counted the same way without knowing about metrics.
 *
 * The seconds are those of each batch's `receivedAt`: counting reads no clock. A second's slot is
 * cleared as the counts move past it, so a source holds two arrays of {@linkcode HISTORY_SECONDS}
 * numbers however long it runs, and there are at most `maxSources` sources.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { type Clock, SYSTEM_CLOCK } from "../clock.ts";

/** Seconds of history kept per source: rates are over these, sparklines show them. */
export const HISTORY_SECONDS = 60;

/** Lines and bytes of each of the last seconds, in slots by second (second % size). */
class History {
  readonly lines = new Float64Array(HISTORY_SECONDS);
  readonly bytes = new Float64Array(HISTORY_SECONDS);
  /** The latest second counted (ms since the epoch / 1000, floored). */
  head: number;

  constructor(second: number) {
    this.head = second;
  }

  add(second: number, lines: number, bytes: number): void {
    this.advance(second);
    if (second <= this.head - HISTORY_SECONDS) return; // older than the window
    const slot = second % HISTORY_SECONDS;
    this.lines[slot] += lines;
    this.bytes[slot] += bytes;
  }

  /** Moves the head to `second`, clearing the slots of the seconds passed. */
  advance(second: number): void {
    if (second <= this.head) return;
    const from = Math.max(this.head + 1, second - HISTORY_SECONDS + 1);
    for (let s = from; s <= second; s++) {
      this.lines[s % HISTORY_SECONDS] = 0;
      this.bytes[s % HISTORY_SECONDS] = 0;
    }
    this.head = second;
  }
}

/** Counters of one (input, source) pair. */
export interface SourceCounters {
  /** The input, e.g. `tcp` or `http`. */
  readonly input: string;
  /** The source; {@linkcode OTHER_SOURCE} gathers those beyond the limit. */
  readonly source: string;
  /** Lines received. */
  lines: number;
  /** Bytes received, newlines included. */
  bytes: number;
  /** When the last batch was received, in milliseconds since the epoch. */
  lastSeen: number;
  /** The last seconds' counts (set at the first batch). */
  history?: History;
}

/** One source over its inputs, as `GET /api/v1/sources` lists it. */
export interface SourceSummary {
  /** The source. */
  source: string;
  /** Lines received since start. */
  lines: number;
  /** Bytes received since start. */
  bytes: number;
  /** When its last batch came, ISO 8601 (`lastSeen` too, the name before `last_seen`). */
  last_seen: string;
  /** Same as `last_seen`. */
  lastSeen: string;
  /** Lines per second over the last minute (the 60 whole seconds before now). */
  lines_per_second: number;
  /** Bytes per second over the last minute. */
  bytes_per_second: number;
  /** Lines in each of those 60 seconds, oldest first. */
  history: number[];
}

/** The source that counts every source past {@linkcode SourceStatsOptions.maxSources}. */
export const OTHER_SOURCE = "_other";

/** Options of {@linkcode SourceStats}. */
export interface SourceStatsOptions {
  /**
   * Most (input, source) pairs counted separately. Sources come from the network, so their number
   * is bounded; later ones are counted under {@linkcode OTHER_SOURCE}. Default 1,000.
   */
  maxSources?: number;
  /** What "now" is for {@linkcode SourceStats.summary}. Default the system clock. */
  clock?: Pick<Clock, "now">;
}

/**
 * Counts what each source sent. As a {@linkcode Sink} it never holds bytes: `write` counts and
 * returns `true`.
 *
 * @example
 * ```ts
 * const counts = new SourceStats();
 * const router = new Router([fileSink, hub, counts]);
 * for (const c of counts.list()) console.log(c.source, c.lines);
 * ```
 */
export class SourceStats implements Sink {
  /** Always `sources`. */
  readonly name = "sources";
  /** Always `false`: counting never pushes back. */
  readonly full = false;
  readonly #maxSources: number;
  readonly #clock: Pick<Clock, "now">;
  readonly #counters = new Map<string, SourceCounters>();
  /**
   * The counters of each batch origin seen: an input builds its `BatchMeta` once per connection
   * or source, so a batch costs one lookup by identity, not a key string and a map lookup.
   */
  readonly #byMeta = new WeakMap<BatchMeta, SourceCounters>();

  /** @param options see {@linkcode SourceStatsOptions}. */
  constructor(options: SourceStatsOptions = {}) {
    const { maxSources = 1000 } = options;
    if (!Number.isSafeInteger(maxSources) || maxSources < 1) {
      throw new RangeError(`Source limit must be a positive integer, got "${maxSources}"`);
    }
    this.#maxSources = maxSources;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Counts the batch. */
  write(batch: Batch): boolean {
    let counters = this.#byMeta.get(batch.meta);
    if (counters === undefined) {
      counters = this.#lookup(batch.meta);
      this.#byMeta.set(batch.meta, counters);
    }
    counters.lines += batch.lines;
    counters.bytes += batch.data.length;
    if (batch.receivedAt > counters.lastSeen) counters.lastSeen = batch.receivedAt;
    const second = Math.floor(batch.receivedAt / 1000);
    (counters.history ??= new History(second)).add(second, batch.lines, batch.data.length);
    return true;
  }

  #lookup(meta: BatchMeta): SourceCounters {
    const { input, source } = meta;
    let counters = this.#counters.get(`${input}\n${source}`);
    if (counters === undefined) {
      const known = this.#counters.size < this.#maxSources;
      const name = known ? source : OTHER_SOURCE;
      const key = `${input}\n${name}`;
      counters = this.#counters.get(key);
      if (counters === undefined) {
        counters = { input, source: name, lines: 0, bytes: 0, lastSeen: 0 };
        this.#counters.set(key, counters);
      }
    }
    return counters;
  }

  /** The counters of every (input, source) pair seen, live objects: read, do not keep. */
  list(): readonly Readonly<SourceCounters>[] {
    return [...this.#counters.values()];
  }

  /**
   * Each source over its inputs, by name: totals, last seen, rates over the last minute and the
   * lines of each of its seconds (oldest first), as of the clock's now.
   */
  summary(): SourceSummary[] {
    const now = Math.floor(this.#clock.now() / 1000);
    const bySource = new Map<string, { counters: SourceCounters[] }>();
    for (const c of this.#counters.values()) {
      const entry = bySource.get(c.source);
      if (entry === undefined) bySource.set(c.source, { counters: [c] });
      else entry.counters.push(c);
    }
    const out: SourceSummary[] = [];
    for (const [source, { counters }] of bySource) {
      let lines = 0;
      let bytes = 0;
      let last = 0;
      let windowBytes = 0;
      const history = new Array<number>(HISTORY_SECONDS).fill(0);
      for (const c of counters) {
        lines += c.lines;
        bytes += c.bytes;
        last = Math.max(last, c.lastSeen);
        const h = c.history;
        if (h === undefined) continue;
        h.advance(now);
        // The whole seconds before now: now - 60 to now - 1, oldest first.
        for (let i = 0; i < HISTORY_SECONDS; i++) {
          const second = now - HISTORY_SECONDS + i;
          if (second <= h.head - HISTORY_SECONDS) continue;
          history[i] += h.lines[second % HISTORY_SECONDS];
          windowBytes += h.bytes[second % HISTORY_SECONDS];
        }
      }
      const seen = new Date(last).toISOString();
      out.push({
        source,
        lines,
        bytes,
        last_seen: seen,
        lastSeen: seen,
        lines_per_second: history.reduce((a, b) => a + b, 0) / HISTORY_SECONDS,
        bytes_per_second: windowBytes / HISTORY_SECONDS,
        history,
      });
    }
    return out.sort((a, b) => a.source < b.source ? -1 : a.source > b.source ? 1 : 0);
  }

  /** Resolves at once: nothing is held. */
  writable(): Promise<void> {
    return Promise.resolve();
  }

  /** Resolves at once: nothing is held. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Resolves at once: nothing is held. */
  close(_options: { signal?: AbortSignal } = {}): Promise<void> {
    return Promise.resolve();
  }
}
