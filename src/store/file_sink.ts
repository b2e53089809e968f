/**
 * The file sink: batches appended to a file through a {@linkcode FileWriter}, with the queue
 * between producers and the writer bounded in bytes.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { ByteBudget } from "../pipeline/byte_budget.ts";
import type { Sink } from "../pipeline/sink.ts";
import { denoFiles } from "./_deno_file.ts";
import {
  type FileOpener,
  FileWriter,
  type FileWriterStats,
  type FsyncMode,
} from "./file_writer.ts";

/** Configuration of {@linkcode FileSink}. */
export interface FileSinkConfig {
  /** The file lines are appended to. */
  path: string;
  /** When to fsync. Default `interval` (each second). */
  fsync?: FsyncMode;
  /** Bound of the queue in bytes; producers wait when it is full. Default 64 MiB. */
  queueBytes?: number;
  /** Size of the writer's recycled pages, each one locked write. Default 1 MiB. */
  pageBytes?: number;
  /** How files are opened. Default: `Deno.open` (a fault-injecting opener in tests). */
  opener?: FileOpener;
}

/** Appends every batch to one file; storage pushes back on producers instead of dropping. */
export class FileSink implements Sink {
  /** Always `file`. */
  readonly name = "file";
  readonly #budget: ByteBudget;
  readonly #writer: FileWriter;

  private constructor(writer: FileWriter, budget: ByteBudget) {
    this.#writer = writer;
    this.#budget = budget;
  }

  /** Opens the file, so a path that cannot be written fails at startup, and starts writing. */
  static async open(config: FileSinkConfig): Promise<FileSink> {
    const { path, fsync, queueBytes = 64 * 1024 * 1024, pageBytes, opener = denoFiles } = config;
    const budget = new ByteBudget(queueBytes);
    const writer = await FileWriter.open(path, {
      opener,
      fsync,
      pageBytes,
      onWritten: (bytes) => budget.release(bytes),
    });
    return new FileSink(writer, budget);
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#budget.used;
  }

  /** What was written so far, for metrics. */
  get stats(): Readonly<FileWriterStats> {
    return this.#writer.stats;
  }

  /** Copies the batch into the queue; `false` when the queue is full and the producer should wait. */
  write(batch: Batch): boolean {
    this.#writer.enqueue(batch.data, batch.lines);
    return this.#budget.take(batch.data.length);
  }

  /** Whether the queue is at its byte bound. */
  get full(): boolean {
    return this.#budget.full;
  }

  /** Resolves when the queue has room. */
  writable(): Promise<void> {
    return this.#budget.available();
  }

  /** Resolves when everything queued so far is written as the fsync mode asks. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Writes what is queued and closes the file. */
  close(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#writer.close(options);
  }
}
