/**
 * File events for an input: a watcher of its globs' folders, so new files and growth are seen at
 * once rather than at the next scan. The watcher is made again when a folder is replaced (a new
 * inode: the old watch sees nothing of it), when it ends by itself, and a minute after file events
 * were unavailable.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import type { Clock } from "../clock.ts";
import type { Glob } from "./glob.ts";

/** Makes a watcher of folders, as `Deno.watchFs` does. */
export type WatchFs = (paths: string[], options: { recursive: boolean }) => Deno.FsWatcher;

/** What a {@linkcode FolderWatch} needs. */
export interface FolderWatchOptions {
  /** The globs whose root folders are watched. */
  globs: readonly Glob[];
  /** Makes the watcher. */
  watchFs: WatchFs;
  /** Time, for the retry of unavailable events. */
  clock: Clock;
  /** The scan period, said when events are unavailable. */
  scanIntervalMs: number;
  /** Told each event. */
  onEvent: (event: Deno.FsEvent) => void;
  /** Told when the watcher ended by itself: a scan should come soon, and watch again. */
  onEnded: () => void;
}

const log = getLogger(["logboom", "files", "input"]);
/** After file events were unavailable, they are tried again this much later, in ms. */
const WATCH_RETRY_MS = 60_000;

/**
 * Watches the folders of an input's globs; {@linkcode FolderWatch.refresh} at every scan.
 *
 * @example
 * ```ts
 * const events = new FolderWatch({ globs, watchFs: Deno.watchFs, clock, scanIntervalMs: 1000,
 *   onEvent: (event) => console.log(event.kind), onEnded: () => {} });
 * events.refresh(); // at each scan, before listing
 * events.close();
 * await events.done;
 * ```
 */
export class FolderWatch {
  readonly #options: FolderWatchOptions;
  #watcher: Deno.FsWatcher | undefined;
  /** Whether file events cover every glob's folder (then full scans are rarer). */
  #coversAll = false;
  /** The folders watched, with their identities. */
  #watched = "";
  #retryAt = 0;
  #closed = false;
  #watching: Promise<unknown> | undefined;

  /** @param options the globs, the watcher maker, and where events go. */
  constructor(options: FolderWatchOptions) {
    this.#options = options;
  }

  /** Whether file events cover every glob's folder. */
  get coversAll(): boolean {
    return this.#coversAll;
  }

  /** Resolves once every watcher's loop ended. */
  get done(): Promise<unknown> {
    return this.#watching ?? Promise.resolve();
  }

  /**
   * Watches the globs' root folders that exist now, making the watcher again if they changed
   * (created, replaced) or it ended, or if events were unavailable a minute ago.
   */
  refresh(): void {
    const { globs, clock } = this.#options;
    const roots = [...new Set(globs.map((g) => g.root))].sort();
    const recursive = globs.some((g) => g.segments.length > 1);
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
    if (this.#watcher === undefined && clock.now() >= this.#retryAt) this.#watched = "";
    this.#coversAll = this.#watcher !== undefined && existing.length === roots.length;
    if (wanted === this.#watched || this.#closed) return;
    this.#closeWatcher();
    this.#watched = wanted;
    if (existing.length === 0) return;
    this.#start(existing, recursive, existing.length === roots.length);
  }

  /** Stops watching for good. */
  close(): void {
    this.#closed = true;
    this.#closeWatcher();
  }

  #start(folders: string[], recursive: boolean, coversAll: boolean): void {
    let watcher: Deno.FsWatcher;
    try {
      watcher = this.#options.watchFs(folders, { recursive });
    } catch (err) {
      this.#retryAt = this.#options.clock.now() + WATCH_RETRY_MS;
      log.info("File events unavailable ({error}): scanning every {interval} ms", {
        error: describe(err),
        interval: this.#options.scanIntervalMs,
      });
      return;
    }
    this.#watcher = watcher;
    this.#coversAll = coversAll;
    const previous = this.#watching;
    const watching = this.#follow(watcher);
    this.#watching = previous === undefined ? watching : Promise.all([previous, watching]);
  }

  /** Hands the watcher's events on until it ends. */
  async #follow(watcher: Deno.FsWatcher): Promise<void> {
    try {
      for await (const event of watcher) this.#options.onEvent(event);
    } catch (err) {
      if (this.#watcher === watcher) {
        log.debug("File events stopped ({error}): watching again", { error: describe(err) });
      }
    }
    if (this.#watcher === watcher) {
      // Ended by itself, not closed here: the next scan watches again, and comes soon.
      this.#watcher = undefined;
      this.#watched = "";
      this.#coversAll = false;
      this.#options.onEnded();
    }
  }

  #closeWatcher(): void {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    this.#watched = "";
    this.#coversAll = false;
    try {
      watcher?.close();
    } catch {
      // Already closed.
    }
  }
}
