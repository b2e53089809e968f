/**
 * The live hub: fans ingested lines out to live-tail subscribers, each with its own queue bounded
 * in bytes. Ingestion never waits for a subscriber: a slow one loses lines (and is told how many),
 * a stalled one is closed, the others are unaffected.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { BatchLines } from "./batch_lines.ts";
import { newEpoch, parseCursor } from "./cursor.ts";
import { FilterBudget, type FilterShare } from "./filter_budget.ts";
import { LineRing } from "./line_ring.ts";
import { compileLinearRegex, DEFAULT_MAX_CHARS, type LinearRegex } from "../text/linear_regex.ts";

/** One line as subscribers see it. */
export interface LiveLine {
  /** The line's cursor: increases by one per line ingested, across all sources. */
  readonly id: number;
  /** The source of the batch the line came in. */
  readonly source: string;
  /** The host that sent it. */
  readonly host: string;
  /** When it was received, in milliseconds since the epoch. */
  readonly ts: number;
  /** The line without its newline, decoded as UTF-8 (invalid bytes become U+FFFD). */
  readonly line: string;
}

/** Lines for a subscriber, oldest first. */
export interface LinesEvent {
  /** Always `lines`. */
  readonly type: "lines";
  /** One or more lines in id order (ids skip the lines that did not match or were dropped). */
  readonly lines: readonly LiveLine[];
}

/** How many matching lines a subscriber missed at this point of its stream. */
export interface DroppedEvent {
  /** Always `dropped`. */
  readonly type: "dropped";
  /** Lines missed between the previous event and the next one. */
  readonly count: number;
}

/** What a subscription yields. */
export type LiveEvent = LinesEvent | DroppedEvent;

/**
 * Consecutive lines of one batch as bytes, from {@linkcode Subscription.pollRaw}: for an encoder
 * that writes them out without decoding them into records first.
 */
export interface RawLinesEvent {
  /** Always `raw`. */
  readonly type: "raw";
  /** The lines, each ending with a newline; a view to read, never to change. */
  readonly data: Uint8Array;
  /** Id of the first line; the others follow one by one. */
  readonly firstId: number;
  /** How many lines `data` holds. */
  readonly count: number;
  /** The source of the batch the lines came in. */
  readonly source: string;
  /** The host that sent them. */
  readonly host: string;
  /** When they were received, in milliseconds since the epoch. */
  readonly ts: number;
}

/** Why a subscription ended. */
export type CloseReason = "closed" | "aborted" | "stalled" | "hub closed";

/** Options of {@linkcode LiveHub.subscribe}. */
export interface SubscribeOptions {
  /** Only lines of this source (exact match). Default: every source. */
  source?: string;
  /** Only lines containing this text (case-sensitive). Default: every line. */
  grep?: string;
  /**
   * Only lines this regular expression matches, run on a linear-time engine (RE2's algorithm, so
   * no lookahead nor backreferences): a string is compiled without flags; a `RegExp` keeps its
   * `i`, `m` and `s` flags. Combined with `grep`, both must match. The pattern looks at the
   * first {@linkcode LiveHubOptions.regexLineChars} characters of a line, and its time comes out
   * of the hub's filter budget: lines it had no time for are counted as dropped.
   */
  regex?: string | RegExp;
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

/**
 * A live tail: read its events with `for await`, {@linkcode Subscription.read} or
 * {@linkcode Subscription.readable}, one reader at a time. Leaving a `for await` loop, cancelling
 * the stream, aborting the signal or calling {@linkcode Subscription.close} ends it.
 */
export interface Subscription extends AsyncIterable<LiveEvent> {
  /** A number for logs, unique within the hub. */
  readonly id: number;
  /** Whether the subscription ended (a reader may still drain what was queued at hub close). */
  readonly closed: boolean;
  /** Why it ended; `undefined` while open. */
  readonly closeReason: CloseReason | undefined;
  /** Matching lines this subscriber missed so far. */
  readonly droppedLines: number;
  /** Bytes queued for this subscriber and not read yet. */
  readonly queuedBytes: number;
  /**
   * The last line id before what this subscription delivers: the cursor a client that received
   * nothing else resumes from (with the hub's epoch).
   */
  readonly after: number;
  /** Whether it resumed from a cursor given by another run of the server. */
  readonly restarted: boolean;
  /** The next event, once there is one; `undefined` once the subscription ended. */
  read(): Promise<LiveEvent | undefined>;
  /**
   * Resolves `true` once {@linkcode Subscription.poll} has an event, `false` once the
   * subscription ended with nothing left to read. Lets a reader wait for lines without taking
   * them, then take as many as it may send.
   */
  ready(): Promise<boolean>;
  /**
   * The next event if one is queued, without waiting: lets a writer coalesce what piled up into
   * one network write.
   *
   * @param options `maxLines`: most lines in a `lines` event, at least 1 (the rest stay queued).
   *   Default: the hub's `maxEventLines`.
   */
  poll(options?: PollOptions): LiveEvent | undefined;
  /**
   * Like {@linkcode Subscription.poll}, but lines come as bytes, one batch's run at a time: an
   * SSE body writes them without making a record and a string of each.
   */
  pollRaw(options?: PollOptions): RawLinesEvent | DroppedEvent | undefined;
  /** The events as a stream; cancelling it closes the subscription. Created on first use. */
  readonly readable: ReadableStream<LiveEvent>;
  /** Ends the subscription at once, discarding what is queued. */
  close(): void;
}

/** Options of {@linkcode Subscription.poll}. */
export interface PollOptions {
  /** Most lines in a `lines` event, at least 1 (the rest stay queued). Default: no bound. */
  maxLines?: number;
  /**
   * Most lines of live traffic to keep queued: the oldest beyond it are dropped first (and
   * counted where the gap is), so a reader that can send only so much sends recent lines rather
   * than falling ever further behind. Backfill and resumed lines are never dropped this way.
   * Default: no bound.
   */
  keepLines?: number;
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

/** Bookkeeping a queued line costs beyond its text, so tiny lines cannot queue without bound. */
const LINE_OVERHEAD_BYTES = 64;
// ignoreBOM: a line may start with U+FEFF and must reach subscribers as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

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
    let now: number | undefined;
    // Before the batch is numbered: a subscriber closed now does not miss it.
    if (this.#parked.size > 0) {
      now = this.#now();
      if (now > this.#parkedStallAt) {
        this.#closeStalled(this.#parked, now);
        this.#parkedStallAt = Infinity;
        for (const sub of this.#parked) {
          this.#parkedStallAt = Math.min(this.#parkedStallAt, sub.fullSince! + this.#stallMs);
        }
      }
    }
    const firstId = this.#mayKeep(batch.data.length)
      ? this.#ring.push(batch)
      : this.#ring.skip(batch.lines);
    // Nobody to offer lines to (none listens, or every one is parked): nothing more to do.
    if (this.#active.size === 0) return true;
    const { source, host } = batch.meta;
    // Indexed lazily and shared: a subscriber whose queue is full, or whose grep finds nothing in
    // the batch, costs no copy, and none costs decoding unless it filters.
    const lines = new BatchLines(batch.data, batch.lines);
    // The batch is borrowed: queued lines are copied. A run of a quarter of the batch or more
    // shares one copy of it with the other subscribers (a hundred tails taking the same lines
    // cost one copy, not a hundred); a smaller run gets a copy of its own, so that what a queue
    // keeps alive stays within four times its bound.
    let shared: Uint8Array | undefined;
    const run = (from: number, to: number): Run => {
      const view = lines.bytes(from, to);
      let data: Uint8Array;
      if (view.length * 4 >= batch.data.length) {
        shared ??= batch.data.slice();
        const at = view.byteOffset - batch.data.byteOffset;
        data = shared.subarray(at, at + view.length);
      } else {
        data = view.slice();
      }
      return {
        data,
        firstId: firstId + from,
        count: to - from,
        source,
        host,
        ts: batch.receivedAt,
      };
    };
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
      const dropped = filter.test === undefined
        ? offerAll(sub, lines, run)
        : offerMatching(sub, lines, run);
      if (sub.unfiltered > 0) {
        // Not a full queue: the filter ran out of time. Counted, not a reason to park or stall.
        this.#counters.unfiltered += sub.unfiltered;
        sub.drop(sub.unfiltered);
        sub.unfiltered = 0;
      }
      if (dropped > 0) {
        sub.drop(dropped);
        sub.fullSince ??= now ??= this.#now();
        if (filter.source === undefined && filter.test === undefined) {
          sub.park(this.#ring.nextId);
          this.#active.delete(sub);
          this.#parked.add(sub);
          this.#parkedStallAt = Math.min(this.#parkedStallAt, sub.fullSince + this.#stallMs);
        }
      }
      sub.wake();
    }
    return true;
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
      sub.preload(this.#recent(sub, 0, backfill).items, 0);
    }
    this.#subscribers.add(sub);
    this.#active.add(sub);
    return sub;
  }

  #resume(sub: Subscriber, lastEventId: number): void {
    const gone = Math.max(0, this.#ring.oldestId - lastEventId - 1);
    const { items, missed, unfiltered } = this.#recent(sub, lastEventId, Infinity);
    this.#counters.dropped += gone + missed;
    this.#counters.unfiltered += unfiltered;
    sub.preload(items, gone);
  }

  /**
   * The newest matching lines after `afterId`, up to `limit` and the subscriber's queue bound,
   * oldest first. For a resume (`limit` infinite), the lines it cannot have are counted where
   * they are: matching ones that did not fit (the oldest, first), those the filter had no time
   * for (`unfiltered`: they may not have matched), and those the ring skipped over its rate (at the
   * gap); `missed` is their sum.
   */
  #recent(
    sub: Subscriber,
    afterId: number,
    limit: number,
  ): { items: Queued[]; missed: number; unfiltered: number } {
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
    let newerStart = this.#ring.nextId;
    scan: for (const chunk of this.#ring.newestFirst()) {
      const chunkEnd = chunk.firstId + chunk.lines;
      if (resume) gap(newerStart - Math.max(chunkEnd, afterId + 1));
      newerStart = chunk.firstId;
      if (chunkEnd - 1 <= afterId) break;
      if (filter.source !== undefined && filter.source !== chunk.source) continue;
      const lines = new BatchLines(chunk.data, chunk.lines);
      // The run being gathered, backwards: lines start to end (excluded) of this chunk.
      let start = -1;
      let end = -1;
      const flush = () => {
        if (start >= 0) {
          const { firstId, source, host, receivedAt: ts } = chunk;
          const data = lines.bytes(start, end).slice();
          const count = end - start;
          items.push({ data, firstId: firstId + start, count, source, host, ts, backlog: true });
        }
        start = end = -1;
      };
      for (let i = chunk.lines - 1; i >= 0; i--) {
        if (chunk.firstId + i <= afterId) {
          flush();
          break scan;
        }
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
        const cost = lines.bytes(i, i + 1).length + LINE_OVERHEAD_BYTES - 1;
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

  #closeStalled(subscribers: Set<Subscriber>, now: number): void {
    for (const sub of subscribers) {
      if (sub.fullSince !== undefined && now - sub.fullSince > this.#stallMs) {
        this.#stalled++;
        sub.end("stalled");
      }
    }
  }
}

/** A compiled subscription filter. */
interface Filter {
  readonly source: string | undefined;
  /** `undefined` when every line of the source matches, so the hot loop skips the call. */
  readonly test: ((line: string) => boolean) | undefined;
  /** The grep text: searched in the whole batch, so lines without it are never cut out. */
  readonly needle: string | undefined;
  /** Whether `needle` alone decides (grep without regex): matches are counted, not cut out. */
  readonly grepOnly: boolean;
  /** Whether a regex takes part: its time comes out of the filter budget. */
  readonly regex: boolean;
}

function compileFilter(options: SubscribeOptions, maxChars: number): Filter {
  const { source, grep, regex } = options;
  if (source !== undefined && typeof source !== "string") {
    throw new TypeError(`Source filter must be a string, got "${String(source)}"`);
  }
  if (grep !== undefined && typeof grep !== "string") {
    throw new TypeError(`Grep filter must be a string, got "${String(grep)}"`);
  }
  let re: LinearRegex | undefined;
  if (regex instanceof RegExp || (typeof regex === "string" && regex !== "")) {
    re = compileLinearRegex(regex, { maxChars });
  } else if (regex !== undefined && regex !== "") {
    throw new TypeError(`Regex filter must be a string or a RegExp, got "${String(regex)}"`);
  }
  const text = grep === "" ? undefined : grep;
  let test: ((line: string) => boolean) | undefined;
  if (text !== undefined && re !== undefined) test = (line) => line.includes(text) && re.test(line);
  else if (text !== undefined) test = (line) => line.includes(text);
  else if (re !== undefined) test = (line) => re.test(line);
  return {
    source: source === "" ? undefined : source,
    test,
    needle: text,
    // A match across a newline belongs to no line: with a newline in the text, lines are tested.
    grepOnly: text !== undefined && re === undefined && !text.includes("\n"),
    regex: re !== undefined,
  };
}

/**
 * Lines queued for a subscriber: consecutive lines of one batch, kept as bytes and decoded only
 * when the subscriber reads them, so a queue costs one copy (often shared), not a string and a
 * record per line.
 */
interface Run {
  /** The lines, newline-terminated; a copy no one changes (possibly shared with other runs). */
  readonly data: Uint8Array;
  /** Id of the first line. */
  readonly firstId: number;
  /** How many lines `data` holds. */
  readonly count: number;
  readonly source: string;
  readonly host: string;
  readonly ts: number;
  /** Whether the run is backfill or resume from the ring, which `keepLines` never drops. */
  readonly backlog?: true;
}

/** What a subscriber's queue holds: runs of lines and, at the gaps, counts of missed lines. */
type Queued = Run | { dropped: number };

interface SubscriberOptions {
  after: number;
  restarted: boolean;
  /** Its part of the hub's filter time, when it filters with a regex. */
  filterShare: FilterShare | undefined;
  queueBytes: number;
  maxEventLines: number;
  noticeMs: number;
  now: () => number;
  counters: { delivered: number; dropped: number };
  /** The id the next line ingested will get. */
  nextId: () => number;
  /** Called when a parked subscriber's reader took lines: it has room again. */
  onRoom: (sub: Subscriber) => void;
  onEnd: (sub: Subscriber) => void;
  signal: AbortSignal | undefined;
}

/** The hub's side of a subscription: the bounded queue and its single reader. */
class Subscriber implements Subscription {
  readonly id: number;
  readonly filter: Filter;
  /** The queue bound, in bytes. */
  readonly limit: number;
  /** When the queue first refused a line since the reader last took something. */
  fullSince: number | undefined;
  readonly after: number;
  readonly restarted: boolean;
  readonly filterShare: FilterShare | undefined;
  /** Lines of the batch being offered that the filter had no time for (reset per batch). */
  unfiltered = 0;
  readonly #maxEventLines: number;
  readonly #noticeMs: number;
  readonly #counters: { delivered: number; dropped: number };
  readonly #onEnd: (sub: Subscriber) => void;
  readonly #nextId: () => number;
  readonly #onRoom: (sub: Subscriber) => void;
  /** The id of the first line missed while parked; `undefined` when not parked. */
  #parkedAt: number | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.end("aborted");
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #droppedLines = 0;
  #reason: CloseReason | undefined;
  #waiter: ((ready: boolean) => void) | undefined;
  readonly #now: () => number;
  /** When the next `dropped` event with no lines behind it may be handed out. */
  #noticeAt = 0;
  /** Delivers a deferred `dropped` event when no batch comes to do it. */
  #noticeTimer: ReturnType<typeof setTimeout> | undefined;
  #readable: ReadableStream<LiveEvent> | undefined;

  constructor(id: number, filter: Filter, options: SubscriberOptions) {
    this.id = id;
    this.filter = filter;
    this.after = options.after;
    this.restarted = options.restarted;
    this.filterShare = options.filterShare;
    this.limit = options.queueBytes;
    this.#maxEventLines = options.maxEventLines;
    this.#noticeMs = options.noticeMs;
    this.#now = options.now;
    this.#counters = options.counters;
    this.#onEnd = options.onEnd;
    this.#nextId = options.nextId;
    this.#onRoom = options.onRoom;
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get closed(): boolean {
    return this.#reason !== undefined;
  }

  get closeReason(): CloseReason | undefined {
    return this.#reason;
  }

  get droppedLines(): number {
    return this.#droppedLines + this.missedWhileParked;
  }

  /** Lines ingested since the hub parked this subscriber (all of them missed). */
  get missedWhileParked(): number {
    return this.#parkedAt === undefined ? 0 : this.#nextId() - this.#parkedAt;
  }

  /**
   * Stops being offered lines: the queue is full, and every line from `nextId` on is missed
   * until the reader takes something (then they are counted, where the gap is).
   */
  park(nextId: number): void {
    this.#parkedAt = nextId;
  }

  /** Counts the lines missed while parked, at the end of the queue, and stops being parked. */
  #unpark(): boolean {
    if (this.#parkedAt === undefined) return false;
    const missed = this.missedWhileParked;
    this.#parkedAt = undefined;
    if (missed > 0) this.drop(missed);
    return true;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get readable(): ReadableStream<LiveEvent> {
    // highWaterMark 0: pull only for a waiting reader, so the stream never buffers past the bound.
    this.#readable ??= new ReadableStream<LiveEvent>({
      pull: async (controller) => {
        const event = await this.read();
        if (event === undefined) controller.close();
        else controller.enqueue(event);
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /** Queues a run of lines (the caller checked they fit). */
  push(run: Run): void {
    this.#queue.push(run);
    this.#queuedBytes += runCost(run);
  }

  /** Counts `count` matching lines as missed at this point of the stream. */
  drop(count: number): void {
    this.#droppedLines += count;
    this.#counters.dropped += count;
    const last = this.#queue.at(-1);
    if (last !== undefined && "dropped" in last) last.dropped += count;
    else this.#queue.push({ dropped: count });
  }

  /**
   * Queues backfill: a dropped marker first when `missed` > 0, then `items` (runs already
   * bounded, and markers where lines are missing).
   */
  preload(items: readonly Queued[], missed: number): void {
    if (missed > 0) {
      this.#droppedLines += missed;
      this.#queue.push({ dropped: missed });
    }
    for (const item of items) {
      if ("count" in item) {
        this.push(item);
      } else {
        this.#droppedLines += item.dropped;
        const last = this.#queue.at(-1);
        if (last !== undefined && "dropped" in last) last.dropped += item.dropped;
        else this.#queue.push({ ...item });
      }
    }
  }

  /** Hands the next event to a waiting reader; called once per batch, not per line. */
  wake(): void {
    if (this.#waiter === undefined || this.#queue.length === 0) return;
    if (!this.#ready()) return this.#remindLater();
    const resolve = this.#waiter;
    this.#waiter = undefined;
    resolve(true);
  }

  async read(): Promise<LiveEvent | undefined> {
    return await this.ready() ? this.poll() : undefined;
  }

  ready(): Promise<boolean> {
    if (this.#waiter !== undefined) {
      return Promise.reject(new TypeError(`Subscription "${this.id}" already has a reader`));
    }
    if (this.#queue.length > 0 && this.#ready()) return Promise.resolve(true);
    if (this.#reason !== undefined) return Promise.resolve(false);
    if (this.#queue.length > 0) this.#remindLater();
    return new Promise((resolve) => this.#waiter = resolve);
  }

  poll(options: PollOptions = {}): LiveEvent | undefined {
    const maxLines = this.#prepare(options);
    return maxLines === undefined ? undefined : this.#take(maxLines);
  }

  pollRaw(options: PollOptions = {}): RawLinesEvent | DroppedEvent | undefined {
    const maxLines = this.#prepare(options);
    if (maxLines === undefined) return undefined;
    if ("dropped" in this.#queue[0]) return this.#takeNotice();
    const run = this.#shiftRun(Math.min(maxLines, this.#maxEventLines));
    this.#taken(runCost(run), run.count);
    const { data, firstId, count, source, host, ts } = run;
    return { type: "raw", data, firstId, count, source, host, ts };
  }

  /** Checks poll options and applies `keepLines`; the line limit, or `undefined` for nothing. */
  #prepare(options: PollOptions): number | undefined {
    const { maxLines = Infinity, keepLines = Infinity } = options;
    if (!(maxLines >= 1)) {
      throw new RangeError(`Most lines per event must be at least 1, got "${maxLines}"`);
    }
    if (!(keepLines >= 0)) {
      throw new RangeError(`Lines to keep must be at least 0, got "${keepLines}"`);
    }
    if (this.#queue.length === 0) return undefined;
    if (keepLines !== Infinity) this.#keep(Math.floor(keepLines));
    if (!this.#ready()) return undefined;
    return Math.floor(maxLines);
  }

  /**
   * Drops the oldest queued lines of live traffic beyond `keep`, merging them and the notices
   * among them into one `dropped` count where they were. Backlog runs come first in the queue
   * (queued at subscribe, before any live line), so the live ones are everything after them.
   */
  #keep(keep: number): void {
    const queue = this.#queue;
    let live = 0;
    let first = -1;
    for (let i = 0; i < queue.length; i++) {
      const queued = queue[i];
      if ("count" in queued && queued.backlog !== true) {
        if (first === -1) first = i;
        live += queued.count;
      }
    }
    let excess = live - keep;
    if (excess <= 0) return;
    let notices = 0;
    let evicted = 0;
    let bytes = 0;
    let end = first;
    while (excess > 0) {
      const queued = queue[end];
      if ("dropped" in queued) {
        notices += queued.dropped;
      } else if (queued.count <= excess) {
        excess -= queued.count;
        evicted += queued.count;
        bytes += runCost(queued);
      } else {
        const cut = endOfLines(queued.data, excess);
        bytes += runCost({ ...queued, data: queued.data.subarray(0, cut), count: excess });
        evicted += excess;
        queue[end] = {
          ...queued,
          data: queued.data.subarray(cut),
          firstId: queued.firstId + excess,
          count: queued.count - excess,
        };
        break;
      }
      end++;
    }
    // Notices right before and after the gap join it.
    let start = first;
    const before = queue[start - 1];
    if (before !== undefined && "dropped" in before) {
      notices += before.dropped;
      start--;
    }
    const after = queue[end];
    if (after !== undefined && "dropped" in after) {
      notices += after.dropped;
      end++;
    }
    queue.splice(start, end - start, { dropped: notices + evicted });
    this.#queuedBytes -= bytes;
    this.#droppedLines += evicted;
    this.#counters.dropped += evicted;
  }

  /**
   * Whether the head of the queue may go now. A `dropped` count with no lines behind it waits
   * until the hub's `noticeMs` passed since the last one: a subscriber kept over its budget
   * would otherwise get one notice per batch, and writing those to a hundred subscribers costs
   * ingestion more than the lines they miss.
   */
  #ready(): boolean {
    const head = this.#queue[0];
    return !("dropped" in head) || this.#queue.length > 1 || this.#reason !== undefined ||
      this.#now() >= this.#noticeAt;
  }

  #remindLater(): void {
    if (this.#noticeTimer !== undefined) return;
    this.#noticeTimer = setTimeout(() => {
      this.#noticeTimer = undefined;
      this.wake();
    }, Math.max(0, this.#noticeAt - this.#now()));
  }

  close(): void {
    this.end("closed");
  }

  /**
   * Ends the subscription. At hub close the reader still gets what is queued; otherwise the
   * queue is discarded (and counted as dropped when the subscriber stalled).
   */
  end(reason: CloseReason): void {
    if (this.#reason !== undefined) {
      // A reader draining after hub close may still give up early.
      if (reason !== "hub closed") this.#discard(false);
      return;
    }
    this.#reason = reason;
    clearTimeout(this.#noticeTimer);
    this.#noticeTimer = undefined;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#unpark();
    this.filterShare?.leave();
    this.#onEnd(this);
    if (reason !== "hub closed") this.#discard(reason === "stalled");
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(this.#queue.length > 0);
  }

  [Symbol.asyncIterator](): AsyncIterator<LiveEvent, undefined> {
    return {
      next: async () => {
        const event = await this.read();
        return event === undefined
          ? { done: true, value: undefined }
          : { done: false, value: event };
      },
      // Leaving a for-await loop early ends the subscription, so nothing lingers in the hub.
      return: () => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  #take(maxLines: number): LiveEvent {
    if ("dropped" in this.#queue[0]) return this.#takeNotice();
    const limit = Math.min(maxLines, this.#maxEventLines);
    const lines: LiveLine[] = [];
    let bytes = 0;
    while (lines.length < limit && this.#queue.length > 0) {
      if ("dropped" in this.#queue[0]) break;
      const run = this.#shiftRun(limit - lines.length);
      bytes += runCost(run);
      decodeRun(run, lines);
    }
    this.#taken(bytes, lines.length);
    return { type: "lines", lines };
  }

  /** Takes the `dropped` notice at the head of the queue. */
  #takeNotice(): DroppedEvent {
    const head = this.#queue.shift() as { dropped: number };
    this.#noticeAt = this.#now() + this.#noticeMs;
    return { type: "dropped", count: head.dropped };
  }

  /** Takes at most `room` lines of the run at the head of the queue (the rest stay queued). */
  #shiftRun(room: number): Run {
    const run = this.#queue[0] as Run;
    if (run.count <= room) {
      this.#queue.shift();
      return run;
    }
    const cut = endOfLines(run.data, room);
    this.#queue[0] = {
      ...run,
      data: run.data.subarray(cut),
      firstId: run.firstId + room,
      count: run.count - room,
    };
    return { ...run, data: run.data.subarray(0, cut), count: room };
  }

  /** Accounts for lines handed to the reader: the queue has room again. */
  #taken(bytes: number, lines: number): void {
    this.#queuedBytes -= bytes;
    this.fullSince = undefined;
    this.#counters.delivered += lines;
    if (this.#unpark()) this.#onRoom(this);
  }

  #discard(countAsDropped: boolean): void {
    if (countAsDropped) {
      let lost = 0;
      for (const queued of this.#queue) if ("count" in queued) lost += queued.count;
      this.#droppedLines += lost;
      this.#counters.dropped += lost;
    }
    this.#queue = [];
    this.#queuedBytes = 0;
  }
}

/**
 * Queues the batch's lines from its start as far as they fit (at least one into an empty
 * queue); returns how many did not.
 */
function offerAll(
  sub: Subscriber,
  lines: BatchLines,
  run: (from: number, to: number) => Run,
): number {
  let fit = 0;
  if (sub.fullSince === undefined && lines.count > 0) {
    fit = lines.fitting(0, sub.limit - sub.queuedBytes, LINE_OVERHEAD_BYTES - 1);
    if (fit === 0 && sub.queuedBytes === 0) fit = 1;
  }
  if (fit > 0) sub.push(run(0, fit));
  return lines.count - fit;
}

/**
 * Queues the batch's lines that match the subscriber's filter as far as they fit; returns how
 * many matching lines did not. Once one does not fit, the rest are only counted: what a
 * subscriber receives between two dropped notices has no holes. Lines its regex had no time for
 * are added to `sub.unfiltered`.
 */
function offerMatching(
  sub: Subscriber,
  lines: BatchLines,
  run: (from: number, to: number) => Run,
): number {
  const { needle, test, grepOnly } = sub.filter;
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
      const matched = test!(lines.text(i));
      if (share !== undefined) last = share.charge(last);
      if (!matched) continue;
    }
    if (!full) {
      const cost = lines.bytes(i, i + 1).length + LINE_OVERHEAD_BYTES - 1;
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

/** What a run costs its queue: each line's bytes, without the newline, plus the overhead. */
function runCost(run: Run): number {
  return run.data.length + run.count * (LINE_OVERHEAD_BYTES - 1);
}

/** The byte offset just past the `count`th newline of `data` (its end if there are fewer). */
function endOfLines(data: Uint8Array, count: number): number {
  let at = 0;
  for (let i = 0; i < count; i++) {
    const nl = data.indexOf(10, at);
    if (nl === -1) return data.length;
    at = nl + 1;
  }
  return at;
}

/** Appends a run's lines as records: the run is decoded at once, split at its newlines. */
function decodeRun(run: Run, into: LiveLine[]): void {
  const texts = decoder.decode(run.data).split("\n");
  const { firstId, source, host, ts } = run;
  for (let i = 0; i < run.count; i++) {
    into.push({ id: firstId + i, source, host, ts, line: texts[i] });
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
