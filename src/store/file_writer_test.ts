import assert from "node:assert/strict";
import {
  type FileOpener,
  FileWriter,
  UnwrittenDataError,
  type WritableFile,
} from "./file_writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An in-memory file that records every call and fails the writes it is told to. */
class FakeFile implements WritableFile {
  bytes: number[] = [];
  calls: string[] = [];
  locked = false;
  closed = false;
  /** Errors thrown by the next writes, one each. */
  failures: Error[] = [];
  /** Accept at most this many bytes per write, like a short write. */
  maxWrite = Infinity;

  write(data: Uint8Array): Promise<number> {
    assert.ok(this.locked, "every write happens under the lock");
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure);
    const n = Math.min(data.length, this.maxWrite);
    this.bytes.push(...data.subarray(0, n));
    this.calls.push(`write ${n}`);
    return Promise.resolve(n);
  }
  lock(): Promise<void> {
    this.locked = true;
    this.calls.push("lock");
    return Promise.resolve();
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
  close(): void {
    this.closed = true;
  }
  get text(): string {
    return decoder.decode(new Uint8Array(this.bytes));
  }
}

class FakeOpener implements FileOpener {
  files: FakeFile[] = [];
  current: FakeFile | undefined;
  open(): Promise<WritableFile> {
    this.current = new FakeFile();
    this.files.push(this.current);
    return Promise.resolve(this.current);
  }
  isCurrent(_path: string, file: WritableFile): boolean {
    return file === this.current;
  }
}

function diskFull(): Error {
  return new Error("No space left on device (os error 28)");
}

Deno.test("writer appends queued chunks in order, locked around each write", async () => {
  const opener = new FakeOpener();
  let written = 0;
  const writer = await FileWriter.open("x.log", { opener, onWritten: (n) => written += n });
  for (let i = 0; i < 100; i++) writer.enqueue(encoder.encode(`line ${i}\n`));
  await writer.flush();
  const file = opener.files[0];
  assert.equal(file.text, Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
  assert.equal(written, file.bytes.length, "every byte is given back to the queue's budget");
  const writes = file.calls.filter((c) => c.startsWith("write")).length;
  assert.ok(writes < 10, `group commit: ${writes} writes for 100 chunks`);
  await writer.close();
  assert.equal(file.closed, true);
  assert.equal(file.locked, false, "the lock is released");
});

Deno.test("writer never splits a chunk across pages, so a chunk is one write", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, pageBytes: 10 });
  writer.enqueue(encoder.encode("aaaa\n"));
  writer.enqueue(encoder.encode("bbbbbbb\n"));
  writer.enqueue(encoder.encode("a chunk larger than a page\n"));
  await writer.close();
  const file = opener.files[0];
  assert.equal(file.text, "aaaa\nbbbbbbb\na chunk larger than a page\n");
  assert.deepEqual(file.calls.filter((c) => c.startsWith("write")), [
    "write 5",
    "write 8",
    "write 27",
  ]);
});

Deno.test("writer retries a full disk and a short write, writing every byte once", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, retryDelayMs: 1 });
  const file = opener.files[0];
  file.failures = [diskFull(), diskFull(), diskFull()];
  file.maxWrite = 7;
  writer.enqueue(encoder.encode("accepted line one\naccepted line two\n"));
  await writer.flush();
  assert.equal(file.text, "accepted line one\naccepted line two\n");
  await writer.close();
});

Deno.test("writer reopens the path when the file was moved away", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener });
  writer.enqueue(encoder.encode("before\n"));
  await writer.flush();
  opener.current = undefined; // logrotate renamed it: the path no longer names the open file
  writer.enqueue(encoder.encode("after\n"));
  await writer.close();
  assert.equal(opener.files.length, 2);
  assert.equal(opener.files[0].text, "before\n");
  assert.equal(opener.files[0].closed, true);
  assert.equal(opener.files[1].text, "after\n");
});

Deno.test("writer under fsync batch acknowledges only after the fsync", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, fsync: "batch" });
  writer.enqueue(encoder.encode("durable\n"));
  await writer.flush();
  assert.deepEqual(opener.files[0].calls, ["lock", "write 8", "unlock", "sync"]);
  await writer.close();
});

Deno.test("writer under fsync never does not fsync, even on close", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, fsync: "never" });
  writer.enqueue(encoder.encode("fast\n"));
  await writer.close();
  assert.ok(!opener.files[0].calls.includes("sync"));
});

Deno.test("writer closed while the disk stays full reports the bytes it could not write", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, retryDelayMs: 1 });
  const file = opener.files[0];
  file.failures = Array.from({ length: 1000 }, diskFull);
  writer.enqueue(encoder.encode("stuck\n"));
  const acked = writer.flush();
  const controller = new AbortController();
  const closing = writer.close({ signal: controller.signal });
  controller.abort(new Error("deadline"));
  await assert.rejects(closing, (err: unknown) => {
    assert.ok(err instanceof UnwrittenDataError);
    assert.equal(err.bytes, 6);
    return true;
  });
  await assert.rejects(acked, UnwrittenDataError, "a waiting acknowledgement is refused, not lost");
  assert.equal(file.closed, true);
});

Deno.test("writer refuses chunks after close", async () => {
  const writer = await FileWriter.open("x.log", { opener: new FakeOpener() });
  await writer.close();
  assert.throws(() => writer.enqueue(encoder.encode("late\n")), /closed/);
});
