/**
 * The live hub: fans ingested lines out to live-tail subscribers, each with its own queue bounded
 * in bytes. Ingestion never waits for a subscriber: a slow one loses lines (and is told how many),
 * a stalled one is closed, the others are unaffected.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { describe } from "../_util.ts";
import { BatchLines } from "./batch_lines.ts";
import { LineRing } from "./line_ring.ts";

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

/** Why a subscription ended. */
export type CloseReason = "closed" | "aborted" | "stalled" | "hub closed";

/** Options of {@linkcode LiveHub.subscribe}. */
export interface SubscribeOptions {
  /** Only lines of this source (exact match). Default: every source. */
  source?: string;
  /** Only lines containing this text (case-sensitive). Default: every line. */
  grep?: string;
  /**
   * Only lines this regular expression matches; a string is compiled without flags, and the `g`
   * and `y` flags of a `RegExp` are ignored. Combined with `grep`, both must match.
   */
  regex?: string | RegExp;
  /** Start with up to this many of the most recent matching lines still in memory. Default 0. */
  backfill?: number;
  /**
   * Resume after this line id (the SSE `Last-Event-ID`): start with every matching line after it
   * still in memory, preceded by a `dropped` event counting the lines after it that are no longer
   * there. Takes precedence over `backfill`. An id the hub never gave (from before a restart) is
   * ignored and `backfill` applies.
   */
  lastEventId?: number;
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
  /** The next event, once there is one; `undefined` once the subscription ended. */
  read(): Promise<LiveEvent | undefined>;
  /**
   * The next event if one is queued, without waiting: lets a writer coalesce what piled up into
   * one network write after a {@linkcode Subscription.read}.
   */
  poll(): LiveEvent | undefined;
  /** The events as a stream; cancelling it closes the subscription. Created on first use. */
  readonly readable: ReadableStream<LiveEvent>;
  /** Ends the subscription at once, discarding what is queued. */
  close(): void;
}

/** Options of {@linkcode LiveHub}. */
export interface LiveHubOptions {
  /** Lines kept in memory for backfill and resume. Default 10,000. */
  ringLines?: number;
  /** Bytes of lines kept in memory for backfill and resume. Default 8 MiB. */
  ringBytes?: number;
  /**
   * Default bound of each subscriber's queue. A queued line counts its length in UTF-16 code
   * units plus 64 for its record; a line is always accepted into an empty queue. Default 1 MiB.
   */
  queueBytes?: number;
  /** Most subscribers at once. Default 1,000. */
  maxSubscribers?: number;
  /** A subscriber whose queue stays full longer than this, in milliseconds, is closed. Default 15,000. */
  stallMs?: number;
  /** Most lines in one `lines` event. Default 1,000. */
  maxEventLines?: number;
  /** The clock, in milliseconds; swapped in tests. Default `Date.now`. */
  now?: () => number;
}

/** The hub's counters, for metrics. */
export interface LiveHubStats {
  /** Open subscriptions. */
  readonly subscribers: number;
  /** Lines handed to subscribers' readers, summed over subscribers. */
  readonly linesDelivered: number;
  /** Matching lines subscribers missed (full queue, stalled, or gone from memory before resume). */
  readonly linesDropped: number;
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

/** Least time between two `dropped` events that have no lines behind them, in ms. */
const DROPPED_NOTICE_MS = 250;

/** Bookkeeping a queued line costs beyond its text, so tiny lines cannot queue without bound. */
const LINE_OVERHEAD_BYTES = 64;
// ignoreBOM: a line may start with U+FEFF and must reach subscribers as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * The live-tail fan-out. As a {@linkcode Sink} it takes every batch; `write` always returns
 * `true`, costs one copy into the ring when nobody listens, and decodes a batch once when someone
 * does, whatever the number of subscribers.
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
  readonly #now: () => number;
  readonly #subscribers = new Set<Subscriber>();
  readonly #counters = { delivered: 0, dropped: 0 };
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
      now = Date.now,
    } = options;
    this.#ring = new LineRing({ maxLines: ringLines, maxBytes: ringBytes });
    this.#queueBytes = positive("Queue byte bound", queueBytes);
    this.#maxSubscribers = positive("Subscriber limit", maxSubscribers);
    this.#stallMs = nonNegative("Stall timeout", stallMs);
    this.#maxEventLines = positive("Lines per event", maxEventLines);
    this.#now = now;
  }

  /** Counters for metrics. */
  get stats(): LiveHubStats {
    return {
      subscribers: this.#subscribers.size,
      linesDelivered: this.#counters.delivered,
      linesDropped: this.#counters.dropped,
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
    const firstId = this.#ring.push(batch);
    if (this.#subscribers.size === 0) return true;
    const { source, host } = batch.meta;
    // Decoded lazily and shared: a subscriber whose queue is full, or whose grep finds nothing in
    // the batch, costs no decoding and no records, whatever the batch's size.
    const lines = new BatchLines(batch.data, batch.lines);
    const records: LiveLine[] = [];
    let now: number | undefined;
    for (const sub of this.#subscribers) {
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
      const { needle } = filter;
      const next = (i: number) => needle === undefined ? i + 1 : lines.find(i + 1, needle);
      // A full queue takes nothing until its reader takes something.
      let full = sub.fullSince !== undefined;
      let dropped = 0;
      for (let i = next(-1); i < lines.count; i = next(i)) {
        if (full && filter.test === undefined) {
          dropped += lines.count - i;
          break;
        }
        if (full && filter.grepOnly) {
          dropped++;
          continue;
        }
        const text = lines.text(i);
        if (filter.test !== undefined && !filter.test(text)) continue;
        if (!full && sub.fits(text)) {
          sub.push(
            records[i] ??= { id: firstId + i, source, host, ts: batch.receivedAt, line: text },
          );
          continue;
        }
        // Once a line does not fit, the rest of the batch is dropped too: what a subscriber
        // receives between two dropped notices has no holes.
        full = true;
        dropped++;
      }
      if (dropped > 0) {
        sub.drop(dropped);
        sub.fullSince ??= now ??= this.#now();
      }
      sub.wake();
    }
    return true;
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
    const filter = compileFilter(options);
    nonNegative("Backfill", backfill);
    if (lastEventId !== undefined) nonNegative("Last event id", lastEventId);
    positive("Queue byte bound", queueBytes);
    if (this.#closed) throw new HubClosedError();
    signal?.throwIfAborted();
    if (this.#subscribers.size >= this.#maxSubscribers) this.#closeStalled();
    if (this.#subscribers.size >= this.#maxSubscribers) {
      throw new TooManySubscribersError(this.#maxSubscribers);
    }
    const sub = new Subscriber(this.#nextSubscriberId++, filter, {
      queueBytes,
      maxEventLines: this.#maxEventLines,
      now: this.#now,
      counters: this.#counters,
      onEnd: (ended) => this.#subscribers.delete(ended),
      signal,
    });
    if (lastEventId !== undefined && lastEventId < this.#ring.nextId) {
      this.#resume(sub, lastEventId);
    } else if (backfill > 0) {
      sub.preload(this.#recent(sub, 0, backfill).lines, 0);
    }
    this.#subscribers.add(sub);
    return sub;
  }

  #resume(sub: Subscriber, lastEventId: number): void {
    const gone = Math.max(0, this.#ring.oldestId - lastEventId - 1);
    const { lines, skipped } = this.#recent(sub, lastEventId, Infinity);
    this.#counters.dropped += gone + skipped;
    sub.preload(lines, gone + skipped);
  }

  /**
   * The newest matching lines after `afterId`, up to `limit` and the subscriber's queue bound,
   * oldest first; `skipped` counts the older matching ones that did not fit.
   */
  #recent(sub: Subscriber, afterId: number, limit: number): { lines: LiveLine[]; skipped: number } {
    const { filter } = sub;
    const lines: LiveLine[] = [];
    let bytes = 0;
    let skipped = 0;
    let full = false;
    scan: for (const chunk of this.#ring.newestFirst()) {
      if (chunk.firstId + chunk.lines - 1 <= afterId) break;
      if (filter.source !== undefined && filter.source !== chunk.source) continue;
      const texts = decodeLines(chunk.data);
      for (let i = texts.length - 1; i >= 0; i--) {
        const id = chunk.firstId + i;
        if (id <= afterId) break scan;
        const text = texts[i];
        if (filter.test !== undefined && !filter.test(text)) continue;
        const cost = lineCost(text);
        if (!full && lines.length < limit && (bytes + cost <= sub.limit || lines.length === 0)) {
          bytes += cost;
          const { source, host, receivedAt: ts } = chunk;
          lines.push({ id, source, host, ts, line: text });
          continue;
        }
        // Stop at the first line that does not fit, so what is delivered has no holes.
        if (limit !== Infinity) break scan;
        full = true;
        skipped++;
      }
    }
    return { lines: lines.reverse(), skipped };
  }

  #closeStalled(): void {
    const now = this.#now();
    for (const sub of this.#subscribers) {
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
}

function compileFilter(options: SubscribeOptions): Filter {
  const { source, grep, regex } = options;
  if (source !== undefined && typeof source !== "string") {
    throw new TypeError(`Source filter must be a string, got "${String(source)}"`);
  }
  if (grep !== undefined && typeof grep !== "string") {
    throw new TypeError(`Grep filter must be a string, got "${String(grep)}"`);
  }
  let re: RegExp | undefined;
  if (regex instanceof RegExp) {
    // A global or sticky RegExp keeps lastIndex between test() calls and would skip lines.
    re = new RegExp(regex.source, regex.flags.replace(/[gy]/g, ""));
  } else if (typeof regex === "string") {
    if (regex !== "") {
      try {
        re = new RegExp(regex);
      } catch (err) {
        throw new SyntaxError(`Invalid regex "${regex}": ${describe(err)}`, { cause: err });
      }
    }
  } else if (regex !== undefined) {
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
  };
}

/** Queued events: runs of lines (each one event) and dropped markers at the gaps. */
type Segment = { lines: LiveLine[]; bytes: number } | { dropped: number };

interface SubscriberOptions {
  queueBytes: number;
  maxEventLines: number;
  now: () => number;
  counters: { delivered: number; dropped: number };
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
  readonly #maxEventLines: number;
  readonly #counters: { delivered: number; dropped: number };
  readonly #onEnd: (sub: Subscriber) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.end("aborted");
  #segments: Segment[] = [];
  #queuedBytes = 0;
  #droppedLines = 0;
  #reason: CloseReason | undefined;
  #waiter: ((event: LiveEvent | undefined) => void) | undefined;
  readonly #now: () => number;
  /** When the next `dropped` event with no lines behind it may be handed out. */
  #noticeAt = 0;
  /** Delivers a deferred `dropped` event when no batch comes to do it. */
  #noticeTimer: ReturnType<typeof setTimeout> | undefined;
  #readable: ReadableStream<LiveEvent> | undefined;

  constructor(id: number, filter: Filter, options: SubscriberOptions) {
    this.id = id;
    this.filter = filter;
    this.limit = options.queueBytes;
    this.#maxEventLines = options.maxEventLines;
    this.#now = options.now;
    this.#counters = options.counters;
    this.#onEnd = options.onEnd;
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
    return this.#droppedLines;
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

  /** Whether a line of this text fits the queue now (any line fits an empty queue). */
  fits(line: string): boolean {
    return this.#queuedBytes === 0 || this.#queuedBytes + lineCost(line) <= this.limit;
  }

  /** Queues a line that {@linkcode Subscriber.fits}. */
  push(record: LiveLine): void {
    this.#append(record, lineCost(record.line));
  }

  /** Counts `count` matching lines as missed at this point of the stream. */
  drop(count: number): void {
    this.#droppedLines += count;
    this.#counters.dropped += count;
    const last = this.#segments.at(-1);
    if (last !== undefined && "dropped" in last) last.dropped += count;
    else this.#segments.push({ dropped: count });
  }

  /** Queues backfill: a dropped marker first when `missed` > 0, then `lines` (already bounded). */
  preload(lines: readonly LiveLine[], missed: number): void {
    if (missed > 0) {
      this.#droppedLines += missed;
      this.#segments.push({ dropped: missed });
    }
    for (const record of lines) this.#append(record, lineCost(record.line));
  }

  /** Hands the next event to a waiting reader; called once per batch, not per line. */
  wake(): void {
    if (this.#waiter === undefined || this.#segments.length === 0) return;
    if (!this.#ready()) return this.#remindLater();
    const resolve = this.#waiter;
    this.#waiter = undefined;
    resolve(this.#take());
  }

  read(): Promise<LiveEvent | undefined> {
    if (this.#waiter !== undefined) {
      return Promise.reject(new TypeError(`Subscription "${this.id}" already has a reader`));
    }
    if (this.#segments.length > 0 && this.#ready()) return Promise.resolve(this.#take());
    if (this.#reason !== undefined) return Promise.resolve(undefined);
    if (this.#segments.length > 0) this.#remindLater();
    return new Promise((resolve) => this.#waiter = resolve);
  }

  poll(): LiveEvent | undefined {
    return this.#segments.length > 0 && this.#ready() ? this.#take() : undefined;
  }

  /**
   * Whether the head of the queue may go now. A `dropped` count with no lines behind it waits
   * until {@linkcode DROPPED_NOTICE_MS} passed since the last one: a subscriber kept over its
   * budget would otherwise get one notice per batch, and writing those to a hundred subscribers
   * costs ingestion more than the lines they miss (Loki reports missed entries periodically too).
   */
  #ready(): boolean {
    const head = this.#segments[0];
    return !("dropped" in head) || this.#segments.length > 1 || this.#reason !== undefined ||
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
    this.#onEnd(this);
    if (reason !== "hub closed") this.#discard(reason === "stalled");
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(undefined);
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

  #append(record: LiveLine, cost: number): void {
    const last = this.#segments.at(-1);
    if (last !== undefined && "lines" in last && last.lines.length < this.#maxEventLines) {
      last.lines.push(record);
      last.bytes += cost;
    } else {
      this.#segments.push({ lines: [record], bytes: cost });
    }
    this.#queuedBytes += cost;
  }

  #take(): LiveEvent {
    const segment = this.#segments.shift()!;
    if ("dropped" in segment) {
      this.#noticeAt = this.#now() + DROPPED_NOTICE_MS;
      return { type: "dropped", count: segment.dropped };
    }
    this.#queuedBytes -= segment.bytes;
    this.fullSince = undefined;
    this.#counters.delivered += segment.lines.length;
    return { type: "lines", lines: segment.lines };
  }

  #discard(countAsDropped: boolean): void {
    if (countAsDropped) {
      let lost = 0;
      for (const segment of this.#segments) if ("lines" in segment) lost += segment.lines.length;
      this.#droppedLines += lost;
      this.#counters.dropped += lost;
    }
    this.#segments = [];
    this.#queuedBytes = 0;
  }
}

function decodeLines(data: Uint8Array): string[] {
  const lines = decoder.decode(data).split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

function lineCost(line: string): number {
  return line.length + LINE_OVERHEAD_BYTES;
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
