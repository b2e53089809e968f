/**
 * One input of files: expands its globs, tells files apart by identity, and runs one
 * {@linkcode Tailer} per file. Used by the agent (shipping over HTTP) and by `serve -watch`
 * (writing to the local router).
 *
 * A file's identity is its device and inode together with a fingerprint of its first bytes (up to
 * 1 KiB) and of the bytes just before its checkpoint. With it the input:
 * - follows a renamed file (rename + create rotation) under its new name, to its end, and reads the
 *   new file at the old name from its start;
 * - never reads a file twice when its rotated name also matches the glob (`app.log.1`);
 * - recognises a new file that got the inode of a deleted one (inode reuse) as new;
 * - after a truncation (copytruncate), finds the copy by its content and ships from it the part
 *   that was not yet read, and reads the truncated file from its start;
 * - after a restart, finds each file again among the glob's matches and the rotated names next to
 *   its last path, and ships its unread tail.
 *
 * While the servers are down, files keep rotating: a renamed file is held open (up to
 * `maxRotatedOpen`, then given up and found again by its identity under any name in its folder
 * once there is room); a file truncated under a task that waits for the servers is detached from
 * it, so the new content gets its own stream at once and the old content's rest is shipped from
 * its copy, found by content under any name in the folder. Whatever cannot be shipped (a file
 * deleted, or truncated without a copy, before it was read) is named in a warning with its bytes
 * and counted in {@linkcode FileInputStats.bytesLost}.
 *
 * Matches that cannot be followed are said once each, not at every scan: files that cannot be
 * read (permissions), matches that are not regular files (folders, FIFOs, devices, sockets), and
 * folders of the globs that cannot be listed.
 *
 * New matching files are picked up within a second: file events wake the scan, and a periodic scan
 * (one folder listing per glob, one `stat` per match) catches what events miss. The watcher is made
 * again when it ends or when a watched folder is replaced.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { type Clock, pause, SYSTEM_CLOCK } from "../clock.ts";
import { ByteBudget } from "../pipeline/byte_budget.ts";
import type { CheckpointStore, InputState, StreamRecord } from "./checkpoint.ts";
import { hashBytes, HEAD_BYTES, readAt } from "./fingerprint.ts";
import { FolderWatch, type WatchFs } from "./folder_watch.ts";
import { compileExclude, compileGlob, type Glob } from "./glob.ts";
import {
  fileHolds,
  type Found,
  holds,
  keyOf,
  lineStartBefore,
  readHead,
  sameBytes,
  statFile,
  tailAt,
} from "./identity.ts";
import { listMatches, type Matches } from "./matches.ts";
import type { MultilineConfig } from "./multiline.ts";
import { Problems } from "./problems.ts";
import { FolderListings } from "./rotated_names.ts";
import { type StreamTarget, Tailer, type TailerContext, type TailerEnd } from "./tailer.ts";

export type { WatchFs } from "./folder_watch.ts";

/** Settings of a {@linkcode FileInput}. */
export interface FileInputOptions {
  /** The input's name: the key of its checkpoints. */
  name: string;
  /** Globs of the files to follow. */
  paths: readonly string[];
  /** Globs of files to leave out. Default none. */
  exclude?: readonly string[];
  /** Where files found at the input's very first scan are read from. Default `beginning`. */
  startAt?: "beginning" | "end";
  /** Where batches go. */
  target: StreamTarget;
  /** Checkpoints. */
  store: CheckpointStore;
  /** Bytes read and not yet acknowledged, over all files. Default 8 MiB. */
  maxBytes?: number;
  /** Batch size, uncompressed. Default 1 MiB. */
  batchBytes?: number;
  /** Longest wait of a batch for more lines, in ms. Default 200. */
  batchWaitMs?: number;
  /** Longer lines are split. Default 1 MiB. */
  maxLine?: number;
  /** Multi-line events. Default none. */
  multiline?: MultilineConfig;
  /** Scan period, in ms. Default 1000. */
  scanIntervalMs?: number;
  /** A rotated file is let go once quiet this long, in ms. Default 5000. */
  rotateWaitMs?: number;
  /** Rotated files held open with unshipped lines before the oldest is given up. Default 16. */
  maxRotatedOpen?: number;
  /** A file unchanged this long is closed until it changes, in ms. Default 300,000. */
  closeIdleMs?: number;
  /** Checkpoints of files gone this long are forgotten, in ms. Default 24 h. */
  forgetAfterMs?: number;
  /** Whether to use file events besides scans. Default true. */
  watch?: boolean;
  /** A quiet file gives its buffers back after this long, in ms. Default 10,000. */
  releaseIdleMs?: number;
  /** Files the process writes itself (`serve`'s outputs): never followed. Default none. */
  ownFiles?: (path: string) => boolean;
  /** Makes a file watcher (a seam for tests). Default `Deno.watchFs`. */
  watchFs?: WatchFs;
  /** Lists the files the globs match, with their stats (a seam for tests). */
  listFiles?: typeof listMatches;
  /** Time and timers of the input and its tasks (a seam for tests). Default the wall clock. */
  clock?: Clock;
}

/** What the input reports of one file. */
export interface FileReport {
  /** Where the file is. */
  path: string;
  /** Bytes acknowledged. */
  offset: number;
  /** The file's size when last seen. */
  size: number;
  /** Bytes not yet acknowledged: `size - offset`. */
  lag: number;
  /** Whether a task follows it now. */
  open: boolean;
}

/** Counters of an input. */
export interface FileInputStats {
  /** Files found rotated away from their path. */
  rotations: number;
  /** Truncations seen (copytruncate). */
  truncations: number;
  /** Copies a truncated file's unread tail was shipped from. */
  copiesFollowed: number;
  /** Rotated files closed with unshipped bytes, over the cap. */
  filesGivenUp: number;
  /** Their unshipped bytes when they were closed. */
  bytesGivenUp: number;
  /** Bytes that could not be shipped: their file was deleted or truncated before they were read. */
  bytesLost: number;
  /** Files (or contents) with bytes lost. */
  filesLost: number;
  /** Files the input started to read (new streams). */
  filesFound: number;
  /** Matches that cannot be read now (permissions). */
  unreadable: number;
  /** Matches that are not regular files now (folders, FIFOs, devices, sockets). */
  skipped: number;
}

/** What a file's content became when the input looked for a copy of it. */
type CopyOutcome = "none" | "waits" | "shipped" | "resumed" | "refused";

const log = getLogger(["logboom", "files", "input"]);
/** A new file that starts like a followed one waits at most this long for it to be truncated. */
const SUSPECT_GRACE_MIN_MS = 2000;
/** Scans that file events ask for are at least this far apart, in ms. */
const MIN_SCAN_GAP_MS = 100;
/** Scans asked for by an untracked file's growth are at least this far apart, in ms. */
const SLOW_SCAN_GAP_MS = 1000;
/** A file that could not be opened, or whose task failed, is tried again this much later, in ms. */
const RETRY_MS = 5000;

/**
 * Follows the files of one input until {@linkcode FileInput.stop}.
 *
 * @example
 * ```ts
 * const input = FileInput.start({ name: "app", paths: ["/var/log/app/*.log"], target, store });
 * // ...
 * await input.stop(); // tasks stop reading; batches in flight get a few seconds
 * ```
 */
export class FileInput {
  /** The input's name. */
  readonly name: string;
  /** Counters. */
  readonly stats: FileInputStats = {
    rotations: 0,
    truncations: 0,
    copiesFollowed: 0,
    filesGivenUp: 0,
    bytesGivenUp: 0,
    bytesLost: 0,
    filesLost: 0,
    filesFound: 0,
    unreadable: 0,
    skipped: 0,
  };
  readonly #globs: Glob[];
  readonly #excludes: Glob[];
  readonly #state: InputState;
  readonly #store: CheckpointStore;
  readonly #ctx: TailerContext;
  readonly #clock: Clock;
  readonly #listFiles: typeof listMatches;
  readonly #scanIntervalMs: number;
  readonly #maxRotatedOpen: number;
  readonly #forgetAfterMs: number;
  readonly #ownFiles: ((path: string) => boolean) | undefined;
  /** Matches that cannot be followed, said once each. */
  readonly #problems: Problems;
  /** File events, when used. */
  readonly #events: FolderWatch | undefined;
  readonly #tailers = new Map<string, Tailer>();
  readonly #tasks = new Set<Promise<void>>();
  /** Records that failed, by stream id: not retried before this time. */
  readonly #retryAt = new Map<string, number>();
  /** Records given up over the cap: resumed when there is room, reported lost when gone. */
  readonly #parked = new Map<string, number>();
  /** New files that start like a followed file, by key: when first seen. */
  readonly #suspects = new Map<string, number>();
  #startAtEnd: boolean;
  #firstScan = true;
  #lastScan = 0;
  /** Tasks by the path of their file, for file events; rebuilt at each scan. */
  #byPath = new Map<string, Tailer>();
  #stopped = false;
  /** Aborted by {@linkcode stop}: ends the wait between scans. */
  readonly #stopping = new AbortController();
  #nudge: (() => void) | undefined;
  #nudged = false;
  #nudgeSlow = false;
  /** Matched files that were empty at the last scan: their first write calls a scan at once. */
  #empty = new Set<string>();
  readonly #loop: Promise<void>;
  /** Scans completed, for tests. */
  scans = 0;

  private constructor(options: FileInputOptions) {
    const {
      name,
      paths,
      exclude = [],
      startAt = "beginning",
      target,
      store,
      maxBytes = 8 * 1024 * 1024,
      batchBytes = 1024 * 1024,
      batchWaitMs = 200,
      maxLine = 1024 * 1024,
      multiline,
      scanIntervalMs = 1000,
      rotateWaitMs = 5000,
      maxRotatedOpen = 16,
      closeIdleMs = 300_000,
      forgetAfterMs = 24 * 3600_000,
      watch = true,
      releaseIdleMs,
      ownFiles,
      watchFs = Deno.watchFs,
      listFiles = listMatches,
      clock = SYSTEM_CLOCK,
    } = options;
    if (paths.length === 0) throw new TypeError("A file input needs at least one path");
    this.name = name;
    this.#globs = paths.map((p) => compileGlob(p));
    this.#excludes = exclude.map((p) => compileExclude(p));
    this.#store = store;
    this.#state = store.input(name);
    this.#startAtEnd = startAt === "end" && !this.#state.known;
    this.#clock = clock;
    this.#listFiles = listFiles;
    this.#ctx = {
      input: name,
      target,
      store,
      budget: new ByteBudget(maxBytes),
      batchBytes,
      batchWaitMs,
      maxLine,
      multiline,
      rotateWaitMs,
      closeIdleMs,
      releaseIdleMs,
      onDetach: () => this.#detached(),
      clock,
    };
    this.#ownFiles = ownFiles;
    this.#problems = new Problems(name);
    this.#events = watch
      ? new FolderWatch({
        globs: this.#globs,
        watchFs,
        clock,
        scanIntervalMs,
        onEvent: (event) => this.#onFileEvent(event),
        onEnded: () => this.nudge(),
      })
      : undefined;
    this.#scanIntervalMs = scanIntervalMs;
    this.#maxRotatedOpen = maxRotatedOpen;
    this.#forgetAfterMs = forgetAfterMs;
    this.#loop = this.#run();
  }

  /** Starts following: the first scan begins at once. */
  static start(options: FileInputOptions): FileInput {
    return new FileInput(options);
  }

  /** The files known to the input (orphaned content left out unless bytes of it are owed). */
  files(): FileReport[] {
    const out: FileReport[] = [];
    for (const record of this.#state.records.values()) {
      if (record.orphan && !owes(record)) continue;
      const tailer = this.#tailers.get(record.stream);
      const size = Math.max(tailer?.size ?? record.size, record.offset);
      out.push({
        path: record.path,
        offset: record.offset,
        size,
        lag: size - record.offset,
        open: tailer !== undefined,
      });
    }
    return out;
  }

  /** Files followed now. */
  get openFiles(): number {
    return this.#tailers.size;
  }

  /** Bytes read and not yet acknowledged. */
  get inFlightBytes(): number {
    return this.#ctx.budget.used;
  }

  /** Asks for a scan now (file events do this). */
  nudge(): void {
    this.#nudged = true;
    this.#nudge?.();
  }

  /**
   * Stops: no more scans, every task stops reading, and batches in flight get `graceMs` to be
   * acknowledged (the rest is resent by the next run, from the checkpoints).
   */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort();
    this.#nudge?.();
    this.#events?.close();
    await this.#loop;
    await Promise.all([...this.#tailers.values()].map((t) => t.stop(graceMs)));
    await Promise.all(this.#tasks);
    await this.#events?.done;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const started = this.#clock.now();
      try {
        await this.#scan();
      } catch (err) {
        log.error("Scan of input {input} failed: {error}", {
          input: this.name,
          error: describe(err),
        });
      }
      this.scans++;
      if (this.#stopped) break;
      await this.#nextScan(started);
    }
  }

  /**
   * Waits for the next scan: its period, or less when a scan is asked for (bursts of file events
   * share one scan, at least a gap after the last one began). With file events covering every
   * folder, a full scan is only the safety net and comes ten times less often.
   */
  #nextScan(started: number): Promise<void> {
    const period = this.#events?.coversAll ? this.#scanIntervalMs * 10 : this.#scanIntervalMs;
    const stopping = this.#stopping.signal;
    const afterGap = (gap: number) =>
      pause(this.#clock, Math.max(0, started + gap - this.#clock.now()), stopping);
    if (this.#stopped) return Promise.resolve();
    const asked = this.#askedGap();
    if (asked > 0) return afterGap(asked);
    return new Promise<void>((resolve) => {
      const done = () => {
        cancel();
        this.#nudge = undefined;
        const gap = this.#askedGap();
        if (this.#stopped || gap === 0) resolve();
        else afterGap(gap).then(resolve);
      };
      const cancel = this.#clock.timer(period, done);
      this.#nudge = done;
    });
  }

  /** The gap after a scan that the nudges since ask for (0: none), and forgets them. */
  #askedGap(): number {
    const gap = this.#nudged ? MIN_SCAN_GAP_MS : this.#nudgeSlow ? SLOW_SCAN_GAP_MS : 0;
    this.#nudged = false;
    this.#nudgeSlow = false;
    return gap;
  }

  /** Growth wakes the file's task; a new, renamed or removed file calls for a scan. */
  #onFileEvent(event: Deno.FsEvent): void {
    if (event.kind !== "modify" && event.kind !== "access") {
      this.nudge();
      return;
    }
    for (const path of event.paths) {
      const tailer = this.#byPath.get(path);
      // An untracked file that grows (one that was empty, say) is looked at within a second; a
      // busy untracked file costs at most a scan a second.
      if (tailer !== undefined) tailer.wake();
      else if (this.#empty.has(path)) this.nudge();
      else if (event.kind === "modify") this.#nudgeSlow = true;
    }
    if (this.#nudgeSlow) this.#nudge?.();
  }

  /**
   * One scan, in phases: the followed files, the known files no task follows, the copies of
   * replaced content, the new files; then what is forgotten, and the cap on rotated files.
   */
  async #scan(): Promise<void> {
    const now = this.#clock.now();
    // Watching starts before the listing, so a file created while the scan runs is not missed.
    this.#events?.refresh();
    this.#problems.beginScan();
    // What each task had seen of its file before the listing's stats: a file listed smaller than
    // that was truncated. (A task reads and looks meanwhile; what it sees after the listing may be
    // more than the listing shows, and says nothing.)
    const seenBefore = new Map<Tailer, number>();
    for (const tailer of this.#tailers.values()) seenBefore.set(tailer, tailer.contentSize);
    const matches = await this.#listFiles({
      globs: this.#globs,
      excludes: this.#excludes,
      ownFiles: this.#ownFiles,
      problems: this.#problems,
    });
    const claimed = new Set<string>();
    const folders = new FolderListings(matches.files);
    let changed = await this.#checkFollowed(matches, claimed, folders, now, seenBefore);
    if (await this.#resumeKnown(matches, claimed, folders, now)) changed = true;
    if (await this.#findCopies(matches, claimed, folders)) changed = true;
    if (await this.#startNew(matches, claimed, now)) changed = true;
    for (const key of this.#suspects.keys()) {
      if (!matches.byKey.has(key)) this.#suspects.delete(key);
    }
    this.#startAtEnd = false;
    this.#firstScan = false;
    this.#lastScan = now;
    if (this.#forgetGone(now)) changed = true;
    Object.assign(this.stats, this.#problems.endScan());
    await this.#capRotated();
    this.#byPath = new Map(
      [...this.#tailers.values()].filter((t) => !t.detached).map((t) => [t.record.path, t]),
    );
    if (changed) this.#store.schedule();
  }

  /** Forgets the records of files no task follows and gone for `forgetAfterMs`. */
  #forgetGone(now: number): boolean {
    let changed = false;
    for (const [id, record] of this.#state.records) {
      if (!this.#tailers.has(id) && now - record.seen > this.#forgetAfterMs) {
        this.#state.records.delete(id);
        this.#parked.delete(id);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * The followed files: their size and path now, rotation (gone from their birth path), and
   * content replaced under a task that waits for the servers. Returns whether records changed.
   */
  async #checkFollowed(
    matches: Matches,
    claimed: Set<string>,
    folders: FolderListings,
    now: number,
    seenBefore: ReadonlyMap<Tailer, number>,
  ): Promise<boolean> {
    let changed = false;
    for (const tailer of this.#tailers.values()) {
      if (tailer.detached) continue;
      const path = matches.byKey.get(tailer.key);
      if (path === undefined) {
        if (await this.#findMoved(tailer, folders)) changed = true;
      } else {
        const info = matches.files.get(path)!;
        if (await this.#replacedUnder(tailer, path, info, seenBefore.get(tailer) ?? 0)) {
          // Not claimed: the file's new content is a new stream, started below.
          this.stats.truncations++;
          log.info("{path} was truncated while its lines waited for the servers", { path });
          tailer.detach();
          continue;
        }
        if (this.#seenAt(tailer, path, info, now)) changed = true;
      }
      claimed.add(tailer.key);
      this.#noticeRotation(tailer, matches.files);
    }
    return changed;
  }

  /**
   * A followed file away from the glob (rotated): its descriptor tells its size, its folder its
   * new name. Returns whether its record changed.
   */
  async #findMoved(tailer: Tailer, folders: FolderListings): Promise<boolean> {
    await tailer.refreshSize();
    const at = await statFile(tailer.record.path);
    if (at !== undefined && keyOf(at) === tailer.key) return false;
    const where = await folders.rotatedNames(tailer.record.path, { anyName: true });
    const moved = where.find((f) => keyOf(f.info) === tailer.key)?.path;
    if (moved === undefined) return false;
    tailer.record.path = moved;
    return true;
  }

  /** A followed file matched at `path`: its size and path now. Returns whether its path changed. */
  #seenAt(tailer: Tailer, path: string, info: Deno.FileInfo, now: number): boolean {
    tailer.size = info.size;
    // A quiet task sleeps long: the scan wakes it when its file changed.
    if (info.size !== tailer.readOffset) tailer.wake();
    tailer.record.seen = now;
    if (tailer.record.path === path) return false;
    tailer.record.path = path;
    return true;
  }

  /** Marks a followed file rotated once its birth path holds another file (or none). */
  #noticeRotation(tailer: Tailer, files: Map<string, Deno.FileInfo>): void {
    const birth = files.get(tailer.birthPath);
    const home = birth !== undefined && keyOf(birth) === tailer.key;
    if (!home && !tailer.rotated) {
      tailer.markRotated();
      this.stats.rotations++;
      log.debug("{path} was rotated; reading it to its end", { path: tailer.birthPath });
    }
    if (home && birth.size < tailer.readOffset) tailer.wake();
  }

  /**
   * Whether the content of a task that waits (and so cannot look itself) is no longer in its
   * file: the file (`info`) shrank below what was seen of it before `info` was taken (`seen`),
   * or, when it changed since the last look, its head or the bytes before the checkpoint differ.
   */
  async #replacedUnder(
    tailer: Tailer,
    path: string,
    info: Deno.FileInfo,
    seen: number,
  ): Promise<boolean> {
    if (!tailer.stalled) return false;
    if (info.size < seen) return true;
    const as = `${info.size}:${info.mtime?.getTime() ?? 0}`;
    if (as === tailer.checkedAs) return false;
    tailer.checkedAs = as;
    if (tailer.record.headLen === 0) {
      // Nothing read of it yet, so no head to compare: what it held is owed, and a file that
      // shrinks below it was truncated.
      tailer.contentSize = Math.max(tailer.contentSize, info.size);
      return false;
    }
    const verdict = await holds(path, tailer.record, tailer.key);
    if (verdict === "unknown") {
      tailer.checkedAs = "";
      return false;
    }
    if (verdict !== "yes") return true;
    // Still the same content, grown while the task waits: owed if it were truncated now.
    tailer.contentSize = Math.max(tailer.contentSize, info.size);
    return false;
  }

  /**
   * Files known from checkpoints that no task follows now (closed while idle, given up over the
   * cap, or a restart): found again by identity, and followed when they have more to read.
   * Returns whether records changed.
   */
  async #resumeKnown(
    matches: Matches,
    claimed: Set<string>,
    folders: FolderListings,
    now: number,
  ): Promise<boolean> {
    let changed = false;
    for (const record of this.#state.records.values()) {
      if (this.#tailers.has(record.stream) || record.orphan) continue;
      const key = `${record.dev}:${record.ino}`;
      if (claimed.has(key)) {
        // Its inode holds another stream now: this content is gone from there.
        record.orphan = true;
        changed = true;
        continue;
      }
      const unfinished = owes(record);
      const found = await this.#findKnown(record, key, unfinished, matches, folders);
      if (found === undefined) {
        if (this.#missing(record, unfinished)) changed = true;
        continue;
      }
      claimed.add(key);
      if (await this.#resumeFound(record, found, unfinished, matches, now, claimed)) changed = true;
    }
    return changed;
  }

  /**
   * Where a known file is now: the match with its identity, or, when it may have moved since it
   * was last read (at the first scan, right after it left the glob, or while bytes of it are
   * owed), any file in its folder with its identity.
   */
  async #findKnown(
    record: StreamRecord,
    key: string,
    unfinished: boolean,
    matches: Matches,
    folders: FolderListings,
  ): Promise<Found | undefined> {
    const path = matches.byKey.get(key);
    if (path !== undefined) return { path, info: matches.files.get(path)! };
    const look = this.#firstScan || record.seen >= this.#lastScan || unfinished ||
      this.#parked.has(record.stream);
    if (!look) return undefined;
    return (await folders.rotatedNames(record.path, { anyName: true }))
      .find((f) => keyOf(f.info) === key);
  }

  /** A known file not found: what was owed of it is lost. Returns whether its record changed. */
  #missing(record: StreamRecord, unfinished: boolean): boolean {
    const parked = this.#parked.get(record.stream);
    this.#parked.delete(record.stream);
    if (parked === undefined && !unfinished) return false;
    this.#lost(record, parked, "gone");
    return true;
  }

  /**
   * A known file found again: followed when it changed or bytes of it are owed (not before its
   * retry, nor over the cap of rotated files). Returns whether records changed.
   */
  async #resumeFound(
    record: StreamRecord,
    found: Found,
    unfinished: boolean,
    matches: Matches,
    now: number,
    claimed: Set<string>,
  ): Promise<boolean> {
    const mtime = found.info.mtime?.getTime() ?? 0;
    const same = found.info.size === record.offset && mtime === record.mtime && !unfinished;
    // Under a name the glob does not match, an unchanged file is not looked for again.
    if (!same || matches.files.has(found.path)) record.seen = now;
    if (same) return false;
    if ((this.#retryAt.get(record.stream) ?? 0) > now) {
      // A problem said when it failed stays said until the retry.
      this.#problems.keep(found.path);
      return false;
    }
    const rotated = !matches.files.has(found.path);
    if (rotated && unfinished && this.#rotatedOpen() >= this.#maxRotatedOpen) return false;
    if (!(await this.#resume(record, found, rotated))) {
      record.orphan = true;
      claimed.delete(keyOf(found.info));
    }
    return true;
  }

  /**
   * Content whose file was truncated or replaced: its unread part is shipped from a copy, found
   * by its content (any name in the folder while bytes of it are owed). Returns whether records
   * changed.
   */
  async #findCopies(
    matches: Matches,
    claimed: Set<string>,
    folders: FolderListings,
  ): Promise<boolean> {
    let changed = false;
    for (const record of this.#state.records.values()) {
      if (!record.orphan || this.#tailers.has(record.stream)) continue;
      const owed = owes(record);
      const candidates = [
        ...[...matches.files].map(([path, info]) => ({ path, info })),
        ...await folders.rotatedNames(record.path, { anyName: owed }),
      ];
      const outcome = await this.#shipFromCopy(record, candidates, matches, claimed);
      if (outcome === "shipped" || outcome === "resumed" || outcome === "refused") changed = true;
      if (owed && (outcome === "none" || outcome === "shipped" || outcome === "refused")) {
        this.#lost(record, undefined, "truncated");
        changed = true;
      }
    }
    return changed;
  }

  /**
   * Looks among `candidates` for a copy of `record`'s content: one that holds it all (followed
   * from the record's offset), or only what was shipped of it (remembered as read).
   */
  async #shipFromCopy(
    record: StreamRecord,
    candidates: Found[],
    matches: Matches,
    claimed: Set<string>,
  ): Promise<CopyOutcome> {
    for (const candidate of candidates) {
      const key = keyOf(candidate.info);
      if (claimed.has(key) || candidate.info.size === 0) continue;
      const verdict = await holds(candidate.path, record, key);
      if (verdict === "no" || verdict === "unknown") continue;
      const rotated = !matches.files.has(candidate.path);
      if (verdict === "yes" && rotated && this.#rotatedOpen() >= this.#maxRotatedOpen) {
        // Over the cap of rotated files held open: the copy is opened once there is room.
        return "waits";
      }
      claimed.add(key);
      if (verdict === "shorter") {
        await this.#rememberShipped(candidate);
        return "shipped";
      }
      return await this.#followCopy(record, candidate, rotated) ? "resumed" : "refused";
    }
    return "none";
  }

  /** A copy of bytes already shipped: remembered as read, so it is never read again. */
  async #rememberShipped(copy: Found): Promise<void> {
    const head = await readHead(copy.path, copy.info).catch(() => undefined);
    if (head !== undefined) {
      const tail = await tailAt(copy.path, copy.info.size);
      this.#newRecord(copy, copy.info.size, head, tail);
    }
    log.debug("{path} is a copy of what was already shipped", { path: copy.path });
  }

  /** Follows `record`'s content in its copy from the record's offset; whether it started. */
  async #followCopy(record: StreamRecord, copy: Found, rotated: boolean): Promise<boolean> {
    this.stats.copiesFollowed++;
    log.info("{copy} is a copy of {path}: shipping it from byte {offset}", {
      copy: copy.path,
      path: record.path,
      offset: record.offset,
    });
    const from = record.path;
    record.orphan = false;
    record.dev = copy.info.dev;
    record.ino = copy.info.ino!;
    record.path = copy.path;
    if (await this.#resume(record, copy, rotated)) return true;
    record.orphan = true;
    record.path = from;
    return false;
  }

  /** New files: read from their start (or end, at a first scan with `startAt: end`). */
  async #startNew(matches: Matches, claimed: Set<string>, now: number): Promise<boolean> {
    let changed = false;
    // Empty files wait for their first byte; file events for them call a scan.
    this.#empty = new Set(
      [...matches.files].filter(([, info]) => info.size === 0).map(([p]) => p),
    );
    for (const [path, info] of matches.files) {
      const key = keyOf(info);
      if (claimed.has(key) || info.size === 0) continue;
      claimed.add(key);
      let head: Uint8Array;
      try {
        head = await readHead(path, info);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) this.#problems.unreadable(path, err);
        continue;
      }
      if (this.#isSuspectCopy(key, head, info, matches.files, now)) continue;
      let offset = 0;
      let tail = "";
      if (this.#startAtEnd) {
        offset = await lineStartBefore(path, info.size);
        tail = await tailAt(path, offset);
      }
      const record = this.#newRecord({ path, info }, offset, head, tail);
      this.stats.filesFound++;
      await this.#resume(record, { path, info }, false, { head, fresh: true });
      changed = true;
    }
    return changed;
  }

  /**
   * Says that bytes of `record` cannot be shipped (its file is `gone`, or was `truncated` with no
   * copy), counts them, and settles the record so they are not owed any more.
   */
  #lost(record: StreamRecord, bytes: number | undefined, why: "gone" | "truncated"): void {
    const planned = record.planned.at(-1)?.end ?? 0;
    const lost = bytes ?? Math.max(0, Math.max(record.size, planned) - record.offset);
    record.size = record.offset;
    record.planned = [];
    if (lost === 0) return;
    this.stats.bytesLost += lost;
    this.stats.filesLost++;
    const props = { path: record.path, bytes: lost, input: this.name };
    if (why === "gone") {
      log.warn("{path} is gone before {bytes} bytes of it were shipped: they are lost", props);
    } else {
      log.warn(
        "{path} was truncated before {bytes} bytes of it were shipped, and no copy of them was " +
          "found: they are lost",
        props,
      );
    }
  }

  /**
   * Opens `found` for `record`, checks it holds the record's content, and starts its task.
   * Returns `false` when the file holds other content (the record's is not there), `true`
   * otherwise (started, or to be tried again).
   */
  async #resume(
    record: StreamRecord,
    found: Found,
    rotated: boolean,
    options: { head?: Uint8Array; fresh?: boolean } = {},
  ): Promise<boolean> {
    const opened = await this.#openAs(record, found, options);
    if (opened === "later") return true;
    if (opened === "other") return false;
    record.path = found.path;
    record.size = found.info.size;
    this.#unpark(record, found.path);
    const tailer = new Tailer(record, opened.file, this.#ctx, { head: opened.head, rotated });
    this.#tailers.set(record.stream, tailer);
    const task = tailer.done.then((end) => this.#ended(tailer, end));
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
    return true;
  }

  /**
   * Opens `found` and checks it is the file listed and holds `record`'s content (`fresh`: a new
   * record, nothing to check). `"later"`: cannot be read now, or replaced since it was listed;
   * `"other"`: it holds other content.
   */
  async #openAs(
    record: StreamRecord,
    found: Found,
    options: { head?: Uint8Array; fresh?: boolean },
  ): Promise<{ file: Deno.FsFile; head: Uint8Array } | "later" | "other"> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(found.path, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#problems.unreadable(found.path, err);
      this.#retryAt.set(record.stream, this.#clock.now() + RETRY_MS);
      return "later";
    }
    try {
      const info = await file.stat();
      if (keyOf(info) !== keyOf(found.info)) {
        // Replaced between the scan and the open: the next scan sorts it out.
        file.close();
        return "later";
      }
      if (options.fresh !== true && !(await fileHolds(file, info.size, record))) {
        file.close();
        if (record.offset > 0) {
          log.info(
            "{path} is not the file read before (truncated, or a new file in a reused inode): " +
              "reading it as a new file",
            { path: found.path },
          );
          this.stats.truncations++;
        }
        return "other";
      }
      const head = options.head ??
        await readAt(file, 0, Math.min(HEAD_BYTES, Math.max(record.headLen, info.size)));
      return { file, head };
    } catch (err) {
      file.close();
      this.#problems.unreadable(found.path, err);
      this.#retryAt.set(record.stream, this.#clock.now() + RETRY_MS);
      return "later";
    }
  }

  /** A file given up over the cap is followed again: its bytes are not given up any more. */
  #unpark(record: StreamRecord, path: string): void {
    const parked = this.#parked.get(record.stream);
    if (parked === undefined) return;
    this.#parked.delete(record.stream);
    this.stats.bytesGivenUp = Math.max(0, this.stats.bytesGivenUp - parked);
    log.info("Shipping {path} again, given up before: nothing lost", { path });
  }

  /** A task found its file's content replaced: counted, and the file is looked at again now. */
  #detached(): void {
    this.stats.truncations++;
    this.nudge();
  }

  #ended(tailer: Tailer, end: TailerEnd): void {
    const record = tailer.record;
    this.#tailers.delete(record.stream);
    if (end === "truncated") {
      // What is owed of the old content is looked for in a copy.
      record.orphan = true;
      record.size = tailer.contentSize;
      this.nudge();
    } else if (end === "error") {
      this.#retryAt.set(record.stream, this.#clock.now() + RETRY_MS);
    } else if (end === "rotated") {
      record.size = record.offset;
    } else if (end === "given-up") {
      const lost = Math.max(0, tailer.size - record.offset);
      this.#parked.set(record.stream, lost);
      this.stats.filesGivenUp++;
      this.stats.bytesGivenUp += lost;
      log.warn(
        "Gave up rotated file {path} with {bytes} bytes not shipped, over the cap of {cap} " +
          "rotated files held open: it is found again when there is room, and its bytes are " +
          "lost only if it is gone by then",
        { path: record.path, bytes: lost, cap: this.#maxRotatedOpen },
      );
    }
    if (!this.#stopped) this.#store.schedule();
  }

  /** Rotated files with unshipped bytes. */
  #rotatedOpen(): number {
    let n = 0;
    for (const t of this.#tailers.values()) if (t.rotated && t.unshipped > 0) n++;
    return n;
  }

  /** Over the cap of rotated files held open: the oldest rotated are given up. */
  async #capRotated(): Promise<void> {
    const rotated = [...this.#tailers.values()]
      .filter((t) => t.rotated && t.unshipped > 0)
      .sort((a, b) => a.rotatedAt - b.rotatedAt);
    const excess = rotated.length - this.#maxRotatedOpen;
    for (let i = 0; i < excess; i++) await rotated[i].giveUp();
  }

  /**
   * Whether a new file starts like a followed one and may be its copy in the making
   * (copytruncate copies, then truncates): it waits until the followed file was checked again
   * after the copy appeared, and a grace period passed.
   */
  #isSuspectCopy(
    key: string,
    head: Uint8Array,
    info: Deno.FileInfo,
    matched: Map<string, Deno.FileInfo>,
    now: number,
  ): boolean {
    const grace = Math.max(SUSPECT_GRACE_MIN_MS, this.#ctx.rotateWaitMs);
    // A stream no task follows whose content is unsettled: it ended truncated while this scan
    // ran, or bytes of it are owed and its file could not be opened as listed (replaced since the
    // listing, say at a restart): the next scans look for it, or for its copy, first.
    for (const record of this.#state.records.values()) {
      if (this.#tailers.has(record.stream) || record.headLen === 0) continue;
      if (!record.orphan && !owes(record)) continue;
      if (head.length < record.headLen) continue;
      if (hashBytes(head.subarray(0, record.headLen)) !== record.head) continue;
      let since = this.#suspects.get(key);
      if (since === undefined) this.#suspects.set(key, since = now);
      if (now - since < grace) return true;
    }
    for (const tailer of this.#tailers.values()) {
      // The file a detached task read is not a copy of it: it holds the new content.
      if (tailer.detached && tailer.key === key) continue;
      const common = Math.min(head.length, tailer.head.length);
      if (common === 0 || !sameBytes(head, tailer.head, common)) continue;
      let since = this.#suspects.get(key);
      if (since === undefined) this.#suspects.set(key, since = now);
      // The rest of a detached task's content is looked for in a copy once the task ends.
      if (tailer.detached) return true;
      const current = matched.get(tailer.birthPath);
      const stillWhole = current !== undefined && keyOf(current) === tailer.key &&
        current.size >= info.size && current.size >= tailer.readOffset;
      if (stillWhole && tailer.verifiedAt > since && now - since >= grace) continue;
      return true;
    }
    this.#suspects.delete(key);
    return false;
  }

  #newRecord(found: Found, offset: number, head: Uint8Array, tail: string): StreamRecord {
    const { info } = found;
    const stream = `${this.#store.agentId}:${this.name}:${info.dev}.${info.ino}:${
      crypto.randomUUID().slice(0, 8)
    }`;
    const record: StreamRecord = {
      stream,
      path: found.path,
      dev: info.dev,
      ino: info.ino!,
      head: hashBytes(head),
      headLen: head.length,
      offset,
      tail,
      size: info.size,
      mtime: info.mtime?.getTime() ?? 0,
      planned: [],
      seen: this.#clock.now(),
    };
    this.#state.records.set(stream, record);
    return record;
  }
}

/** Whether bytes of `record`'s content are read or planned and not yet acknowledged. */
function owes(record: StreamRecord): boolean {
  return record.planned.length > 0 || record.offset < record.size;
}
