/**
 * The Deno adapter behind {@linkcode FileOpener}: the only place the store touches `Deno.*` files.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { dirname } from "node:path";
import { canRead } from "../_util.ts";
import type { FileOpener, WritableFile } from "./file_writer.ts";
import { repairTornTail } from "./torn_tail.ts";

interface Identity {
  dev: number;
  ino: number | null;
}

const identities = new WeakMap<WritableFile, Identity>();
const log = getLogger(["logboom", "store"]);

/**
 * Opens files with `Deno.open` for append, creating parent folders; needs only write permission.
 * With read permission it also ends a torn last line left by a crash before appending, and
 * refuses a read-only file (a sealed rotation, which even root must not append to).
 */
export const denoFiles: FileOpener = {
  async open(path: string): Promise<WritableFile> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const readable = canRead(path);
    if (readable && await repairTornTail(path)) {
      log.warn(
        '"{path}" ended in the middle of a line (an earlier crash?): ended it with a newline',
        {
          path,
        },
      );
    }
    const file = await Deno.open(path, { append: true, create: true });
    if (readable) {
      try {
        const { dev, ino, mode } = file.statSync();
        if (mode !== null && (mode & 0o200) === 0) {
          throw new Deno.errors.PermissionDenied(
            `"${path}" is read-only (a rotated file?): not appending to it`,
          );
        }
        identities.set(file, { dev, ino });
      } catch (err) {
        file.close();
        throw err;
      }
    }
    return file;
  },

  async seal(path: string): Promise<void> {
    if (Deno.build.os === "windows") return;
    const { mode } = await Deno.stat(path);
    if (mode !== null) await Deno.chmod(path, mode & 0o7555);
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

  rename(from: string, to: string): Promise<void> {
    return Deno.rename(from, to);
  },

  exists(path: string): boolean {
    try {
      Deno.lstatSync(path);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  },
};
