/**
 * `serve -watch PATH...`: the aggregator follows local files itself, through the agent's tailer
 * (the same rotation handling and identity rules), and writes their lines to its router like any
 * input, so they are stored and streamed to live tails. With `serve -watch app.log`,
 * `logboom tail` shows the file's new lines as they are written.
 *
 * Each file's lines get the source named after the file (`/var/log/app.log.1` -> `app`), and the
 * host of this machine when `--allow-sys=hostname` lets logboom read it, else `localhost`. Files
 * present at startup are followed from their end, as `tail -F` does, and files that appear later
 * from their start; positions are kept in memory only, so a restart starts at the end again.
 *
 * Files logboom writes itself are never followed, whatever the globs match: its outputs (the
 * `-logFile` path or template), their rotations (`.gz` and `.gz.tmp` included) and its state
 * folder. `serve -watch '*.log' -logFile all.log` would otherwise read every stored line back in
 * and store it again, forever.
 *
 * @module
 */

import { basename, dirname, join, normalize, resolve, sep } from "node:path";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { CheckpointStore } from "../files/checkpoint.ts";
import { FileInput } from "../files/file_input.ts";
import { compileGlob } from "../files/glob.ts";
import type { PreparedBatch, StreamTarget } from "../files/tailer.ts";
import { canRead } from "../_util.ts";

/**
 * The source a watched file's lines are filed under: its name without rotation suffixes
 * (`.1`, `.2`) and without its extension.
 *
 * @example
 * ```ts
 * sourceFromPath("/var/log/nginx/access.log.1"); // "access"
 * ```
 */
export function sourceFromPath(path: string): string {
  const name = basename(path).replace(/(\.\d+)+$/, "");
  const stem = name.replace(/\.[^.]+$/, "");
  return stem === "" ? name || "watch" : stem;
}

const EMPTY = new Uint8Array(0);

/** Writes a tailer's batches to the router; a batch is acknowledged once the sinks flushed it. */
class RouterTarget implements StreamTarget {
  readonly #router: Sink;
  readonly #host: string;
  readonly #metas = new Map<string, BatchMeta>();

  constructor(router: Sink, host: string) {
    this.#router = router;
    this.#host = host;
  }

  async prepare(data: Uint8Array, batch: PreparedBatch): Promise<unknown> {
    const source = sourceFromPath(batch.path);
    let meta = this.#metas.get(source);
    if (meta === undefined) {
      meta = { source, host: this.#host, input: "watch" };
      if (this.#metas.size < 10_000) this.#metas.set(source, meta);
    }
    // The router's sinks copy what they keep: `data` is borrowed for this call only.
    const written = { data, lines: batch.lines, meta, receivedAt: Date.now() };
    // Given the batch, the wait is for its own destination: a failing one holds up only its file.
    if (!this.#router.write(written)) await this.#router.writable(written);
    // What the acknowledgement waits for: this batch's destinations, not every file's. Its bytes
    // are not kept, only where they went.
    const delivered: Batch = { data: EMPTY, lines: 0, meta, receivedAt: written.receivedAt };
    return delivered;
  }

  async deliver(payload: unknown): Promise<void> {
    await this.#router.flush([payload as Batch]);
  }
}

/** A rotation's time in a rotated output's name (see `store/rotation.ts`). */
const ROTATION_STAMP = /\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z(?:_\d{3,})?/;

/**
 * Whether a path is one logboom writes itself: an output made from one of `outputs` (paths or
 * `-logFile` templates, where a value is any name and `{date}` a day), a rotation of one (its
 * time in the name, compressed or being compressed), or anything inside `folders` (the state
 * folder). Relative paths are taken from the working folder.
 *
 * @example
 * ```ts
 * const own = ownFiles(["logs/{source}.log"]);
 * own("logs/web.log"); // true
 * own("logs/web.2026-11-21T23-54-55.123Z.log.gz"); // true
 * own("logs/web.txt"); // false
 * ```
 */
export function ownFiles(
  outputs: readonly string[],
  folders: readonly string[] = [],
): (path: string) => boolean {
  const templates = outputs.map((output) => templateRegex(absolute(output)));
  const inside = folders.map((folder) => absolute(folder).replace(/\/*$/, sep));
  return (path) => {
    const full = absolute(path);
    if (inside.some((folder) => full.startsWith(folder))) return true;
    const name = basename(full).replace(/\.gz(?:\.tmp)?$/, "").replace(ROTATION_STAMP, "");
    const live = join(dirname(full), name);
    return templates.some((t) => t.test(full) || t.test(live));
  };
}

function absolute(path: string): string {
  try {
    return resolve(path);
  } catch {
    // No permission to read the working folder: compared as written.
    return normalize(path);
  }
}

/** What a `-logFile` template can render to, as one expression over whole paths. */
function templateRegex(template: string): RegExp {
  let pattern = "";
  let at = 0;
  for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
    pattern += escape(template.slice(at, match.index));
    pattern += match[1] === "date" ? "\\d{4}-\\d{2}-\\d{2}" : "[^/]+";
    at = match.index + match[0].length;
  }
  pattern += escape(template.slice(at));
  return new RegExp(`^${pattern}$`, "u");
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Options of {@linkcode WatchInput.start}. */
export interface WatchInputOptions {
  /** Files or globs to follow. */
  paths: readonly string[];
  /**
   * What logboom writes: `-logFile` paths or templates, whose files and rotations are never
   * followed. Default none.
   */
  outputs?: readonly string[];
  /** Folders logboom keeps its state in: nothing inside is followed. Default none. */
  stateDirs?: readonly string[];
  /** The host lines are filed under. Default `localhost`. */
  host?: string;
  /** Longer lines are split. Default 1 MiB. */
  maxLine?: number;
  /**
   * Positions to resume from: a config reload hands the store of the input it replaces (stopped
   * first) to the new one, so no line is read twice or skipped. Default: a new one, and files
   * present at the first scan are followed from their end.
   */
  store?: CheckpointStore;
}

/**
 * Follows local files into a router.
 *
 * @example
 * ```ts
 * const watch = WatchInput.start(router, { paths: ["app.log"] });
 * // on shutdown, before the router closes:
 * await watch.close();
 * ```
 */
export class WatchInput {
  readonly #input: FileInput;
  /** The positions it reads from, in memory. */
  readonly store: CheckpointStore;

  private constructor(input: FileInput, store: CheckpointStore) {
    this.#input = input;
    this.store = store;
  }

  /** Starts following `options.paths` into `router`. */
  static start(router: Sink, options: WatchInputOptions): WatchInput {
    const { paths, host = "localhost", maxLine, outputs = [], stateDirs = [] } = options;
    if (paths.length === 0) throw new TypeError("Watch needs at least one path");
    const store = options.store ?? CheckpointStore.memory();
    const input = FileInput.start({
      name: "watch",
      paths,
      ownFiles: ownFiles(outputs, stateDirs),
      startAt: "end",
      target: new RouterTarget(router, host),
      store,
      maxLine,
      batchWaitMs: 20,
    });
    return new WatchInput(input, store);
  }

  /**
   * The paths among `paths` whose folder logboom may not read, as `--allow-read=` wants them;
   * empty when every one is readable.
   */
  static unreadable(paths: readonly string[]): string[] {
    const out: string[] = [];
    for (const path of paths) {
      const root = compileGlob(path).root;
      if (!canRead(root)) {
        out.push(root);
      }
    }
    return [...new Set(out)];
  }

  /** Files followed now. */
  get openFiles(): number {
    return this.#input.openFiles;
  }

  /** Stops following; lines already read are written to the router first. */
  async close(): Promise<void> {
    await this.#input.stop(2000);
  }
}
