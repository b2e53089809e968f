/**
 * Compressing a rotated file in place, so that at every instant one complete copy of its lines
 * exists on disk: the plain file, or the gzip file that replaced it.
 *
 * @module
 */

import { dirname } from "node:path";
import { readIndex, removeIndex, writeIndex } from "./file_index.ts";

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
  /**
   * The time indexes (`file_index.ts`) of `src` and of the output: the output's gets `src`'s
   * marks and end (offsets into the uncompressed bytes); `src`'s is removed with `src`. Default:
   * none.
   */
  index?: { src: string; dst: string };
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
  const { signal, chunkBytes = 64 * 1024, pace, index } = options;
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
    // Removed rather than truncated: a stale one may be read-only, like the rotation it copies.
    await Deno.remove(tmp).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    const output = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: mode === null ? undefined : mode & 0o777,
    });
    created = true;
    try {
      await pump(input, output, { chunkBytes, signal, pace });
      await output.sync();
      if (index !== undefined) await copyIndex(index);
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
  if (index !== undefined) await removeIndex(index.src);
  return dst;
}

/**
 * Gives the output `src`'s index. A hint only: without it a search reads the whole file. (One
 * gzip member, not one per MiB that a search could seek to: Web `DecompressionStream` stops at
 * the first member, and people read rotated logs with it.)
 */
async function copyIndex(index: { src: string; dst: string }): Promise<void> {
  const plain = await readIndex(index.src);
  if (plain === undefined) return;
  await writeIndex(index.dst, { marks: plain.marks, members: [], end: plain.end }).catch(() => {});
}

/**
 * Copies `input` gzipped into `output` through one reused read buffer: a chunk is handed to the
 * compressor and the buffer reused only once the compressor took it, while its output is drained
 * concurrently. (A fresh buffer per chunk would leave hundreds of megabytes of garbage behind a
 * large file faster than the collector frees it.)
 */
async function pump(
  input: Deno.FsFile,
  output: Deno.FsFile,
  options: { chunkBytes: number; signal?: AbortSignal; pace?: () => Promise<void> },
): Promise<void> {
  const { chunkBytes, signal, pace } = options;
  const gzip = new CompressionStream("gzip");
  const writer = gzip.writable.getWriter();
  const reader = gzip.readable.getReader();
  const draining = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      for (let at = 0; at < value.length;) at += await output.write(value.subarray(at));
    }
  })();
  try {
    const buf = new Uint8Array(chunkBytes);
    for (;;) {
      await pace?.();
      signal?.throwIfAborted();
      const n = await input.read(buf);
      if (n === null) break;
      await writer.write(buf.subarray(0, n));
    }
    await writer.close();
    await draining;
  } catch (err) {
    await writer.abort(err).catch(() => {});
    await reader.cancel(err).catch(() => {});
    await draining.catch(() => {});
    throw err;
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
