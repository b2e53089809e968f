/**
 * The time index of each output file: a small sidecar, written as the file is written, that lets a
 * search skip files and seek inside them by time.
 *
 * A sidecar lives in the state folder, `<stateDir>/index/<the file's path under the log folder>.idx`
 * (`logs/web/app.log` under `-logFile 'logs/{source}/app.log'` has `logs/.logboom/index/web/app.log.idx`),
 * so the log folders hold nothing but logs. It is an 8-byte header, `LBIX` and a version byte,
 * then records of 24 bytes, each a kind byte (7 bytes of padding) and two little-endian float64s:
 *
 * | kind | a | b | meaning |
 * | --- | --- | --- | --- |
 * | 1 mark | time (ms) | offset | the lines from `offset` on were received at `time` or later |
 * | 2 member | offset | compressed offset | a gzip member starts here (compressed files) |
 * | 3 end | time (ms) | size | the file is finished: its last line was received at `time` |
 *
 * Offsets are into the uncompressed bytes. The writer takes a mark before a page is written
 * when the file is new to it, or 64 KiB were written since the last mark, or a second passed and
 * 4 KiB were written, or a minute passed; marks wait in memory and are appended at most once a
 * second (and at rotation and close): no syscall per batch. A sidecar is a hint, never trusted:
 * a reader drops marks past the file's size, and when offsets go back (the file was replaced)
 * keeps only the marks after that; a torn last record is ignored.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { prepareStateDir } from "./state_dir.ts";

const MAGIC = [0x4c, 0x42, 0x49, 0x58]; // LBIX
const VERSION = 1;
/** Bytes of the header. */
export const HEADER_BYTES = 8;
/** Bytes of each record. */
export const RECORD_BYTES = 24;
const KIND_MARK = 1;
const KIND_MEMBER = 2;
const KIND_END = 3;

/** A mark is taken at least this many bytes after the last one... */
export const MARK_BYTES = 64 * 1024;
/** ...or this long after it, once {@linkcode MARK_MIN_BYTES} were written... */
export const MARK_MS = 1000;
/** ...(the least bytes between two marks taken for time)... */
export const MARK_MIN_BYTES = 4096;
/** ...or this long after it, whatever was written. */
export const MARK_MAX_MS = 60_000;
/** Buffered marks are appended to the sidecar at most this often. */
const FLUSH_MS = 1000;

const log = getLogger(["logboom", "store"]);

/** Where the sidecars of one output live. */
export interface IndexLayout {
  /** The log folder: the folder a `-logFile` template spells out before its first placeholder. */
  readonly root: string;
  /** The folder of the sidecars: `<stateDir>/index`. */
  readonly dir: string;
}

/**
 * The layout for `logFile` (a path or template) with the state folder `stateDir`.
 *
 * @example
 * ```ts
 * indexLayout("logs/{source}/app.log", "logs/.logboom");
 * // { root: "logs", dir: "logs/.logboom/index" }
 * ```
 */
export function indexLayout(logFile: string, stateDir: string): IndexLayout {
  return { root: logRoot(logFile), dir: join(stateDir, "index") };
}

/** The folder a path or template spells out before its first placeholder (`.` for none). */
export function logRoot(logFile: string): string {
  const brace = logFile.indexOf("{");
  const fixed = brace === -1 ? logFile : logFile.slice(0, brace);
  const folder = brace !== -1 && fixed.endsWith("/") ? fixed.slice(0, -1) : dirname(fixed);
  return folder === "" ? "." : folder;
}

/**
 * The sidecar of `path` under `layout`, or `undefined` for a path outside the log folder.
 *
 * @example
 * ```ts
 * sidecarOf({ root: "logs", dir: "logs/.logboom/index" }, "logs/web/app.log");
 * // "logs/.logboom/index/web/app.log.idx"
 * ```
 */
export function sidecarOf(layout: IndexLayout, path: string): string | undefined {
  const rel = relative(resolve(layout.root), resolve(path));
  if (rel === "" || rel.startsWith("..") || rel.startsWith("/")) return undefined;
  return join(layout.dir, rel) + ".idx";
}

/** One mark: lines from `offset` on were received at `time` or later. */
export interface IndexMark {
  /** Receive time, ms since the epoch. */
  time: number;
  /** Byte offset of a line start in the uncompressed file. */
  offset: number;
}

/** A gzip member of a compressed file. */
export interface IndexMember {
  /** Where its bytes start in the uncompressed stream. */
  offset: number;
  /** Where it starts in the compressed file. */
  compressed: number;
}

/** What a sidecar says of its file. */
export interface FileIndexData {
  /** Marks, offsets and times rising. */
  marks: IndexMark[];
  /** Gzip members, offsets rising (empty for a plain file or one compressed in one piece). */
  members: IndexMember[];
  /** When the file was finished: its last line's time and its size. */
  end?: { time: number; size: number };
}

/** Encodes records into bytes (with the header when `header`). */
export function encodeRecords(
  records: readonly (readonly [kind: number, a: number, b: number])[],
  header = false,
): Uint8Array {
  const out = new Uint8Array((header ? HEADER_BYTES : 0) + records.length * RECORD_BYTES);
  const view = new DataView(out.buffer);
  let at = 0;
  if (header) {
    out.set(MAGIC, 0);
    out[4] = VERSION;
    at = HEADER_BYTES;
  }
  for (const [kind, a, b] of records) {
    out[at] = kind;
    view.setFloat64(at + 8, a, true);
    view.setFloat64(at + 16, b, true);
    at += RECORD_BYTES;
  }
  return out;
}

/** The records of a whole index. */
export function indexRecords(data: FileIndexData): [number, number, number][] {
  return [
    ...data.marks.map((m): [number, number, number] => [KIND_MARK, m.time, m.offset]),
    ...data.members.map((m): [number, number, number] => [KIND_MEMBER, m.offset, m.compressed]),
    ...(data.end ? [[KIND_END, data.end.time, data.end.size] as [number, number, number]] : []),
  ];
}

/**
 * Parses a sidecar's bytes; `undefined` when they are not one. Marks whose offsets go back start
 * the list anew (the file was replaced); a torn last record is ignored.
 */
export function parseIndex(bytes: Uint8Array): FileIndexData | undefined {
  if (bytes.length < HEADER_BYTES) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return undefined;
  if (bytes[4] !== VERSION) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let marks: IndexMark[] = [];
  const members: IndexMember[] = [];
  let end: FileIndexData["end"];
  for (let at = HEADER_BYTES; at + RECORD_BYTES <= bytes.length; at += RECORD_BYTES) {
    const kind = bytes[at];
    const a = view.getFloat64(at + 8, true);
    const b = view.getFloat64(at + 16, true);
    if (!Number.isFinite(a) || !Number.isFinite(b) || b < 0) continue;
    if (kind === KIND_MARK) {
      const last = marks.at(-1);
      if (last !== undefined && b < last.offset) {
        marks = [];
        end = undefined;
      }
      if (last !== undefined && b === last.offset && marks.length > 0) continue;
      marks.push({ time: Math.max(a, marks.at(-1)?.time ?? a), offset: b });
    } else if (kind === KIND_MEMBER) {
      if (members.length === 0 || b > members.at(-1)!.compressed) {
        members.push({ offset: a, compressed: b });
      }
    } else if (kind === KIND_END) end = { time: a, size: b };
  }
  return { marks, members, end };
}

/** Reads and parses a sidecar; `undefined` when there is none or it is not one. */
export async function readIndex(path: string): Promise<FileIndexData | undefined> {
  try {
    return parseIndex(await Deno.readFile(path));
  } catch {
    return undefined;
  }
}

/** Writes a whole sidecar (through a temporary file renamed into place). */
export async function writeIndex(path: string, data: FileIndexData): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = path + ".tmp";
  await Deno.writeFile(tmp, encodeRecords(indexRecords(data), true));
  await Deno.rename(tmp, path);
}

/** Removes a sidecar, if there is one. */
export async function removeIndex(path: string | undefined): Promise<void> {
  if (path === undefined) return;
  await Deno.remove(path).catch(() => {});
}

/**
 * What a file writer tells the index: marks as it writes, the end at rotation. Every method is
 * cheap or occasional; none throws (a sidecar that cannot be written is logged and given up:
 * searches then read the whole file).
 */
export interface FileIndexWriter {
  /** Whether a mark is due before a page of `bytes` received at `time` (see the module doc). */
  due(time: number): boolean;
  /** Records a mark (kept in memory until the next flush). */
  mark(offset: number, time: number): void;
  /** Counts bytes written after the last mark. */
  wrote(bytes: number): void;
  /** The file was replaced (reopened, rotated): the next page gets a mark. */
  reset(): void;
  /** Appends buffered marks when the last append is a second old (or `force`). */
  flush(force?: boolean): Promise<void>;
  /**
   * The file was renamed to `rotated` at `size` bytes: appends the buffered marks and the end,
   * and moves the sidecar along.
   */
  rotated(rotated: string, size: number, endTime: number): Promise<void>;
}

/**
 * Creates the index writer of `path`: a sidecar appended to (created when first needed, its
 * folder and the state folder's `.gitignore` with it).
 */
export function createIndexWriter(layout: IndexLayout, path: string): FileIndexWriter | undefined {
  const sidecar = sidecarOf(layout, path);
  if (sidecar === undefined) return undefined;
  return new SidecarWriter(layout, sidecar);
}

class SidecarWriter implements FileIndexWriter {
  readonly #layout: IndexLayout;
  #sidecar: string;
  #pending: [number, number, number][] = [];
  #lastTime = -Infinity;
  #bytes = 0;
  #fresh = true;
  #lastFlush = 0;
  #failed = false;
  #prepared = false;

  constructor(layout: IndexLayout, sidecar: string) {
    this.#layout = layout;
    this.#sidecar = sidecar;
  }

  due(time: number): boolean {
    if (this.#failed) return false;
    if (this.#fresh || this.#bytes >= MARK_BYTES) return true;
    const since = time - this.#lastTime;
    return since >= MARK_MAX_MS || (since >= MARK_MS && this.#bytes >= MARK_MIN_BYTES);
  }

  mark(offset: number, time: number): void {
    const at = Math.max(time, this.#lastTime);
    this.#pending.push([KIND_MARK, at, offset]);
    this.#lastTime = at;
    this.#bytes = 0;
    this.#fresh = false;
  }

  wrote(bytes: number): void {
    this.#bytes += bytes;
  }

  reset(): void {
    this.#fresh = true;
  }

  async flush(force = false): Promise<void> {
    if (this.#pending.length === 0 || this.#failed) return;
    const now = performance.now();
    if (!force && now - this.#lastFlush < FLUSH_MS) return;
    this.#lastFlush = now;
    const records = this.#pending;
    this.#pending = [];
    try {
      await this.#append(records);
    } catch (err) {
      this.#fail(err);
    }
  }

  async rotated(rotated: string, size: number, endTime: number): Promise<void> {
    const to = sidecarOf(this.#layout, rotated);
    if (this.#failed || to === undefined) return;
    const records = this.#pending;
    this.#pending = [];
    records.push([KIND_END, Math.max(endTime, this.#lastTime), size]);
    try {
      await this.#append(records);
      await Deno.mkdir(dirname(to), { recursive: true });
      await Deno.rename(this.#sidecar, to);
    } catch (err) {
      this.#fail(err);
    }
    this.#fresh = true;
    this.#lastTime = -Infinity;
    this.#bytes = 0;
  }

  async #append(records: [number, number, number][]): Promise<void> {
    if (!this.#prepared) {
      await prepareStateDir(dirname(this.#layout.dir));
      await Deno.mkdir(dirname(this.#sidecar), { recursive: true });
      this.#prepared = true;
    }
    const file = await Deno.open(this.#sidecar, { append: true, create: true });
    try {
      const header = file.statSync().size === 0;
      const bytes = encodeRecords(records, header);
      for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
    } finally {
      file.close();
    }
  }

  #fail(err: unknown): void {
    this.#failed = true;
    log.warn(
      'Cannot write the time index "{sidecar}": {error}; searches will read the whole file',
      { sidecar: this.#sidecar, error: describe(err) },
    );
  }
}
