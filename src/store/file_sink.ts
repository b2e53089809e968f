/**
 * The file sink: batches appended to files named by a path template (one writer per resolved
 * file), with the queue in front of the writers bounded in bytes, rotation, compression and
 * retention.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { join } from "node:path";
import type { Batch } from "../pipeline/batch.ts";
import { ByteBudget } from "../pipeline/byte_budget.ts";
import { Histogram } from "../pipeline/histogram.ts";
import type { Sink } from "../pipeline/sink.ts";
import { denoFiles } from "./_deno_file.ts";
import {
  type FileOpener,
  FileWriter,
  type FileWriterOptions,
  type FileWriterStats,
  type FsyncMode,
} from "./file_writer.ts";
import { Janitor } from "./janitor.ts";
import { encodeJsonLines } from "./json_lines.ts";
import { PathTemplate } from "./path_template.ts";

/** How lines are stored: as received, or as JSON objects with their metadata. */
export type FileFormat = "raw" | "json";

/** Configuration of {@linkcode FileSink}. */
export interface FileSinkConfig {
  /**
   * Where lines go: a path, or a template with `{source}`, `{host}` and `{date}` (UTC
   * `YYYY-MM-DD`) that makes one file per value, e.g. `logs/{host}/{source}.log`.
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
  /** Most files open at once; the least recently used idle ones are closed first. Default 1024. */
  maxOpenFiles?: number;
  /** A file that received nothing for this long is closed, in ms. Default 60 s. */
  idleMs?: number;
  /** How files are opened. Default: `Deno.open` (a fault-injecting opener in tests). */
  opener?: FileOpener;
}

/** What a file sink did so far, for metrics. */
export interface FileSinkStats extends FileWriterStats {
  /** Files open (writers alive) now. */
  openFiles: number;
  /** Bytes queued and not yet written. */
  queuedBytes: number;
}

const log = getLogger(["logboom", "store"]);
/** Ingestion counts as busy (for paced compression) this long after a batch. */
const BUSY_MS = 250;

/** Appends every batch to its file; storage pushes back on producers instead of dropping. */
export class FileSink implements Sink {
  /** Always `file`. */
  readonly name = "file";
  readonly #template: PathTemplate;
  readonly #budget: ByteBudget;
  readonly #json: boolean;
  readonly #writerOptions: FileWriterOptions;
  readonly #writers = new Map<string, FileWriter>();
  readonly #closing = new Set<Promise<void>>();
  readonly #maxOpenFiles: number;
  readonly #idleMs: number;
  readonly #janitor: Janitor;
  readonly #stats: FileWriterStats = {
    linesWritten: 0,
    bytesWritten: 0,
    errors: 0,
    writeSeconds: new Histogram(),
  };
  readonly #sweeper: ReturnType<typeof setInterval>;
  #lastWrite = 0;

  private constructor(config: FileSinkConfig, template: PathTemplate) {
    const { queueBytes = 64 * 1024 * 1024, opener = denoFiles, rotateBytes, rotateEveryMs } =
      config;
    this.#template = template;
    this.#budget = new ByteBudget(queueBytes);
    this.#json = config.format === "json";
    this.#maxOpenFiles = config.maxOpenFiles ?? 1024;
    this.#idleMs = config.idleMs ?? 60_000;
    this.#janitor = new Janitor({
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
      onWritten: (bytes) => this.#budget.release(bytes),
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
        sink.#writers.set(config.path, await FileWriter.open(config.path, sink.#writerOptions));
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
    return { ...this.#stats, openFiles: this.#writers.size, queuedBytes: this.#budget.used };
  }

  /** Copies the batch into its file's queue; `false` when the queue is full and the producer should wait. */
  write(batch: Batch): boolean {
    const { source, host } = batch.meta;
    const path = this.#template.render({ source, host, date: batch.receivedAt });
    let writer = this.#writers.get(path);
    if (writer === undefined) {
      writer = FileWriter.create(path, this.#writerOptions);
      this.#writers.set(path, writer);
      if (this.#writers.size > this.#maxOpenFiles) this.#evict();
    } else if (this.#writers.size > 1) {
      // Map order is the LRU order: the least recently used writer comes first.
      this.#writers.delete(path);
      this.#writers.set(path, writer);
    }
    const data = this.#json ? encodeJsonLines(batch) : batch.data;
    writer.enqueue(data, batch.lines);
    this.#lastWrite = batch.receivedAt;
    return this.#budget.take(data.length);
  }

  /** Resolves when the queue has room. */
  writable(): Promise<void> {
    return this.#budget.available();
  }

  /** Resolves when everything queued so far is written as the fsync mode asks. */
  async flush(): Promise<void> {
    await Promise.all([...this.#writers.values()].map((writer) => writer.flush()));
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
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    clearInterval(this.#sweeper);
    const writers = [...this.#writers.values()];
    this.#writers.clear();
    const results = await Promise.allSettled([
      ...writers.map((writer) => writer.close(options)),
      ...this.#closing,
    ]);
    await this.#janitor.close();
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Closes the least recently used idle writers until the cap holds. */
  #evict(): void {
    for (const [path, writer] of this.#writers) {
      if (this.#writers.size <= this.#maxOpenFiles) return;
      if (writer.idle) this.#retire(path, writer);
    }
    log.debug(`${this.#writers.size} files open, above the cap: every one of them is busy`);
  }

  #closeIdle(): void {
    const cutoff = Date.now() - this.#idleMs;
    for (const [path, writer] of this.#writers) {
      if (writer.idle && writer.lastActive < cutoff) this.#retire(path, writer);
    }
  }

  #retire(path: string, writer: FileWriter): void {
    this.#writers.delete(path);
    const closing = writer.close().catch((err) => {
      log.error(`Cannot close "${path}": ${err instanceof Error ? err.message : String(err)}`);
    });
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }
}
