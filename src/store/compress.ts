/**
 * Compressing a rotated file in place, so that at every instant one complete copy of its lines
 * exists on disk: the plain file, or the gzip file that replaced it.
 *
 * @module
 */

import { dirname } from "node:path";

/** Options of {@linkcode gzipFile}. */
export interface GzipFileOptions {
  /**
   * Stops the compression: the partial output is removed and `src` kept. Once the output is
   * renamed into place the work is finished regardless, so `src` is not left beside its copy.
   * Default: none.
   */
  signal?: AbortSignal;
  /** Bytes read from `src` at a time, which bounds memory. Default 64 KiB. */
  chunkBytes?: number;
  /**
   * Awaited before each chunk is read: lets the caller yield the CPU to ingestion, since gzip
   * runs on the calling thread. Default: none.
   */
  pace?: () => Promise<void>;
}

/**
 * Compresses `src` into `src + ".gz"`, streaming through a temporary `src + ".gz.tmp"` that is
 * fsynced and then renamed, so a crash never leaves a truncated `.gz`. `src` is removed only after
 * the rename (and the folder's fsync), and kept whenever anything fails; an existing `.gz` of the
 * same name, or a `.gz.tmp` left by a crash, is replaced. The output has the permission bits of
 * `src`.
 *
 * @param src the file to compress; nothing else should be writing to it.
 * @param options see {@linkcode GzipFileOptions}.
 * @returns the path of the compressed file.
 * @throws the signal's reason when aborted, or the file system's error.
 *
 * @example
 * ```ts
 * const gz = await gzipFile("logs/app.2026-11-21T23-54-55.123Z.log");
 * // "logs/app.2026-11-21T23-54-55.123Z.log.gz"; the plain file is gone
 * ```
 */
export async function gzipFile(src: string, options: GzipFileOptions = {}): Promise<string> {
  const { signal, chunkBytes = 64 * 1024, pace } = options;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
    throw new RangeError(`Chunk size must be a positive integer, got ${chunkBytes}`);
  }
  signal?.throwIfAborted();
  const dst = src + ".gz";
  const tmp = dst + ".tmp";
  const input = await Deno.open(src, { read: true });
  let created = false;
  try {
    const mode = (await input.stat()).mode;
    const output = await Deno.open(tmp, {
      write: true,
      create: true,
      truncate: true,
      mode: mode === null ? undefined : mode & 0o777,
    });
    created = true;
    try {
      await pump(input, output, { chunkBytes, signal, pace });
      await output.sync();
    } finally {
      output.close();
    }
    signal?.throwIfAborted();
    await Deno.rename(tmp, dst);
  } catch (err) {
    if (created) await Deno.remove(tmp).catch(() => {});
    throw err;
  } finally {
    input.close();
  }
  // The rename must be durable before the only other copy goes.
  await syncDir(dirname(dst));
  await Deno.remove(src);
  return dst;
}

/** Copies `input` gzipped into `output`, one chunk in flight at a time. */
async function pump(
  input: Deno.FsFile,
  output: Deno.FsFile,
  options: { chunkBytes: number; signal?: AbortSignal; pace?: () => Promise<void> },
): Promise<void> {
  const { chunkBytes, signal, pace } = options;
  // Our own source rather than `input.readable`, which would close the file behind our back.
  let reading: Promise<unknown> = Promise.resolve();
  const plain = new ReadableStream<BufferSource>({
    async pull(controller) {
      await pace?.();
      signal?.throwIfAborted();
      const buf = new Uint8Array(chunkBytes);
      const read = input.read(buf);
      reading = read;
      const n = await read;
      if (n === null) controller.close();
      else controller.enqueue(buf.subarray(0, n));
    },
  }, { highWaterMark: 0 });
  const reader = plain.pipeThrough(new CompressionStream("gzip")).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      signal?.throwIfAborted();
      for (let at = 0; at < value.length;) at += await output.write(value.subarray(at));
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
    // The pipe may be reading ahead; the caller closes `input` only once that read is over.
    await reading.catch(() => {});
  }
}

/** Fsyncs a folder so a rename in it survives a crash; a no-op where folders cannot be opened. */
async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
