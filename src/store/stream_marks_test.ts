import assert from "node:assert/strict";
import { join } from "node:path";
import { STREAM_MARKS_FILE, StreamMarks, streamMarksPath } from "./stream_marks.ts";

Deno.test("streamMarksPath puts the journal in the log folder, or the template's fixed folder", () => {
  assert.equal(streamMarksPath("aggregated_logs.txt"), STREAM_MARKS_FILE);
  assert.equal(streamMarksPath("logs/app.log"), `logs/${STREAM_MARKS_FILE}`);
  assert.equal(streamMarksPath("logs/{source}/{date}.log"), `logs/${STREAM_MARKS_FILE}`);
  assert.equal(streamMarksPath("logs/app-{source}.log"), `logs/${STREAM_MARKS_FILE}`);
  assert.equal(streamMarksPath("{source}.log"), STREAM_MARKS_FILE);
  assert.equal(streamMarksPath("/var/log/x/{host}/a.log"), `/var/log/x/${STREAM_MARKS_FILE}`);
});

Deno.test("StreamMarks only ever raise a mark, and survive a reopen", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "sub", STREAM_MARKS_FILE);
  try {
    const marks = await StreamMarks.open(path, { sync: true });
    assert.equal(marks.get("a"), undefined);
    await Promise.all([marks.advance("a", 10), marks.advance("b", 5)]);
    await marks.advance("a", 7); // lower: ignored
    await marks.advance("a", 20);
    assert.equal(marks.get("a"), 20);
    await marks.close();
    const again = await StreamMarks.open(path);
    assert.equal(again.notReloaded, undefined);
    assert.equal(again.get("a"), 20);
    assert.equal(again.get("b"), 5);
    assert.equal(again.size, 2);
    await again.close();
    // Reopening rewrote the journal: one record per stream.
    assert.equal((await Deno.readTextFile(path)).trim().split("\n").length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StreamMarks reload past a torn last record and keep appending on a fresh line", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, STREAM_MARKS_FILE);
  try {
    await Deno.writeTextFile(
      path,
      '{"s":"a","o":3}\n{"s":"a","o":9}\n{"s":"b","o":4}\n{"s":"c","o',
    );
    const marks = await StreamMarks.open(path);
    assert.deepEqual([marks.get("a"), marks.get("b"), marks.get("c")], [9, 4, undefined]);
    await marks.advance("c", 1);
    await marks.close();
    const again = await StreamMarks.open(path);
    assert.deepEqual([again.get("a"), again.get("b"), again.get("c")], [9, 4, 1]);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StreamMarks compact the journal and forget the idlest streams beyond the limit", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, STREAM_MARKS_FILE);
  try {
    const marks = await StreamMarks.open(path, { maxStreams: 3, compactAfter: 5 });
    for (let i = 1; i <= 50; i++) await marks.advance(`s${i % 4}`, i);
    // s1, s2, s3, s0 in turn: at most 3 remembered, the one advanced longest ago forgotten.
    assert.equal(marks.size, 3);
    assert.equal(marks.get("s3"), undefined); // last advanced at 47, before s0, s1 and s2
    assert.deepEqual([marks.get("s0"), marks.get("s1"), marks.get("s2")], [48, 49, 50]);
    await marks.close();
    const records = (await Deno.readTextFile(path)).trim().split("\n").length;
    assert.ok(records <= 3 + 5 + 1, `journal holds ${records} records`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StreamMarks in memory only need no file", async () => {
  const marks = StreamMarks.memory();
  await marks.advance("x", 1);
  assert.equal(marks.get("x"), 1);
  assert.equal(marks.path, undefined);
  await marks.close();
  assert.throws(() => marks.advance("", 1), TypeError);
  assert.throws(() => marks.advance("x", -1), RangeError);
});
