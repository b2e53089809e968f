/**
 * One writer per output file: group commit under an advisory lock, retries that never lose a
 * queued byte, and reopening when the path was moved away.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe, sleep } from "../_util.ts";
import type { BatchMark } from "../pipeline/batch.ts";
import { Histogram } from "../pipeline/histogram.ts";
import { RetryPolicy } from "../retry.ts";
import type { FileIndexWriter } from "./file_index.ts";
import type { MarkIntent, MarkJournal } from "./stream_marks.ts";
import { nextRotationTime, rotatedName } from "./rotation.ts";

/** When the writer calls fsync. */
export type FsyncMode = "never" | "interval" | "batch";

/** The file operations a writer needs; `Deno.FsFile` has them all. */
export interface WritableFile {
  /** Writes some bytes at the end (the file is opened for append); returns how many. */
  write(data: Uint8Array): Promise<number>;
  /** Takes the advisory lock (flock(2)), exclusive when `exclusive` is true. */
  lock(exclusive?: boolean): Promise<void>;
  /** Releases the advisory lock. */
  unlock(): Promise<void>;
  /** Flushes the file's data to the device. */
  sync(): Promise<void>;
  /** Moves the file position; `seekSync(0, Deno.SeekMode.End)` is the file's size. */
  seekSync(offset: number, whence: Deno.SeekMode): number;
  /**
   * The file's metadata: `mtime` for time-based rotation, `dev` and `ino` for the stream marks
   * journal (needs read permission).
   */
  statSync(): { mtime: Date | null; dev?: number; ino?: number | null };
  /** Closes the handle. */
  close(): void;
}

/** Opens files for a writer; swapped for a fault-injecting one in tests. */
export interface FileOpener {
  /** Opens `path` for append, creating it and its parent folders when missing. */
  open(path: string): Promise<WritableFile>;
  /**
   * Whether `path` still names the file that `file` is open on. Answers `true` when it cannot
   * tell (no read permission), so a writer never reopens needlessly.
   */
  isCurrent(path: string, file: WritableFile): boolean;
  /** Renames a file (rotation). */
  rename(from: string, to: string): Promise<void>;
  /** Whether a path exists (so a rotated name never overwrites an older one). */
  exists(path: string): boolean;
  /**
   * Makes a rotated file read-only, the mark by which retention knows the rotations logboom made
   * (a live file, whatever its name, is never read-only).
   */
  seal(path: string): Promise<void>;
}

/** When a writer rotates its file: by size, by time, or both. */
export interface RotationPolicy {
  /** Rotate before a write would take the file past this many bytes. */
  maxBytes?: number;
  /**
   * Rotate at each multiple of this period, in ms, counted in UTC (24 h: at midnight UTC), at the
   * first write after the boundary. The rotated file is named after the boundary that ended its
   * period, also when a restart or a quiet spell put the first write after it days later.
   */
  everyMs?: number;
  /** Called with the rotated file's new path and the live path, for compression and retention. */
  onRotated?: (rotatedPath: string, livePath: string) => void;
}

/** Options of {@linkcode FileWriter}. */
export interface FileWriterOptions {
  /** Opens the file; the Deno adapter in production. */
  opener: FileOpener;
  /** When to fsync. Default `interval`. */
  fsync?: FsyncMode;
  /** The fsync period under `interval`, in milliseconds. Default 1000. */
  fsyncIntervalMs?: number;
  /**
   * Size of the recycled pages that queued lines are copied into; one page is one locked write
   * (group commit). Default 1 MiB.
   */
  pageBytes?: number;
  /** First retry delay after a failed write, in milliseconds; doubles up to 5 s. Default 100. */
  retryDelayMs?: number;
  /** Called with the number of bytes each time queued bytes reach the file. */
  onWritten?: (bytes: number) => void;
  /** Called each time everything enqueued is written and acknowledged ({@linkcode FileWriter.idle}). */
  onIdle?: () => void;
  /** The time, for rotation names and failure reports. Default `Date.now`. */
  clock?: () => number;
  /** Rotation; none by default. */
  rotation?: RotationPolicy;
  /** Counters to add to, shared by the writers of one sink. Default: the writer's own. */
  stats?: FileWriterStats;
  /**
   * Where marked batches are recorded before their bytes are written (see `stream_marks.ts`).
   * Default: marks are not recorded.
   */
  marks?: MarkJournal;
  /**
   * Nothing is written before this settles: the writer of the same file in a sink this one
   * replaces (a config reload) is closed, so lines reach the file in the order they came and one
   * writer at a time rotates it. Lines are queued meanwhile. Default: write at once.
   */
  after?: Promise<unknown>;
  /**
   * The file's time index (`file_index.ts`): a mark before a page now and then, the end at
   * rotation. Default: none.
   */
  index?: FileIndexWriter;
}

/** What a writer did so far, for metrics. */
export interface FileWriterStats {
  /** Lines written to the file. */
  linesWritten: number;
  /** Bytes written to the file. */
  bytesWritten: number;
  /** Failed writes and fsyncs (each retry counts). */
  errors: number;
  /** Seconds each locked page write took, lock to unlock. */
  writeSeconds: Histogram;
}

/** Why a writer cannot write now: the last error, and since when it keeps failing. */
export interface WriterFailure {
  /** The last error's message. */
  error: string;
  /** When the first of these consecutive failures happened, in ms since the epoch. */
  since: number;
  /** Failed attempts (writes, opens, fsyncs) in a row. */
  failures: number;
}

/** Raised by {@linkcode FileWriter.close} when it was cancelled with bytes still unwritten. */
export class UnwrittenDataError extends Error {
  /** Bytes that were queued and never reached the file. */
  readonly bytes: number;
  /**
   * @param path the file that was not written.
   * @param bytes how many bytes were lost.
   * @param options the cause, when there is one.
   */
  constructor(path: string, bytes: number, options?: ErrorOptions) {
    super(`Stopped with ${bytes} bytes not written to "${path}"`, options);
    this.name = "UnwrittenDataError";
    this.bytes = bytes;
  }
}

/** Queued lines: a page filled by `enqueue`, written whole by the loop, then recycled. */
interface Page {
  buf: Uint8Array;
  len: number;
  lines: number;
  /** Sequence number of the last chunk copied in. */
  seq: number;
  /** When its first chunk was received, ms since the epoch (for the time index). */
  at: number;
  /** Marked batches in the page: where each lies, and the lines of its part stored at its end. */
  marks?: { mark: BatchMark; from: number; to: number; lines: number }[];
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const MAX_RETRY_DELAY_MS = 5000;
/** A writer that keeps failing says so again at most this often. */
const REPORT_EVERY_MS = 5000;
/**
 * Free pages kept for reuse, in `pageBytes`: beyond these, written pages are left to the garbage
 * collector. Fresh memory costs a page fault per 4 KiB on first touch (0.8 ms per MiB on the
 * project's machine), so a busy writer copies into pages it already touched.
 */
const SPARE_PAGES = 4;
/**
 * A writer's first page. Pages double up to `pageBytes` while its queue backs up, so a busy file
 * makes few large writes while ten thousand quiet ones cost a few KiB each.
 */
const FIRST_PAGE_BYTES = 4096;
const log = getLogger(["logboom", "store"]);

/**
 * Appends queued chunks to one file. A chunk is whole lines, and is written contiguously under
 * `flock`, so lines of different producers never interleave and other processes that lock the
 * file cooperate.
 *
 * @example
 * ```ts
 * const writer = await FileWriter.open("app.log", { opener: denoFiles });
 * writer.enqueue(new TextEncoder().encode("hello\n"));
 * await writer.flush(); // written (and fsynced under fsync "batch")
 * await writer.close();
 * ```
 */
export class FileWriter {
  /** The path written to. */
  readonly path: string;
  readonly #opener: FileOpener;
  readonly #fsync: FsyncMode;
  readonly #fsyncIntervalMs: number;
  readonly #pageBytes: number;
  /** Backoff after a failed write: no jitter, a local disk has no crowd of clients to spread. */
  readonly #retry: RetryPolicy;
  readonly #onWritten: (bytes: number) => void;
  readonly #onIdle: () => void;
  readonly #clock: () => number;
  readonly #rotation: RotationPolicy | undefined;
  readonly #marks: MarkJournal | undefined;
  readonly #after: Promise<unknown> | undefined;
  readonly #index: FileIndexWriter | undefined;
  /** When the last page written was received, for the index's end at rotation. */
  #lastAt = 0;
  /**
   * Under time rotation, the boundary that ends the period of the open file's last lines:
   * unknown (taken from the file's mtime) until this writer wrote to the file it opened.
   */
  #periodEnd: number | undefined;
  #reopen = false;
  #lastActive: number;
  #failure: WriterFailure | undefined;
  #lastReport = -Infinity;
  /** Why the loop ended with bytes unwritten; set once it ended that way. */
  #lost: UnwrittenDataError | undefined;
  #ended = false;
  #file: WritableFile | undefined;
  /** Rotated files awaiting the periodic fsync before they are closed. */
  #unsynced: WritableFile[] = [];
  #pages: Page[] = [];
  #spare: Uint8Array[] = [];
  #spareBytes = 0;
  #nextPageBytes: number;
  /** The page the loop is writing: `enqueue` must not append to it any more. */
  #writing: Page | undefined;
  #queuedBytes = 0;
  #enqueuedSeq = 0;
  #writtenSeq = 0;
  #waiters: Waiter[] = [];
  #wake: (() => void) | undefined;
  #closing = false;
  #abort = new AbortController();
  #dirty = false;
  #syncDue = 0;
  #loop: Promise<void>;
  readonly #stats: FileWriterStats;

  private constructor(path: string, file: WritableFile | undefined, options: FileWriterOptions) {
    const {
      opener,
      fsync = "interval",
      fsyncIntervalMs = 1000,
      pageBytes = 1024 * 1024,
      retryDelayMs = 100,
      onWritten = () => {},
      onIdle = () => {},
      clock = Date.now,
      rotation,
      stats = { linesWritten: 0, bytesWritten: 0, errors: 0, writeSeconds: new Histogram() },
      marks,
    } = options;
    this.#marks = marks;
    this.#after = options.after;
    this.#index = options.index;
    this.#stats = stats;
    this.path = path;
    this.#file = file;
    this.#opener = opener;
    this.#fsync = fsync;
    this.#fsyncIntervalMs = fsyncIntervalMs;
    this.#pageBytes = pageBytes;
    this.#nextPageBytes = Math.min(FIRST_PAGE_BYTES, pageBytes);
    this.#retry = new RetryPolicy({
      initialMs: retryDelayMs,
      maxMs: MAX_RETRY_DELAY_MS,
      jitter: "none",
    });
    this.#onWritten = onWritten;
    this.#onIdle = onIdle;
    this.#clock = clock;
    this.#lastActive = clock();
    this.#rotation = rotation;
    this.#loop = this.#run();
  }

  /** Opens `path` (so startup errors surface at once) and starts the writer. */
  static async open(path: string, options: FileWriterOptions): Promise<FileWriter> {
    const file = await options.opener.open(path);
    return new FileWriter(path, file, options);
  }

  /**
   * Starts a writer that opens `path` when it first writes; an open that fails is logged and
   * retried like a failed write, with the lines kept queued.
   */
  static create(path: string, options: FileWriterOptions): FileWriter {
    return new FileWriter(path, undefined, options);
  }

  /** When this writer last took or wrote data, in ms since the epoch. */
  get lastActive(): number {
    return this.#lastActive;
  }

  /**
   * Whether everything enqueued is written and acknowledged (fsynced under `batch`): closing the
   * writer now makes no acknowledgement wait.
   */
  get idle(): boolean {
    return this.#writtenSeq === this.#enqueuedSeq;
  }

  /** Why the writer cannot write now, while its writes, opens or fsyncs keep failing. */
  get failure(): Readonly<WriterFailure> | undefined {
    return this.#failure;
  }

  /** Closes the file before the next write and opens the path anew (SIGHUP, logrotate). */
  reopen(): void {
    this.#reopen = true;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Counters of what was written, for metrics (a live object: read, do not keep). */
  get stats(): Readonly<FileWriterStats> {
    return this.#stats;
  }

  /**
   * Copies whole lines into the queue (so `data` may be reused at once). A chunk is never split
   * across pages, so it reaches the file in one locked write. The caller bounds the queue (see
   * `ByteBudget`); this never drops. A `mark` is recorded with the journal before the bytes are
   * written (see {@linkcode FileWriterOptions.marks}).
   */
  enqueue(data: Uint8Array, lines = 0, mark?: BatchMark, at?: number): void {
    if (this.#closing) throw new Error(`Writer for "${this.path}" is closed`);
    if (data.length > this.#pageBytes && this.#rotation?.maxBytes !== undefined) {
      // A rotated file must not outgrow its size by a whole batch: split it between lines.
      let stored = mark?.skipped ?? 0;
      for (const piece of splitLines(data, this.#pageBytes)) {
        const pieceLines = countLines(piece);
        this.#append(piece, pieceLines, mark, stored += pieceLines, at);
      }
      return;
    }
    this.#append(data, lines, mark, (mark?.skipped ?? 0) + lines, at);
  }

  #append(data: Uint8Array, lines: number, mark?: BatchMark, stored = 0, at?: number): void {
    let tail = this.#pages.at(-1);
    if (tail === undefined || tail === this.#writing || tail.buf.length - tail.len < data.length) {
      if (tail !== undefined) {
        this.#nextPageBytes = Math.min(this.#nextPageBytes * 2, this.#pageBytes);
      }
      const buf = this.#page(data.length);
      tail = { buf, len: 0, lines: 0, seq: 0, at: at ?? this.#clock(), marks: undefined };
      this.#pages.push(tail);
    }
    tail.buf.set(data, tail.len);
    if (mark !== undefined && this.#marks !== undefined) {
      (tail.marks ??= []).push({ mark, from: tail.len, to: tail.len + data.length, lines: stored });
    }
    tail.len += data.length;
    tail.lines += lines;
    tail.seq = ++this.#enqueuedSeq;
    this.#queuedBytes += data.length;
    this.#lastActive = this.#clock();
    this.#notify();
  }

  /**
   * A page for a chunk of `bytes`: a spare one if one is large enough, else a new one. Pages grow
   * from a few KiB for a quiet file; a chunk of half a page or more gets a whole page, and a
   * chunk over a page (a large HTTP body) a whole number of pages, so that they can be reused.
   */
  #page(bytes: number): Uint8Array {
    const spare = this.#spare;
    for (let i = spare.length - 1; i >= 0; i--) {
      const buf = spare[i];
      if (buf.length < bytes) continue;
      spare[i] = spare[spare.length - 1];
      spare.pop();
      this.#spareBytes -= buf.length;
      return buf;
    }
    const page = this.#pageBytes;
    if (bytes > page) return new Uint8Array(Math.ceil(bytes / page) * page);
    return new Uint8Array(bytes * 2 >= page ? page : Math.max(bytes, this.#nextPageBytes));
  }

  /** Keeps a written page for reuse, within {@linkcode SPARE_PAGES} pages in all. */
  #recycle(buf: Uint8Array): void {
    if (buf.length < this.#pageBytes) return;
    if (this.#spareBytes + buf.length > SPARE_PAGES * this.#pageBytes) return;
    this.#spare.push(buf);
    this.#spareBytes += buf.length;
  }

  /**
   * Resolves once everything queued before the call is written (and fsynced under `batch`).
   * Rejects with {@linkcode UnwrittenDataError} when the writer stopped (a cancelled close)
   * before writing it.
   */
  flush(): Promise<void> {
    if (this.#writtenSeq === this.#enqueuedSeq) return Promise.resolve();
    if (this.#ended) {
      return Promise.reject(this.#lost ?? new UnwrittenDataError(this.path, this.#queuedBytes));
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq: this.#enqueuedSeq, resolve, reject });
    });
  }

  /**
   * Writes what is queued, fsyncs (unless `never`), unlocks and closes. When `signal` aborts
   * first, it stops retrying and rejects with {@linkcode UnwrittenDataError}.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    const onAbort = () => this.#abort.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#closing = true;
    this.#notify();
    try {
      await this.#loop;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  #notify(): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake();
    }
  }

  async #run(): Promise<void> {
    try {
      if (this.#after !== undefined) await this.#handedOver(this.#after);
      while (this.#queuedBytes > 0 || !this.#closing) {
        if (this.#queuedBytes === 0) {
          await this.#idle();
          continue;
        }
        const page = this.#pages[0];
        this.#writing = page;
        await this.#writeWithRetry(page.buf.subarray(0, page.len), page.marks, page.at);
        this.#pages.shift();
        this.#writing = undefined;
        if (this.#pages.length === 0) {
          this.#nextPageBytes = Math.min(FIRST_PAGE_BYTES, this.#pageBytes);
        }
        this.#queuedBytes -= page.len;
        this.#lastActive = this.#clock();
        this.#stats.linesWritten += page.lines;
        this.#stats.bytesWritten += page.len;
        this.#onWritten(page.len);
        this.#recycle(page.buf);
        if (this.#index !== undefined) await this.#index.flush();
        if (this.#fsync === "batch") await this.#syncWithRetry();
        else if (this.#fsync === "interval") {
          if (!this.#dirty) {
            this.#dirty = true;
            this.#syncDue = Date.now() + this.#fsyncIntervalMs;
          } else if (Date.now() >= this.#syncDue) {
            // Sustained load never leaves the queue empty: the period holds all the same.
            await this.#syncWithRetry();
          }
        }
        // Acknowledged only now: under "batch" a flush() must not resolve before the fsync.
        this.#writtenSeq = page.seq;
        this.#settle();
        if (this.idle) this.#onIdle();
      }
      if (this.#dirty) await this.#syncWithRetry();
      await this.#index?.flush(true);
    } catch (err) {
      const lost = new UnwrittenDataError(this.path, this.#queuedBytes, { cause: err });
      this.#lost = lost;
      for (const waiter of this.#waiters) waiter.reject(lost);
      this.#waiters = [];
      if (this.#queuedBytes > 0) throw lost;
    } finally {
      // From here on, flush() settles at once instead of waiting for a loop that is gone.
      this.#ended = true;
      this.#file?.close();
      this.#file = undefined;
      for (const file of this.#unsynced) file.close();
      this.#unsynced = [];
    }
  }

  /**
   * Waits for `after` (however it settles); returns early when the writer is closed with nothing
   * queued, and throws when a close gives up.
   */
  async #handedOver(after: Promise<unknown>): Promise<void> {
    let handed = false;
    after.catch(() => {}).then(() => {
      handed = true;
      this.#notify();
    });
    const signal = this.#abort.signal;
    const onAbort = () => this.#notify();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!handed) {
        signal.throwIfAborted();
        if (this.#closing && this.#queuedBytes === 0) return;
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Waits for new data, and runs the periodic fsync while waiting. */
  async #idle(): Promise<void> {
    const woken = new Promise<void>((resolve) => this.#wake = resolve);
    if (!this.#dirty) return await woken;
    const delay = Math.max(0, this.#syncDue - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const due = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), delay));
    const timedOut = await Promise.race([woken.then(() => false), due]);
    clearTimeout(timer);
    if (timedOut) {
      this.#wake = undefined;
      await this.#syncWithRetry();
      // Quiet now: the marks of the last second go to the index too.
      await this.#index?.flush(true);
    }
  }

  #settle(): void {
    if (this.#waiters.length === 0) return;
    const pending: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.seq <= this.#writtenSeq) waiter.resolve();
      else pending.push(waiter);
    }
    this.#waiters = pending;
  }

  /**
   * Writes `data` whole under the lock, retrying with backoff until it is written; its marked
   * batches are journaled first, under the same lock.
   */
  async #writeWithRetry(
    data: Uint8Array,
    marks?: Page["marks"],
    at = this.#clock(),
  ): Promise<void> {
    let offset = 0;
    let failures = 0;
    while (offset < data.length) {
      let locked = false;
      try {
        let file = await this.#currentFile();
        const started = performance.now();
        await file.lock(true);
        locked = true;
        const now = this.#clock();
        if (offset === 0 && this.#rotation) file = await this.#rotateIfDue(file, data.length, now);
        if (offset === 0 && marks !== undefined) await this.#intend(file, data, marks);
        const index = this.#index;
        if (offset === 0 && index !== undefined && index.due(at)) {
          // One lseek now and then: the mark's offset is the file's own size, whoever appended.
          index.mark(file.seekSync(0, Deno.SeekMode.End), at);
        }
        const before = offset;
        while (offset < data.length) offset += await file.write(data.subarray(offset));
        index?.wrote(offset - before);
        if (at > this.#lastAt) this.#lastAt = at;
        const everyMs = this.#rotation?.everyMs;
        if (everyMs !== undefined) this.#periodEnd = nextRotationTime(now, everyMs);
        locked = false;
        await file.unlock();
        this.#stats.writeSeconds.observe((performance.now() - started) / 1000);
      } catch (err) {
        if (locked) await this.#file?.unlock().catch(() => {});
        failures++;
        const delay = this.#failed("write", err, failures);
        if (isGone(err)) this.#drop();
        await sleep(delay, this.#abort.signal);
        continue;
      }
      this.#recovered();
    }
  }

  /** Tells the marks journal where the page's marked batches are about to land in `file`. */
  async #intend(file: WritableFile, data: Uint8Array, marks: NonNullable<Page["marks"]>) {
    const start = file.seekSync(0, Deno.SeekMode.End);
    let dev = 0, ino: number | null | undefined = 0;
    try {
      ({ dev = 0, ino } = file.statSync());
    } catch {
      // No read permission on the file: the journal cannot name it, so a restart takes the
      // batch for unwritten and its resend is stored again; never a loss.
    }
    const intents: MarkIntent[] = marks.map(({ mark, from, to, lines }) => ({
      mark,
      lines,
      path: this.path,
      dev,
      ino: ino ?? 0,
      start: start + from,
      end: start + to,
      bytes: data.subarray(from, to),
    }));
    await this.#marks!.intend(intents);
  }

  async #syncWithRetry(): Promise<void> {
    this.#dirty = false;
    for (let failures = 1;; failures++) {
      try {
        while (this.#unsynced.length > 0) {
          await this.#unsynced[0].sync();
          this.#unsynced.shift()!.close();
        }
        // The file the lines went to, even if its path was moved since: a file opened anew
        // at the path holds none of them.
        await this.#file?.sync();
        this.#recovered();
        return;
      } catch (err) {
        await sleep(this.#failed("fsync", err, failures), this.#abort.signal);
      }
    }
  }

  /**
   * Counts a failed attempt and reports it: at once the first time, then at most every
   * {@linkcode REPORT_EVERY_MS} while the failures go on. Returns the delay before the retry.
   */
  #failed(what: "write" | "fsync", err: unknown, failures: number): number {
    this.#stats.errors++;
    const now = this.#clock();
    const error = describe(err);
    this.#failure = {
      error,
      since: this.#failure?.since ?? now,
      failures: (this.#failure?.failures ?? 0) + 1,
    };
    const delayMs = this.#retry.delayMs(failures - 1);
    const properties = {
      path: this.path,
      error,
      delayMs,
      queuedBytes: this.#queuedBytes,
      failures: this.#failure.failures,
    };
    if (now - this.#lastReport >= REPORT_EVERY_MS) {
      this.#lastReport = now;
      if (what === "fsync") {
        log.warn(
          'Cannot fsync "{path}": {error}; retrying in {delayMs} ms ({failures} failures so far)',
          properties,
        );
      } else {
        log.warn(
          'Cannot write to "{path}": {error}; retrying in {delayMs} ms with {queuedBytes} bytes ' +
            "queued ({failures} failures so far)",
          properties,
        );
      }
    } else {
      log.debug('Still cannot {what} "{path}": {error}', { what, ...properties });
    }
    return delayMs;
  }

  #recovered(): void {
    if (this.#failure === undefined) return;
    // A writer that flaps is reported at most every few seconds, and so is its recovery.
    if (this.#lastReport >= this.#failure.since) {
      log.info('Writing to "{path}" again after {failures} failures in {seconds} s', {
        path: this.path,
        failures: this.#failure.failures,
        seconds: Math.round((this.#clock() - this.#failure.since) / 1000),
      });
    }
    this.#failure = undefined;
  }

  /**
   * Rotates under the lock, between whole pages, so no line is split across files: renames the
   * file, opens and locks a new one, and only then lets the old one go. Returns the file to write.
   * A rotation by time is named after the boundary that ended the file's period, one by size
   * after `now`; either way the name is the time up to which the file took lines.
   */
  async #rotateIfDue(file: WritableFile, incoming: number, now: number): Promise<WritableFile> {
    const { maxBytes = Infinity, everyMs, onRotated } = this.#rotation!;
    const size = file.seekSync(0, Deno.SeekMode.End);
    if (size === 0) return file;
    let periodEnd: number | undefined;
    if (everyMs !== undefined) {
      periodEnd = this.#periodEnd ??= nextRotationTime(modifiedAt(file) ?? now, everyMs);
    }
    const byTime = periodEnd !== undefined && now >= periodEnd;
    if (!byTime && size + incoming <= maxBytes) return file;
    const at = byTime ? periodEnd! : now;
    const rotated = rotatedName(this.path, at, { taken: (p) => this.#opener.exists(p) });
    await this.#opener.rename(this.path, rotated);
    await this.#index?.rotated(rotated, size, this.#lastAt);
    const fresh = await this.#opener.open(this.path);
    await fresh.lock(true);
    this.#file = fresh;
    this.#periodEnd = undefined;
    await file.unlock().catch(() => {});
    // Under `interval` the rotated file still owes its last second an fsync: the next periodic
    // one, with the live file's. (`batch` synced every page; `never` owes nothing.)
    if (this.#fsync === "interval" && this.#dirty) this.#unsynced.push(file);
    else file.close();
    await this.#opener.seal(rotated).catch((err) => {
      log.warn('Cannot make the rotated file "{rotated}" read-only: {error}; retention keeps it', {
        rotated,
        error: describe(err),
      });
    });
    log.debug('Rotated "{path}" to "{rotated}" at {size} bytes', {
      path: this.path,
      rotated,
      size,
    });
    onRotated?.(rotated, this.path);
    return fresh;
  }

  /** The open file, reopened when the path no longer names it (logrotate, deletion, SIGHUP). */
  async #currentFile(): Promise<WritableFile> {
    if (this.#reopen) {
      this.#reopen = false;
      this.#drop();
    } else if (this.#file && !this.#opener.isCurrent(this.path, this.#file)) {
      log.info('"{path}" was moved or removed; reopening it', { path: this.path });
      this.#drop();
    }
    if (this.#file === undefined) {
      this.#file = await this.#opener.open(this.path);
      this.#index?.reset();
      // Another file, maybe with lines of an earlier period: its mtime tells.
      this.#periodEnd = undefined;
    }
    return this.#file;
  }

  #drop(): void {
    try {
      this.#file?.close();
    } catch {
      // Already closed by the failure that brought us here.
    }
    this.#file = undefined;
  }
}

/** When the file was last written, or `undefined` when that cannot be known (no read permission). */
function modifiedAt(file: WritableFile): number | undefined {
  try {
    return file.statSync().mtime?.getTime();
  } catch {
    return undefined;
  }
}

function isGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || err instanceof Deno.errors.BadResource;
}

/** Cuts whole lines into pieces of at most `size` bytes (a longer line stays whole). */
function* splitLines(data: Uint8Array, size: number): Generator<Uint8Array> {
  let start = 0;
  while (data.length - start > size) {
    let end = data.lastIndexOf(10, start + size - 1) + 1;
    if (end <= start) end = data.indexOf(10, start + size) + 1 || data.length;
    yield data.subarray(start, end);
    start = end;
  }
  if (start < data.length) yield data.subarray(start);
}

function countLines(data: Uint8Array): number {
  let lines = 0;
  for (let at = data.indexOf(10); at !== -1; at = data.indexOf(10, at + 1)) lines++;
  return lines;
}
