/**
 * The file sink: batches appended to files named by a path template (one writer per resolved
 * file), with the queue in front of the writers bounded in bytes, rotation, compression and
 * retention.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { join } from "node:path";
import type { Batch, BatchMark } from "../pipeline/batch.ts";
import { ByteBudget } from "../pipeline/byte_budget.ts";
import { Histogram } from "../pipeline/histogram.ts";
import type { Sink, SinkProblem } from "../pipeline/sink.ts";
import { describe } from "../_util.ts";
import { denoFiles } from "./_deno_file.ts";
import {
  type FileOpener,
  FileWriter,
  type FileWriterOptions,
  type FileWriterStats,
  type FsyncMode,
} from "./file_writer.ts";
import { createIndexWriter, type IndexLayout, indexLayout } from "./file_index.ts";
import { Janitor } from "./janitor.ts";
import { encodeJsonLines } from "./json_lines.ts";
import { PathTemplate } from "./path_template.ts";
import type { MarkJournal } from "./stream_marks.ts";

/** How lines are stored: as received, or as JSON objects with their metadata. */
export type FileFormat = "raw" | "json";

/** Configuration of {@linkcode FileSink}. */
export interface FileSinkConfig {
  /**
   * Where lines go: a path, or a template with `{source}`, `{host}` and `{date}` (UTC
   * `YYYY-MM-DD`) that makes one file per value, e.g. `logs/{host}/{source}.log`; with
   * `{level}` or `{fields.NAME}`, lines of one batch may go to different files.
   */
  path: string;
  /** When to fsync. Default `interval` (each second). */
  fsync?: FsyncMode;
  /** Bound of the queue in front of all the writers, in bytes. Default 64 MiB. */
  queueBytes?: number;
  /** Size of each writer's recycled pages, each one locked write. Default 1 MiB. */
  pageBytes?: number;
  /** `raw` (default) or `json`. */
  format?: FileFormat;
  /** Rotate a file before it would grow past this many bytes. Default: never by size. */
  rotateBytes?: number;
  /** Rotate at each multiple of this period, in ms, aligned to UTC. Default: never by time. */
  rotateEveryMs?: number;
  /** Gzip rotated files in the background. Default false. */
  compress?: boolean;
  /** Keep this many rotated files per output. Default: all. */
  keep?: number;
  /** Delete rotated files older than this, in ms. Default: never. */
  maxAgeMs?: number;
  /**
   * Most files open at once. A new file takes the place of the least recently used idle one; while
   * every open file is busy, lines for a new file wait for a place (counted in the queue's bound).
   * Default 1024.
   */
  maxOpenFiles?: number;
  /** A file that received nothing for this long is closed, in ms. Default 60 s. */
  idleMs?: number;
  /** How files are opened. Default: `Deno.open` (a fault-injecting opener in tests). */
  opener?: FileOpener;
  /** The time, for rotation names. Default `Date.now`. */
  clock?: () => number;
  /** Where batches with a stream mark are recorded before they are written. Default: nowhere. */
  marks?: MarkJournal;
  /**
   * The sink this one replaces (a config reload), closed once this one takes the batches: a file
   * both write is written by this one only after that sink let it go, so its lines stay in the
   * order they came and one writer at a time appends to it and rotates it. Default: none.
   */
  previous?: FileSink;
  /**
   * Keep a time index of every file (`file_index.ts`) in `<stateDir>/index`, for searches.
   * Default: no index.
   */
  index?: { stateDir: string };
}

/** What a file sink did so far, for metrics. */
export interface FileSinkStats extends FileWriterStats {
  /** Files open (or being closed) now. */
  openFiles: number;
  /** Files waiting for a place under `maxOpenFiles`. */
  waitingFiles: number;
  /** Files whose writes keep failing now. */
  failingFiles: number;
  /** Bytes queued and not yet written. */
  queuedBytes: number;
  /** Rotated files waiting for compression or retention (the janitor's jobs). */
  pendingJobs: number;
}

/** Lines for a file that waits for a place under the open-file cap, in arrival order. */
class Held {
  readonly chunks: { data: Uint8Array; lines: number; mark?: BatchMark; at: number }[] = [];
  /** Resolves with the file's writer once it has one. */
  readonly started: Promise<FileWriter>;
  start!: (writer: FileWriter) => void;

  constructor() {
    this.started = new Promise((resolve) => this.start = resolve);
  }
}

const log = getLogger(["logboom", "store"]);
/** Ingestion counts as busy (for paced compression) this long after a batch. */
const BUSY_MS = 250;
/**
 * Share of the queue's bound a failing file may hold before `write` asks its producer to wait
 * (`writable(batch)` then waits for that file alone); other files keep the rest.
 */
const FAILING_SHARE = 0.25;

/**
 * Appends every batch to its file; storage pushes back on producers instead of dropping. Every
 * file has its own writer, and no file holds up another: acknowledgements (`flush(batches)`)
 * wait only for the files their batches went to, and a file that keeps failing is reported in
 * {@linkcode FileSink.problems} while its lines stay queued.
 */
export class FileSink implements Sink {
  /** Always `file`. */
  readonly name = "file";
  readonly #template: PathTemplate;
  /** Whether the template uses a line's level or fields, so a batch may go to several files. */
  readonly #perLine: boolean;
  /**
   * With {@linkcode FileSink.#perLine}, the files each batch written went to, for `writable`
   * and `flush` (a batch's columns are only lent for `write`).
   */
  readonly #pathsOf = new WeakMap<Batch, readonly string[]>();
  readonly #budget: ByteBudget;
  readonly #json: boolean;
  readonly #writerOptions: FileWriterOptions;
  /** Writers with a place under the cap, least recently used first. */
  readonly #writers = new Map<string, FileWriter>();
  /** Writers being closed: their files count against the cap until they are. */
  readonly #closing = new Map<FileWriter, Promise<void>>();
  /** Files waiting for a place, first come first served. */
  readonly #held = new Map<string, Held>();
  /** Producers waiting for a failing file to take lines again. */
  readonly #roomWaiters = new Map<FileWriter, (() => void)[]>();
  readonly #maxOpenFiles: number;
  readonly #failingShare: number;
  readonly #idleMs: number;
  readonly #janitor: Janitor;
  readonly #index: IndexLayout | undefined;
  /** Shared with the sink this one replaces, so counters go on across a reload. */
  readonly #stats: FileWriterStats;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #lastWrite = 0;
  /** Set by `close`: held files get a writer that closes at once; errors are collected. */
  #closed: { signal?: AbortSignal; errors: unknown[] } | undefined;
  #closedAll: Promise<void> | undefined;
  /** The sink this one replaces, until it has closed. */
  #previous: FileSink | undefined;
  /** Whether `close` is done: every file is let go. */
  #done = false;
  /** Sinks waiting for this one to let a file go, by path (see `released`). */
  readonly #releases = new Map<string, PromiseWithResolvers<void>>();

  private constructor(config: FileSinkConfig, template: PathTemplate) {
    const { queueBytes = 64 * 1024 * 1024, opener = denoFiles, rotateBytes, rotateEveryMs } =
      config;
    this.#template = template;
    this.#perLine = template.perLine;
    this.#budget = new ByteBudget(queueBytes);
    this.#failingShare = Math.max(1, Math.floor(queueBytes * FAILING_SHARE));
    this.#json = config.format === "json";
    this.#maxOpenFiles = config.maxOpenFiles ?? 1024;
    if (!Number.isSafeInteger(this.#maxOpenFiles) || this.#maxOpenFiles < 1) {
      throw new RangeError(`Open files must be a positive integer, got ${this.#maxOpenFiles}`);
    }
    this.#idleMs = config.idleMs ?? 60_000;
    this.#previous = config.previous;
    this.#stats = config.previous === undefined
      ? { linesWritten: 0, bytesWritten: 0, errors: 0, writeSeconds: new Histogram() }
      : config.previous.#stats;
    this.#index = config.index && indexLayout(config.path, config.index.stateDir);
    this.#janitor = new Janitor({
      index: this.#index,
      compress: config.compress,
      keep: config.keep,
      maxAgeMs: config.maxAgeMs,
      busy: () => Date.now() - this.#lastWrite < BUSY_MS,
    });
    const rotates = rotateBytes !== undefined || rotateEveryMs !== undefined;
    this.#writerOptions = {
      opener,
      fsync: config.fsync,
      // A page is written whole, so it must fit a rotated file: a file then never outgrows
      // -rotateSize (but for one batch larger than that, as lines are never split).
      pageBytes: Math.min(config.pageBytes ?? 1024 * 1024, rotateBytes ?? Infinity),
      stats: this.#stats,
      clock: config.clock,
      marks: config.marks,
      rotation: rotates
        ? {
          maxBytes: rotateBytes,
          everyMs: rotateEveryMs,
          onRotated: (rotated, live) => this.#janitor.rotated(live, rotated),
        }
        : undefined,
    };
    this.#sweeper = setInterval(() => this.#closeIdle(), Math.max(10, this.#idleMs / 2));
  }

  /**
   * Checks the destination, so a path that cannot be written fails at startup: a plain path is
   * opened (and its rotated siblings tidied), a template's fixed folder is created.
   */
  static async open(config: FileSinkConfig): Promise<FileSink> {
    const template = new PathTemplate(config.path);
    const opener = config.opener ?? denoFiles;
    if (template.isPlain) {
      const sink = new FileSink(config, template);
      try {
        const writer = await FileWriter.open(config.path, sink.#optionsFor(config.path));
        sink.#writers.set(config.path, writer);
      } catch (err) {
        clearInterval(sink.#sweeper);
        throw err;
      }
      sink.#janitor.sweep(config.path);
      return sink;
    }
    // Opening (and at once removing) a probe in the template's fixed folder proves it writable.
    const fixed = config.path.slice(0, config.path.indexOf("{"));
    const probe = join(fixed.slice(0, fixed.lastIndexOf("/") + 1) || ".", ".logboom-probe");
    (await opener.open(probe)).close();
    await Deno.remove(probe).catch(() => {});
    return new FileSink(config, template);
  }

  /** Whether the queue is at its byte bound. */
  get full(): boolean {
    return this.#budget.full;
  }

  /** What was written so far, for metrics. */
  get stats(): Readonly<FileSinkStats> {
    // Counters are shared with the sink this one replaces; its gauges count until it closed.
    const previous = this.#replaced();
    return {
      ...this.#stats,
      openFiles: this.#writers.size + this.#closing.size + (previous?.stats.openFiles ?? 0),
      waitingFiles: this.#held.size + (previous?.stats.waitingFiles ?? 0),
      failingFiles: this.problems().length + (previous?.stats.failingFiles ?? 0),
      queuedBytes: this.#budget.used + (previous?.stats.queuedBytes ?? 0),
      pendingJobs: this.#janitor.pending + (previous?.stats.pendingJobs ?? 0),
    };
  }

  /** The sink this one replaces while it has not closed (forgotten once it has). */
  #replaced(): FileSink | undefined {
    if (this.#previous !== undefined && this.#previous.#done) this.#previous = undefined;
    return this.#previous;
  }

  /** The files that cannot be written now, with the last error: what `/readyz` reports. */
  problems(): SinkProblem[] {
    const found: SinkProblem[] = [];
    for (const writer of [...this.#writers.values(), ...this.#closing.keys()]) {
      const failure = writer.failure;
      if (failure !== undefined) {
        found.push({ path: writer.path, error: failure.error, since: failure.since });
      }
    }
    return found;
  }

  /**
   * Copies the batch into its file's queue. `false` asks the producer to wait: the queue is at
   * its bound, or the batch's file keeps failing and holds its share of the bound already. A
   * file that has to wait for a place under the open-file cap holds the lines meanwhile. With
   * a template that uses `{level}` or fields, a batch whose lines name several files is cut
   * into runs of consecutive lines for one file each (see `#writeLines`).
   */
  write(batch: Batch): boolean {
    if (this.#closed) throw new Error("The file sink is closed");
    if (this.#perLine) return this.#writeLines(batch);
    const data = this.#json ? encodeJsonLines(batch) : batch.data;
    this.#lastWrite = batch.receivedAt;
    return this.#enqueue(
      this.#template.forBatch(batch),
      data,
      batch.lines,
      batch.mark,
      batch.receivedAt,
    );
  }

  /**
   * Writes a batch whose lines may name different files. When they all name one, it goes
   * through whole, as any batch does. Else each run of consecutive lines for one file is queued
   * to it as a view of the batch's bytes (the writer copies it into its pages, as it copies any
   * batch: no other copy is made), so every file holds its lines in the order they came. A
   * marked run says how many lines of the part come before it (`skipped`), so the stream marks
   * journal counts what is stored as it does for a part written in pieces.
   */
  #writeLines(batch: Batch): boolean {
    const paths = this.#template.linePaths(batch);
    const data = this.#json ? encodeJsonLines(batch) : batch.data;
    this.#lastWrite = batch.receivedAt;
    if (typeof paths === "string") {
      this.#pathsOf.set(batch, [paths]);
      return this.#enqueue(paths, data, batch.lines, batch.mark, batch.receivedAt);
    }
    const { mark } = batch;
    const used = new Set<string>();
    let room = true;
    let first = 0;
    let start = 0;
    let at = 0;
    for (let i = 0; i < batch.lines; i++) {
      const nl = data.indexOf(10, at);
      at = nl === -1 ? data.length : nl + 1;
      const path = paths[i];
      if (i + 1 < batch.lines && paths[i + 1] === path) continue;
      const runMark = mark === undefined || first === 0
        ? mark
        : { ...mark, skipped: mark.skipped + first };
      const run = data.subarray(start, at);
      room = this.#enqueue(path, run, i + 1 - first, runMark, batch.receivedAt) && room;
      used.add(path);
      first = i + 1;
      start = at;
    }
    this.#pathsOf.set(batch, [...used]);
    return room;
  }

  /** Queues whole lines for the file at `path`; see {@linkcode FileSink.write}. */
  #enqueue(
    path: string,
    data: Uint8Array,
    lines: number,
    mark: BatchMark | undefined,
    at: number,
  ): boolean {
    const room = this.#budget.take(data.length);
    let writer = this.#writers.get(path);
    if (writer !== undefined) {
      if (this.#writers.size > 1) {
        // Map order is the LRU order: the least recently used writer comes first.
        this.#writers.delete(path);
        this.#writers.set(path, writer);
      }
      writer.enqueue(data, lines, mark, at);
      return room && !this.#overShare(writer);
    }
    const held = this.#held.get(path);
    if (held !== undefined) {
      // `batch.data` is only lent for this call; JSON lines are this sink's own already.
      held.chunks.push({ data: this.#json ? data : data.slice(), lines, mark, at });
      return room;
    }
    if (this.#writers.size + this.#closing.size < this.#maxOpenFiles) {
      writer = this.#start(path);
      writer.enqueue(data, lines, mark, at);
      return room;
    }
    const waiting = new Held();
    waiting.chunks.push({ data: this.#json ? data : data.slice(), lines, mark, at });
    this.#held.set(path, waiting);
    this.#makeRoom();
    return room;
  }

  /**
   * Resolves when the queue has room; given a batch that `write` refused, once its file takes
   * lines again too.
   */
  async writable(batch?: Batch): Promise<void> {
    await this.#budget.available();
    if (batch === undefined) return;
    const paths = this.#perLine ? this.#pathsOf.get(batch) ?? [] : [this.#template.forBatch(batch)];
    for (const path of paths) {
      const writer = this.#writers.get(path);
      while (writer !== undefined && this.#overShare(writer) && !this.#closed) {
        await new Promise<void>((resolve) => {
          const waiters = this.#roomWaiters.get(writer) ?? [];
          waiters.push(resolve);
          this.#roomWaiters.set(writer, waiters);
        });
      }
    }
  }

  /**
   * Resolves when what was queued before the call is written as the fsync mode asks: everything,
   * or given `batches`, only what is queued for their files, so a file that cannot be written
   * holds up the acknowledgements of its own lines and no others.
   */
  async flush(batches?: readonly Batch[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const add = (path: string) => {
      const writer = this.#writers.get(path);
      if (writer !== undefined) waits.push(writer.flush());
      const held = this.#held.get(path);
      if (held !== undefined) waits.push(held.started.then((w) => w.flush()));
    };
    // A batch this sink did not see (or whose files it forgot) waits for every file.
    const every = batches === undefined ||
      (this.#perLine && batches.some((batch) => !this.#pathsOf.has(batch)));
    if (every) {
      for (const path of this.#writers.keys()) add(path);
      for (const path of this.#held.keys()) add(path);
    } else {
      const paths = new Set<string>();
      for (const batch of batches!) {
        if (!this.#perLine) paths.add(this.#template.forBatch(batch));
        else for (const path of this.#pathsOf.get(batch)!) paths.add(path);
      }
      for (const path of paths) add(path);
    }
    await Promise.all(waits);
  }

  /** Closes every file before its next write and opens the path anew (SIGHUP, logrotate). */
  reopen(): void {
    for (const writer of this.#writers.values()) writer.reopen();
  }

  /** Resolves when background compression and retention are done; for tests. */
  tidied(): Promise<void> {
    return this.#janitor.idle();
  }

  /** Writes what is queued and closes every file; stops compression (its source is kept). */
  close(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#closedAll ??= this.#close(options);
  }

  async #close(options: { signal?: AbortSignal }): Promise<void> {
    clearInterval(this.#sweeper);
    const closed = { signal: options.signal, errors: [] as unknown[] };
    this.#closed = closed;
    for (const waiters of this.#roomWaiters.values()) for (const wake of waiters) wake();
    this.#roomWaiters.clear();
    for (const [path, writer] of this.#writers) this.#retire(path, writer);
    // Files already let go (idle ones) are free for the sink that replaces this one.
    for (const path of [...this.#releases.keys()]) this.#letGo(path);
    // Held files get a writer (closed at once) as places free up.
    while (this.#closing.size > 0) await Promise.allSettled(this.#closing.values());
    await this.#janitor.close();
    this.#done = true;
    if (closed.errors.length > 0) throw closed.errors[0];
  }

  /**
   * Resolves once this sink is closed and holds `path` no more: its last bytes for the file are
   * written and the file closed. What a sink that replaces this one waits for before it writes
   * the same file.
   */
  released(path: string): Promise<void> {
    if (this.#closed !== undefined && !this.#holds(path)) return Promise.resolve();
    let release = this.#releases.get(path);
    if (release === undefined) this.#releases.set(path, release = Promise.withResolvers());
    return release.promise;
  }

  /** Whether a writer of this sink (open, closing or to come for held lines) has `path`. */
  #holds(path: string): boolean {
    if (this.#writers.has(path) || this.#held.has(path)) return true;
    for (const writer of this.#closing.keys()) if (writer.path === path) return true;
    return false;
  }

  /** Tells the sinks waiting for `path` that it is let go, once closed and it is. */
  #letGo(path: string): void {
    const release = this.#releases.get(path);
    if (release === undefined || this.#closed === undefined || this.#holds(path)) return;
    this.#releases.delete(path);
    release.resolve();
  }

  #optionsFor(path: string): FileWriterOptions {
    const options: FileWriterOptions = {
      ...this.#writerOptions,
      after: this.#replaced()?.released(path),
      index: this.#index && createIndexWriter(this.#index, path),
      onWritten: (bytes) => {
        this.#budget.release(bytes);
        const writer = this.#writers.get(path);
        const waiters = writer && this.#roomWaiters.get(writer);
        if (waiters !== undefined && !this.#overShare(writer!)) {
          this.#roomWaiters.delete(writer!);
          for (const wake of waiters) wake();
        }
      },
      onIdle: () => {
        if (this.#held.size > 0) this.#makeRoom();
      },
    };
    return options;
  }

  #start(path: string): FileWriter {
    const writer = FileWriter.create(path, this.#optionsFor(path));
    this.#writers.set(path, writer);
    return writer;
  }

  /**
   * Whether lines from `origin` go to a file that keeps failing and holds its share already.
   * Always `false` with a template that uses `{level}` or fields: the files are known only from
   * the lines, and `write` then answers for them.
   */
  blocked(origin: Pick<Batch, "meta" | "receivedAt">): boolean {
    if (this.#perLine) return false;
    const writer = this.#writers.get(this.#template.forBatch(origin));
    return writer !== undefined && this.#overShare(writer);
  }

  #overShare(writer: FileWriter): boolean {
    return writer.failure !== undefined && writer.queuedBytes >= this.#failingShare;
  }

  /** Closes the least recently used idle writers, one for each held file not yet provided for. */
  #makeRoom(): void {
    let wanted = this.#held.size - this.#closing.size;
    for (const [path, writer] of this.#writers) {
      if (wanted <= 0) return;
      if (writer.idle) {
        this.#retire(path, writer);
        wanted--;
      }
    }
    if (wanted > 0) {
      log.debug("{waiting} files wait for one of the {open} open ones, all busy", {
        waiting: this.#held.size,
        open: this.#writers.size,
      });
    }
  }

  /** Gives the places freed under the cap to held files, in the order they came. */
  #admit(): void {
    for (const [path, held] of this.#held) {
      if (this.#writers.size + this.#closing.size >= this.#maxOpenFiles) return;
      this.#held.delete(path);
      const writer = this.#start(path);
      for (const { data, lines, mark, at } of held.chunks) writer.enqueue(data, lines, mark, at);
      held.start(writer);
      if (this.#closed) this.#retire(path, writer);
    }
  }

  #closeIdle(): void {
    const cutoff = Date.now() - this.#idleMs;
    for (const [path, writer] of this.#writers) {
      if (writer.idle && writer.lastActive < cutoff) this.#retire(path, writer);
    }
  }

  #retire(path: string, writer: FileWriter): void {
    this.#writers.delete(path);
    const closed = this.#closed;
    const closing = writer.close({ signal: closed?.signal }).catch((err) => {
      if (closed) closed.errors.push(err);
      else log.error('Cannot close "{path}": {error}', { path, error: describe(err) });
    }).finally(() => {
      this.#closing.delete(writer);
      this.#admit();
      this.#letGo(path);
    });
    this.#closing.set(writer, closing);
  }
}
