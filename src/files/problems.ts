/**
 * What an input's globs match and cannot follow, said once per path rather than at every scan:
 * files that cannot be read (permissions), matches that are not regular files (folders, FIFOs,
 * devices, sockets), folders that cannot be listed, and the process's own files. A problem that
 * goes away is forgotten, so it is said again if it comes back.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";

/** Why a match is not followed. */
export type Problem = "unreadable" | "special" | "unlisted" | "own";

/** Matches not followed now, by kind. */
export interface ProblemCounts {
  /** Matches that cannot be read now. */
  unreadable: number;
  /** Matches that are not regular files now. */
  skipped: number;
}

const log = getLogger(["logboom", "files", "input"]);

/**
 * The problems of one input's matches across scans.
 *
 * @example
 * ```ts
 * const problems = new Problems("app");
 * problems.beginScan();
 * problems.unreadable("/var/log/app/secret.log", err); // said once
 * const { unreadable } = problems.endScan(); // 1
 * ```
 */
export class Problems {
  readonly #input: string;
  /** Problems said, by path: each is said again only after it went away. */
  readonly #said = new Map<string, Problem>();
  /** Paths whose problem was seen by the scan under way. */
  #seen = new Set<string>();

  /** @param input the input's name, in what is said. */
  constructor(input: string) {
    this.#input = input;
  }

  /** Starts a scan: problems it does not see again are forgotten at its end. */
  beginScan(): void {
    this.#seen = new Set();
  }

  /** Keeps what was said of `path` as seen by this scan (a retry waits), without saying more. */
  keep(path: string): void {
    this.#seen.add(path);
  }

  /** Forgets problems not seen by this scan, and counts the rest. */
  endScan(): ProblemCounts {
    let unreadable = 0;
    let skipped = 0;
    for (const [path, problem] of this.#said) {
      if (!this.#seen.has(path)) this.#said.delete(path);
      else if (problem === "unreadable") unreadable++;
      else if (problem === "special") skipped++;
    }
    return { unreadable, skipped };
  }

  /** `path` matched and cannot be read. */
  unreadable(path: string, err: unknown): void {
    this.#note(
      path,
      "unreadable",
      () =>
        log.warn("Cannot read {path}, matched by input {input}: {error}", {
          path,
          input: this.#input,
          error: describe(err),
        }),
    );
  }

  /** `path` matched and is not a regular file. */
  special(path: string, info: Deno.FileInfo): void {
    const kind = info.isDirectory
      ? "a folder"
      : info.isFifo
      ? "a FIFO"
      : info.isSocket
      ? "a socket"
      : info.isCharDevice || info.isBlockDevice
      ? "a device"
      : "not a regular file";
    this.#note(path, "special", () =>
      log.warn(
        "Skipping {path} ({kind}), matched by input {input}: only regular files are read",
        { path, kind, input: this.#input },
      ));
  }

  /** `folder`, a folder of the globs, cannot be listed. */
  unlisted(folder: string, err: unknown): void {
    this.#note(
      folder,
      "unlisted",
      () =>
        log.warn("Cannot list {folder}, a folder of input {input}'s globs: {error}", {
          folder,
          input: this.#input,
          error: describe(err),
        }),
    );
  }

  /** `path` is written by the process itself. */
  own(path: string): void {
    this.#note(
      path,
      "own",
      () => log.info("Not following {path}: logboom writes it itself", { path }),
    );
  }

  /** Notes `problem` of `path` for this scan; says it (`say`) only when it is new. */
  #note(path: string, problem: Problem, say: () => void): void {
    this.#seen.add(path);
    if (this.#said.get(path) === problem) return;
    this.#said.set(path, problem);
    say();
  }
}
