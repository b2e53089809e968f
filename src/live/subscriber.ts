/**
 * A subscriber: the hub's side of a subscription. Its queue of runs bounded in bytes, the counts
 * of lines it missed kept where they were missed, its single reader, and how it ends.
 *
 * @module
 */

import type { Filter } from "./filter.ts";
import type { FilterShare } from "./filter_budget.ts";
import { decodeRun, type Queued, type Run, runCost, splitRun } from "./run.ts";
import type {
  CloseReason,
  DroppedEvent,
  LiveEvent,
  LiveLine,
  PollOptions,
  RawLinesEvent,
  Subscription,
} from "./subscription.ts";

/** What the hub gives a subscriber: its place in the stream, bounds, clock and callbacks. */
export interface SubscriberOptions {
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
export class Subscriber implements Subscription {
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
    const { data, firstId, count, source, host, ts, levels, fields } = run;
    if (levels === undefined && fields === undefined) {
      return { type: "raw", data, firstId, count, source, host, ts };
    }
    return { type: "raw", data, firstId, count, source, host, ts, levels, fields };
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
        const [gone, kept] = splitRun(queued, excess);
        bytes += runCost(gone);
        evicted += excess;
        queue[end] = kept;
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
    const [taken, left] = splitRun(run, room);
    this.#queue[0] = left;
    return taken;
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
