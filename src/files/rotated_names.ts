/**
 * Where rotation moves a file: the files next to it, listed at most once per scan.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { type Found, statFile } from "./identity.ts";

/** Compressed rotations cannot be read as lines. */
const COMPRESSED = /\.(gz|bz2|xz|zst|zip|lz4)$/i;

/**
 * The folder listings of one scan.
 *
 * @example
 * ```ts
 * const folders = new FolderListings(matches.files);
 * const moved = await folders.rotatedNames("/var/log/app.log"); // app.log.1, app-2024.log, ...
 * ```
 */
export class FolderListings {
  readonly #matched: Map<string, Deno.FileInfo>;
  readonly #cache = new Map<string, Found[]>();

  /** @param matched the scan's matches, whose information is reused rather than looked up. */
  constructor(matched: Map<string, Deno.FileInfo>) {
    this.#matched = matched;
  }

  /**
   * Files next to `path` whose names start with its name (`app.log.1`, `app-2024.log`): where
   * rotation moves a file. `anyName`: every file in the folder.
   */
  async rotatedNames(path: string, options: { anyName?: boolean } = {}): Promise<Found[]> {
    const name = basename(path);
    const all = await this.#list(dirname(path));
    if (options.anyName) return all;
    const stem = name.replace(/\.[^.]*$/, "");
    return all.filter((f) => {
      const other = basename(f.path);
      return other !== name && (other.startsWith(name) || (stem !== "" && other.startsWith(stem)));
    });
  }

  /** The regular files (and symlinks to them) in `dir`, compressed ones left out. */
  async #list(dir: string): Promise<Found[]> {
    let all = this.#cache.get(dir);
    if (all !== undefined) return all;
    all = [];
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (!entry.isFile && !entry.isSymlink) continue;
        const full = join(dir, entry.name);
        if (COMPRESSED.test(entry.name)) continue;
        const info = this.#matched.get(full) ?? await statFile(full);
        if (info !== undefined) all.push({ path: full, info });
      }
    } catch {
      // The folder is gone or unreadable: nothing to find there.
    }
    this.#cache.set(dir, all);
    return all;
  }
}
