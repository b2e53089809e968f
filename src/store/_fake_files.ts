/**
 * In-memory files for the store's unit tests: they record every call and fail on demand.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { FileOpener, WritableFile } from "./file_writer.ts";

const decoder = new TextDecoder();

/** An in-memory file that records every call and fails the writes it is told to. */
export class FakeFile implements WritableFile {
  bytes: number[] = [];
  calls: string[] = [];
  locked = false;
  closed = false;
  /** Errors thrown by the next writes, one each. */
  failures: Error[] = [];
  /** Accept at most this many bytes per write, like a short write. */
  maxWrite = Infinity;
  /** While set, `lock` waits for it, as when another process holds the flock. */
  lockHeld: Promise<void> | undefined;
  /** Called when the file is closed. */
  onClose: () => void = () => {};

  write(data: Uint8Array): Promise<number> {
    assert.ok(this.locked, "every write happens under the lock");
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure);
    const n = Math.min(data.length, this.maxWrite);
    this.bytes.push(...data.subarray(0, n));
    this.calls.push(`write ${n}`);
    return Promise.resolve(n);
  }
  async lock(): Promise<void> {
    await this.lockHeld;
    this.locked = true;
    this.calls.push("lock");
  }
  unlock(): Promise<void> {
    this.locked = false;
    this.calls.push("unlock");
    return Promise.resolve();
  }
  sync(): Promise<void> {
    this.calls.push("sync");
    return Promise.resolve();
  }
  seekSync(): number {
    return this.bytes.length;
  }
  /** When the file was last written; tests set it to stand for a file left by an earlier run. */
  mtime: Date | null = null;
  statSync(): { mtime: Date | null } {
    return { mtime: this.mtime };
  }
  close(): void {
    if (!this.closed) this.onClose();
    this.closed = true;
  }
  get text(): string {
    return decoder.decode(new Uint8Array(this.bytes));
  }
}

/** A folder in memory: paths name fake files; every open of a missing path creates one. */
export class FakeOpener implements FileOpener {
  files: FakeFile[] = [];
  disk = new Map<string, FakeFile>();
  /** Paths whose opens fail, with the error, e.g. when a file takes the name of a folder. */
  refused = new Map<string, Error>();
  /** Given to each file opened while set: another process holds every lock. */
  lockHeld: Promise<void> | undefined;
  /** Files open now, and the most open at the same time so far. */
  openNow = 0;
  mostOpen = 0;
  open(path: string): Promise<WritableFile> {
    const refusal = this.refused.get(path);
    if (refusal !== undefined) return Promise.reject(refusal);
    let file = this.disk.get(path);
    if (file === undefined || file.closed) {
      file = new FakeFile();
      file.bytes = this.disk.get(path)?.bytes ?? [];
      file.mtime = this.disk.get(path)?.mtime ?? null;
      file.lockHeld = this.lockHeld;
      file.onClose = () => this.openNow--;
      this.files.push(file);
      this.disk.set(path, file);
      this.mostOpen = Math.max(this.mostOpen, ++this.openNow);
    }
    return Promise.resolve(file);
  }
  isCurrent(path: string, file: WritableFile): boolean {
    return this.disk.get(path) === file;
  }
  rename(from: string, to: string): Promise<void> {
    this.disk.set(to, this.disk.get(from)!);
    this.disk.delete(from);
    return Promise.resolve();
  }
  exists(path: string): boolean {
    return this.disk.has(path);
  }
  /** Paths made read-only by {@linkcode FakeOpener.seal}. */
  sealed = new Set<string>();
  seal(path: string): Promise<void> {
    this.sealed.add(path);
    return Promise.resolve();
  }
}
