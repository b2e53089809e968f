import assert from "node:assert/strict";
import { FileWriter, UnwrittenDataError } from "./file_writer.ts";
import { type FakeFile, FakeOpener } from "./_fake_files.ts";

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

Deno.test("flush after the writer stopped settles at once instead of never", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, retryDelayMs: 1 });
  opener.files[0].failures = Array.from({ length: 1000 }, diskFull);
  writer.enqueue(encoder.encode("stuck\n"));
  await assert.rejects(writer.close({ signal: AbortSignal.abort() }), UnwrittenDataError);
  // The loop is gone: a later acknowledgement must be refused, not left waiting forever.
  await assert.rejects(writer.flush(), UnwrittenDataError);
  const done = await FileWriter.open("y.log", { opener });
  done.enqueue(encoder.encode("stored\n"));
  await done.close();
  await done.flush(); // everything was written: nothing to refuse
});

Deno.test("a writer that keeps failing says why and since when, until it writes again", async () => {
  const opener = new FakeOpener();
  let now = Date.parse("2026-11-30T10:00:00Z");
  const writer = FileWriter.create("logs/a/x.log", {
    opener,
    retryDelayMs: 1,
    clock: () => now,
  });
  opener.refused.set("logs/a/x.log", new Error("Not a directory (os error 20)"));
  writer.enqueue(encoder.encode("held\n"));
  const acked = writer.flush();
  const deadline = Date.now() + 5000;
  while ((writer.failure?.failures ?? 0) < 3) {
    assert.ok(Date.now() < deadline, "the failures were never counted");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(writer.failure?.error, "Not a directory (os error 20)");
  assert.equal(writer.failure?.since, Date.parse("2026-11-30T10:00:00Z"));
  assert.equal(writer.idle, false);
  now += 60_000;
  opener.refused.clear();
  await acked;
  assert.equal(writer.failure, undefined);
  assert.equal(opener.disk.get("logs/a/x.log")?.text, "held\n");
  await writer.close();
});

Deno.test("a file removed under the writer is not made again, empty, by its last fsync", async () => {
  const opener = new FakeOpener();
  const writer = await FileWriter.open("x.log", { opener, fsync: "interval" });
  writer.enqueue(encoder.encode("line\n"));
  await writer.flush();
  opener.disk.delete("x.log"); // removed (or moved by logrotate) after the write
  await writer.close();
  assert.equal(opener.files.length, 1, "no new file was opened for the fsync");
  assert.equal(opener.disk.has("x.log"), false);
  assert.deepEqual(opener.files[0].calls.slice(-1), ["sync"], "the file written to is synced");
});

const DAY = 24 * 3600_000;

Deno.test("-rotateEvery names a rotated file after the boundary that ended its period", async () => {
  const opener = new FakeOpener();
  let now = Date.parse("2026-11-21T23:59:59.000Z");
  const rotated: string[] = [];
  const writer = FileWriter.create("logs/app.log", {
    opener,
    clock: () => now,
    rotation: { everyMs: DAY, onRotated: (path) => rotated.push(path) },
  });
  const write = async (text: string, at: string) => {
    now = Date.parse(at);
    writer.enqueue(encoder.encode(text));
    await writer.flush();
  };
  await write("21st\n", "2026-11-21T23:59:59.000Z");
  await write("22nd\n", "2026-11-22T00:03:17.412Z"); // first write after midnight
  await write("24th\n", "2026-11-24T08:00:00.000Z"); // after a quiet day and more
  await writer.close();
  assert.deepEqual(rotated, [
    "logs/app.2026-11-22T00-00-00.000Z.log",
    "logs/app.2026-11-23T00-00-00.000Z.log",
  ]);
  assert.equal(opener.disk.get(rotated[0])?.text, "21st\n");
  assert.equal(opener.disk.get(rotated[1])?.text, "22nd\n");
  assert.equal(opener.disk.get("logs/app.log")?.text, "24th\n");
  assert.deepEqual([...opener.sealed], rotated, "rotated files are sealed read-only");
});

Deno.test("-rotateEvery after a restart rotates a file left from an earlier period first", async () => {
  const opener = new FakeOpener();
  const old = await opener.open("app.log") as FakeFile;
  old.bytes = [...encoder.encode("from yesterday\n")];
  old.mtime = new Date("2026-11-20T15:00:00.000Z");
  old.close();
  const rotated: string[] = [];
  const writer = FileWriter.create("app.log", {
    opener,
    clock: () => Date.parse("2026-11-21T09:00:00.000Z"),
    rotation: { everyMs: DAY, onRotated: (path) => rotated.push(path) },
  });
  writer.enqueue(encoder.encode("today\n"));
  await writer.close();
  assert.deepEqual(rotated, ["app.2026-11-21T00-00-00.000Z.log"]);
  assert.equal(opener.disk.get(rotated[0])?.text, "from yesterday\n");
  assert.equal(opener.disk.get("app.log")?.text, "today\n");
});

Deno.test("a writer handed a file over writes only once `after` settles; a close gives up on it", async () => {
  const opener = new FakeOpener();
  const handover = Promise.withResolvers<void>();
  const writer = await FileWriter.open("x.log", { opener, after: handover.promise });
  writer.enqueue(encoder.encode("queued meanwhile\n"));
  const flushed = writer.flush();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(opener.files[0].calls, [], "written before the handover");
  handover.resolve();
  await flushed;
  assert.equal(opener.files[0].text, "queued meanwhile\n");
  await writer.close();
  // Closed with nothing queued, a writer never handed its file does not wait for it.
  const idle = await FileWriter.open("y.log", { opener, after: new Promise(() => {}) });
  await idle.close();
  // With lines queued, a close that is told to give up says what it could not write.
  const stuck = await FileWriter.open("z.log", { opener, after: new Promise(() => {}) });
  stuck.enqueue(encoder.encode("never handed over\n"));
  await assert.rejects(
    () => stuck.close({ signal: AbortSignal.abort() }),
    (err) => err instanceof UnwrittenDataError && err.bytes === 18,
  );
});
