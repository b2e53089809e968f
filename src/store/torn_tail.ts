/**
 * Repair of a log whose last line was cut short, by a crash or a full disk, before the file is
 * appended to again.
 *
 * @module
 */

const NEWLINE = 10;

/**
 * Ends `path` with a newline if its last line is unterminated, so the next line appended starts a
 * line of its own instead of gluing onto the torn one. Only the last byte is read, so a file of
 * any size costs the same. The check and the append hold the file's exclusive advisory lock, like
 * every write of the file sink.
 *
 * @param path the log file.
 * @returns `true` when a newline was appended (worth a warning), `false` when the file ends with
 * one, is empty, or does not exist.
 * @throws the file system's error when the file cannot be read or written.
 *
 * @example
 * ```ts
 * if (await repairTornTail("aggregated_logs.txt")) {
 *   log.warn("Ended the torn last line of aggregated_logs.txt");
 * }
 * ```
 */
export async function repairTornTail(path: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, append: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  try {
    await file.lock(true);
    const size = await file.seek(0, Deno.SeekMode.End);
    if (size === 0) return false;
    await file.seek(-1, Deno.SeekMode.End);
    const last = new Uint8Array(1);
    if (await file.read(last) !== 1) return false;
    if (last[0] === NEWLINE) return false;
    // Opened for append: the newline lands at the end even if another writer got there first.
    await file.write(new Uint8Array([NEWLINE]));
    return true;
  } finally {
    file.close();
  }
}
