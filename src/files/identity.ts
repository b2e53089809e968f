/**
 * A file's identity: its device and inode (`dev:ino`) together with fingerprints of its first
 * bytes (the head) and of the bytes just before a checkpoint (the tail). With them the file input
 * tells a renamed file from a new one, a new file in a reused inode from the old one, and finds
 * the copy a truncated file's unread part went to.
 *
 * @module
 */

import type { StreamRecord } from "./checkpoint.ts";
import { hashBytes, HEAD_BYTES, readAt, tailHash } from "./fingerprint.ts";

/** A file found at a path. */
export interface Found {
  path: string;
  info: Deno.FileInfo;
}

/** `dev:ino` of a file. */
export function keyOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/** `path`'s information when it is a regular file with an inode; `undefined` otherwise. */
export async function statFile(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && info.ino !== null ? info : undefined;
  } catch {
    return undefined;
  }
}

/** The first bytes (up to 1 KiB) of the file at `path`; throws if it is not `info`'s file now. */
export async function readHead(path: string, info: Deno.FileInfo): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  if (keyOf(await file.stat()) !== keyOf(info)) throw new Error("replaced while opening");
  return await readAt(file, 0, HEAD_BYTES);
}

/**
 * Whether the file at `path` holds `record`'s content: `"yes"` when it starts with the record's
 * head and has the record's tail at its offset (so reading on from there continues the stream),
 * `"shorter"` when it starts the same but ends before the offset (every byte of it was shipped),
 * `"no"` otherwise, and `"unknown"` when it cannot be read, or is not the file `key` names
 * (`dev:ino`, when given: replaced since it was listed).
 */
export async function holds(
  path: string,
  record: StreamRecord,
  key?: string,
): Promise<"yes" | "shorter" | "no" | "unknown"> {
  // The record as it is now: an acknowledgement may move its offset and tail while the file is
  // read, and an offset with another offset's tail is no content at all.
  const { head, headLen, offset, tail } = record;
  try {
    using file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (key !== undefined && keyOf(info) !== key) return "unknown";
    if (headLen === 0 || info.size < headLen) return "no";
    if (hashBytes(await readAt(file, 0, headLen)) !== head) return "no";
    if (info.size < offset) return "shorter";
    if (offset > 0 && (await tailHash(file, offset)) !== tail) return "no";
    return "yes";
  } catch {
    return "unknown";
  }
}

/**
 * Whether the open `file`, `size` bytes long, holds `record`'s content: at least its offset, its
 * head, and its tail at its offset.
 */
export async function fileHolds(
  file: Deno.FsFile,
  size: number,
  record: StreamRecord,
): Promise<boolean> {
  const { head, headLen, offset, tail } = record;
  return size >= offset &&
    (headLen === 0 || hashBytes(await readAt(file, 0, headLen)) === head) &&
    (offset === 0 || (await tailHash(file, offset)) === tail);
}

/** The tail fingerprint of the file at `path` at `offset`. */
export async function tailAt(path: string, offset: number): Promise<string> {
  try {
    using file = await Deno.open(path, { read: true });
    return await tailHash(file, offset);
  } catch {
    return "";
  }
}

/** The offset just after the last newline before `size` (within 64 KiB), or `size`. */
export async function lineStartBefore(path: string, size: number): Promise<number> {
  if (size === 0) return 0;
  try {
    using file = await Deno.open(path, { read: true });
    const from = Math.max(0, size - 64 * 1024);
    const bytes = await readAt(file, from, size - from);
    const nl = bytes.lastIndexOf(10);
    return nl === -1 ? size : from + nl + 1;
  } catch {
    return size;
  }
}

/** Whether the first `length` bytes of `a` and `b` are the same. */
export function sameBytes(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}
