/**
 * Durable high-water marks of ingest streams: for each `X-Stream-Id`, the stream offset up to which
 * batches are stored. HTTP ingest refuses a batch at or below its stream's mark, so a client that
 * retries (after a timeout, or after the server restarted, also after `kill -9`) never stores a
 * line twice.
 *
 * The journal (`streams.jsonl` in the state folder, see `state_dir.ts`) holds JSON lines of three
 * kinds, appended in order and in groups (one write, and one fsync when asked, for every record
 * queued meanwhile):
 *
 * - an **intent**, written by the file writer under the file's lock *before* a marked batch's
 *   bytes: which stream, offset and part, the file (path, device and inode), where the bytes go
 *   (`p` to `e`) and a hash of their first and last bytes;
 * - a **mark**, once every part of a batch is stored: `{"s":"<id>","o":<offset>}`;
 * - a **done** record (only written by compaction): how many lines of a part are stored.
 *
 * At startup, intents that no mark follows are checked against the files: a part whose file holds
 * its bytes (size at least `e`, same last bytes; or a file gone since, as only whole writes are
 * rotated away) is stored; a part cut short by the crash is cut back to `p`, so it is stored whole
 * when resent; a part never written is simply dropped. A batch all of whose parts are stored gets
 * its mark; one with some stored parts is remembered as partly stored, and its resend stores only
 * the rest.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { basename, dirname, join } from "node:path";
import { canRead, describe } from "../_util.ts";
import type { BatchMark } from "../pipeline/batch.ts";
import { prepareStateDir } from "./state_dir.ts";

/** The journal's file name, inside the state folder. */
export const STREAM_MARKS_FILE = "streams.jsonl";

/** Options of {@linkcode StreamMarks.open}. */
export interface StreamMarksOptions {
  /**
   * fsync the journal before an intent counts as written (`-fsync batch`). Otherwise it is
   * fsynced `syncEveryMs` after a write, as `-fsync interval` does with the data. Default false.
   */
  sync?: boolean;
  /** Without `sync`, the longest a journal write waits for its fsync, in ms. Default 1000. */
  syncEveryMs?: number;
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

/**
 * Where one piece of a marked batch is about to be written, recorded before its bytes
 * (see {@linkcode MarkJournal}).
 */
export interface MarkIntent {
  /** The batch's stream, offset and part. */
  readonly mark: BatchMark;
  /** Lines of the part stored once this piece is: `mark.skipped` plus the lines up to its end. */
  readonly lines: number;
  /** The file's path, as the writer names it. */
  readonly path: string;
  /** The file's device and inode (`fstat`). */
  readonly dev: number;
  readonly ino: number;
  /** The file's size when the piece is written: where its first byte goes. */
  readonly start: number;
  /** Where its last byte ends. */
  readonly end: number;
  /** The piece's bytes (only its first and last 32 are read). */
  readonly bytes: Uint8Array;
}

/** What a file writer calls, under the file's lock, before it writes marked batches. */
export interface MarkJournal {
  /** Resolves once the intents are in the journal (and fsynced under `sync`). */
  intend(intents: readonly MarkIntent[]): Promise<void>;
}

/** What startup recovery found, for its log line and tests. */
export interface Recovery {
  /** Batches under way at the crash that turned out stored whole. */
  stored: number;
  /** Batches under way at the crash that were not stored (or not whole): their resend is stored. */
  dropped: number;
  /** Files cut back to where a torn batch began. */
  cut: number;
  /** Batches stored in part; their resend stores only the rest. */
  partial: number;
}

/** A batch of which some parts (or lines of parts) are stored, the rest not. */
interface Partial {
  offset: number;
  parts: number;
  /** Per part: lines stored, and lines in all. */
  done: Map<number, { lines: number; total: number }>;
}

interface IntentRecord {
  s: string;
  o: number;
  n: number;
  k: number;
  l: number;
  t: number;
  f?: string;
  d?: number;
  i?: number;
  p?: number;
  e?: number;
  a?: number;
  h?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

const encoder = new TextEncoder();
const HASHED_BYTES = 32;
const log = getLogger(["logboom", "store", "marks"]);

/**
 * Stream high-water marks, in memory and (when opened on a state folder) in a journal file that
 * also records where marked batches are being written.
 *
 * @example
 * ```ts
 * const marks = await StreamMarks.open(".logboom", { sync: true });
 * if (offset <= (marks.get(streamId) ?? -1)) return duplicate();
 * // the file sink calls marks.intend(...) before writing the batch's bytes
 * await sink.flush([batch]);
 * marks.advance(streamId, offset);
 * ```
 */
export class StreamMarks implements MarkJournal {
  /** The journal, or `undefined` when marks are kept in memory only. */
  readonly path: string | undefined;
  /** Why the previous run's marks were not reloaded, or `undefined` when they were (or no file). */
  readonly notReloaded: NotReloadedReason;
  /** What startup found of the batches under way at the last stop. */
  readonly recovery: Recovery = { stored: 0, dropped: 0, cut: 0, partial: 0 };
  #sync: boolean;
  readonly #syncEveryMs: number;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #syncing: Promise<void> | undefined;
  readonly #maxStreams: number;
  readonly #compactAfter: number;
  readonly #marks: Map<string, number>;
  readonly #partial = new Map<string, Partial>();
  /** Intents of batches not yet marked, per stream: kept through compaction. */
  readonly #inFlight = new Map<string, { offset: number; records: string[] }>();
  #file: Deno.FsFile | undefined;
  /** Records in the journal file (live and superseded). */
  #records = 0;
  #queue: string[] = [];
  #waiters: Waiter[] = [];
  #writing: Promise<void> | undefined;
  #closed = false;

  private constructor(
    path: string | undefined,
    marks: Map<string, number>,
    options: StreamMarksOptions & { notReloaded?: NotReloadedReason },
  ) {
    const { sync = false, syncEveryMs = 1000, maxStreams = 100_000, compactAfter = 10_000 } =
      options;
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
    this.#syncEveryMs = syncEveryMs;
    this.#maxStreams = maxStreams;
    this.#compactAfter = compactAfter;
    this.#marks = marks;
  }

  /** Marks kept in memory only: they last as long as the process. */
  static memory(options: StreamMarksOptions = {}): StreamMarks {
    return new StreamMarks(undefined, new Map(), options);
  }

  /**
   * Opens the journal in the state folder `dir` (creating the folder and its `.gitignore`):
   * reloads the marks, settles the batches that were under way when the last run stopped (see the
   * module's notes; this may cut a log file back to where a torn batch began, so call it before
   * any file is written), rewrites the journal compactly and keeps it open for appending.
   *
   * Reloading needs read permission on `dir`; without it (the design card's `--allow-net
   * --allow-write`), marks are kept in memory only, {@linkcode StreamMarks.notReloaded} says why,
   * and nothing is written, so a later start with read permission still finds what is there.
   *
   * @throws the file system's error when the journal cannot be read or written.
   */
  static async open(dir: string, options: StreamMarksOptions = {}): Promise<StreamMarks> {
    const path = join(dir, STREAM_MARKS_FILE);
    if (!canRead(dir)) {
      return new StreamMarks(undefined, new Map(), {
        ...options,
        notReloaded: "no read permission",
      });
    }
    await prepareStateDir(dir);
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const self = new StreamMarks(path, new Map(), options);
    await self.#load(text);
    self.#evict();
    await self.#rewrite();
    return self;
  }

  /**
   * Whether a record counts as written only once fsynced (`-fsync batch`); a config reload that
   * changes the file sink's fsync mode sets it for the records that follow.
   */
  set sync(sync: boolean) {
    this.#sync = sync;
  }

  /** Whether marks and intents go to a journal on disk. */
  get durable(): boolean {
    return this.path !== undefined;
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
   * For a batch the last run stored in part (a crash between its files), the lines of each part
   * already stored, so that its resend stores only the rest; `undefined` when nothing of the batch
   * at `offset` is stored.
   */
  stored(streamId: string, offset: number): ReadonlyMap<number, number> | undefined {
    const partial = this.#partial.get(streamId);
    if (partial === undefined || partial.offset !== offset) return undefined;
    return new Map([...partial.done].map(([part, { lines }]) => [part, lines]));
  }

  /**
   * Raises the stream's mark to `offset` (a lower or equal offset changes nothing). Call only once
   * every part of the batch ending at `offset` is stored. The mark applies in memory at once and
   * is appended to the journal in the background: the intents written before the batch already
   * let a restart find it stored.
   */
  advance(streamId: string, offset: number): void {
    if (typeof streamId !== "string" || streamId === "") {
      throw new TypeError(`Stream id must be a non-empty string, got "${String(streamId)}"`);
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Stream offset must be a non-negative integer, got "${offset}"`);
    }
    if (this.#closed) throw new Error("Stream marks are closed");
    const partial = this.#partial.get(streamId);
    if (partial !== undefined && partial.offset <= offset) this.#partial.delete(streamId);
    const inFlight = this.#inFlight.get(streamId);
    if (inFlight !== undefined && inFlight.offset <= offset) this.#inFlight.delete(streamId);
    const previous = this.#marks.get(streamId);
    if (previous !== undefined && offset <= previous) return;
    // Re-inserting keeps the map in order of last advance, so eviction forgets the idlest stream.
    this.#marks.delete(streamId);
    this.#marks.set(streamId, offset);
    this.#evict();
    if (this.path === undefined) return;
    this.#append([JSON.stringify({ s: streamId, o: offset })]).catch((err) => {
      log.warn("Cannot append to the stream marks journal {path}: {error}", {
        path: this.path,
        error: describe(err),
      });
    });
  }

  /**
   * Records where marked batches are about to be written; the file writer calls it under the
   * file's lock and writes the bytes once it resolves.
   */
  intend(intents: readonly MarkIntent[]): Promise<void> {
    if (this.path === undefined || intents.length === 0) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("Stream marks are closed"));
    const records: string[] = [];
    for (const intent of intents) {
      const { mark, lines, path, dev, ino, start, end, bytes } = intent;
      const record = JSON.stringify(
        {
          s: mark.stream,
          o: mark.offset,
          n: mark.parts,
          k: mark.part,
          l: lines,
          t: mark.total,
          f: path,
          d: dev,
          i: ino,
          p: start,
          e: end,
          a: hash(bytes.subarray(0, HASHED_BYTES)),
          h: hash(bytes.subarray(Math.max(0, bytes.length - HASHED_BYTES))),
        } satisfies IntentRecord,
      );
      records.push(record);
      let inFlight = this.#inFlight.get(mark.stream);
      if (inFlight === undefined || inFlight.offset !== mark.offset) {
        inFlight = { offset: mark.offset, records: [] };
        this.#inFlight.set(mark.stream, inFlight);
      }
      inFlight.records.push(record);
    }
    return this.#append(records);
  }

  /** Writes what is pending and closes the journal. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing;
    await this.#syncing;
    if (this.#syncTimer !== undefined) {
      clearTimeout(this.#syncTimer);
      this.#syncTimer = undefined;
      await this.#file?.syncData().catch(() => {});
    }
    this.#file?.close();
    this.#file = undefined;
  }

  #evict(): void {
    for (const id of this.#marks.keys()) {
      if (this.#marks.size <= this.#maxStreams) break;
      this.#marks.delete(id);
    }
    for (const id of this.#partial.keys()) {
      if (this.#partial.size <= this.#maxStreams) break;
      this.#partial.delete(id);
    }
  }

  #append(records: string[]): Promise<void> {
    if (!this.#sync && this.#writing === undefined && this.#file !== undefined) {
      // Without fsync, a record is a small append to the page cache: written at once, it costs
      // a few microseconds, where a round trip through the thread pool held every batch's write
      // (its intent comes first, under the file's lock) up by 0.1-1.8 ms (2026-11-30).
      try {
        writeAllSync(this.#file, encoder.encode(records.join("\n") + "\n"));
      } catch (err) {
        return Promise.reject(err);
      }
      this.#syncTimer ??= setTimeout(() => this.#syncLater(), this.#syncEveryMs);
      this.#records += records.length;
      if (this.#records > this.#marks.size + this.#compactAfter) {
        // Records that come meanwhile queue behind the rewrite.
        this.#writing = this.#rewrite().catch((err) => {
          log.warn("Cannot rewrite the stream marks journal {path}: {error}", {
            path: this.path,
            error: describe(err),
          });
        }).then(() => this.#drain());
      }
      return Promise.resolve();
    }
    this.#queue.push(...records);
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#writing ??= this.#drain();
    return done;
  }

  /** Appends every queued record in one write (and one fsync under `sync`). */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const queue = this.#queue;
      const waiters = this.#waiters;
      this.#queue = [];
      this.#waiters = [];
      try {
        await writeAll(this.#file!, encoder.encode(queue.join("\n") + "\n"));
        if (this.#sync) await this.#file!.syncData();
        else this.#syncTimer ??= setTimeout(() => this.#syncLater(), this.#syncEveryMs);
        this.#records += queue.length;
        if (this.#records > this.#marks.size + this.#compactAfter) await this.#rewrite();
        for (const waiter of waiters) waiter.resolve();
      } catch (err) {
        for (const waiter of waiters) waiter.reject(err);
      }
    }
    this.#writing = undefined;
  }

  /** The periodic fsync without `sync` (a file replaced meanwhile was fsynced by its rewrite). */
  #syncLater(): void {
    this.#syncTimer = undefined;
    const file = this.#file;
    this.#syncing = file?.syncData().catch((err) => {
      if (file !== this.#file || err instanceof Deno.errors.BadResource) return;
      log.warn("Cannot fsync the stream marks journal {path}: {error}", {
        path: this.path,
        error: describe(err),
      });
    });
  }

  /**
   * Replaces the journal with what is live: one mark per stream, what is stored of partly stored
   * batches, and the intents of batches under way. Written aside, fsynced, renamed over.
   */
  async #rewrite(): Promise<void> {
    const path = this.path!;
    const folder = dirname(path);
    const temporary = join(folder, `${basename(path)}.tmp`);
    const records: string[] = [];
    for (const [s, o] of this.#marks) records.push(JSON.stringify({ s, o }));
    for (const [s, { offset: o, parts: n, done }] of this.#partial) {
      for (const [k, { lines: l, total: t }] of done) {
        records.push(JSON.stringify({ s, o, n, k, l, t } satisfies IntentRecord));
      }
    }
    for (const { records: intents } of this.#inFlight.values()) records.push(...intents);
    {
      using file = await Deno.open(temporary, { write: true, create: true, truncate: true });
      if (records.length > 0) await writeAll(file, encoder.encode(records.join("\n") + "\n"));
      await file.syncData();
    }
    await Deno.rename(temporary, path);
    await syncFolder(folder);
    this.#file?.close();
    this.#file = await Deno.open(path, { append: true });
    this.#records = records.length;
  }

  /** Replays the journal, then settles every batch that was under way. */
  async #load(text: string): Promise<void> {
    const pending = new Map<string, { offset: number; records: IntentRecord[] }>();
    for (const line of text.split("\n")) {
      const record = parseRecord(line);
      // A torn last record (a crash mid-append) is skipped: its batch's bytes were not written.
      if (record === undefined) continue;
      const { s, o } = record;
      const mark = this.#marks.get(s);
      if (mark !== undefined && o <= mark) continue;
      if (!("n" in record)) {
        this.#marks.delete(s);
        this.#marks.set(s, o);
        if ((pending.get(s)?.offset ?? Infinity) <= o) pending.delete(s);
        continue;
      }
      const under = pending.get(s);
      if (under !== undefined && under.offset > o) continue;
      if (under === undefined || under.offset < o) pending.set(s, { offset: o, records: [record] });
      else under.records.push(record);
    }
    const files = new FileFinder();
    for (const [s, { offset, records }] of pending) {
      const partial = await this.#settle(records, files);
      if (partial === "stored") {
        this.#marks.delete(s);
        this.#marks.set(s, offset);
        this.recovery.stored++;
      } else if (partial === undefined) {
        this.recovery.dropped++;
      } else {
        this.#partial.set(s, partial);
        this.recovery.partial++;
      }
    }
  }

  /** Whether one batch's intents show it stored whole, in part, or not at all. */
  async #settle(
    records: IntentRecord[],
    files: FileFinder,
  ): Promise<"stored" | Partial | undefined> {
    const { o: offset, n: parts } = records[0];
    const byPart = new Map<number, IntentRecord[]>();
    for (const record of records) {
      if (record.n !== parts) continue;
      const list = byPart.get(record.k) ?? [];
      list.push(record);
      byPart.set(record.k, list);
    }
    const done = new Map<number, { lines: number; total: number }>();
    for (const [part, list] of byPart) {
      let stored = 0;
      // Pieces of a part are written in order: what is stored is a prefix of them.
      const pieces = new Map<number, IntentRecord>();
      for (const record of list) {
        if (record.f === undefined) stored = Math.max(stored, record.l);
        else pieces.set(record.l, record); // a retried write: its last intent counts
      }
      let broken = false;
      for (const piece of [...pieces.values()].sort((a, b) => a.l - b.l)) {
        if (piece.l <= stored) continue;
        if (!broken && await this.#written(piece, files)) stored = piece.l;
        else {
          broken = true;
          await this.#cutIfTorn(piece, files);
        }
      }
      if (stored > 0) done.set(part, { lines: stored, total: list[0].t });
    }
    let whole = 0;
    for (const { lines, total } of done.values()) if (lines >= total) whole++;
    if (whole === parts) return "stored";
    if (done.size === 0) return undefined;
    return { offset, parts, done };
  }

  /** Whether the piece's bytes are in its file (or the file is gone, as only whole writes rotate away). */
  async #written(piece: IntentRecord, files: FileFinder): Promise<boolean> {
    // A file the writer could not identify (no read permission) proves nothing either way.
    if (piece.i === 0) return false;
    const found = files.find(piece.f!, piece.d!, piece.i!);
    if (found === "gone") return true;
    if (found === undefined || found.size < piece.e!) return false;
    const from = Math.max(piece.p!, piece.e! - HASHED_BYTES);
    return hash(await readRange(found.path, from, piece.e!)) === piece.h;
  }

  /** Cuts the file back to where the piece began when it ends inside the piece (a torn write). */
  async #cutIfTorn(piece: IntentRecord, files: FileFinder): Promise<void> {
    if (piece.i === 0) return;
    const found = files.find(piece.f!, piece.d!, piece.i!);
    if (found === undefined || found === "gone") return;
    const { p, e } = piece as Required<IntentRecord>;
    if (found.size <= p || found.size >= e) return;
    // The bytes there must be the piece's own: its first bytes, as far as the file holds them.
    const head = await readRange(found.path, p, Math.min(found.size, p + HASHED_BYTES));
    if (head.length === Math.min(e - p, HASHED_BYTES) && hash(head) !== piece.a) return;
    using file = await Deno.open(found.path, { read: true, write: true });
    await file.lock(true);
    const { size, dev, ino } = await file.stat();
    if (dev === piece.d && ino === piece.i && size > p && size < e) {
      await file.truncate(p);
      found.size = p;
      this.recovery.cut++;
      log.warn(
        "Cut {path} back from {size} to {start} bytes: a batch of stream {stream} was cut short " +
          "by a crash; it is stored whole when resent",
        { path: found.path, size, start: p, stream: piece.s },
      );
    }
    await file.unlock();
  }
}

/** Finds a file by device and inode: at its path, or renamed (rotated) in the same folder. */
class FileFinder {
  readonly #known = new Map<string, { path: string; size: number }>();
  readonly #scanned = new Map<string, boolean>();

  /** The file and its size; `"gone"` when its folder no longer holds it; `undefined` when unknown. */
  find(
    path: string,
    dev: number,
    ino: number,
  ): { path: string; size: number } | "gone" | undefined {
    const key = `${dev}:${ino}`;
    const known = this.#known.get(key);
    if (known !== undefined) return known;
    try {
      const info = Deno.statSync(path);
      if (info.dev === dev && info.ino === ino) {
        const found = { path, size: info.size };
        this.#known.set(key, found);
        return found;
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) return undefined;
    }
    if (!this.#scan(dirname(path))) return undefined;
    return this.#known.get(key) ?? "gone";
  }

  /** Learns every file of `dir`; `false` when the folder itself is gone or unreadable. */
  #scan(dir: string): boolean {
    const done = this.#scanned.get(dir);
    if (done !== undefined) return done;
    try {
      for (const entry of Deno.readDirSync(dir)) {
        if (!entry.isFile) continue;
        const path = join(dir, entry.name);
        try {
          const { dev, ino, size } = Deno.statSync(path);
          if (!this.#known.has(`${dev}:${ino}`)) this.#known.set(`${dev}:${ino}`, { path, size });
        } catch {
          // Removed meanwhile.
        }
      }
      this.#scanned.set(dir, true);
      return true;
    } catch {
      // Nothing can be said of the files of a folder that is gone.
      this.#scanned.set(dir, false);
      return false;
    }
  }
}

function parseRecord(line: string): IntentRecord | { s: string; o: number } | undefined {
  if (line === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const { s, o } = record;
  if (typeof s !== "string" || s === "" || !count(o)) return undefined;
  if (!("n" in record)) return { s, o: o as number };
  const { n, k, l, t, f } = record;
  if (![n, k, l, t].every(count) || (n as number) < 1) return undefined;
  if (f !== undefined) {
    if (typeof f !== "string" || ![record.d, record.i, record.p, record.e].every(count)) {
      return undefined;
    }
    if (!Number.isInteger(record.a) || !Number.isInteger(record.h)) return undefined;
  }
  return record as unknown as IntentRecord;
}

function count(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** FNV-1a, 32 bits: enough to tell a file's bytes from a batch's, never a security check. */
function hash(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

async function readRange(path: string, from: number, to: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  await file.seek(from, Deno.SeekMode.Start);
  const out = new Uint8Array(Math.max(0, to - from));
  let at = 0;
  while (at < out.length) {
    const n = await file.read(out.subarray(at));
    if (n === null) break;
    at += n;
  }
  return out.subarray(0, at);
}

function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) offset += file.writeSync(data.subarray(offset));
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
