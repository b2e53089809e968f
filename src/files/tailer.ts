/**
 * One task per followed file: reads it in large chunks from its checkpoint, frames whole lines
 * (or multi-line events) without decoding them, cuts batches, and hands each to a
 * {@linkcode StreamTarget} that answers only once the batch is acknowledged; the checkpoint
 * advances then, never before.
 *
 * A stream has at most `target.inFlight` batches in flight (default 1) and one being filled, so
 * its memory is that many batches and one more, and all streams of an input share its {@linkcode ByteBudget}: when the servers do not answer,
 * reading pauses and the file itself is the buffer.
 *
 * The task watches its file: a size below the read offset, or a head (or the bytes just before
 * the read offset) that no longer match, means the file was truncated (copytruncate) or replaced,
 * and the task ends so that the input can look for a copy. It checks after every wait (for the
 * servers, for budget), so a file truncated and written again while the servers were down is
 * never read on from the old offset. A task that waits for the servers cannot look itself: the
 * input does, and {@linkcode Tailer.detach}es it, so the file's new content gets a stream of its
 * own at once while the old content's last batch waits for its answer. A file the input marks
 * {@linkcode Tailer.rotated} is read to its end, its last unterminated line shipped once it stayed
 * quiet for `rotateWaitMs`, and let go.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { type Clock, SYSTEM_CLOCK } from "../clock.ts";
import { type FramedLines, LineFramer } from "../text/framing.ts";
import type { ByteBudget } from "../pipeline/byte_budget.ts";
import type { CheckpointStore, PlannedBatch, StreamRecord } from "./checkpoint.ts";
import type { MultilineConfig } from "./multiline.ts";
import { hashBytes, HEAD_BYTES, readAt, TAIL_BYTES, tailHash } from "./fingerprint.ts";
import { MultilineFramer } from "./multiline.ts";

/** Where a tailer's batches go: the HTTP shipper for the agent, the router for `serve -watch`. */
export interface StreamTarget {
  /**
   * Makes what is delivered from a sealed batch (the agent gzips it). `data` is borrowed: valid
   * until the returned promise resolves.
   */
  prepare(data: Uint8Array, batch: PreparedBatch): Promise<unknown>;
  /** Delivers a prepared batch; resolves once it is acknowledged, rejects only on abort. */
  deliver(payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void>;
  /**
   * Batches of one stream it takes at once (default 1). With more than one, `deliver` is called
   * for a batch before the one before it is acknowledged, and must itself keep them in order
   * (see {@linkcode DeliveredBatch.previous}); checkpoints still advance strictly in order.
   */
  readonly inFlight?: number;
}

/** The facts of a batch being prepared. */
export interface PreparedBatch {
  /** Lines in the batch. */
  lines: number;
  /** The file's path now. */
  path: string;
  /** Aborts when the task stops for good. */
  signal: AbortSignal;
}

/** The facts of a batch being delivered. */
export interface DeliveredBatch {
  /** The stream id. */
  stream: string;
  /** The stream offset at the end of the batch. */
  offset: number;
  /** The stream offset where the batch begins: the end of the batch before it. */
  start: number;
  /**
   * Resolves once the batch before it is acknowledged (and checkpointed), `undefined` when that
   * is so already; rejects if that batch was abandoned.
   */
  previous: Promise<void> | undefined;
  /** Lines in the batch. */
  lines: number;
  /** Uncompressed bytes. */
  bytes: number;
  /** The server an earlier, unanswered try went to, or -1. */
  server: number;
  /**
   * Told each server before it is tried; the try waits for what it returns. The plan records the
   * server, in the journal when it is not the one planned, so a restart after kill -9 resends the
   * batch to the server that may hold it, not to one that never saw it (stored twice).
   */
  onTry(server: number): Promise<void> | void;
}

/** What every tailer of one input shares. */
export interface TailerContext {
  /** The input's name: the key of its checkpoints. */
  input: string;
  /** Where batches go. */
  target: StreamTarget;
  /** Checkpoints (the record of each tailer lives there). */
  store: CheckpointStore;
  /** Bytes read and not acknowledged, over the input. */
  budget: ByteBudget;
  /** A batch is sealed at this many bytes. */
  batchBytes: number;
  /** A batch waits at most this long for more lines, in ms. */
  batchWaitMs: number;
  /** Longer lines are split. */
  maxLine: number;
  /** Multi-line events, when configured. */
  multiline?: MultilineConfig;
  /** A rotated file is let go once quiet this long, in ms. */
  rotateWaitMs: number;
  /** A file unchanged this long is closed, in ms. */
  closeIdleMs: number;
  /** A file quiet this long gives its buffers back until it grows, in ms. Default 10,000. */
  releaseIdleMs?: number;
  /** Told when a task finds its file's content replaced, so the input looks again at once. */
  onDetach?: () => void;
  /** Time and timers (a seam for tests). Default the wall clock. */
  clock?: Clock;
}

/** Why a tailer ended. */
export type TailerEnd =
  | "stopped"
  | "rotated"
  | "idle"
  | "truncated"
  | "given-up"
  | "error";

/** Counters of one tailer. */
export interface TailerStats {
  /** Lines acknowledged. */
  lines: number;
  /** Bytes of the file acknowledged. */
  bytes: number;
}

/** How a batch is sealed: at a restored plan's boundary, as a rotated file's last, or truncated. */
interface SealOptions {
  /** The restored plan it resends. */
  plan?: PlannedBatch;
  /** The last batch of a rotated file let go. */
  final?: boolean;
  /** The file no longer holds these bytes. */
  truncated?: boolean;
}

/** A batch taken from the builder, planned, and not yet sent. */
interface Sealed {
  /** Stream offset at its end. */
  end: number;
  /** Tail fingerprint at its end. */
  tail: string;
  bytes: number;
  lines: number;
  /** What the target prepared. */
  payload: unknown;
  /** Its plan in the checkpoint record. */
  plan: PlannedBatch;
  /** The server a restored plan was last tried on, or -1. */
  server: number;
  /** Resolves once the plan is journaled. */
  persisted: Promise<void>;
}

const log = getLogger(["logboom", "files", "tailer"]);
/** Reads are up to this large: few system calls, and a buffer small enough to keep per file. */
const READ_BUFFER = 256 * 1024;
const MIN_POLL_MS = 20;
const MAX_POLL_MS = 500;
/** Fewest bytes asked of one read while a batch fills; with less room left, the batch is sealed. */
const MIN_READ = 4096;
/** How often a quiet file looks at itself; the input's scans and file events wake it sooner. */
const QUIET_POLL_MS = 5000;
/** Raw bytes kept from the last reads, to fingerprint a batch's end without reading it again. */
const RECENT_BYTES = 64 * 1024;
/** A file quiet this long gives its buffers back until it grows again, in ms. */
const RELEASE_IDLE_MS = 10_000;

/**
 * Follows one file stream.
 *
 * @example
 * ```ts
 * const file = await Deno.open(path);
 * const tailer = new Tailer(record, file, context, { path });
 * tailer.rotated = true; // the input saw another file at its path
 * const why = await tailer.done; // "rotated" once read, shipped and quiet
 * ```
 */
export class Tailer {
  /** The stream's checkpoint record (updated as batches are acknowledged). */
  readonly record: StreamRecord;
  /** The path the file was first followed at. */
  readonly birthPath: string;
  /** `dev:ino` of the file. */
  readonly key: string;
  /** The first bytes of the file (up to 1 KiB), for telling copies. */
  head: Uint8Array;
  /** When the head was last checked against the file, in ms. */
  verifiedAt = 0;
  /** Set by the input once the file is no longer at its birth path. */
  rotated = false;
  /** When {@linkcode rotated} was first set, in ms. */
  rotatedAt = 0;
  /** How far the file was read. */
  readOffset: number;
  /** The file's size when last looked at. */
  size: number;
  /**
   * The largest size this content was seen at (read, or checked by the input): what is owed of
   * it is `contentSize - offset` (a truncation does not lower it).
   */
  contentSize: number;
  /** `size:mtime` of the file when the input last checked its content, for the input. */
  checkedAs = "";
  /** Resolves with why the task ended; never rejects. */
  readonly done: Promise<TailerEnd>;
  /** Counters. */
  readonly stats: TailerStats = { lines: 0, bytes: 0 };
  readonly #file: Deno.FsFile;
  readonly #ctx: TailerContext;
  /** Stops reading (the batch in flight may still finish). */
  readonly #stopReading = new AbortController();
  /** Stops everything, sends included. */
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  #woken = false;
  /** Deliveries of the batches in flight, oldest first (one may have settled unseen). */
  #flights: Promise<void>[] = [];
  /** Batches in flight not answered yet. */
  #unanswered = 0;
  /** Where the next batch sealed begins: the end of the last one sealed. */
  #sealedEnd: number;
  /** Waits under way (for an answer, for budget). */
  #stalls = 0;
  /** After a wait (and before the first read) the file is checked before it is read on. */
  #recheck = true;
  #detached = false;
  /** The task's wait for budget, shared by its pauses. */
  #budgetWait: Promise<void> | undefined;
  readonly #clock: Clock;
  /** Frames what is read; only while the file is busy (see {@linkcode Tailer.#newFramer}). */
  #framer: LineFramer | MultilineFramer | undefined;
  /** Restored plans not yet resent, oldest first. */
  #replay: PlannedBatch[] = [];
  /** The wait at the end of the file, doubling while nothing comes. */
  #pollMs = MIN_POLL_MS;
  /** When the file last grew (or the task started), in ms. */
  #lastGrowth = 0;
  #givenUp = false;
  #builder: Uint8Array = new Uint8Array(0);
  #builderLen = 0;
  #builderLines = 0;
  #builderSince = 0;
  /** The last raw bytes read, ending at {@linkcode readOffset}. */
  #recent = new Uint8Array(0);
  #recentLen = 0;

  /**
   * Starts following `file` (opened for reading) from `record.offset`, resending the batches
   * `record.planned` lists with exactly their boundaries first.
   *
   * @param record the stream's checkpoint record.
   * @param file the file, owned (closed) by the tailer from now on.
   * @param ctx what the input's tailers share.
   * @param options `head`: the first bytes already read, if any; `rotated`: the file is already
   * away from its birth path (found under a rotated name).
   */
  constructor(
    record: StreamRecord,
    file: Deno.FsFile,
    ctx: TailerContext,
    options: { head?: Uint8Array; rotated?: boolean } = {},
  ) {
    this.record = record;
    this.birthPath = record.path;
    this.key = `${record.dev}:${record.ino}`;
    this.head = options.head ?? new Uint8Array(0);
    this.#clock = ctx.clock ?? SYSTEM_CLOCK;
    this.rotated = options.rotated ?? false;
    this.rotatedAt = this.rotated ? this.#clock.now() : 0;
    this.readOffset = record.offset;
    this.#sealedEnd = record.offset;
    this.size = record.size;
    this.contentSize = Math.max(record.size, record.offset);
    this.#file = file;
    this.#ctx = ctx;
    this.done = this.#run();
  }

  /** Bytes acknowledged. */
  get acked(): number {
    return this.record.offset;
  }

  /** Bytes of the file not yet acknowledged. */
  get unshipped(): number {
    return Math.max(0, this.size - this.record.offset);
  }

  /** Whether every byte read so far is acknowledged and nothing is in the batch being filled. */
  get settled(): boolean {
    return this.record.planned.length === 0 && this.#builderLen === 0;
  }

  /** Whether the task waits (for the servers to answer, or for budget) instead of reading. */
  get stalled(): boolean {
    return this.#stalls > 0;
  }

  /**
   * Whether the file no longer holds this stream's content (truncated or rewritten): the task
   * reads no more of it, and its inode is free for a new stream.
   */
  get detached(): boolean {
    return this.#detached;
  }

  /**
   * The input found the file's content replaced while the task waited: it stops reading, and
   * ends as `"truncated"` once its batch in flight is answered (what it read before is the old
   * content). The rest of the old content is looked for in a copy.
   */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#stopReading.abort();
    this.#wake?.();
  }

  /** Looks at the file's size now (its lag), wherever the task is. */
  async refreshSize(): Promise<void> {
    try {
      this.size = (await this.#file.stat()).size;
    } catch {
      // Closed as the task ended: the last size stays.
    }
  }

  /** Wakes the task to look at its file now (a file event came). */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Marks the file rotated away from its birth path. */
  markRotated(): void {
    if (this.rotated) return;
    this.rotated = true;
    this.rotatedAt = this.#clock.now();
    this.wake();
  }

  /**
   * Stops reading; the batch in flight gets `graceMs` to be acknowledged, then is abandoned
   * (its plan stays in the checkpoint, and the next run resends it).
   */
  async stop(graceMs = 5000): Promise<TailerEnd> {
    this.#stopReading.abort();
    this.#wake?.();
    const cancel = this.#clock.timer(graceMs, () => this.#abort.abort());
    try {
      return await this.done;
    } finally {
      cancel();
    }
  }

  /** Closes the file at once, whatever is unshipped (the rotated-file cap). */
  async giveUp(): Promise<TailerEnd> {
    this.#givenUp = true;
    this.#stopReading.abort();
    this.#abort.abort();
    return await this.done;
  }

  async #run(): Promise<TailerEnd> {
    let end: TailerEnd;
    try {
      end = await this.#follow();
    } catch (err) {
      if (this.#stopReading.signal.aborted || this.#abort.signal.aborted) end = "stopped";
      else {
        log.error("Following {path} failed: {error}", {
          path: this.record.path,
          error: describe(err),
        });
        end = "error";
      }
    }
    // The batches in flight finish (or are abandoned on stop's deadline) before the file closes.
    try {
      await this.#drain();
    } catch {
      if (end !== "error" && end !== "truncated") end = "stopped";
    }
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
    return this.#givenUp ? "given-up" : this.#detached ? "truncated" : end;
  }

  /** The file holds other content now: its inode is free for a new stream at once. */
  #replaced(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#ctx.onDetach?.();
  }

  /**
   * Reads the file to its end and on as it grows, one step at a time: wait for budget, check the
   * file after a wait, resend a restored plan at its boundary, seal a full batch, read, and at
   * the end of the file look at it and wait.
   */
  async #follow(): Promise<TailerEnd> {
    await this.#file.seek(this.record.offset, Deno.SeekMode.Start);
    // Plans restored from the checkpoint: resent with exactly their boundaries.
    this.#replay = [...this.record.planned];
    this.record.planned.length = 0;
    this.#lastGrowth = this.#clock.now();
    if (!(await this.#verifyHead())) {
      this.#replaced();
      return "truncated";
    }
    const stop = this.#stopReading.signal;
    while (!stop.aborted) {
      if (this.#ctx.budget.full) {
        await this.#waitForBudget();
        continue;
      }
      if (this.#recheck && await this.#changedUnder()) return await this.#endTruncated();
      if (await this.#sealAtPlannedEnd()) continue;
      if (await this.#sealIfFull()) continue;
      if (await this.#readMore()) continue;
      const end = await this.#atEnd();
      if (end !== undefined) return end;
    }
    return "stopped";
  }

  /** Raw bytes read into the framer and not yet in a batch (a partial line, an open event). */
  #pending(): number {
    return this.#framer?.pending ?? 0;
  }

  /**
   * A framer, made once there is something to read: a quiet file holds no buffers, so thousands
   * of followed files cost a file descriptor each.
   */
  #newFramer(): LineFramer | MultilineFramer {
    const { multiline, maxLine } = this.#ctx;
    return multiline
      ? new MultilineFramer(multiline, { maxLine, now: () => this.#clock.now() })
      : new LineFramer({ maxLine, bufferSize: READ_BUFFER });
  }

  /**
   * Paused while the servers catch up: one wait for room per task, however long they stay away;
   * a wake-up (the input saw the file shrink) checks the file meanwhile.
   */
  async #waitForBudget(): Promise<void> {
    this.#stalls++;
    try {
      this.#budgetWait ??= this.#ctx.budget.available().then(() => {
        this.#budgetWait = undefined;
        this.wake();
      });
      await this.#sleep(MAX_POLL_MS * 4);
    } finally {
      this.#stalls--;
    }
    // The file keeps growing meanwhile: its size is the lag reported, and what it held is owed
    // (a truncation meanwhile loses it, and says so).
    this.size = Math.max(this.size, (await this.#file.stat()).size);
    this.contentSize = Math.max(this.contentSize, this.size);
    this.#recheck = true;
  }

  /**
   * After a wait: whether the file was truncated (and maybe written past our offset again) or
   * replaced meanwhile.
   */
  async #changedUnder(): Promise<boolean> {
    this.#recheck = false;
    // Smaller than it was seen to be while we waited: truncated, even before we read any. (Seen
    // before this look: the input's scan raises it too, from a look that may come after this one.)
    const seen = this.contentSize;
    const shrunk = (await this.#file.stat()).size < seen;
    return shrunk || !(await this.#stillSame(this.readOffset));
  }

  /**
   * The file holds other content now: what was read before is the old content, whole lines of
   * it, and is shipped; the task ends.
   */
  async #endTruncated(): Promise<TailerEnd> {
    this.#replaced();
    await this.#seal(this.readOffset - this.#pending(), { truncated: true });
    return "truncated";
  }

  /** Resends a restored plan once read to its end, with exactly its boundary. */
  async #sealAtPlannedEnd(): Promise<boolean> {
    const cut = this.#replay[0];
    if (cut === undefined || this.readOffset < cut.end) return false;
    if (this.readOffset > cut.end) {
      // Read past a planned boundary (the file changed under it): the plan no longer applies.
      this.#replay.length = 0;
      return false;
    }
    this.#append(this.#framer?.end());
    this.#replay.shift();
    await this.#seal(cut.end, { plan: cut });
    return true;
  }

  /** Room left in the batch being filled, counting the raw bytes the framer holds. */
  #batchRoom(): number {
    return this.#ctx.batchBytes - this.#builderLen - this.#pending();
  }

  /**
   * Seals the batch when too little room is left for a read: a batch stays within
   * `batch.max_bytes` (whole lines permitting), as one over it costs the server a second locked
   * write, and a copy into a fresh page. While replaying, only the planned boundary may end one.
   */
  async #sealIfFull(): Promise<boolean> {
    if (this.#batchRoom() >= MIN_READ || this.#builderLen === 0 || this.#replay.length > 0) {
      return false;
    }
    await this.#seal(this.readOffset - this.#pending());
    return true;
  }

  /** Reads the next chunk (not past a planned boundary) and frames it; whether bytes came. */
  async #readMore(): Promise<boolean> {
    const framer = this.#framer;
    if (framer === undefined) return false;
    const free = framer.buffer;
    const cut = this.#replay[0];
    const limit = cut === undefined ? Infinity : cut.end - this.readOffset;
    const n = await this.#file.read(
      free.subarray(0, Math.min(free.length, Math.max(MIN_READ, this.#batchRoom()), limit)),
    );
    if (n === null || n === 0) return false;
    this.#remember(free.subarray(0, n));
    this.readOffset += n;
    if (this.readOffset > this.size) this.size = this.readOffset;
    if (this.readOffset > this.contentSize) this.contentSize = this.readOffset;
    this.#lastGrowth = this.#clock.now();
    this.#pollMs = MIN_POLL_MS;
    this.#append(framer.commit(n));
    const ctx = this.#ctx;
    if (this.#builderLen >= ctx.batchBytes && this.#replay.length === 0) {
      await this.#seal(this.readOffset - this.#pending());
    }
    return true;
  }

  /**
   * At the end of the file: sends what waited long enough, looks at the file (truncated, grown),
   * lets a quiet rotated or idle file go, and otherwise waits. `undefined`: read on.
   */
  async #atEnd(): Promise<TailerEnd | undefined> {
    const now = this.#clock.now();
    await this.#sealDue(now);
    const info = await this.#file.stat();
    this.size = info.size;
    if (info.size < this.readOffset) {
      // Truncated: lines completed before the cut are shipped; the rest is in a copy, if any.
      log.info("{path} was truncated at {size} bytes (read to {offset})", {
        path: this.record.path,
        size: info.size,
        offset: this.readOffset,
      });
      return await this.#endTruncated();
    }
    this.record.size = info.size;
    this.record.mtime = info.mtime?.getTime() ?? 0;
    if (info.size > this.readOffset) {
      this.#framer ??= this.#newFramer();
      this.#recheck = true;
      return undefined;
    }
    if (this.#replay.length > 0) {
      // The planned data is not all there any more: send what there is, as the file ends.
      this.#replay.length = 0;
      return undefined;
    }
    const end = await this.#endIfQuiet(now);
    if (end !== undefined) return end;
    this.#releaseIfQuiet(now);
    await this.#sleep(this.#nextWaitMs(now));
    this.#pollMs = Math.min(this.#pollMs * 2, MAX_POLL_MS);
    return undefined;
  }

  /** Sends a multi-line event and a batch that waited long enough (a rotated file's at once). */
  async #sealDue(now: number): Promise<void> {
    const framer = this.#framer;
    if (
      framer instanceof MultilineFramer && framer.hasEvent &&
      now - framer.touched >= this.#ctx.multiline!.timeoutMs
    ) {
      this.#append(framer.flushEvent());
    }
    if (
      this.#builderLen > 0 && (now - this.#builderSince >= this.#ctx.batchWaitMs || this.rotated)
    ) {
      await this.#seal(this.readOffset - this.#pending());
    }
  }

  /**
   * Ends the task for a file that stayed quiet: rotated, after `rotateWaitMs` (its unterminated
   * last line is shipped then, as nothing will complete it); at its path, after `closeIdleMs`
   * with everything acknowledged (the input's scan follows it again when it grows).
   */
  async #endIfQuiet(now: number): Promise<TailerEnd | undefined> {
    const ctx = this.#ctx;
    if (this.rotated && now - Math.max(this.#lastGrowth, this.rotatedAt) >= ctx.rotateWaitMs) {
      this.#append(this.#framer?.end());
      if (this.#builderLen > 0) await this.#seal(this.readOffset, { final: true });
      await this.#drain();
      return "rotated";
    }
    if (
      !this.rotated && this.settled && this.#pending() === 0 &&
      now - this.#lastGrowth >= ctx.closeIdleMs
    ) {
      return "idle";
    }
    return undefined;
  }

  /** A file quiet for `releaseIdleMs` with nothing held gives its buffers back until it grows. */
  #releaseIfQuiet(now: number): void {
    if (
      this.#framer !== undefined && this.#pending() === 0 && this.#builderLen === 0 &&
      now - this.#lastGrowth >= (this.#ctx.releaseIdleMs ?? RELEASE_IDLE_MS)
    ) {
      this.#framer = undefined;
      this.#builder = new Uint8Array(0);
      this.#recent = new Uint8Array(0);
      this.#recentLen = 0;
    }
  }

  /**
   * How long to wait at the end of the file: the poll period (doubling while nothing comes), cut
   * short by a batch's or an event's wait and by a rotated file's let-go; a quiet file (buffers
   * given back) waits longer, as the input's scan wakes it when it grows.
   */
  #nextWaitMs(now: number): number {
    const ctx = this.#ctx;
    const framer = this.#framer;
    let waitMs = this.#pollMs;
    if (this.#builderLen > 0) {
      waitMs = Math.min(waitMs, Math.max(1, this.#builderSince + ctx.batchWaitMs - now));
    }
    if (framer instanceof MultilineFramer && framer.hasEvent) {
      waitMs = Math.min(waitMs, Math.max(1, framer.touched + ctx.multiline!.timeoutMs - now));
    }
    if (framer === undefined) waitMs = QUIET_POLL_MS;
    if (this.rotated) {
      const letGo = Math.max(this.#lastGrowth, this.rotatedAt) + ctx.rotateWaitMs - now;
      waitMs = Math.min(waitMs, Math.max(1, letGo));
    }
    return waitMs;
  }

  /** Whether the file still starts with the head we know (re-reading it, grown to 1 KiB). */
  async #verifyHead(): Promise<boolean> {
    const record = this.record;
    this.verifiedAt = this.#clock.now();
    if (record.headLen === 0) return true;
    const bytes = await readAt(this.#file, 0, record.headLen);
    if (bytes.length < record.headLen || hashBytes(bytes) !== record.head) {
      log.info("{path} no longer starts with the same bytes: it was replaced", {
        path: record.path,
      });
      return false;
    }
    return true;
  }

  /**
   * Whether the file still holds what was read of it: the same head, at least `readPos` bytes,
   * and the same bytes just before `readPos` (when they are still in memory).
   */
  async #stillSame(readPos: number): Promise<boolean> {
    if (!(await this.#verifyHead())) return false;
    const size = (await this.#file.stat()).size;
    const expected = this.#recentTail(readPos);
    if (size >= readPos && (expected === undefined || readPos === 0)) return true;
    if (size >= readPos && (await tailHash(this.#file, readPos)) === expected) return true;
    log.info("{path} no longer holds the {offset} bytes read of it: it was truncated", {
      path: this.record.path,
      offset: readPos,
    });
    return false;
  }

  #append(framed: FramedLines | undefined): void {
    if (framed === undefined || framed.lines === 0) return;
    const need = this.#builderLen + framed.data.length;
    if (need > this.#builder.length) {
      // Doubling, but not past a batch and a read: a batch is sealed once it reaches its size.
      const cap = this.#ctx.batchBytes + READ_BUFFER;
      const doubled = Math.max(this.#builder.length * 2, 4096);
      const grown = new Uint8Array(Math.max(need, Math.min(doubled, cap)));
      grown.set(this.#builder.subarray(0, this.#builderLen));
      this.#builder = grown;
    }
    this.#builder.set(framed.data, this.#builderLen);
    if (this.#builderLen === 0) this.#builderSince = this.#clock.now();
    this.#builderLen = need;
    this.#builderLines += framed.lines;
  }

  /**
   * Seals the batch being filled, ending at stream offset `end`, and queues it for delivery once
   * fewer than `target.inFlight` batches of the stream are unanswered.
   */
  async #seal(end: number, options: SealOptions = {}): Promise<void> {
    if (this.#builderLen === 0) return;
    const sealed = await this.#takeBatch(end, options);
    await this.#waitForSlot(sealed.bytes);
    this.#send(sealed);
  }

  /**
   * Turns the batch being filled into a {@linkcode Sealed} one: fingerprinted, prepared by the
   * target, counted against the budget, and planned in the journal before it can be sent.
   */
  async #takeBatch(end: number, options: SealOptions): Promise<Sealed> {
    const ctx = this.#ctx;
    const record = this.record;
    const bytes = this.#builderLen;
    const lines = this.#builderLines;
    // A truncated file no longer holds these bytes: only the copy in memory can fingerprint them.
    const tail = this.#recentTail(end) ??
      (options.truncated ? "unknown" : await tailHash(this.#file, end));
    if (!options.truncated && record.headLen < HEAD_BYTES && end > record.headLen) {
      this.head = await readAt(this.#file, 0, Math.min(HEAD_BYTES, end));
      record.head = hashBytes(this.head);
      record.headLen = this.head.length;
    }
    const payload = await ctx.target.prepare(this.#builder.subarray(0, bytes), {
      lines,
      path: record.path,
      signal: this.#abort.signal,
    });
    this.#builderLen = 0;
    this.#builderLines = 0;
    this.#builderSince = 0;
    ctx.budget.take(bytes);
    const restored = options.plan;
    const plan: PlannedBatch = restored ?? { end, tail, server: ctx.store.server };
    if (options.final) plan.final = true;
    record.planned.push(plan);
    // Written down before the batch can reach a server: a restart resends with these boundaries.
    const persisted = ctx.store.journal(ctx.input, record);
    return { end, tail, bytes, lines, payload, plan, server: restored?.server ?? -1, persisted };
  }

  /**
   * Waits until fewer than `target.inFlight` batches (default 1) are unanswered: the server
   * refuses a batch at or below the stream's mark, so the target keeps them in order, and the
   * file is not read far ahead of the answers. Settled flights are let go.
   */
  async #waitForSlot(bytes: number): Promise<void> {
    const depth = Math.max(1, this.#ctx.target.inFlight ?? 1);
    const waits = this.#unanswered >= depth;
    if (waits) this.#stalls++;
    try {
      while (this.#flights.length >= depth) {
        await this.#flights[0];
        this.#flights.shift();
      }
    } catch (err) {
      this.#ctx.budget.release(bytes);
      throw err;
    } finally {
      if (waits) {
        this.#stalls--;
        // The file may have changed under the wait: checked before reading on.
        this.#recheck = true;
      }
    }
    // `previous` of the next batch is the one before it, if not answered yet.
    while (this.#flights.length > 0 && this.#unanswered < this.#flights.length) {
      await this.#flights[0];
      this.#flights.shift();
    }
  }

  /**
   * Delivers a sealed batch in the background; once it is acknowledged, and the one before it
   * too, the checkpoint advances to its end.
   */
  #send(sealed: Sealed): void {
    const ctx = this.#ctx;
    const record = this.record;
    const signal = this.#abort.signal;
    const { end, tail, bytes, lines, plan } = sealed;
    const previous = this.#flights.at(-1);
    const start = this.#sealedEnd;
    this.#sealedEnd = end;
    this.#unanswered++;
    const flight = (async () => {
      try {
        await sealed.persisted;
        // Nothing is sent past a checkpoint that cannot be written: the store retries meanwhile.
        await ctx.store.writable(signal);
        await ctx.target.deliver(sealed.payload, {
          stream: record.stream,
          offset: end,
          start,
          previous,
          lines,
          bytes,
          server: sealed.server,
          onTry: (server) => {
            if (plan.server === server) return;
            plan.server = server;
            return ctx.store.journal(ctx.input, record);
          },
        }, signal);
        // Checkpoints advance in order: the batch before this one is acknowledged first.
        await previous;
        record.offset = end;
        record.tail = tail;
        record.planned.splice(record.planned.indexOf(plan), 1);
        this.stats.lines += lines;
        this.stats.bytes += bytes;
        // Written soon (group commit); a failure is reported and retried by the store.
        ctx.store.schedule();
      } finally {
        this.#unanswered--;
        ctx.budget.release(bytes);
      }
    })();
    // Marked handled here; the next seal or the end of the task awaits it for real.
    flight.catch(() => {});
    this.#flights.push(flight);
  }

  /** Waits for every batch in flight; rejects if one was abandoned. */
  async #drain(): Promise<void> {
    while (this.#flights.length > 0) {
      await this.#flights[0];
      this.#flights.shift();
    }
  }

  /** Keeps the last raw bytes read. */
  #remember(chunk: Uint8Array): void {
    const want = Math.min(RECENT_BYTES, this.#recentLen + chunk.length);
    if (this.#recent.length < want) {
      // Grown as reads come, so a file that gets a line now and then keeps a few KiB.
      const grown = new Uint8Array(
        Math.min(RECENT_BYTES, Math.max(want, this.#recent.length * 2, 4096)),
      );
      grown.set(this.#recent.subarray(0, this.#recentLen));
      this.#recent = grown;
    }
    const keep = this.#recent;
    if (chunk.length >= keep.length) {
      keep.set(chunk.subarray(chunk.length - keep.length));
      this.#recentLen = keep.length;
      return;
    }
    const stay = Math.min(this.#recentLen, keep.length - chunk.length);
    if (stay > 0) keep.copyWithin(0, this.#recentLen - stay, this.#recentLen);
    keep.set(chunk, stay);
    this.#recentLen = stay + chunk.length;
  }

  /** The tail fingerprint at `end` from the bytes kept in memory, or `undefined` if not kept. */
  #recentTail(end: number): string | undefined {
    if (end <= 0) return "";
    const startOfRecent = this.readOffset - this.#recentLen;
    const from = Math.max(0, end - TAIL_BYTES);
    if (from < startOfRecent || end > this.readOffset) return undefined;
    return hashBytes(this.#recent.subarray(from - startOfRecent, end - startOfRecent));
  }

  /** Waits `ms`, or less: until woken or stopped. */
  #sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const stop = this.#stopReading.signal;
      let pending = true;
      const done = () => {
        if (!pending) return;
        pending = false;
        cancel();
        stop.removeEventListener("abort", done);
        if (this.#wake === done) this.#wake = undefined;
        this.#woken = false;
        resolve();
      };
      const cancel = this.#clock.timer(ms, done);
      stop.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }
}
