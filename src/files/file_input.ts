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
import { basename, dirname, join } from "node:path";
import { describe } from "../_util.ts";
import { ByteBudget } from "../pipeline/byte_budget.ts";
import type { CheckpointStore, InputState, StreamRecord } from "./checkpoint.ts";
import type { MultilineConfig } from "./multiline.ts";
import { hashBytes, HEAD_BYTES, readAt, tailHash } from "./fingerprint.ts";
import { compileExclude, compileGlob, expandGlob, type Glob, isExcluded } from "./glob.ts";
import { type StreamTarget, Tailer, type TailerEnd } from "./tailer.ts";

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
}

/** Makes a watcher of folders, as `Deno.watchFs` does. */
export type WatchFs = (paths: string[], options: { recursive: boolean }) => Deno.FsWatcher;

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

interface Found {
  path: string;
  info: Deno.FileInfo;
}

/** What a scan found at the globs' paths. */
interface Matches {
  /** Regular files by path. */
  files: Map<string, Deno.FileInfo>;
  /** The first matched path of each `dev:ino`. */
  byKey: Map<string, string>;
}

/** Why a match is not followed, said once per path. */
type Problem = "unreadable" | "special" | "unlisted" | "own";

const log = getLogger(["logboom", "agent", "input"]);
/** A new file that starts like a followed one waits at most this long for it to be truncated. */
const SUSPECT_GRACE_MIN_MS = 2000;
/** Scans that file events ask for are at least this far apart, in ms. */
const MIN_SCAN_GAP_MS = 100;
/** Scans asked for by an untracked file's growth are at least this far apart, in ms. */
const SLOW_SCAN_GAP_MS = 1000;
/** After file events were unavailable, they are tried again this much later, in ms. */
const WATCH_RETRY_MS = 60_000;

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
  readonly #ctx: ConstructorParameters<typeof Tailer>[2];
  readonly #scanIntervalMs: number;
  readonly #maxRotatedOpen: number;
  readonly #forgetAfterMs: number;
  readonly #useWatch: boolean;
  readonly #watchFs: WatchFs;
  readonly #ownFiles: ((path: string) => boolean) | undefined;
  /** Problems said, by path: each is said again only after it went away. */
  readonly #problems = new Map<string, Problem>();
  /** Paths whose problem was seen by the scan under way. */
  #problemsSeen = new Set<string>();
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
  #nudge: (() => void) | undefined;
  #nudged = false;
  #nudgeSlow = false;
  /** Matched files that were empty at the last scan: their first write calls a scan at once. */
  #empty = new Set<string>();
  #watcher: Deno.FsWatcher | undefined;
  /** Whether file events cover every glob's folder (then full scans are rarer). */
  #watchesAll = false;
  #watched = "";
  #watchRetryAt = 0;
  #watching: Promise<unknown> | undefined;
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
    } = options;
    if (paths.length === 0) throw new TypeError("A file input needs at least one path");
    this.name = name;
    this.#globs = paths.map((p) => compileGlob(p));
    this.#excludes = exclude.map((p) => compileExclude(p));
    this.#store = store;
    this.#state = store.input(name);
    this.#startAtEnd = startAt === "end" && !this.#state.known;
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
    };
    this.#ownFiles = ownFiles;
    this.#watchFs = watchFs;
    this.#scanIntervalMs = scanIntervalMs;
    this.#maxRotatedOpen = maxRotatedOpen;
    this.#forgetAfterMs = forgetAfterMs;
    this.#useWatch = watch;
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
    this.#nudge?.();
    this.#closeWatcher();
    await this.#loop;
    await Promise.all([...this.#tailers.values()].map((t) => t.stop(graceMs)));
    await Promise.all(this.#tasks);
    await this.#watching;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const started = Date.now();
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
      // With file events, a full scan is only the safety net: new files and rotations come as
      // events and trigger a scan at once.
      const period = this.#watchesAll ? this.#scanIntervalMs * 10 : this.#scanIntervalMs;
      await new Promise<void>((resolve) => {
        if (this.#stopped) return resolve();
        if (this.#nudged || this.#nudgeSlow) {
          // Bursts of file events share one scan.
          const gap = this.#nudged ? MIN_SCAN_GAP_MS : SLOW_SCAN_GAP_MS;
          this.#nudged = false;
          this.#nudgeSlow = false;
          setTimeout(resolve, Math.max(0, started + gap - Date.now()));
          return;
        }
        const done = () => {
          clearTimeout(timer);
          this.#nudge = undefined;
          const gap = this.#stopped
            ? 0
            : this.#nudged
            ? MIN_SCAN_GAP_MS
            : this.#nudgeSlow
            ? SLOW_SCAN_GAP_MS
            : 0;
          this.#nudged = false;
          this.#nudgeSlow = false;
          if (gap === 0) resolve();
          else setTimeout(resolve, Math.max(0, started + gap - Date.now()));
        };
        const timer = setTimeout(done, period);
        this.#nudge = done;
      });
    }
  }

  async #scan(): Promise<void> {
    const now = Date.now();
    // Watching starts before the listing, so a file created while the scan runs is not missed.
    if (this.#useWatch) this.#watch();
    this.#problemsSeen = new Set();
    const matches = await this.#match();
    const claimed = new Set<string>();
    /** Folder listings, made at most once per scan. */
    const folders = new Map<string, Found[]>();
    let changed = await this.#checkFollowed(matches, claimed, folders, now);
    if (await this.#resumeKnown(matches, claimed, folders, now)) changed = true;
    if (await this.#findCopies(matches, claimed, folders)) changed = true;
    if (await this.#startNew(matches, claimed, now)) changed = true;
    for (const key of this.#suspects.keys()) {
      if (!matches.byKey.has(key)) this.#suspects.delete(key);
    }
    this.#startAtEnd = false;
    this.#firstScan = false;
    this.#lastScan = now;
    for (const [id, record] of this.#state.records) {
      if (!this.#tailers.has(id) && now - record.seen > this.#forgetAfterMs) {
        this.#state.records.delete(id);
        this.#parked.delete(id);
        changed = true;
      }
    }
    this.#forgetProblems();
    await this.#capRotated();
    this.#byPath = new Map(
      [...this.#tailers.values()].filter((t) => !t.detached).map((t) => [t.record.path, t]),
    );
    if (changed) this.#store.schedule();
  }

  /** Lists the globs' regular files; says once what matches and cannot be followed. */
  async #match(): Promise<Matches> {
    const files = new Map<string, Deno.FileInfo>();
    const others: string[] = [];
    const report = {
      onOther: (path: string) => others.push(path),
      onError: (folder: string, err: unknown) =>
        this.#problem(
          folder,
          "unlisted",
          () =>
            log.warn("Cannot list {folder}, a folder of input {input}'s globs: {error}", {
              folder,
              input: this.name,
              error: describe(err),
            }),
        ),
    };
    for (const glob of this.#globs) {
      for (const path of await expandGlob(glob, report)) {
        if (files.has(path) || isExcluded(path, this.#excludes) || this.#isOwn(path)) continue;
        const info = await this.#stat(path);
        if (info === undefined) continue;
        if (info.isFile && info.ino !== null) files.set(path, info);
        else if (!info.isFile) this.#special(path, info);
      }
    }
    for (const path of others) {
      if (isExcluded(path, this.#excludes) || this.#isOwn(path)) continue;
      const info = await this.#stat(path);
      if (info !== undefined && !info.isFile) this.#special(path, info);
    }
    const byKey = new Map<string, string>();
    for (const [path, info] of files) {
      const key = keyOf(info);
      if (!byKey.has(key)) byKey.set(key, path);
    }
    return { files, byKey };
  }

  /** `path`'s information (symlinks followed); `undefined` when it is gone or cannot be read. */
  async #stat(path: string): Promise<Deno.FileInfo | undefined> {
    try {
      return await Deno.stat(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#unreadable(path, err);
      return undefined;
    }
  }

  /** Whether `path` is one of the process's own files (said once). */
  #isOwn(path: string): boolean {
    if (this.#ownFiles === undefined || !this.#ownFiles(path)) return false;
    this.#problem(
      path,
      "own",
      () => log.info("Not following {path}: logboom writes it itself", { path }),
    );
    return true;
  }

  #special(path: string, info: Deno.FileInfo): void {
    const kind = info.isDirectory
      ? "a folder"
      : info.isFifo
      ? "a FIFO"
      : info.isSocket
      ? "a socket"
      : info.isCharDevice || info.isBlockDevice
      ? "a device"
      : "not a regular file";
    this.#problem(
      path,
      "special",
      () =>
        log.warn(
          "Skipping {path} ({kind}), matched by input {input}: only regular files are read",
          {
            path,
            kind,
            input: this.name,
          },
        ),
    );
  }

  /** Notes `problem` of `path` for this scan; says it (`say`) only when it is new. */
  #problem(path: string, problem: Problem, say: () => void): void {
    this.#problemsSeen.add(path);
    if (this.#problems.get(path) === problem) return;
    this.#problems.set(path, problem);
    say();
  }

  /** Forgets problems not seen by this scan, so they are said again if they come back. */
  #forgetProblems(): void {
    let unreadable = 0;
    let skipped = 0;
    for (const [path, problem] of this.#problems) {
      if (!this.#problemsSeen.has(path)) this.#problems.delete(path);
      else if (problem === "unreadable") unreadable++;
      else if (problem === "special") skipped++;
    }
    this.stats.unreadable = unreadable;
    this.stats.skipped = skipped;
  }

  #unreadable(path: string, err: unknown): void {
    this.#problem(
      path,
      "unreadable",
      () =>
        log.warn("Cannot read {path}, matched by input {input}: {error}", {
          path,
          input: this.name,
          error: describe(err),
        }),
    );
  }

  /**
   * The followed files: their size and path now, rotation (gone from their birth path), and
   * content replaced under a task that waits for the servers. Returns whether records changed.
   */
  async #checkFollowed(
    matches: Matches,
    claimed: Set<string>,
    folders: Map<string, Found[]>,
    now: number,
  ): Promise<boolean> {
    let changed = false;
    for (const tailer of this.#tailers.values()) {
      if (tailer.detached) continue;
      const path = matches.byKey.get(tailer.key);
      if (path === undefined) {
        // Away from the glob (rotated): its descriptor tells its size, its folder its new name.
        await tailer.refreshSize();
        const at = await statFile(tailer.record.path);
        if (at === undefined || keyOf(at) !== tailer.key) {
          const where = await this.#rotatedNames(tailer.record.path, folders, matches.files, {
            anyName: true,
          });
          const moved = where.find((f) => keyOf(f.info) === tailer.key)?.path;
          if (moved !== undefined) {
            tailer.record.path = moved;
            changed = true;
          }
        }
      } else {
        const info = matches.files.get(path)!;
        if (await this.#replacedUnder(tailer, path, info)) {
          // Not claimed: the file's new content is a new stream, started below.
          this.stats.truncations++;
          log.info("{path} was truncated while its lines waited for the servers", { path });
          tailer.detach();
          continue;
        }
        tailer.size = info.size;
        // A quiet task sleeps long: the scan wakes it when its file changed.
        if (info.size !== tailer.readOffset) tailer.wake();
        if (tailer.record.path !== path) {
          tailer.record.path = path;
          changed = true;
        }
        tailer.record.seen = now;
      }
      claimed.add(tailer.key);
      const birth = matches.files.get(tailer.birthPath);
      const home = birth !== undefined && keyOf(birth) === tailer.key;
      if (!home && !tailer.rotated) {
        tailer.markRotated();
        this.stats.rotations++;
        log.debug("{path} was rotated; reading it to its end", { path: tailer.birthPath });
      }
      if (home && birth.size < tailer.readOffset) tailer.wake();
    }
    return changed;
  }

  /**
   * Whether the content of a task that waits (and so cannot look itself) is no longer in its
   * file: the file shrank below what was seen of it, or, when it changed since the last look,
   * its head or the bytes before the checkpoint differ.
   */
  async #replacedUnder(tailer: Tailer, path: string, info: Deno.FileInfo): Promise<boolean> {
    if (!tailer.stalled) return false;
    if (info.size < tailer.contentSize) return true;
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
    folders: Map<string, Found[]>,
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
      let found: Found | undefined;
      const path = matches.byKey.get(key);
      if (path !== undefined) found = { path, info: matches.files.get(path)! };
      const unfinished = owes(record);
      // Where it was moved to is looked up when that may have happened since it was last read:
      // at the first scan (rotated while stopped), right after it left the glob, or while
      // bytes of it are owed.
      const look = this.#firstScan || record.seen >= this.#lastScan || unfinished ||
        this.#parked.has(record.stream);
      if (found === undefined && look) {
        // By identity, so any name in the folder will do.
        found = (await this.#rotatedNames(record.path, folders, matches.files, { anyName: true }))
          .find((f) => keyOf(f.info) === key);
      }
      if (found === undefined) {
        const parked = this.#parked.get(record.stream);
        this.#parked.delete(record.stream);
        if (parked !== undefined || unfinished) {
          this.#lost(record, parked, "gone");
          changed = true;
        }
        continue;
      }
      claimed.add(key);
      const mtime = found.info.mtime?.getTime() ?? 0;
      const same = found.info.size === record.offset && mtime === record.mtime && !unfinished;
      // Under a name the glob does not match, an unchanged file is not looked for again.
      if (!same || matches.files.has(found.path)) record.seen = now;
      if (same) continue;
      if ((this.#retryAt.get(record.stream) ?? 0) > now) {
        // A problem said when it failed stays said until the retry.
        this.#problemsSeen.add(found.path);
        continue;
      }
      const rotated = !matches.files.has(found.path);
      if (rotated && unfinished && this.#rotatedOpen() >= this.#maxRotatedOpen) continue;
      const started = await this.#resume(record, found, rotated);
      if (!started) {
        record.orphan = true;
        claimed.delete(key);
      }
      changed = true;
    }
    return changed;
  }

  /**
   * Content whose file was truncated or replaced: its unread part is shipped from a copy, found
   * by its content (any name in the folder while bytes of it are owed). Returns whether records
   * changed.
   */
  async #findCopies(
    matches: Matches,
    claimed: Set<string>,
    folders: Map<string, Found[]>,
  ): Promise<boolean> {
    let changed = false;
    for (const record of this.#state.records.values()) {
      if (!record.orphan || this.#tailers.has(record.stream)) continue;
      const owed = owes(record);
      const candidates = [
        ...[...matches.files].map(([path, info]) => ({ path, info })),
        ...await this.#rotatedNames(record.path, folders, matches.files, { anyName: owed }),
      ];
      let outcome: "none" | "shipped" | "waits" | "resumed" = "none";
      for (const candidate of candidates) {
        const key = keyOf(candidate.info);
        if (claimed.has(key) || candidate.info.size === 0) continue;
        const verdict = await holds(candidate.path, record, key);
        if (verdict === "no" || verdict === "unknown") continue;
        const rotated = !matches.files.has(candidate.path);
        if (verdict === "yes" && rotated && this.#rotatedOpen() >= this.#maxRotatedOpen) {
          // Over the cap of rotated files held open: the copy is opened once there is room.
          outcome = "waits";
          break;
        }
        claimed.add(key);
        changed = true;
        if (verdict === "shorter") {
          // A copy of bytes already shipped: remembered as read, so it is never read again.
          const head = await readHead(candidate.path, candidate.info).catch(() => undefined);
          if (head !== undefined) {
            const tail = await tailAt(candidate.path, candidate.info.size);
            this.#newRecord(candidate, candidate.info.size, head, tail);
          }
          log.debug("{path} is a copy of what was already shipped", { path: candidate.path });
          outcome = "shipped";
          break;
        }
        this.stats.copiesFollowed++;
        log.info("{copy} is a copy of {path}: shipping it from byte {offset}", {
          copy: candidate.path,
          path: record.path,
          offset: record.offset,
        });
        const from = record.path;
        record.orphan = false;
        record.dev = candidate.info.dev;
        record.ino = candidate.info.ino!;
        record.path = candidate.path;
        if (await this.#resume(record, candidate, rotated)) outcome = "resumed";
        else {
          record.orphan = true;
          record.path = from;
        }
        break;
      }
      if (owed && (outcome === "none" || outcome === "shipped")) {
        this.#lost(record, undefined, "truncated");
        changed = true;
      }
    }
    return changed;
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
        if (!(err instanceof Deno.errors.NotFound)) this.#unreadable(path, err);
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
   * Files next to `path` whose names start with its name (`app.log.1`, `app-2024.log`): where
   * rotation moves a file. `anyName`: every file in the folder.
   */
  async #rotatedNames(
    path: string,
    cache: Map<string, Found[]>,
    matched: Map<string, Deno.FileInfo>,
    options: { anyName?: boolean } = {},
  ): Promise<Found[]> {
    const dir = dirname(path);
    const name = basename(path);
    let all = cache.get(dir);
    if (all === undefined) {
      all = [];
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (!entry.isFile && !entry.isSymlink) continue;
          const full = join(dir, entry.name);
          // Compressed rotations cannot be read as lines.
          if (/\.(gz|bz2|xz|zst|zip|lz4)$/i.test(entry.name)) continue;
          const info = matched.get(full) ?? await statFile(full);
          if (info !== undefined) all.push({ path: full, info });
        }
      } catch {
        // The folder is gone or unreadable: nothing to find there.
      }
      cache.set(dir, all);
    }
    if (options.anyName) return all;
    const stem = name.replace(/\.[^.]*$/, "");
    return all.filter((f) => {
      const other = basename(f.path);
      return other !== name && (other.startsWith(name) || (stem !== "" && other.startsWith(stem)));
    });
  }

  /** Opens `found` for `record`, checks it holds the record's content, and starts its task. */
  async #resume(
    record: StreamRecord,
    found: Found,
    rotated: boolean,
    options: { head?: Uint8Array; fresh?: boolean } = {},
  ): Promise<boolean> {
    let head = options.head;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(found.path, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#unreadable(found.path, err);
      this.#retryAt.set(record.stream, Date.now() + 5000);
      return true;
    }
    try {
      const info = await file.stat();
      if (keyOf(info) !== keyOf(found.info)) {
        // Replaced between the scan and the open: the next scan sorts it out.
        file.close();
        return true;
      }
      const matches = options.fresh === true || info.size >= record.offset &&
          (record.headLen === 0 ||
            hashBytes(await readAt(file, 0, record.headLen)) === record.head) &&
          (record.offset === 0 || (await tailHash(file, record.offset)) === record.tail);
      if (!matches) {
        file.close();
        if (record.offset > 0) {
          log.info(
            "{path} is not the file read before (truncated, or a new file in a reused inode): " +
              "reading it as a new file",
            { path: found.path },
          );
          this.stats.truncations++;
        }
        return false;
      }
      head ??= await readAt(file, 0, Math.min(HEAD_BYTES, Math.max(record.headLen, info.size)));
    } catch (err) {
      file.close();
      this.#unreadable(found.path, err);
      this.#retryAt.set(record.stream, Date.now() + 5000);
      return true;
    }
    record.path = found.path;
    record.size = found.info.size;
    const parked = this.#parked.get(record.stream);
    if (parked !== undefined) {
      this.#parked.delete(record.stream);
      this.stats.bytesGivenUp = Math.max(0, this.stats.bytesGivenUp - parked);
      log.info("Shipping {path} again, given up before: nothing lost", { path: found.path });
    }
    const tailer = new Tailer(record, file, this.#ctx, { head, rotated });
    this.#tailers.set(record.stream, tailer);
    const task = tailer.done.then((end) => this.#ended(tailer, end));
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
    return true;
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
      this.#retryAt.set(record.stream, Date.now() + 5000);
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
    // A stream that ended truncated while this scan ran: the next scan looks for its copy first.
    for (const record of this.#state.records.values()) {
      if (!record.orphan || this.#tailers.has(record.stream) || record.headLen === 0) continue;
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
      seen: Date.now(),
    };
    this.#state.records.set(stream, record);
    return record;
  }

  /**
   * Watches the globs' folders, so new files and growth are seen at once. The watcher is made
   * again when a folder is replaced (a new inode: the old watch sees nothing of it), when it ends
   * by itself, and a minute after file events were unavailable.
   */
  #watch(): void {
    const roots = [...new Set(this.#globs.map((g) => g.root))].sort();
    const recursive = this.#globs.some((g) => g.segments.length > 1);
    const existing: string[] = [];
    let wanted = "";
    for (const root of roots) {
      try {
        const info = Deno.statSync(root);
        if (!info.isDirectory) continue;
        existing.push(root);
        wanted += `${root}\0${info.dev}:${info.ino}\n`;
      } catch {
        // Not there (yet): scans look for it.
      }
    }
    if (this.#watcher === undefined && Date.now() >= this.#watchRetryAt) this.#watched = "";
    this.#watchesAll = this.#watcher !== undefined && existing.length === roots.length;
    if (wanted === this.#watched || this.#stopped) return;
    this.#closeWatcher();
    this.#watched = wanted;
    if (existing.length === 0) return;
    let watcher: Deno.FsWatcher;
    try {
      watcher = this.#watchFs(existing, { recursive });
    } catch (err) {
      this.#watchRetryAt = Date.now() + WATCH_RETRY_MS;
      log.info("File events unavailable ({error}): scanning every {interval} ms", {
        error: describe(err),
        interval: this.#scanIntervalMs,
      });
      return;
    }
    this.#watcher = watcher;
    this.#watchesAll = existing.length === roots.length;
    const previous = this.#watching;
    const watching = this.#follow(watcher);
    this.#watching = previous === undefined ? watching : Promise.all([previous, watching]);
  }

  /** Turns file events into wake-ups and scans, until the watcher ends. */
  async #follow(watcher: Deno.FsWatcher): Promise<void> {
    try {
      for await (const event of watcher) {
        // Growth wakes the file's task; a new, renamed or removed file calls for a scan.
        if (event.kind === "modify" || event.kind === "access") {
          for (const path of event.paths) {
            const tailer = this.#byPath.get(path);
            // An untracked file that grows (one that was empty, say) is looked at within a
            // second; a busy untracked file costs at most a scan a second.
            if (tailer !== undefined) tailer.wake();
            else if (this.#empty.has(path)) this.nudge();
            else if (event.kind === "modify") this.#nudgeSlow = true;
          }
          if (this.#nudgeSlow) this.#nudge?.();
        } else this.nudge();
      }
    } catch (err) {
      if (this.#watcher === watcher) {
        log.debug("File events stopped ({error}): watching again", { error: describe(err) });
      }
    }
    if (this.#watcher === watcher) {
      // Ended by itself, not closed here: the next scan watches again, and comes soon.
      this.#watcher = undefined;
      this.#watched = "";
      this.#watchesAll = false;
      this.nudge();
    }
  }

  #closeWatcher(): void {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    this.#watched = "";
    this.#watchesAll = false;
    try {
      watcher?.close();
    } catch {
      // Already closed.
    }
  }
}

/** Whether bytes of `record`'s content are read or planned and not yet acknowledged. */
function owes(record: StreamRecord): boolean {
  return record.planned.length > 0 || record.offset < record.size;
}

function keyOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

async function statFile(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && info.ino !== null ? info : undefined;
  } catch {
    return undefined;
  }
}

async function readHead(path: string, info: Deno.FileInfo): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  if (keyOf(await file.stat()) !== keyOf(info)) throw new Error("replaced while opening");
  return await readAt(file, 0, HEAD_BYTES);
}

/**
 * Whether the file at `path` holds `record`'s content: `"yes"` when it starts with the record's
 * head and has the record's tail at its offset (so reading on from there continues the stream),
 * `"shorter"` when it starts the same but ends before the offset (every byte of it was shipped),
 * `"no"` otherwise, and `"unknown"` when it cannot be read, or is not the file `key` names
 * (`dev:ino`, when given: replaced since it was listed).
 */
async function holds(
  path: string,
  record: StreamRecord,
  key?: string,
): Promise<"yes" | "shorter" | "no" | "unknown"> {
  try {
    using file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (key !== undefined && keyOf(info) !== key) return "unknown";
    if (record.headLen === 0 || info.size < record.headLen) return "no";
    if (hashBytes(await readAt(file, 0, record.headLen)) !== record.head) return "no";
    if (info.size < record.offset) return "shorter";
    if (record.offset > 0 && (await tailHash(file, record.offset)) !== record.tail) return "no";
    return "yes";
  } catch {
    return "unknown";
  }
}

/** The tail fingerprint of the file at `path` at `offset`. */
async function tailAt(path: string, offset: number): Promise<string> {
  try {
    using file = await Deno.open(path, { read: true });
    return await tailHash(file, offset);
  } catch {
    return "";
  }
}

/** The offset just after the last newline before `size` (within 64 KiB), or `size`. */
async function lineStartBefore(path: string, size: number): Promise<number> {
  if (size === 0) return 0;
  try {
    using file = await Deno.open(path, { read: true });
    const from = Math.max(0, size - 64 * 1024);
    const bytes = await readAt(file, from, size - from);
    const nl = bytes.lastIndexOf(10);
    return nl === -1 ? size : from + nl + 1;
  } catch {
    return size;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}
