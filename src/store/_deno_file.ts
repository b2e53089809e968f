/**
 * The Deno adapter behind {@linkcode FileOpener}: the only place the store touches `Deno.*` files.
 *
 * @module
 */

import { dirname } from "node:path";
import type { FileOpener, WritableFile } from "./file_writer.ts";

interface Identity {
  dev: number;
  ino: number | null;
}

const identities = new WeakMap<WritableFile, Identity>();

/**
 * Whether the process may read `path`. Only with read permission can a writer notice that its
 * path was renamed or deleted (`stat` needs read even on an open file), so without it the writer
 * keeps its handle and relies on SIGHUP.
 */
function canRead(path: string): boolean {
  return Deno.permissions.querySync({ name: "read", path }).state === "granted";
}

/** Opens files with `Deno.open` for append, creating parent folders; needs only write permission. */
export const denoFiles: FileOpener = {
  async open(path: string): Promise<WritableFile> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const file = await Deno.open(path, { append: true, create: true });
    if (canRead(path)) {
      try {
        const { dev, ino } = file.statSync();
        identities.set(file, { dev, ino });
      } catch (err) {
        file.close();
        throw err;
      }
    }
    return file;
  },

  isCurrent(path: string, file: WritableFile): boolean {
    const known = identities.get(file);
    if (known === undefined) return true;
    try {
      const { dev, ino } = Deno.statSync(path);
      return dev === known.dev && ino === known.ino;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  },
};
