/**
 * Fingerprints of file content: how the agent tells that a file at a known device and inode is
 * still the file it was reading (and not a new file that got the inode of a deleted one), and that
 * a new file is a copy of one it follows (copytruncate).
 *
 * A fingerprint is a 64-bit hash of a byte range, as 16 hex digits: two 32-bit FNV-1a lanes with
 * different seeds. It is not cryptographic: it guards against accidents, not against an adversary
 * who can already write the log files.
 *
 * @module
 */

/** Bytes at the start of a file that make up its head fingerprint (grown as the file grows). */
export const HEAD_BYTES = 1024;

/** Bytes just before a checkpoint that make up its tail fingerprint. */
export const TAIL_BYTES = 256;

/**
 * Hashes `bytes` into 16 hex digits.
 *
 * @example
 * ```ts
 * hashBytes(new TextEncoder().encode("hello\n")); // "…16 hex digits…"
 * ```
 */
export function hashBytes(bytes: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    a = Math.imul(a ^ byte, 0x01000193);
    b = Math.imul(b ^ byte, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // The length goes in too, so a run of zero bytes does not hash like a shorter run.
  b = Math.imul(b ^ bytes.length, 0x01000193);
  return hex32(a) + hex32(b);
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/**
 * Reads up to `length` bytes of `file` at `position` (fewer at the end of the file), leaving the
 * file's read position where it was.
 */
export async function readAt(
  file: Deno.FsFile,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const back = await file.seek(0, Deno.SeekMode.Current);
  try {
    await file.seek(position, Deno.SeekMode.Start);
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const n = await file.read(out.subarray(filled));
      if (n === null || n === 0) break;
      filled += n;
    }
    return out.subarray(0, filled);
  } finally {
    await file.seek(back, Deno.SeekMode.Start);
  }
}

/** The fingerprint of the `TAIL_BYTES` (or fewer, near the start) just before `offset`. */
export async function tailHash(file: Deno.FsFile, offset: number): Promise<string> {
  if (offset <= 0) return "";
  const from = Math.max(0, offset - TAIL_BYTES);
  const bytes = await readAt(file, from, offset - from);
  // Fewer bytes than asked: the file is shorter than the offset, so it cannot match.
  return bytes.length === offset - from ? hashBytes(bytes) : "short";
}
