/**
 * What a live-tail reader sees: the events a subscription yields (lines as records or as bytes,
 * and counts of missed lines) and the subscription's reading contract. The hub hands these out
 * (`live/hub.ts`); the SSE and WebSocket encoders read them.
 *
 * @module
 */

import type { Fields, Level } from "../pipeline/record.ts";
import type { FieldsColumn } from "./batch_columns.ts";

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
  /** Its level, when it has one (an input or a rule gave it). */
  readonly level?: Level;
  /** Its fields, when it has some (an input or a rule gave them). */
  readonly fields?: Readonly<Fields>;
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
  /** Each line's level code (`record.ts`: 0 none), when the lines have levels. */
  readonly levels?: Uint8Array;
  /** Each line's fields, when the lines have fields. */
  readonly fields?: FieldsColumn;
}

/** Why a subscription ended. */
export type CloseReason = "closed" | "aborted" | "stalled" | "hub closed";

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
