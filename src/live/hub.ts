/**
 * The live hub: fans ingested lines out to live-tail subscribers, each with its own queue bounded
 * in bytes. Ingestion never waits for a subscriber: a slow one loses lines (and is told how many),
 * a stalled one is closed, the others are unaffected.
 *
 * The parts, one per file: what a reader sees (`subscription.ts`), compiled filters
 * (`filter.ts`), the runs a queue holds (`run.ts`), the subscriber and its queue
 * (`subscriber.ts`), offering a batch to one subscriber (`offer.ts`), and the backlog a new
 * subscription starts with (`backlog.ts`).
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { DEFAULT_MAX_CHARS } from "../text/linear_regex.ts";
import { recentLines } from "./backlog.ts";
import { BatchColumns } from "./batch_columns.ts";
import { BatchLines } from "./batch_lines.ts";
import { newEpoch, parseCursor } from "./cursor.ts";
import { columnsMayMatch, compileFilter, type FilterOptions } from "./filter.ts";
import { FilterBudget } from "./filter_budget.ts";
import { LineRing } from "./line_ring.ts";
import { offerAll, offerMatching, runMaker } from "./offer.ts";
import { Subscriber } from "./subscriber.ts";
import type { Subscription } from "./subscription.ts";

/** Options of {@linkcode LiveHub.subscribe}. */
export interface SubscribeOptions extends FilterOptions {
  /** Start with up to this many of the most recent matching lines still in memory. Default 0. */
  backfill?: number;
  /**
   * Resume after this cursor (the SSE `Last-Event-ID`): start with every matching line after it
   * still in memory, preceded by a `dropped` event counting the lines after it that are no longer
   * there. Takes precedence over `backfill`. A string is a cursor, `<epoch>-<id>`
   * (`RangeError` when malformed): from another run of the server (another epoch, or a bare id),
   * it resumes from the first line of this run (the subscription is `restarted`). A number is a
   * line id of this run; one the hub never gave is ignored and `backfill` applies.
   */
  lastEventId?: number | string;
  /** Bound of this subscriber's queue, in bytes. Default: the hub's `queueBytes`. */
  queueBytes?: number;
  /** Ends the subscription when aborted. */
  signal?: AbortSignal;
}

/** Options of {@linkcode LiveHub}. */
export interface LiveHubOptions {
  /** Lines kept in memory for backfill and resume. Default 10,000. */
  ringLines?: number;
  /** Bytes of lines kept in memory for backfill and resume. Default 8 MiB. */
  ringBytes?: number;
  /**
   * Most bytes per second the ring copies, in whole batches: below this rate it keeps every
   * line; above it, a batch now and then, so backfill still shows recent lines and a resume is
   * told how many lines it cannot have (at such rates a tail falls behind anyway). Subscribers
   * get their lines from the batches, not the ring: copying every batch for backfill nobody may
   * ask for cost the default command line 10% of its CPU. Default 8 MiB (80,000 lines of 100
   * bytes a second).
   */
  ringBytesPerSecond?: number;
  /**
   * Default bound of each subscriber's queue. A queued line counts its length in UTF-8 bytes
   * plus 64 for its record; a line is always accepted into an empty queue. Default 1 MiB.
   */
  queueBytes?: number;
  /** Most subscribers at once. Default 1,000. */
  maxSubscribers?: number;
  /** A subscriber whose queue stays full longer than this, in milliseconds, is closed. Default 15,000. */
  stallMs?: number;
  /** Most lines in one `lines` event. Default 1,000. */
  maxEventLines?: number;
  /**
   * Least time between two `dropped` events that have no lines behind them, in ms. Default
   * 1,000: a subscriber kept over its budget would otherwise get one per batch, and each is a
   * network write (Loki reports missed entries periodically too).
   */
  noticeMs?: number;
  /** The clock, in milliseconds; swapped in tests. Default `Date.now`. */
  now?: () => number;
  /** Names this run of the server in cursors. Default: a new one (boot time and random digits). */
  epoch?: string;
  /**
   * Milliseconds per second that all subscribers' regex filters may take together, shared
   * evenly; lines a subscriber's filter had no time for are counted as dropped for it.
   * Default 100 (a tenth of one core).
   */
  filterMsPerSecond?: number;
  /** Most milliseconds one subscriber's regex may take at once. Default 20. */
  filterBurstMs?: number;
  /** Characters of a line a regex filter looks at. Default 8,192. */
  regexLineChars?: number;
  /** The clock filter time is measured with, in ms; swapped in tests. Default `performance.now`. */
  filterClock?: () => number;
}

/** The hub's counters, for metrics. */
export interface LiveHubStats {
  /** Open subscriptions. */
  readonly subscribers: number;
  /** Lines handed to subscribers' readers, summed over subscribers. */
  readonly linesDelivered: number;
  /**
   * Matching lines subscribers missed (full queue, stalled, gone from memory before resume, or
   * not filtered for lack of filter time).
   */
  readonly linesDropped: number;
  /**
   * Of those, lines a subscriber's regex had no time to look at (they may not have matched).
   * Optional for stats built by hand (tests); the hub always sets it.
   */
  readonly linesUnfiltered?: number;
  /** Subscribers closed because they stalled. */
  readonly subscribersStalled: number;
  /** Lines held for backfill. */
  readonly ringLines: number;
  /** Bytes held for backfill. */
  readonly ringBytes: number;
  /** Id of the newest line, `0` before the first. */
  readonly lastId: number;
}

/** Raised by {@linkcode LiveHub.subscribe} at the subscriber cap (HTTP 503). */
export class TooManySubscribersError extends Error {
  /** The cap that was reached. */
  readonly limit: number;
  /**
   * Builds the error for the cap that was reached.
   *
   * @param limit the cap that was reached.
   */
  constructor(limit: number) {
    super(`Too many live subscribers: the limit is "${limit}"`);
    this.name = "TooManySubscribersError";
    this.limit = limit;
  }
}

/** Raised by {@linkcode LiveHub.subscribe} once the hub is closed (HTTP 503). */
export class HubClosedError extends Error {
  /** Builds the error; it carries no details. */
  constructor() {
    super("The live hub is closed");
    this.name = "HubClosedError";
  }
}

/**
 * The live-tail fan-out. As a {@linkcode Sink} it takes every batch; `write` always returns
 * `true` and costs one copy into the ring when nobody listens. Subscribers' queues hold lines as
 * bytes, decoded when a reader takes them; a batch is decoded once, whatever the number of
 * subscribers, only when one of them filters; a full subscriber without a filter costs nothing.
 *
 * @example
 * ```ts
 * const hub = new LiveHub();
 * const router = new Router([fileSink, hub]);
 * const tail = hub.subscribe({ grep: "ERROR", backfill: 100, signal: request.signal });
 * for await (const event of tail) {
 *   if (event.type === "dropped") console.log(`... ${event.count} lines missed`);
 *   else for (const { id, line } of event.lines) console.log(id, line);
 * }
 * ```
 */
export class LiveHub implements Sink {
  /** Always `live`. */
  readonly name = "live";
  readonly #ring: LineRing;
  readonly #queueBytes: number;
  readonly #maxSubscribers: number;
  readonly #stallMs: number;
  readonly #maxEventLines: number;
  readonly #noticeMs: number;
  readonly #now: () => number;
  readonly #subscribers = new Set<Subscriber>();
  /** The subscribers offered each batch: all but the parked ones. */
  readonly #active = new Set<Subscriber>();
  /**
   * Subscribers with a full queue and no filter: every line ingested is one they miss, so the
   * hub counts it from line ids when they take something, instead of visiting them per batch.
   */
  readonly #parked = new Set<Subscriber>();
  /** When the first parked subscriber will have stalled (parked ones are checked only then). */
  #parkedStallAt = Infinity;
  readonly #counters = { delivered: 0, dropped: 0, unfiltered: 0 };
  readonly #epoch: string;
  readonly #filterBudget: FilterBudget;
  readonly #regexLineChars: number;
  /** Bytes per ms the ring may copy. */
  readonly #ringRate: number;
  /** Bytes the ring may copy now; refilled at `#ringRate` up to the ring's bound. */
  #ringAllowance: number;
  #ringAt: number;
  #stalled = 0;
  #nextSubscriberId = 1;
  #closed = false;

  /**
   * Creates an empty hub with no subscribers.
   *
   * @param options bounds and clock; see {@linkcode LiveHubOptions} for defaults.
   */
  constructor(options: LiveHubOptions = {}) {
    const {
      ringLines = 10_000,
      ringBytes = 8 * 1024 * 1024,
      queueBytes = 1024 * 1024,
      maxSubscribers = 1000,
      stallMs = 15_000,
      maxEventLines = 1000,
      noticeMs = 1000,
      now = Date.now,
      epoch = newEpoch(),
      filterMsPerSecond,
      filterBurstMs,
      regexLineChars = DEFAULT_MAX_CHARS,
      filterClock,
      ringBytesPerSecond = 8 * 1024 * 1024,
    } = options;
    if (!/^[0-9a-z]{1,24}$/.test(epoch)) {
      throw new RangeError(`Epoch must be 1 to 24 digits and lowercase letters, got "${epoch}"`);
    }
    this.#epoch = epoch;
    this.#filterBudget = new FilterBudget({
      msPerSecond: filterMsPerSecond,
      burstMs: filterBurstMs,
      clock: filterClock,
    });
    this.#regexLineChars = positive("Characters a regex looks at", regexLineChars);
    this.#ringRate = nonNegative("Ring rate", ringBytesPerSecond) / 1000;
    this.#ringAllowance = ringBytes;
    this.#ringAt = now();
    this.#ring = new LineRing({ maxLines: ringLines, maxBytes: ringBytes });
    this.#queueBytes = positive("Queue byte bound", queueBytes);
    this.#maxSubscribers = positive("Subscriber limit", maxSubscribers);
    this.#stallMs = nonNegative("Stall timeout", stallMs);
    this.#maxEventLines = positive("Lines per event", maxEventLines);
    this.#noticeMs = nonNegative("Dropped notice interval", noticeMs);
    this.#now = now;
  }

  /** Names this run of the server: cursors are `<epoch>-<line id>`. */
  get epoch(): string {
    return this.#epoch;
  }

  /** Subscribers now (cheaper than `stats` when asked per batch). */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** Counters for metrics. */
  get stats(): LiveHubStats {
    return {
      subscribers: this.#subscribers.size,
      linesDelivered: this.#counters.delivered,
      linesDropped: this.#counters.dropped + this.#missedWhileParked(),
      linesUnfiltered: this.#counters.unfiltered,
      subscribersStalled: this.#stalled,
      ringLines: this.#ring.lines,
      ringBytes: this.#ring.bytes,
      lastId: this.#ring.nextId - 1,
    };
  }

  /**
   * Numbers the lines, remembers them, and queues them for matching subscribers. Never blocks
   * and always returns `true`: live tail must not slow ingestion. Lines written after
   * {@linkcode LiveHub.close} are ignored.
   */
  write(batch: Batch): boolean {
    if (this.#closed) return true;
    // Before the batch is numbered: a subscriber closed now does not miss it.
    let now = this.#parked.size > 0 ? this.#closeStalledParked() : undefined;
    // Only a batch with levels or fields has columns: a plain one costs nothing more here.
    const columns = BatchColumns.of(batch);
    const firstId = this.#mayKeep(batch.data.length)
      ? this.#ring.push(batch, columns)
      : this.#ring.skip(batch.lines);
    // Nobody to offer lines to (none listens, or every one is parked): nothing more to do.
    if (this.#active.size === 0) return true;
    // Indexed lazily and shared: a subscriber whose queue is full, or whose grep finds nothing in
    // the batch, costs no copy, and none costs decoding unless it filters.
    const lines = new BatchLines(batch.data, batch.lines);
    const run = runMaker(batch, lines, firstId, columns);
    const { source } = batch.meta;
    for (const sub of this.#active) {
      if (sub.fullSince !== undefined) {
        now ??= this.#now();
        if (now - sub.fullSince > this.#stallMs) {
          this.#stalled++;
          sub.end("stalled");
          continue;
        }
      }
      const { filter } = sub;
      if (filter.source !== undefined && filter.source !== source) continue;
      // A level or fields filter on a batch without that column: no line matches, none looked at.
      if (filter.columns && !columnsMayMatch(filter, batch.levels, batch.fields)) continue;
      const dropped = filter.test === undefined && !filter.columns
        ? offerAll(sub, lines, run, columns)
        : offerMatching(sub, lines, run, columns);
      if (sub.unfiltered > 0) {
        // Not a full queue: the filter ran out of time. Counted, not a reason to park or stall.
        this.#counters.unfiltered += sub.unfiltered;
        sub.drop(sub.unfiltered);
        sub.unfiltered = 0;
      }
      if (dropped > 0) {
        sub.drop(dropped);
        sub.fullSince ??= now ??= this.#now();
        if (filter.source === undefined && filter.test === undefined && !filter.columns) {
          this.#park(sub);
        }
      }
      sub.wake();
    }
    return true;
  }

  /**
   * Stops offering lines to a full subscriber without a filter: every line ingested is one it
   * misses, counted from line ids once it reads again.
   */
  #park(sub: Subscriber): void {
    sub.park(this.#ring.nextId);
    this.#active.delete(sub);
    this.#parked.add(sub);
    this.#parkedStallAt = Math.min(this.#parkedStallAt, sub.fullSince! + this.#stallMs);
  }

  /** Closes the parked subscribers that stalled, once the first may have; returns the time. */
  #closeStalledParked(): number {
    const now = this.#now();
    if (now > this.#parkedStallAt) {
      this.#closeStalled(this.#parked, now);
      this.#parkedStallAt = Infinity;
      for (const sub of this.#parked) {
        this.#parkedStallAt = Math.min(this.#parkedStallAt, sub.fullSince! + this.#stallMs);
      }
    }
    return now;
  }

  /**
   * Whether a batch of `bytes` may be copied into the ring, within its rate. The copy is most of
   * what the hub costs when nobody listens, for lines nobody may ever ask for: below the rate
   * every batch is kept; above it, a batch now and then, so backfill still shows recent lines
   * and a resume counts what the ring skipped.
   */
  #mayKeep(bytes: number): boolean {
    const now = this.#now();
    const cap = this.#ring.maxBytes;
    this.#ringAllowance = Math.min(
      cap,
      this.#ringAllowance + (now - this.#ringAt) * this.#ringRate,
    );
    this.#ringAt = now;
    const cost = Math.min(bytes, cap);
    if (cost > this.#ringAllowance) return false;
    this.#ringAllowance -= cost;
    return true;
  }

  #missedWhileParked(): number {
    let missed = 0;
    for (const sub of this.#parked) missed += sub.missedWhileParked;
    return missed;
  }

  /** Always `false`: the hub drops for slow subscribers instead of pushing back. */
  readonly full = false;

  /** Resolves at once: the hub never pushes back. */
  writable(): Promise<void> {
    return Promise.resolve();
  }

  /** Resolves at once: queued lines are handed over on `write`, and nothing is durable. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Stops taking lines and subscribers. Open subscriptions end once their readers drained what
   * is queued; the hub does not wait for them.
   */
  close(_options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#closed = true;
    for (const sub of this.#subscribers) sub.end("hub closed");
    return Promise.resolve();
  }

  /**
   * Opens a live tail. Bad options throw before anything else: `TypeError` or `RangeError` for a
   * wrong type or value, `SyntaxError` for an invalid `regex` (all HTTP 400); then
   * {@linkcode HubClosedError} or {@linkcode TooManySubscribersError} (HTTP 503), and the
   * signal's reason when it is already aborted.
   *
   * @example
   * ```ts
   * const tail = hub.subscribe({ source: "nginx", lastEventId: 41_532 });
   * const response = tail.readable.pipeThrough(new SseEncoderStream());
   * ```
   */
  subscribe(options: SubscribeOptions = {}): Subscription {
    const { backfill = 0, lastEventId, queueBytes = this.#queueBytes, signal } = options;
    const filter = compileFilter(options, this.#regexLineChars);
    nonNegative("Backfill", backfill);
    // Where to resume: after this id of this run; 0 (its first line) for another run's cursor.
    let resumeAfter: number | undefined;
    let restarted = false;
    if (typeof lastEventId === "string") {
      const cursor = parseCursor(lastEventId);
      restarted = cursor.epoch !== this.#epoch;
      resumeAfter = restarted ? 0 : cursor.id;
    } else if (lastEventId !== undefined) {
      resumeAfter = nonNegative("Last event id", lastEventId);
    }
    positive("Queue byte bound", queueBytes);
    if (this.#closed) throw new HubClosedError();
    signal?.throwIfAborted();
    if (this.#subscribers.size >= this.#maxSubscribers) {
      this.#closeStalled(this.#subscribers, this.#now());
    }
    if (this.#subscribers.size >= this.#maxSubscribers) {
      throw new TooManySubscribersError(this.#maxSubscribers);
    }
    const resumes = resumeAfter !== undefined && resumeAfter < this.#ring.nextId;
    const sub = new Subscriber(this.#nextSubscriberId++, filter, {
      after: resumes ? resumeAfter! : this.#ring.nextId - 1,
      restarted,
      filterShare: filter.regex ? this.#filterBudget.join() : undefined,
      queueBytes,
      maxEventLines: this.#maxEventLines,
      noticeMs: this.#noticeMs,
      now: this.#now,
      counters: this.#counters,
      nextId: () => this.#ring.nextId,
      onRoom: (unparked) => {
        this.#parked.delete(unparked);
        this.#active.add(unparked);
      },
      onEnd: (ended) => {
        this.#subscribers.delete(ended);
        this.#active.delete(ended);
        this.#parked.delete(ended);
      },
      signal,
    });
    if (resumes) {
      this.#resume(sub, resumeAfter!);
    } else if (backfill > 0) {
      sub.preload(recentLines(this.#ring, sub, 0, backfill).items, 0);
    }
    this.#subscribers.add(sub);
    this.#active.add(sub);
    return sub;
  }

  #resume(sub: Subscriber, lastEventId: number): void {
    const gone = Math.max(0, this.#ring.oldestId - lastEventId - 1);
    const { items, missed, unfiltered } = recentLines(this.#ring, sub, lastEventId, Infinity);
    this.#counters.dropped += gone + missed;
    this.#counters.unfiltered += unfiltered;
    sub.preload(items, gone);
  }

  #closeStalled(subscribers: Set<Subscriber>, now: number): void {
    for (const sub of subscribers) {
      if (sub.fullSince !== undefined && now - sub.fullSince > this.#stallMs) {
        this.#stalled++;
        sub.end("stalled");
      }
    }
  }
}

function positive(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${what} must be a positive integer, got "${value}"`);
  }
  return value;
}

function nonNegative(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got "${value}"`);
  }
  return value;
}
