import assert from "node:assert/strict";
import { join } from "node:path";
import type { BatchMark } from "../pipeline/batch.ts";
import { denoFiles } from "./_deno_file.ts";
import { FileWriter } from "./file_writer.ts";
import { type MarkIntent, STREAM_MARKS_FILE, StreamMarks } from "./stream_marks.ts";

const encoder = new TextEncoder();

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function mark(stream: string, offset: number, total: number, part = 0, parts = 1): BatchMark {
  return { stream, offset, part, parts, total, skipped: 0 };
}

/** An intent as the file writer makes it, for `bytes` about to be appended to `path`. */
function intentFor(path: string, m: BatchMark, bytes: Uint8Array, lines = m.total): MarkIntent {
  const { dev, ino, size } = Deno.statSync(path);
  return { mark: m, lines, path, dev, ino: ino!, start: size, end: size + bytes.length, bytes };
}

Deno.test("StreamMarks only ever raise a mark, and survive a reopen in a git-ignored folder", async () => {
  await withDir(async (dir) => {
    const state = join(dir, "sub", ".logboom");
    const marks = await StreamMarks.open(state, { sync: true });
    assert.equal(marks.durable, true);
    assert.equal(marks.get("a"), undefined);
    marks.advance("a", 10);
    marks.advance("b", 5);
    marks.advance("a", 7); // lower: ignored
    marks.advance("a", 20);
    assert.equal(marks.get("a"), 20);
    await marks.close();
    assert.equal(await Deno.readTextFile(join(state, ".gitignore")), "*\n");
    const again = await StreamMarks.open(state);
    assert.equal(again.notReloaded, undefined);
    assert.equal(again.get("a"), 20);
    assert.equal(again.get("b"), 5);
    assert.equal(again.size, 2);
    await again.close();
    // Reopening rewrote the journal: one record per stream.
    const journal = await Deno.readTextFile(join(state, STREAM_MARKS_FILE));
    assert.equal(journal.trim().split("\n").length, 2);
  });
});

Deno.test("StreamMarks reload past a torn last record and keep appending on a fresh line", async () => {
  await withDir(async (dir) => {
    const path = join(dir, STREAM_MARKS_FILE);
    await Deno.writeTextFile(path, '{"s":"a","o":3}\n{"s":"b","o"');
    const marks = await StreamMarks.open(dir);
    assert.equal(marks.get("a"), 3);
    assert.equal(marks.get("b"), undefined);
    marks.advance("b", 9);
    await marks.close();
    const again = await StreamMarks.open(dir);
    assert.equal(again.get("b"), 9);
    await again.close();
  });
});

Deno.test("StreamMarks compact the journal and forget the idlest streams beyond the limit", async () => {
  await withDir(async (dir) => {
    const marks = await StreamMarks.open(dir, { maxStreams: 3, compactAfter: 5 });
    for (let i = 1; i <= 20; i++) marks.advance(`s${i % 5}`, i);
    await marks.close();
    const lines = (await Deno.readTextFile(join(dir, STREAM_MARKS_FILE))).trim().split("\n");
    assert.ok(lines.length <= 3 + 5, `${lines.length} records`);
    const again = await StreamMarks.open(dir, { maxStreams: 3 });
    assert.equal(again.size, 3);
    assert.equal(again.get("s0"), 20);
    assert.equal(again.get("s1"), undefined, "the idlest stream is forgotten");
    await again.close();
  });
});

Deno.test("StreamMarks in memory only need no file", () => {
  const marks = StreamMarks.memory();
  marks.advance("a", 1);
  assert.equal(marks.get("a"), 1);
  assert.equal(marks.durable, false);
});

Deno.test("after a crash, an intent settles by the file: stored, never written, or torn and cut back", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "app.log");
    await Deno.writeTextFile(log, "earlier\n");
    const state = join(dir, ".logboom");
    const marks = await StreamMarks.open(state, { sync: true });
    const stored = encoder.encode("s1\ns2\n");
    const never = encoder.encode("n1\n");
    const torn = encoder.encode("t1\nt2\nt3\n");
    // Stored: the intent, then the bytes; the crash came before the mark.
    await marks.intend([intentFor(log, mark("stored", 6, 2), stored)]);
    await Deno.writeFile(log, stored, { append: true });
    // Never written: the crash came right after the intent.
    await marks.intend([intentFor(log, mark("never", 3, 1), never)]);
    // Torn: the crash cut the write after 4 bytes.
    const before = (await Deno.stat(log)).size;
    await marks.intend([intentFor(log, mark("torn", 9, 3), torn)]);
    await Deno.writeFile(log, torn.subarray(0, 4), { append: true });
    // No close(): the process died. A new run reads what is on disk.
    const again = await StreamMarks.open(state);
    assert.equal(again.get("stored"), 6);
    assert.equal(again.get("never"), undefined);
    assert.equal(again.get("torn"), undefined);
    assert.deepEqual(again.recovery, { stored: 1, dropped: 2, cut: 1, partial: 0 });
    assert.equal((await Deno.stat(log)).size, before, "cut back to where the torn batch began");
    assert.equal(await Deno.readTextFile(log), "earlier\ns1\ns2\n");
    await again.close();
    await marks.close();
    // Settled once: the next start finds the same.
    const third = await StreamMarks.open(state);
    assert.equal(third.get("stored"), 6);
    assert.deepEqual(third.recovery, { stored: 0, dropped: 0, cut: 0, partial: 0 });
    await third.close();
  });
});

Deno.test("after a crash, a rotated or removed file counts as written; other bytes in its place do not", async () => {
  await withDir(async (dir) => {
    const live = join(dir, "app.log");
    const other = join(dir, "other.log");
    await Deno.writeTextFile(live, "");
    await Deno.writeTextFile(other, "");
    const state = join(dir, ".logboom");
    const marks = await StreamMarks.open(state);
    const a = encoder.encode("a\n");
    const b = encoder.encode("b\n");
    const c = encoder.encode("c\n");
    await marks.intend([intentFor(live, mark("rotated", 2, 1), a)]);
    await Deno.writeFile(live, a, { append: true });
    await Deno.rename(live, join(dir, "app.2026-11-30T00-00-00.000Z.log"));
    // Another process appended its own bytes where ours were to go.
    await Deno.writeTextFile(live, "");
    await marks.intend([intentFor(live, mark("foreign", 2, 1), c)]);
    await Deno.writeTextFile(live, "x\n", { append: true });
    await marks.intend([intentFor(other, mark("removed", 2, 1), b)]);
    await Deno.writeFile(other, b, { append: true });
    await Deno.remove(other);
    const again = await StreamMarks.open(state);
    assert.equal(again.get("rotated"), 2);
    assert.equal(again.get("removed"), 2);
    assert.equal(again.get("foreign"), undefined);
    assert.equal(await Deno.readTextFile(live), "x\n", "bytes not ours are never cut");
    await again.close();
    await marks.close();
  });
});

Deno.test("after a crash between the files of one batch, its resend stores only the rest", async () => {
  await withDir(async (dir) => {
    const first = join(dir, "a.log");
    const second = join(dir, "b.log");
    await Deno.writeTextFile(first, "");
    await Deno.writeTextFile(second, "");
    const state = join(dir, ".logboom");
    const marks = await StreamMarks.open(state);
    const one = encoder.encode("a1\na2\n");
    const two = encoder.encode("b1\n");
    await marks.intend([intentFor(first, mark("s", 9, 2, 0, 2), one)]);
    await Deno.writeFile(first, one, { append: true });
    await marks.intend([intentFor(second, mark("s", 9, 1, 1, 2), two)]);
    const again = await StreamMarks.open(state);
    assert.equal(again.get("s"), undefined);
    assert.deepEqual(again.recovery, { stored: 0, dropped: 0, cut: 0, partial: 1 });
    assert.deepEqual([...again.stored("s", 9)!], [[0, 2]]);
    assert.equal(again.stored("s", 10), undefined, "another batch of the stream");
    await again.close();
    // The partial state survives the compaction of a restart, until the batch is marked.
    const third = await StreamMarks.open(state);
    assert.deepEqual([...third.stored("s", 9)!], [[0, 2]]);
    third.advance("s", 9);
    assert.equal(third.stored("s", 9), undefined);
    await third.close();
    await marks.close();
  });
});

Deno.test("the file writer journals a marked batch under the lock before its bytes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "app.log");
    const seen: { intents: MarkIntent[]; sizeThen: number }[] = [];
    const journal = {
      intend(intents: readonly MarkIntent[]) {
        seen.push({ intents: [...intents], sizeThen: Deno.statSync(path).size });
        return Promise.resolve();
      },
    };
    const writer = await FileWriter.open(path, {
      opener: denoFiles,
      marks: journal,
      rotation: { maxBytes: 8 },
      pageBytes: 8,
    });
    writer.enqueue(encoder.encode("plain\n"), 1);
    await writer.flush();
    writer.enqueue(encoder.encode("aaa\nbbb\nccc\n"), 3, mark("s", 12, 3));
    await writer.flush();
    await writer.close();
    const text = await Deno.readTextFile(path);
    assert.equal(text, "ccc\n", "rotated by size, between pieces of the batch");
    // Per page, before its bytes: where each piece goes, and the lines of the part stored at its
    // end (the batch was cut between lines into pieces of at most a page).
    assert.deepEqual(
      seen.map(({ intents, sizeThen }) =>
        intents.map((i) => [i.lines, i.start - sizeThen, i.end - i.start])
      ),
      [[[2, 0, 8]], [[3, 0, 4]]],
    );
  });
});

Deno.test("without read permission on a log file, a marked batch is still written, and a crash repeats it", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "app.log");
    const seen: MarkIntent[] = [];
    const marks = await StreamMarks.open(join(dir, ".logboom"));
    const journal = {
      intend(intents: readonly MarkIntent[]) {
        seen.push(...intents);
        return marks.intend(intents);
      },
    };
    const opener = {
      ...denoFiles,
      async open(p: string) {
        const file = await denoFiles.open(p);
        file.statSync = () => {
          throw new Deno.errors.NotCapable(`Requires read access to "${p}"`);
        };
        return file;
      },
    };
    const writer = await FileWriter.open(path, { opener, marks: journal });
    writer.enqueue(encoder.encode("one\n"), 1, mark("s", 4, 1));
    await writer.flush();
    await writer.close();
    assert.equal(await Deno.readTextFile(path), "one\n");
    assert.deepEqual(seen.map((i) => [i.dev, i.ino]), [[0, 0]]);
    // The process died before the mark: the file cannot prove the batch stored, so it is not.
    const again = await StreamMarks.open(join(dir, ".logboom"));
    assert.equal(again.get("s"), undefined);
    await again.close();
    await marks.close();
  });
});
