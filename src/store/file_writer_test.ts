import assert from "node:assert/strict";
import { FileWriter, UnwrittenDataError } from "./file_writer.ts";
import { FakeOpener } from "./_fake_files.ts";

const encoder = new TextEncoder();

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
  opener.disk.delete("x.log"); // logrotate moved it: the path no longer names the open file
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

Deno.test("writer rotates by size between whole chunks: no file too big, no line split or lost", async () => {
  const opener = new FakeOpener();
  const rotated: string[] = [];
  const writer = await FileWriter.open("logs/app.log", {
    opener,
    pageBytes: 16,
    rotation: { maxBytes: 32, onRotated: (path) => rotated.push(path) },
  });
  const lines = Array.from({ length: 20 }, (_, i) => `line ${String(i).padStart(2, "0")}\n`);
  for (const line of lines) {
    writer.enqueue(encoder.encode(line), 1);
    await writer.flush(); // one page per line, so every write is a rotation point
  }
  await writer.close();
  assert.equal(rotated.length, 4, "160 bytes in files of at most 32: five files");
  for (const path of rotated) {
    assert.match(path, /^logs\/app\.\d{4}-\d{2}-\d{2}T[\d-]+\.\d{3}Z(_\d+)?\.log$/);
  }
  const files = [...rotated, "logs/app.log"].map((p) => opener.disk.get(p)!.text);
  for (const text of files) {
    assert.ok(text.length <= 32, `a file holds ${text.length} bytes`);
    assert.ok(text.endsWith("\n"), "every file ends with a whole line");
  }
  assert.equal(files.join(""), lines.join(""), "in order, none lost, none doubled");
  assert.equal(writer.stats.linesWritten, 20);
});

Deno.test("writer reopens its path on request (SIGHUP)", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener });
  writer.enqueue(encoder.encode("one\n"));
  await writer.flush();
  writer.reopen();
  writer.enqueue(encoder.encode("two\n"));
  await writer.close();
  assert.equal(opener.files.length, 2);
  assert.equal(opener.files[0].closed, true);
  assert.equal(opener.disk.get("x.log")!.text, "one\ntwo\n");
});

Deno.test("a lazily created writer that cannot open keeps its lines and retries", async () => {
  const opener = new FakeOpener();
  let refusals = 2;
  const open = opener.open.bind(opener);
  opener.open = (path: string) =>
    refusals-- > 0 ? Promise.reject(new Error("Permission denied (os error 13)")) : open(path);
  const writer = FileWriter.create("late.log", { opener, retryDelayMs: 1 });
  writer.enqueue(encoder.encode("kept\n"));
  await writer.close();
  assert.equal(opener.disk.get("late.log")!.text, "kept\n");
});
