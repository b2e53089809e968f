/**
 * Per-source counters: lines, bytes and last seen, per input. A sink in the router, so every
 * input is counted the same way without knowing about metrics.
 *
 * @module
 */

import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";

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
