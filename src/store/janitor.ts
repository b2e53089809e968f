/**
 * The janitor: what happens to a file after rotation, in the background. It gzips rotated files
 * (paced, so compression never stalls ingestion) and deletes the ones retention expires.
 *
 * It only ever compresses or deletes rotations the output made itself: a file must bear the
 * output's rotated name ({@linkcode parseRotated}) and be read-only, as the writer seals each
 * rotation. Live files are never read-only, so another output whose name looks like a rotation
 * (a source called `app.2026-11-22T00-00-00.000Z`, say) keeps its file.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { dirname, join } from "node:path";
import { describe } from "../_util.ts";
import { gzipFile } from "./compress.ts";
import { type IndexLayout, removeIndex, sidecarOf } from "./file_index.ts";
import { parseRotated, type RotatedFile, selectExpired } from "./rotation.ts";

/** What the janitor does with rotated files. */
export interface JanitorConfig {
  /** Gzip rotated files. Default false. */
  compress?: boolean;
  /** Keep this many rotated files per output, deleting older ones. Default: no limit. */
  keep?: number;
  /** Delete rotated files older than this, in ms. Default: no limit. */
  maxAgeMs?: number;
  /**
   * Whether ingestion is busy now. While it is, compression takes at most a tenth of the
   * thread it shares with ingestion. Default: never busy.
   */
  busy?: () => boolean;
  /**
   * Where the files' time indexes live (`file_index.ts`): compression indexes the `.gz`, and a
   * file deleted loses its index too. Default: no indexes.
   */
  index?: IndexLayout;
}

interface Job {
  livePath: string;
  rotatedPath?: string;
}

/** Bytes gzipped between two pauses: large enough that a pause is worth its timer. */
const CHUNK_BYTES = 256 * 1024;
/** Share of the thread compression may take while ingestion is busy. */
const BUSY_DUTY = 0.1;
const log = getLogger(["logboom", "store"]);

/**
 * Runs compression and retention one job at a time, in order.
 *
 * @example
 * ```ts
 * const janitor = new Janitor({ compress: true, keep: 7 });
 * janitor.rotated("logs/app.log", "logs/app.2026-11-21T00-00-00.000Z.log");
 * await janitor.close(); // an unfinished compression is abandoned; its source is kept
 * ```
 */
export class Janitor {
  readonly #compress: boolean;
  readonly #keep: number | undefined;
  readonly #maxAgeMs: number | undefined;
  readonly #busy: () => boolean;
  readonly #index: IndexLayout | undefined;
  readonly #jobs: Job[] = [];
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #lastPace = 0;

  /** @param config see {@linkcode JanitorConfig} for the defaults. */
  constructor(config: JanitorConfig = {}) {
    this.#compress = config.compress ?? false;
    this.#keep = config.keep;
    this.#maxAgeMs = config.maxAgeMs;
    this.#busy = config.busy ?? (() => false);
    this.#index = config.index;
  }

  /** Whether the janitor has anything to do at all. */
  get active(): boolean {
    return this.#compress || this.#keep !== undefined || this.#maxAgeMs !== undefined;
  }

  /** Jobs queued or under way (a rotated file to compress, a sweep): the backlog. */
  get pending(): number {
    return this.#jobs.length + (this.#running === undefined ? 0 : 1);
  }

  /** Takes a file just rotated away from `livePath`: compress it, then apply retention. */
  rotated(livePath: string, rotatedPath: string): void {
    this.#enqueue({ livePath, rotatedPath });
  }

  /**
   * Looks after `livePath`'s rotated siblings as they are now: compresses those a crash left
   * uncompressed, removes half-written `.gz.tmp` files, and applies retention. For startup.
   */
  sweep(livePath: string): void {
    this.#enqueue({ livePath });
  }

  /** Resolves when every queued job is done; for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops: an unfinished compression is abandoned (its source kept); queued jobs are dropped. */
  async close(): Promise<void> {
    this.#jobs.length = 0;
    this.#abort.abort(new Error("Janitor closed"));
    await this.idle();
  }

  #enqueue(job: Job): void {
    if (!this.active || this.#abort.signal.aborted) return;
    this.#jobs.push(job);
    this.#start();
  }

  #start(): void {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
      // A job queued after the run found none left, but before it ended, still gets its turn.
      if (this.#jobs.length > 0) this.#start();
    });
  }

  async #run(): Promise<void> {
    for (let job = this.#jobs.shift(); job; job = this.#jobs.shift()) {
      try {
        await this.#do(job);
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        log.error('Cannot tidy the rotated files of "{path}": {error}', {
          path: job.livePath,
          error: describe(err),
        });
      }
    }
  }

  async #do({ livePath, rotatedPath }: Job): Promise<void> {
    const signal = this.#abort.signal;
    const pace = () => this.#pace();
    const gzip = (path: string) =>
      gzipFile(path, { signal, pace, chunkBytes: CHUNK_BYTES, index: this.#sidecars(path) });
    if (this.#compress && rotatedPath !== undefined) await gzip(rotatedPath);
    let found = await listRotated(livePath);
    if (rotatedPath === undefined && found.unsealed > 0) {
      log.info(
        'Leaving {count} writable files named like rotations of "{path}": logboom makes its ' +
          "rotations read-only, and only those are compressed or deleted (chmod a-w older ones " +
          "to hand them over)",
        { count: found.unsealed, path: livePath },
      );
    }
    if (rotatedPath === undefined) {
      // What a crash left: half-written .gz.tmp files, and plain files whose .gz is complete
      // (renamed into place) but which were not removed yet.
      for (const path of [...found.leftovers, ...found.superseded]) await Deno.remove(path);
      for (const path of found.superseded) await this.#removeIndex(path);
      if (this.#compress) {
        for (const file of found.rotations) if (!file.compressed) await gzip(file.path);
      }
      found = await listRotated(livePath);
    }
    if (this.#keep === undefined && this.#maxAgeMs === undefined) return;
    const { keep, maxAgeMs } = { keep: this.#keep, maxAgeMs: this.#maxAgeMs };
    const expired = selectExpired(found.rotations, { keep, maxAgeMs });
    for (const file of expired) {
      await Deno.remove(file.path);
      await this.#removeIndex(file.path);
    }
    if (expired.length > 0) {
      log.info('Deleted {count} expired rotations of "{path}"', {
        count: expired.length,
        path: livePath,
      });
    }
  }

  /** The index of `path` and of its `.gz`, for compression. */
  #sidecars(path: string): { src: string; dst: string } | undefined {
    if (this.#index === undefined) return undefined;
    const src = sidecarOf(this.#index, path);
    const dst = sidecarOf(this.#index, path + ".gz");
    return src === undefined || dst === undefined ? undefined : { src, dst };
  }

  async #removeIndex(path: string): Promise<void> {
    if (this.#index !== undefined) await removeIndex(sidecarOf(this.#index, path));
  }

  /**
   * Between gzip chunks: while ingestion is busy, sleep three times what the chunk took; when it
   * is not, go on at once (a timer, even of 0 ms, would cap compression at a chunk per 4 ms).
   */
  async #pace(): Promise<void> {
    const now = performance.now();
    const took = this.#lastPace === 0 ? 0 : now - this.#lastPace;
    if (this.#busy() && took > 0) {
      const rest = Math.min(100, took * (1 / BUSY_DUTY - 1));
      await new Promise((resolve) => setTimeout(resolve, rest));
    }
    this.#lastPace = performance.now();
  }
}

/** A live file's rotated siblings, sorted out. */
interface Rotations {
  /** One file per rotation: its `.gz` when there is one, else the plain file. */
  rotations: RotatedFile[];
  /** Plain files whose `.gz` exists too. */
  superseded: string[];
  /** `.gz.tmp` files of an interrupted compression. */
  leftovers: string[];
  /** Files with a rotated name that are writable, so not rotations logboom made: left alone. */
  unsealed: number;
}

async function listRotated(livePath: string): Promise<Rotations> {
  const dir = dirname(livePath);
  const names = new Set<string>();
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) names.add(entry.name);
  const found: Rotations = { rotations: [], superseded: [], leftovers: [], unsealed: 0 };
  const sealed = async (name: string) => {
    if (await isSealed(join(dir, name))) return true;
    found.unsealed++;
    return false;
  };
  for (const name of names) {
    if (name.endsWith(".gz.tmp")) {
      if (parseRotated(livePath, name.slice(0, -".tmp".length)) && await sealed(name)) {
        found.leftovers.push(join(dir, name));
      }
      continue;
    }
    const file = parseRotated(livePath, name);
    if (file === undefined || !await sealed(name)) continue;
    if (!file.compressed && names.has(name + ".gz") && await isSealed(join(dir, name + ".gz"))) {
      found.superseded.push(file.path);
    } else found.rotations.push(file);
  }
  return found;
}

/**
 * Whether `path` is a regular file that nobody may write to: how the rotations the writer made
 * are told from other files (on Windows, which has no such modes, every file counts).
 */
async function isSealed(path: string): Promise<boolean> {
  try {
    const { isFile, mode } = await Deno.lstat(path);
    return isFile && (mode === null || (mode & 0o222) === 0);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
