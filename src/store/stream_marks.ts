/**
 * Durable high-water marks of ingest streams: for each `X-Stream-Id`, the stream offset up to which
 * batches are stored. HTTP ingest refuses a batch at or below its stream's mark, so a client that
 * retries (after a timeout, or after the server restarted) never stores a line twice.
 *
 * The marks live in a journal of JSON lines next to the data (`{"s":"<id>","o":<offset>}`), one
 * record per acknowledged batch, written in groups (one append, and one fsync when asked, for every
 * batch acknowledged meanwhile). It is rewritten whole (temporary file, fsync, rename) at startup
 * and whenever old records outnumber the live ones, so it never grows without bound.
 *
 * A mark is recorded only after its batch's lines were stored, so a crash between the two can
 * repeat a batch (the client resends it, and nothing says it was stored) but never lose one.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { canRead } from "../_util.ts";

/** The journal's file name, inside the log folder. */
export const STREAM_MARKS_FILE = ".logboom-streams.jsonl";

/** Options of {@linkcode StreamMarks.open}. */
export interface StreamMarksOptions {
  /** fsync the journal before {@linkcode StreamMarks.advance} resolves (`-fsync batch`). Default false. */
  sync?: boolean;
  /**
   * Most streams remembered. Beyond it the stream advanced least recently is forgotten (a very
   * late resend of its last batch would be stored again). Default 100,000.
   */
  maxStreams?: number;
  /** The journal is rewritten once it holds this many records more than there are streams. Default 10,000. */
  compactAfter?: number;
}

/** Why the marks of a previous run were not reloaded; `undefined` when they were. */
export type NotReloadedReason = "no read permission" | undefined;

const encoder = new TextEncoder();

/**
 * The path of the marks journal for a `-logFile` value: in the folder of the log file, or for a
 * template, in the deepest folder the template spells out before its first placeholder.
 *
 * @example
 * ```ts
 * streamMarksPath("logs/app.log"); // "logs/.logboom-streams.jsonl"
 * streamMarksPath("logs/{source}/{date}.log"); // "logs/.logboom-streams.jsonl"
 * ```
 */
export function streamMarksPath(logFile: string): string {
  const brace = logFile.indexOf("{");
  const fixed = brace === -1 ? logFile : logFile.slice(0, brace);
  const folder = brace !== -1 && fixed.endsWith("/") ? fixed.slice(0, -1) : dirname(fixed);
  return join(folder === "" ? "." : folder, STREAM_MARKS_FILE);
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Stream high-water marks, in memory and (when opened on a path) in a journal file.
 *
 * @example
 * ```ts
 * const marks = await StreamMarks.open("logs/.logboom-streams.jsonl", { sync: true });
 * if (offset <= (marks.get(streamId) ?? -1)) return duplicate();
 * store(batch);
 * await marks.advance(streamId, offset); // durable when it resolves
 * ```
 */
export class StreamMarks {
  /** The journal, or `undefined` when marks are kept in memory only. */
  readonly path: string | undefined;
  /** Why the previous run's marks were not reloaded, or `undefined` when they were (or no file). */
  readonly notReloaded: NotReloadedReason;
  readonly #sync: boolean;
  readonly #maxStreams: number;
  readonly #compactAfter: number;
  readonly #marks: Map<string, number>;
  #file: Deno.FsFile | undefined;
  /** Records in the journal file (live and superseded). */
  #records = 0;
  #pending = new Map<string, number>();
  #waiters: Waiter[] = [];
  #writing: Promise<void> | undefined;
  #closed = false;

  private constructor(
    path: string | undefined,
    marks: Map<string, number>,
    options: StreamMarksOptions & { notReloaded?: NotReloadedReason },
  ) {
    const { sync = false, maxStreams = 100_000, compactAfter = 10_000 } = options;
    if (!Number.isSafeInteger(maxStreams) || maxStreams < 1) {
      throw new RangeError(`Stream limit must be a positive integer, got "${maxStreams}"`);
    }
    if (!Number.isSafeInteger(compactAfter) || compactAfter < 1) {
      throw new RangeError(
        `Compaction threshold must be a positive integer, got "${compactAfter}"`,
      );
    }
    this.path = path;
    this.notReloaded = options.notReloaded;
    this.#sync = sync;
    this.#maxStreams = maxStreams;
    this.#compactAfter = compactAfter;
    this.#marks = marks;
  }

  /** Marks kept in memory only: they last as long as the process. */
  static memory(options: StreamMarksOptions = {}): StreamMarks {
    return new StreamMarks(undefined, new Map(), options);
  }

  /**
   * Opens the journal at `path`: reloads the marks it holds, rewrites it compactly, and keeps it
   * open for appending. Reloading needs read permission on `path`; without it (the design card's
   * `--allow-net --allow-write`), the marks are kept in memory only and
   * {@linkcode StreamMarks.notReloaded} says why: the file is left untouched, so a later start
   * with read permission still finds the marks it holds.
   *
   * @throws the file system's error when the journal cannot be read or written.
   */
  static async open(path: string, options: StreamMarksOptions = {}): Promise<StreamMarks> {
    if (!canRead(path)) {
      return new StreamMarks(undefined, new Map(), {
        ...options,
        notReloaded: "no read permission",
      });
    }
    const marks = new Map<string, number>();
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    for (const line of text.split("\n")) {
      const record = parseRecord(line);
      // A torn last record (a crash mid-append) is skipped: its batch is then stored again if
      // resent, which is the safe side.
      if (record === undefined) continue;
      const previous = marks.get(record.s);
      if (previous === undefined || record.o > previous) {
        marks.delete(record.s);
        marks.set(record.s, record.o);
      }
    }
    const self = new StreamMarks(path, marks, options);
    self.#evict();
    await self.#rewrite();
    return self;
  }

  /** How many streams have a mark. */
  get size(): number {
    return this.#marks.size;
  }

  /** The stream's high-water mark, or `undefined` when it has none. */
  get(streamId: string): number | undefined {
    return this.#marks.get(streamId);
  }

  /**
   * Raises the stream's mark to `offset` (a lower or equal offset changes nothing). Call only once
   * the batch ending at `offset` is stored. Resolves once the mark is in the journal (and fsynced
   * under `sync`); the mark applies in memory at once.
   */
  advance(streamId: string, offset: number): Promise<void> {
    if (typeof streamId !== "string" || streamId === "") {
      throw new TypeError(`Stream id must be a non-empty string, got "${String(streamId)}"`);
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Stream offset must be a non-negative integer, got "${offset}"`);
    }
    if (this.#closed) throw new Error("Stream marks are closed");
    const previous = this.#marks.get(streamId);
    if (previous !== undefined && offset <= previous) return Promise.resolve();
    // Re-inserting keeps the map in order of last advance, so eviction forgets the idlest stream.
    this.#marks.delete(streamId);
    this.#marks.set(streamId, offset);
    this.#evict();
    if (this.path === undefined) return Promise.resolve();
    this.#pending.set(streamId, offset);
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#writing ??= this.#drain();
    return done;
  }

  /** Writes what is pending and closes the journal. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing;
    this.#file?.close();
    this.#file = undefined;
  }

  #evict(): void {
    for (const id of this.#marks.keys()) {
      if (this.#marks.size <= this.#maxStreams) break;
      this.#marks.delete(id);
    }
  }

  /** Appends every pending mark in one write, for all the batches acknowledged meanwhile. */
  async #drain(): Promise<void> {
    while (this.#pending.size > 0) {
      const pending = this.#pending;
      const waiters = this.#waiters;
      this.#pending = new Map();
      this.#waiters = [];
      try {
        let text = "";
        for (const [s, o] of pending) text += JSON.stringify({ s, o }) + "\n";
        await writeAll(this.#file!, encoder.encode(text));
        if (this.#sync) await this.#file!.syncData();
        this.#records += pending.size;
        if (this.#records > this.#marks.size + this.#compactAfter) await this.#rewrite();
        for (const waiter of waiters) waiter.resolve();
      } catch (err) {
        for (const waiter of waiters) waiter.reject(err);
      }
    }
    this.#writing = undefined;
  }

  /** Replaces the journal with one record per stream: written aside, fsynced, renamed over. */
  async #rewrite(): Promise<void> {
    const path = this.path!;
    const folder = dirname(path);
    await Deno.mkdir(folder, { recursive: true });
    const temporary = join(folder, `${basename(path)}.tmp`);
    let text = "";
    for (const [s, o] of this.#marks) text += JSON.stringify({ s, o }) + "\n";
    {
      using file = await Deno.open(temporary, { write: true, create: true, truncate: true });
      await writeAll(file, encoder.encode(text));
      await file.syncData();
    }
    await Deno.rename(temporary, path);
    await syncFolder(folder);
    this.#file?.close();
    this.#file = await Deno.open(path, { append: true });
    this.#records = this.#marks.size;
  }
}

function parseRecord(line: string): { s: string; o: number } | undefined {
  if (line === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { s, o } = value as { s?: unknown; o?: unknown };
  if (typeof s !== "string" || s === "" || !Number.isSafeInteger(o) || (o as number) < 0) {
    return undefined;
  }
  return { s, o: o as number };
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/** Makes a rename durable; best effort, as some file systems refuse to fsync a folder. */
async function syncFolder(folder: string): Promise<void> {
  try {
    using dir = await Deno.open(folder, { read: true });
    await dir.sync();
  } catch {
    // The rename itself is atomic; only its durability across power loss is weaker.
  }
}
