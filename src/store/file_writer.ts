/**
 * One writer per output file: group commit under an advisory lock, retries that never lose a
 * queued byte, and reopening when the path was moved away.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { Histogram } from "../pipeline/histogram.ts";

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
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const MAX_RETRY_DELAY_MS = 5000;
/** Free pages kept for reuse; beyond these, written pages are left to the garbage collector. */
const SPARE_PAGES = 4;
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
  readonly #retryDelayMs: number;
  readonly #onWritten: (bytes: number) => void;
  #file: WritableFile | undefined;
  #pages: Page[] = [];
  #spare: Uint8Array[] = [];
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
  readonly #stats: FileWriterStats = {
    linesWritten: 0,
    bytesWritten: 0,
    errors: 0,
    writeSeconds: new Histogram(),
  };

  private constructor(path: string, file: WritableFile, options: FileWriterOptions) {
    const {
      opener,
      fsync = "interval",
      fsyncIntervalMs = 1000,
      pageBytes = 1024 * 1024,
      retryDelayMs = 100,
      onWritten = () => {},
    } = options;
    this.path = path;
    this.#file = file;
    this.#opener = opener;
    this.#fsync = fsync;
    this.#fsyncIntervalMs = fsyncIntervalMs;
    this.#pageBytes = pageBytes;
    this.#retryDelayMs = retryDelayMs;
    this.#onWritten = onWritten;
    this.#loop = this.#run();
  }

  /** Opens `path` (so startup errors surface at once) and starts the writer. */
  static async open(path: string, options: FileWriterOptions): Promise<FileWriter> {
    const file = await options.opener.open(path);
    return new FileWriter(path, file, options);
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
   * `ByteBudget`); this never drops.
   */
  enqueue(data: Uint8Array, lines = 0): void {
    if (this.#closing) throw new Error(`Writer for "${this.path}" is closed`);
    let tail = this.#pages.at(-1);
    if (tail === undefined || tail === this.#writing || tail.buf.length - tail.len < data.length) {
      const buf = data.length <= this.#pageBytes
        ? this.#spare.pop() ?? new Uint8Array(this.#pageBytes)
        : new Uint8Array(data.length);
      tail = { buf, len: 0, lines: 0, seq: 0 };
      this.#pages.push(tail);
    }
    tail.buf.set(data, tail.len);
    tail.len += data.length;
    tail.lines += lines;
    tail.seq = ++this.#enqueuedSeq;
    this.#queuedBytes += data.length;
    this.#notify();
  }

  /** Resolves once everything queued before the call is written (and fsynced under `batch`). */
  flush(): Promise<void> {
    if (this.#writtenSeq === this.#enqueuedSeq) return Promise.resolve();
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
      while (this.#queuedBytes > 0 || !this.#closing) {
        if (this.#queuedBytes === 0) {
          await this.#idle();
          continue;
        }
        const page = this.#pages[0];
        this.#writing = page;
        await this.#writeWithRetry(page.buf.subarray(0, page.len));
        this.#pages.shift();
        this.#writing = undefined;
        this.#queuedBytes -= page.len;
        this.#stats.linesWritten += page.lines;
        this.#stats.bytesWritten += page.len;
        this.#onWritten(page.len);
        if (page.buf.length === this.#pageBytes && this.#spare.length < SPARE_PAGES) {
          this.#spare.push(page.buf);
        }
        if (this.#fsync === "batch") await this.#syncWithRetry();
        else if (this.#fsync === "interval" && !this.#dirty) {
          this.#dirty = true;
          this.#syncDue = Date.now() + this.#fsyncIntervalMs;
        }
        // Acknowledged only now: under "batch" a flush() must not resolve before the fsync.
        this.#writtenSeq = page.seq;
        this.#settle();
      }
      if (this.#dirty) await this.#syncWithRetry();
    } catch (err) {
      const lost = new UnwrittenDataError(this.path, this.#queuedBytes, { cause: err });
      for (const waiter of this.#waiters) waiter.reject(lost);
      this.#waiters = [];
      if (this.#queuedBytes > 0) throw lost;
    } finally {
      this.#file?.close();
      this.#file = undefined;
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

  /** Writes `data` whole under the lock, retrying with backoff until it is written. */
  async #writeWithRetry(data: Uint8Array): Promise<void> {
    let offset = 0;
    let failures = 0;
    while (offset < data.length) {
      let locked = false;
      try {
        const file = await this.#currentFile();
        const started = performance.now();
        await file.lock(true);
        locked = true;
        while (offset < data.length) offset += await file.write(data.subarray(offset));
        locked = false;
        await file.unlock();
        this.#stats.writeSeconds.observe((performance.now() - started) / 1000);
      } catch (err) {
        if (locked) await this.#file?.unlock().catch(() => {});
        this.#stats.errors++;
        failures++;
        const delay = this.#backoff(failures);
        const message = `Cannot write to "${this.path}": ${describe(err)}; ` +
          `retrying in ${delay} ms with ${this.#queuedBytes} bytes queued`;
        if (failures === 1) log.error(message);
        else log.debug(message);
        if (isGone(err)) this.#drop();
        await this.#sleep(delay);
        continue;
      }
      if (failures > 0) log.info(`Writing to "${this.path}" again after ${failures} failures`);
    }
  }

  async #syncWithRetry(): Promise<void> {
    this.#dirty = false;
    for (let failures = 1;; failures++) {
      try {
        await (await this.#currentFile()).sync();
        return;
      } catch (err) {
        this.#stats.errors++;
        const delay = this.#backoff(failures);
        if (failures === 1) log.error(`Cannot fsync "${this.path}": ${describe(err)}`);
        await this.#sleep(delay);
      }
    }
  }

  /** The open file, reopened when the path no longer names it (logrotate, deletion). */
  async #currentFile(): Promise<WritableFile> {
    if (this.#file && !this.#opener.isCurrent(this.path, this.#file)) {
      log.info(`"${this.path}" was moved or removed; reopening it`);
      this.#drop();
    }
    this.#file ??= await this.#opener.open(this.path);
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

  #backoff(failures: number): number {
    return Math.min(MAX_RETRY_DELAY_MS, this.#retryDelayMs * 2 ** (failures - 1));
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function isGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || err instanceof Deno.errors.BadResource;
}
