import assert from "node:assert/strict";
import { join } from "node:path";
import type { Batch } from "../pipeline/batch.ts";
import { FakeOpener } from "./_fake_files.ts";
import { FileSink } from "./file_sink.ts";

const encoder = new TextEncoder();

/** `promise`, or a failure naming `what` if it has not settled within `ms` (a guard, not a wait). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Still waiting after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 5 ms, failing after 5 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Whether `promise` has settled, after the callbacks that are due have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

function batch(text: string, from: { source?: string; host?: string } = {}): Batch {
  const { source = "tcp", host = "127.0.0.1" } = from;
  return {
    data: encoder.encode(text),
    lines: text.split("\n").length - 1,
    meta: { source, host, input: "test" },
    receivedAt: Date.UTC(2026, 10, 21, 12),
  };
}

Deno.test("file sink routes each batch to its template's file, values sanitized", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "logs/{host}/{source}-{date}.log", opener });
  sink.write(batch("web line\n", { source: "web", host: "10.0.0.5" }));
  sink.write(batch("db line\n", { source: "db", host: "10.0.0.6" }));
  sink.write(batch("escape attempt\n", { source: "../../etc/passwd", host: "10.0.0.5" }));
  await sink.close();
  assert.equal(opener.disk.get("logs/10.0.0.5/web-2026-11-21.log")?.text, "web line\n");
  assert.equal(opener.disk.get("logs/10.0.0.6/db-2026-11-21.log")?.text, "db line\n");
  const escaped = [...opener.disk.keys()].filter((p) => p.includes("passwd"));
  assert.equal(escaped.length, 1);
  assert.ok(escaped[0].startsWith("logs/10.0.0.5/"), escaped[0]);
  assert.ok(!escaped[0].includes(".."), escaped[0]);
});

Deno.test("10,000 sources stay within the open-file cap, and every line lands once", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "logs/{source}.log", opener, maxOpenFiles: 100 });
  let most = 0;
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10_000; i++) {
      sink.write(batch(`round ${round}\n`, { source: `s${i}` }));
      if (i % 50 === 49) {
        most = Math.max(most, opener.files.filter((f) => !f.closed).length);
        await sink.flush(); // written, so idle and closable
      }
    }
  }
  await sink.close();
  assert.ok(most <= 100, `${most} files open at once`);
  assert.ok(opener.mostOpen <= 100, `${opener.mostOpen} files open at once`);
  for (const i of [0, 4_999, 9_999]) {
    assert.equal(opener.disk.get(`logs/s${i}.log`)?.text, "round 0\nround 1\n");
  }
  assert.equal(sink.stats.linesWritten, 20_000);
});

Deno.test("file sink stores JSON lines with -format json", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "app.log", opener, format: "json" });
  sink.write(batch("hello\n", { source: "api", host: "10.1.1.1" }));
  await sink.close();
  assert.deepEqual(JSON.parse(opener.disk.get("app.log")!.text), {
    ts: "2026-11-21T12:00:00.000Z",
    source: "api",
    host: "10.1.1.1",
    line: "hello",
  });
});

Deno.test("file sink acknowledges (flush) only what every file has written", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "{source}.log", opener, fsync: "batch" });
  sink.write(batch("a\n", { source: "one" }));
  sink.write(batch("b\n", { source: "two" }));
  await sink.flush();
  assert.deepEqual(opener.disk.get("one.log")?.calls.slice(-1), ["sync"]);
  assert.deepEqual(opener.disk.get("two.log")?.calls.slice(-1), ["sync"]);
  await sink.close();
});

Deno.test("a file idle past idleMs is closed, and reopened by its next line", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "{source}.log", opener, idleMs: 20 });
  sink.write(batch("first\n", { source: "quiet" }));
  await sink.flush();
  const deadline = Date.now() + 5000;
  while (sink.stats.openFiles > 0) {
    assert.ok(Date.now() < deadline, "the idle file was never closed");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(opener.files[0].closed, true);
  sink.write(batch("second\n", { source: "quiet" }));
  await sink.close();
  assert.equal(opener.disk.get("quiet.log")?.text, "first\nsecond\n");
});

Deno.test("more busy files than the cap: lines wait for a place, none throws, each stored once", async () => {
  const opener = new FakeOpener();
  let release!: () => void;
  opener.lockHeld = new Promise((resolve) => release = resolve); // every file's flock is held
  const sink = await FileSink.open({ path: "logs/{source}.log", opener, maxOpenFiles: 1024 });
  // One NDJSON body with 1,100 sources: more files than the cap, all of them busy.
  const batches = Array.from({ length: 1100 }, (_, i) => batch(`line ${i}\n`, { source: `s${i}` }));
  for (const b of batches) sink.write(b);
  const acked = sink.flush(batches);
  await until(() => opener.openNow === 1024, "the first 1,024 files are open");
  assert.equal(sink.stats.waitingFiles, 76);
  assert.equal(await settled(acked), false, "nothing is acknowledged while the lock is held");
  release();
  await within(acked, 10_000, "the acknowledgement of 1,100 files");
  for (const i of [0, 1023, 1024, 1099]) {
    assert.equal(opener.disk.get(`logs/s${i}.log`)?.text, `line ${i}\n`);
  }
  assert.equal(sink.stats.linesWritten, 1100);
  assert.ok(opener.mostOpen <= 1024, `${opener.mostOpen} files open at once`);
  // A file waiting for a place keeps taking lines, in order, and they are written once.
  sink.write(batch("again\n", { source: "s1099" }));
  await sink.close();
  assert.equal(opener.disk.get("logs/s1099.log")?.text, "line 1099\nagain\n");
});

Deno.test("a file that cannot be created holds up no other file's acknowledgement", async () => {
  const opener = new FakeOpener();
  // "logs/a" is a regular file, so "logs/a/x.log" cannot be made.
  opener.refused.set("logs/a/x.log", new Error("Not a directory (os error 20)"));
  const sink = await FileSink.open({ path: "logs/{source}/x.log", opener, queueBytes: 1000 });
  const a = batch("for a\n", { source: "a" });
  sink.write(a);
  const ackA = sink.flush([a]);
  const b = batch("for b\n", { source: "b" });
  sink.write(b);
  await within(sink.flush([b]), 5000, "b's acknowledgement waits for a");
  assert.equal(opener.disk.get("logs/b/x.log")?.text, "for b\n");
  await until(() => sink.problems().length === 1, "the failing file is reported");
  const [problem] = sink.problems();
  assert.equal(problem.path, "logs/a/x.log");
  assert.match(problem.error, /Not a directory/);
  assert.equal(sink.stats.failingFiles, 1);
  assert.equal(await settled(ackA), false, "a's lines are not acknowledged before they are stored");
  // Past a quarter of the queue's bound, the failing file pushes back on what feeds it alone.
  assert.equal(sink.write(batch("x".repeat(300) + "\n", { source: "a" })), false);
  assert.equal(sink.write(batch("more for b\n", { source: "b" })), true);
  const roomForA = sink.writable(a);
  await within(sink.writable(b), 5000, "b waits for room because of a");
  assert.equal(await settled(roomForA), false);
  // Once the file can be made, it writes everything it held, once, and is ready again.
  opener.refused.clear();
  await within(ackA, 10_000, "a's acknowledgement once it can write");
  await within(roomForA, 5000, "a's room once it writes");
  assert.deepEqual(sink.problems(), []);
  await sink.close();
  assert.equal(opener.disk.get("logs/a/x.log")?.text, "for a\n" + "x".repeat(300) + "\n");
  assert.equal(opener.disk.get("logs/b/x.log")?.text, "for b\nmore for b\n");
});

Deno.test("retention deletes only the output's own rotations, not files named like them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let now = Date.parse("2026-11-30T10:00:00.000Z");
    const sink = await FileSink.open({
      path: join(dir, "{source}.{host}.log"),
      rotateBytes: 16,
      keep: 1,
      clock: () => now,
    });
    // Sources whose files look like the rotations of "app" from host "h": one alone in its
    // name, one with the host's help.
    const lookalikes = [
      { source: "app.h.2026-11-22T00-00-00", host: "000Z" },
      { source: "app.h.2026-11-23T00-00-00.000Z", host: "x" },
    ];
    for (const from of lookalikes) sink.write(batch("another output's line\n", from));
    // A file someone else put there under such a name.
    const foreign = join(dir, "app.h.2026-11-24T00-00-00.000Z.log");
    await Deno.writeTextFile(foreign, "not logboom's\n");
    for (let i = 0; i < 4; i++) {
      sink.write(batch(`app line ${i}\n`, { source: "app", host: "h" }));
      await sink.flush();
      now += 1000;
    }
    await sink.tidied();
    await sink.close();
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    names.sort();
    assert.deepEqual(names, [
      "app.h.2026-11-22T00-00-00.000Z.log",
      "app.h.2026-11-23T00-00-00_000Z.x.log",
      "app.h.2026-11-24T00-00-00.000Z.log",
      "app.h.2026-11-30T10-00-03.000Z.log", // the one rotation -keep 1 keeps
      "app.h.log",
    ]);
    assert.equal(await Deno.readTextFile(foreign), "not logboom's\n");
    const kept = join(dir, "app.h.2026-11-30T10-00-03.000Z.log");
    assert.equal(await Deno.readTextFile(kept), "app line 2\n");
    assert.equal((await Deno.stat(kept)).mode! & 0o222, 0, "a rotation is sealed read-only");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sink that replaces another writes a file they share only once the other let it go", async () => {
  const opener = new FakeOpener();
  // The old sink cannot open its file for now; the new one (same folder) could.
  opener.refused.set("logs/a.log", new Error("No space left on device (os error 28)"));
  const old = await FileSink.open({ path: "logs/{source}.log", opener });
  old.write(batch("first, to the old sink\n", { source: "a" }));
  const shared = new FakeOpener();
  shared.disk = opener.disk;
  const next = await FileSink.open({
    path: "logs/{source}.log",
    opener: shared,
    rotateBytes: 1 << 20,
    previous: old,
  });
  const closed = old.close();
  const second = batch("second, to the new sink\n", { source: "a" });
  next.write(second);
  const other = batch("to a file the old sink never had\n", { source: "b" });
  next.write(other);
  await within(next.flush([other]), 5000, "a file the old sink does not hold waits for nothing");
  const ack = next.flush([second]);
  await until(() => old.problems().length === 1, "the old sink failed to write");
  assert.equal(await settled(ack), false, "written before the old sink let the file go");
  assert.equal(opener.disk.get("logs/a.log"), undefined);
  opener.refused.clear();
  await within(closed, 10_000, "the old sink's close");
  await within(ack, 5000, "the new sink's acknowledgement once the file is let go");
  assert.equal(
    opener.disk.get("logs/a.log")?.text,
    "first, to the old sink\nsecond, to the new sink\n",
  );
  // Counters go on from the old sink's: /metrics does not see them fall back at a reload.
  assert.equal(next.stats.linesWritten, 3);
  await next.close();
});

/** A batch whose lines have a level and a `service` field each (`undefined`: none). */
function fielded(lines: [text: string, service?: string, level?: number][]): Batch {
  return {
    ...batch(lines.map(([text]) => text + "\n").join(""), { source: "app" }),
    levels: new Uint8Array(lines.map(([, , level]) => level ?? 0)),
    fields: lines.map(([, service]) => service === undefined ? undefined : { service }),
  };
}

Deno.test("a template with fields splits a batch by file, each file's lines in order", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "logs/{fields.service}/{level}.log", opener });
  const written = fielded([
    ["pay 1", "billing", 3],
    ["pay 2", "billing", 3],
    ["login", "auth", 3],
    ["pay 3", "billing", 3],
    ["declined", "billing", 5],
    ["no service"],
    ["hostile", "../../etc", 5],
  ]);
  assert.equal(sink.write(written), true);
  await within(sink.flush([written]), 5000, "the split batch's acknowledgement");
  assert.equal(opener.disk.get("logs/billing/info.log")?.text, "pay 1\npay 2\npay 3\n");
  assert.equal(opener.disk.get("logs/billing/error.log")?.text, "declined\n");
  assert.equal(opener.disk.get("logs/auth/info.log")?.text, "login\n");
  assert.equal(opener.disk.get("logs/_/_.log")?.text, "no service\n");
  assert.equal(opener.disk.get("logs/____etc/error.log")?.text, "hostile\n");
  assert.equal(sink.stats.linesWritten, 7);
  // A batch of one service goes to its one file whole, as any batch does.
  sink.write(fielded([["pay 4", "billing", 3], ["pay 5", "billing", 3]]));
  await sink.close();
  assert.equal(
    opener.disk.get("logs/billing/info.log")?.text,
    "pay 1\npay 2\npay 3\npay 4\npay 5\n",
  );
  const files = [...opener.disk.keys()].filter((path) => !path.includes(".logboom-probe"));
  assert.equal(files.length, 5, files.join(", "));
});

Deno.test("json format with a field template: each file gets its lines' records", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "{fields.service}.jsonl", opener, format: "json" });
  sink.write(fielded([["a", "one", 4], ["b", "two"], ["c", "one"]]));
  await sink.close();
  const records = (path: string) =>
    opener.disk.get(path)!.text.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(records("one.jsonl").map((r) => [r.line, r.level, r.fields]), [
    ["a", "warn", { service: "one" }],
    ["c", undefined, { service: "one" }],
  ]);
  assert.deepEqual(records("two.jsonl").map((r) => [r.line, r.fields]), [["b", {
    service: "two",
  }]]);
});

Deno.test("a split batch's acknowledgement waits for its files, and no other batch does", async () => {
  const opener = new FakeOpener();
  opener.refused.set("logs/broken.log", new Error("Not a directory (os error 20)"));
  const sink = await FileSink.open({ path: "logs/{fields.service}.log", opener });
  const split = fielded([["to ok", "ok"], ["to broken", "broken"]]);
  sink.write(split);
  const ackSplit = sink.flush([split]);
  const alone = fielded([["ok again", "ok"]]);
  sink.write(alone);
  await within(sink.flush([alone]), 5000, "a batch for the working file alone");
  await until(() => sink.problems().length === 1, "the failing file is reported");
  assert.equal(await settled(ackSplit), false, "not acknowledged before every line is stored");
  opener.refused.clear();
  await within(ackSplit, 10_000, "the split batch once its second file works");
  await sink.close();
  assert.equal(opener.disk.get("logs/ok.log")?.text, "to ok\nok again\n");
  assert.equal(opener.disk.get("logs/broken.log")?.text, "to broken\n");
});

Deno.test("a marked batch split by file journals each run with the lines stored before it", async () => {
  const opener = new FakeOpener();
  const intents: { path: string; lines: number; skipped: number }[] = [];
  const sink = await FileSink.open({
    path: "{fields.service}.log",
    opener,
    marks: {
      intend(list) {
        for (const { path, lines, mark } of list) {
          intents.push({ path, lines, skipped: mark.skipped });
        }
        return Promise.resolve();
      },
    },
  });
  // Lines 2 to 6 of a part whose first two were stored by an earlier run.
  const mark = { stream: "s", offset: 10, part: 0, parts: 1, total: 6, skipped: 2 };
  sink.write({ ...fielded([["c", "x"], ["d", "y"], ["e", "y"], ["f", "x"]]), mark });
  await sink.close();
  intents.sort((a, b) => a.lines - b.lines);
  // The journal's `lines`: how many lines of the part are stored once the run is.
  assert.deepEqual(intents.map(({ path, lines }) => [path, lines]), [
    ["x.log", 3],
    ["y.log", 5],
    ["x.log", 6],
  ]);
  assert.equal(opener.disk.get("x.log")?.text, "c\nf\n");
  assert.equal(opener.disk.get("y.log")?.text, "d\ne\n");
});
