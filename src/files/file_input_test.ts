import assert from "node:assert/strict";
import { join } from "node:path";
import { CHECKPOINT_FILE, CheckpointStore } from "./checkpoint.ts";
import { FileInput, type FileInputOptions } from "./file_input.ts";
import type { DeliveredBatch, StreamTarget } from "./tailer.ts";
import { listMatches } from "./matches.ts";
import { FakeClock } from "../_fake_clock.ts";
import { compileLinearRegex } from "../text/linear_regex.ts";
import {
  copyState,
  drive,
  jump,
  lines,
  MemoryTarget,
  tally,
  whileDriving,
} from "./_test_target.ts";

/**
 * Time is a {@linkcode FakeClock} that moves only while a test looks ({@linkcode drive}) or jumps
 * ({@linkcode jump}), so waits keep their real defaults (rotate_wait 5 s, batch wait 200 ms,
 * close_idle 5 min); scans come every quarter second of it, and from file events only where a
 * test asks for them.
 */
const FAST = { scanIntervalMs: 250, watch: false };
/** Timers a quiet input waits on: its next scan, and the poll of each file it follows. */
const timersOf = (input: FileInput) => () => 1 + input.openFiles;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-input-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function start(
  dir: string,
  target: StreamTarget,
  store: CheckpointStore,
  options: Partial<FileInputOptions> & { clock: FakeClock },
): FileInput {
  return FileInput.start({
    name: "app",
    paths: [join(dir, "*.log*")],
    target,
    store,
    ...FAST,
    ...options,
  });
}

/**
 * Waits until the input owes nothing (and follows `open` files when given, rotated ones let go),
 * then for two more scans: a file read twice would be read by one of them.
 */
async function settled(
  input: FileInput,
  clock: FakeClock,
  { open }: { open?: number } = {},
): Promise<void> {
  await drive(
    clock,
    () =>
      (open === undefined || input.openFiles === open) && input.files().every((f) => f.lag === 0),
    () => JSON.stringify(input.files()),
  );
  const scans = input.scans;
  await drive(clock, () => input.scans >= scans + 2, () => "no scans");
}

function expectExactly(target: MemoryTarget, id: number, count: number): void {
  const { missing, duplicated, other } = tally(target.lines, id, count);
  assert.deepEqual({ missing: missing.slice(0, 5), duplicated: duplicated.slice(0, 5), other }, {
    missing: [],
    duplicated: [],
    other: 0,
  });
}

Deno.test("file input follows rename + create rotation; the .1 name is not read twice", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const input = start(dir, target, store, { clock });
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, lines(0, 0, 500));
    await drive(clock, () => target.lines.length >= 500, () => `${target.lines.length} lines`);
    await Deno.writeTextFile(path, lines(0, 500, 700), { append: true });
    await Deno.rename(path, `${path}.1`);
    await Deno.writeTextFile(`${path}.1`, lines(0, 700, 750), { append: true });
    await Deno.writeTextFile(path, lines(0, 750, 1000));
    await drive(clock, () => target.lines.length >= 1000, () => `${target.lines.length} lines`);
    await settled(input, clock, { open: 1 });
    await whileDriving(clock, input.stop());
    expectExactly(target, 0, 1000);
  });
});

Deno.test("file input ships a copytruncate copy's unread tail and the truncated file anew", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, lines(1, 0, 300));
    const input = start(dir, target, store, { clock });
    await drive(clock, () => target.lines.length >= 300, () => `${target.lines.length} lines`);
    // The server stalls, so lines 300-600 are written but not all shipped when the copy is made.
    target.pause();
    await Deno.writeTextFile(path, lines(1, 300, 600), { append: true });
    await Deno.copyFile(path, `${path}.1`);
    await Deno.truncate(path, 0);
    await Deno.writeTextFile(path, lines(1, 600, 800), { append: true });
    target.resume();
    await drive(clock, () => target.lines.length >= 800, () => `${target.lines.length} lines`);
    await settled(input, clock);
    await whileDriving(clock, input.stop());
    expectExactly(target, 1, 800);
  });
});

Deno.test("file input resumes after a restart, finds a file rotated while stopped", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const stateDir = join(dir, "state");
    const path = join(dir, "logs", "app.log");
    await Deno.mkdir(join(dir, "logs"));
    await Deno.writeTextFile(path, lines(2, 0, 400));
    let store = await CheckpointStore.open(stateDir);
    let input = start(join(dir, "logs"), target, store, { clock, paths: [path] });
    await drive(clock, () => target.lines.length >= 400, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    await store.close();
    // While stopped: more lines, then rename + create (the rotated name is not matched).
    await Deno.writeTextFile(path, lines(2, 400, 600), { append: true });
    await Deno.rename(path, `${path}.1`);
    await Deno.writeTextFile(path, lines(2, 600, 700));
    store = await CheckpointStore.open(stateDir);
    input = start(join(dir, "logs"), target, store, { clock, paths: [path] });
    await drive(clock, () => target.lines.length >= 700, () => `${target.lines.length} lines`);
    await settled(input, clock, { open: 1 });
    await whileDriving(clock, input.stop());
    await store.close();
    expectExactly(target, 2, 700);
  });
});

/**
 * Two servers, each with its own stream marks, as the agent's shipper sees them: a batch goes to
 * the server its plan names (a restored plan), else to `current` (failover chose it), and the
 * target tells `onTry` first. `dieAfterStore` kills the "agent" at its first stored batch: the
 * state folder is copied as kill -9 leaves it (before the answer), and nothing more is sent.
 */
class TwoServers implements StreamTarget {
  readonly marks = [new Map<string, number>(), new Map<string, number>()];
  readonly lines: string[] = [];
  current = 0;
  dieAfterStore: { stateDir: string; copy: string; done: boolean } | undefined;

  prepare(data: Uint8Array): Promise<unknown> {
    return Promise.resolve(data.slice());
  }

  async deliver(payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void> {
    if (this.dieAfterStore?.done !== true) {
      const server = batch.server >= 0 ? batch.server : this.current;
      await batch.onTry(server);
      const mark = this.marks[server].get(batch.stream);
      if (mark !== undefined && batch.offset <= mark) return;
      this.marks[server].set(batch.stream, batch.offset);
      const text = new TextDecoder().decode(payload as Uint8Array);
      for (const line of text.split("\n")) if (line !== "") this.lines.push(line);
      if (this.dieAfterStore === undefined) return;
      await copyState(this.dieAfterStore.stateDir, this.dieAfterStore.copy);
      this.dieAfterStore.done = true;
    }
    // A dead agent never hears the answer.
    await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  }
}

Deno.test("file input: after kill -9, a batch that failed over is resent to the server that stored it, and stored once", async () => {
  await withDir(async (dir) => {
    const servers = new TwoServers();
    const clock = new FakeClock();
    const stateDir = join(dir, "state");
    const copy = join(dir, "state-at-kill");
    await Deno.mkdir(join(dir, "logs"));
    const path = join(dir, "logs", "app.log");
    await Deno.writeTextFile(path, lines(3, 0, 300));
    // The agent last preferred the first server (its report loop updates that once a second);
    // the shipper has failed over to the second since.
    let store = await CheckpointStore.open(stateDir);
    store.server = 0;
    servers.current = 1;
    servers.dieAfterStore = { stateDir, copy, done: false };
    let input = start(join(dir, "logs"), servers, store, { clock, paths: [path] });
    await drive(clock, () => servers.dieAfterStore!.done, () => `${servers.lines.length} lines`);
    await whileDriving(clock, input.stop(0));
    await store.close();
    // Restarted from the state kill -9 left, the first server back in favour.
    servers.dieAfterStore = undefined;
    servers.current = 0;
    store = await CheckpointStore.open(copy);
    input = start(join(dir, "logs"), servers, store, { clock, paths: [path] });
    await drive(clock, () => servers.lines.length >= 300, () => `${servers.lines.length} lines`);
    await settled(input, clock, { open: 1 });
    await whileDriving(clock, input.stop());
    await store.close();
    const { missing, duplicated } = tally(servers.lines, 3, 300);
    assert.deepEqual({ missing: missing.length, duplicated: duplicated.length }, {
      missing: 0,
      duplicated: 0,
    });
  });
});

Deno.test("file input reads a new file in a reused inode as new", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const stateDir = join(dir, "state");
    const path = join(dir, "logs", "app.log");
    await Deno.mkdir(join(dir, "logs"));
    await Deno.writeTextFile(path, lines(3, 0, 100));
    let store = await CheckpointStore.open(stateDir);
    let input = start(join(dir, "logs"), target, store, { clock, paths: [path] });
    await drive(clock, () => target.lines.length >= 100, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    await store.close();
    const before = (await Deno.stat(path)).ino;
    // Rewritten in place: same inode, longer, different content (what inode reuse looks like).
    await Deno.writeTextFile(path, lines(3, 100, 400));
    assert.equal((await Deno.stat(path)).ino, before);
    store = await CheckpointStore.open(stateDir);
    input = start(join(dir, "logs"), target, store, { clock, paths: [path] });
    await drive(clock, () => target.lines.length >= 400, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    await store.close();
    expectExactly(target, 3, 400);
  });
});

Deno.test("file input keeps a partial last line until its newline comes", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, "first line\nsecond ha");
    const input = start(dir, target, store, { clock });
    await drive(clock, () => target.lines.length >= 1, () => `${target.lines.length} lines`);
    // An hour passes: the partial line still waits for its newline.
    await jump(clock, 3600_000, timersOf(input));
    assert.deepEqual(target.lines, ["first line"]);
    await Deno.writeTextFile(path, "lf\n", { append: true });
    await drive(clock, () => target.lines.length >= 2, () => `${target.lines.length} lines`);
    assert.deepEqual(target.lines, ["first line", "second half"]);
    // Rotated away with an unterminated line: shipped once the file is let go.
    await Deno.writeTextFile(path, "third, unterminated", { append: true });
    await Deno.rename(path, join(dir, "old.txt"));
    await drive(clock, () => target.lines.length >= 3, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    assert.deepEqual(target.lines, ["first line", "second half", "third, unterminated"]);
  });
});

Deno.test("file input reads a rotated file until it stays quiet for rotate_wait, then lets it go", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, lines(8, 0, 100));
    const input = start(dir, target, store, { clock }); // rotate_wait: 5 s
    await drive(clock, () => target.lines.length >= 100, () => `${target.lines.length} lines`);
    // Renamed out of the glob: followed under its new name while writers still hold it open.
    await Deno.rename(path, join(dir, "old.txt"));
    await drive(clock, () => input.stats.rotations === 1, () => JSON.stringify(input.stats));
    await jump(clock, 4000, timersOf(input));
    assert.equal(input.openFiles, 1, "let go before rotate_wait");
    await Deno.writeTextFile(join(dir, "old.txt"), lines(8, 100, 150), { append: true });
    await drive(clock, () => target.lines.length >= 150, () => `${target.lines.length} lines`);
    // Quiet 4 s since it last grew: still held.
    await jump(clock, 4000, timersOf(input));
    assert.equal(input.openFiles, 1, "let go before rotate_wait after its last write");
    await drive(clock, () => input.openFiles === 0, () => "never let go");
    await whileDriving(clock, input.stop());
    expectExactly(target, 8, 150);
  });
});

Deno.test("file input closes a file quiet for close_idle and follows it again when it grows", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, lines(9, 0, 100));
    const input = start(dir, target, store, { clock }); // close_idle: 5 min
    await drive(clock, () => target.lines.length >= 100, () => `${target.lines.length} lines`);
    await jump(clock, 290_000, timersOf(input));
    assert.equal(input.openFiles, 1, "closed before close_idle");
    await drive(clock, () => input.openFiles === 0, () => "never closed");
    await Deno.writeTextFile(path, lines(9, 100, 200), { append: true });
    await drive(clock, () => target.lines.length >= 200, () => `${target.lines.length} lines`);
    assert.equal(input.openFiles, 1);
    await whileDriving(clock, input.stop());
    expectExactly(target, 9, 200);
  });
});

Deno.test("file input sends a multi-line event once no line came for multiline.timeout", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    await Deno.writeTextFile(join(dir, "app.log"), "2025-01-01 boom\n  at a\n  at b\n");
    const multiline = {
      start: compileLinearRegex("^\\d{4}-"),
      join: "\\n",
      maxLines: 500,
      maxBytes: 1 << 20,
      timeoutMs: 1000,
    };
    // Batches go as soon as the event is framed: what is timed here is the event alone.
    const input = start(dir, target, store, { clock, multiline, batchWaitMs: 0 });
    // The first scan and the first read need no time: the event is read when both tasks wait.
    await jump(clock, 0, timersOf(input));
    // No start line follows, so the event may go on: it waits its timeout, not a moment less.
    await jump(clock, 999, timersOf(input));
    assert.deepEqual(target.lines, []);
    await drive(clock, () => target.lines.length >= 1, () => "the event was never sent");
    assert.deepEqual(target.lines, ["2025-01-01 boom\\n  at a\\n  at b"]);
    await whileDriving(clock, input.stop());
  });
});

Deno.test("file input starts at the end of files found at its first scan when asked", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, "old 1\nold 2\n");
    const input = start(dir, target, store, { clock, startAt: "end" });
    await drive(clock, () => input.scans >= 1, () => "no scan");
    await Deno.writeTextFile(path, "new 1\n", { append: true });
    await Deno.writeTextFile(join(dir, "b.log"), "b 1\n");
    await drive(clock, () => target.lines.length >= 2, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    assert.deepEqual(target.lines.sort(), ["b 1", "new 1"]);
  });
});

Deno.test("file input holds rotated files open up to its cap, then gives the oldest up", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    // Rotated names leave the glob, so a file given up can only be found by its identity.
    const input = start(dir, target, store, {
      clock,
      paths: [path],
      maxRotatedOpen: 1,
      maxBytes: 2048,
      batchBytes: 1024,
    });
    target.pause(); // no server answers
    await Deno.writeTextFile(path, lines(4, 0, 100));
    await drive(clock, () => input.openFiles === 1, () => "not followed");
    for (let r = 1; r <= 3; r++) {
      await Deno.rename(path, join(dir, `old${r}.txt`));
      await Deno.writeTextFile(path, lines(4, r * 100, r * 100 + 100));
      await drive(clock, () => input.scans > 0 && input.openFiles >= 1, () => "not followed");
      // The rotation seen, and the new file followed (empty when first listed, it may take two).
      await drive(
        clock,
        () => input.stats.rotations >= r && input.stats.filesFound >= r + 1,
        () => JSON.stringify(input.stats),
      );
    }
    await drive(clock, () => input.stats.filesGivenUp >= 1, () => JSON.stringify(input.stats));
    assert.ok(input.stats.bytesGivenUp > 0);
    // One given-up file is deleted before shipping resumes: its lines are lost, and said so.
    await Deno.remove(join(dir, "old1.txt"));
    await drive(clock, () => input.stats.bytesLost > 0, () => JSON.stringify(input.stats));
    target.resume();
    await drive(clock, () => target.lines.length >= 300, () => `${target.lines.length} lines`);
    await settled(input, clock);
    await whileDriving(clock, input.stop());
    const { missing, duplicated } = tally(target.lines, 4, 400);
    assert.deepEqual(duplicated, []);
    // Only lines of the deleted file may be missing.
    assert.ok(missing.every((n) => n < 100), `missing ${missing.slice(0, 5)}`);
  });
});

Deno.test("file input gives a quiet file's buffers back and reads on when it grows", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "app.log");
    const input = start(dir, target, store, { clock }); // buffers given back after 10 s quiet
    await Deno.writeTextFile(path, lines(5, 0, 100) + "partial ");
    await drive(clock, () => target.lines.length >= 100, () => `${target.lines.length} lines`);
    // Quiet a minute, a partial line held: it is kept.
    await jump(clock, 60_000, timersOf(input));
    await Deno.writeTextFile(path, "line\n" + lines(5, 100, 200), { append: true });
    await drive(clock, () => target.lines.length >= 201, () => `${target.lines.length} lines`);
    // Quiet a minute again, nothing held: the buffers go, and come back when the file grows.
    await jump(clock, 60_000, timersOf(input));
    await Deno.writeTextFile(path, lines(5, 200, 300), { append: true });
    await drive(clock, () => target.lines.length >= 301, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    assert.deepEqual(target.lines.filter((l) => !l.startsWith("w5 ")), ["partial line"]);
    const { missing, duplicated } = tally(target.lines, 5, 300);
    assert.deepEqual({ missing, duplicated }, { missing: [], duplicated: [] });
  });
});

Deno.test("file input ships nothing past a checkpoint it cannot write, then resumes by itself", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const stateDir = join(dir, "state");
    const store = await CheckpointStore.open(stateDir, { snapshotEveryMs: 0, clock });
    const path = join(dir, "logs", "app.log");
    await Deno.mkdir(join(dir, "logs"));
    await Deno.writeTextFile(path, lines(6, 0, 10_000));
    // Snapshots fail: their temporary name is taken by a folder.
    const obstacle = join(stateDir, `${CHECKPOINT_FILE}.tmp`);
    await Deno.mkdir(obstacle);
    const input = start(join(dir, "logs"), target, store, {
      clock,
      paths: [path],
      batchBytes: 1024,
    });
    try {
      await drive(clock, () => store.failures >= 3, () => `${store.failures} failures`);
      // A batch or two went before the first failure was known; the rest waits.
      assert.ok(target.lines.length < 10_000, `${target.lines.length} lines shipped`);
      // The store retries on its own: no acknowledgement comes to ask it to.
      await Deno.remove(obstacle);
      await drive(clock, () => target.lines.length >= 10_000, () => `${target.lines.length} lines`);
      expectExactly(target, 6, 10_000);
    } finally {
      await Deno.remove(obstacle).catch(() => {});
      await whileDriving(clock, input.stop());
      await store.close();
    }
    const saved = JSON.parse(await Deno.readTextFile(join(stateDir, CHECKPOINT_FILE)));
    assert.equal(saved.inputs.app[0].offset, (await Deno.stat(path)).size);
  });
});

/** A watcher that reports nothing until {@linkcode fail} makes its iterator throw. */
class FailingWatcher implements Deno.FsWatcher {
  readonly #failed = Promise.withResolvers<never>();
  close(): void {
    this.#failed.reject(new Error("closed"));
  }
  fail(): void {
    this.#failed.reject(new Error("the watch went away"));
  }
  [Symbol.dispose](): void {
    this.close();
  }
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.FsEvent> {
    yield await this.#failed.promise;
  }
}

Deno.test("file input watches again when its watcher fails", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const failing = new FailingWatcher();
    const made: string[][] = [];
    // Scans come from file events only (the safety-net scan is an hour away: a test that drives
    // the clock for its 10 s reaches 100 s at most).
    const input = start(dir, target, store, {
      clock,
      paths: [join(dir, "*.log")],
      watch: true,
      scanIntervalMs: 3600_000,
      watchFs: (paths, options) => {
        made.push(paths);
        return made.length === 1 ? failing : Deno.watchFs(paths, options);
      },
    });
    try {
      await drive(clock, () => input.scans >= 1 && made.length === 1, () => "no first scan");
      failing.fail();
      // Only a new watcher can tell of this file before the next full scan, minutes away.
      await Deno.writeTextFile(join(dir, "a.log"), "a 1\n");
      await drive(
        clock,
        () => target.lines.length >= 1,
        () => `not shipped; ${made.length} watchers`,
      );
      assert.deepEqual(target.lines, ["a 1"]);
      assert.equal(made.length, 2);
    } finally {
      await whileDriving(clock, input.stop());
    }
  });
});

Deno.test("file input: a file truncated and written again before any of it was read says what was lost", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const input = start(dir, target, store, { clock, maxBytes: 2048, batchBytes: 1024 });
    target.pause(); // no server answers: a.log fills the budget, b.log waits unread
    await Deno.writeTextFile(join(dir, "a.log"), lines(5, 0, 200));
    await drive(clock, () => input.openFiles === 1, () => "a.log not followed");
    const old = lines(6, 0, 100);
    await Deno.writeTextFile(join(dir, "b.log"), old);
    await drive(clock, () => input.openFiles === 2, () => "b.log not followed");
    const scans = input.scans;
    await drive(clock, () => input.scans >= scans + 2, () => "no scans");
    // Truncated and written again, shorter, while nothing of it was read.
    await Deno.writeTextFile(join(dir, "b.log"), lines(6, 100, 110));
    target.resume();
    await drive(clock, () => input.stats.truncations >= 1, () => JSON.stringify(input.stats));
    await settled(input, clock);
    await whileDriving(clock, input.stop());
    const a = tally(target.lines, 5, 200);
    assert.deepEqual({ missing: a.missing, duplicated: a.duplicated }, {
      missing: [],
      duplicated: [],
    });
    // What b.log held before is lost, and said so with its bytes; what it holds now arrives once.
    const b = tally(target.lines, 6, 110);
    assert.deepEqual(b.missing, Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(b.duplicated, []);
    assert.equal(input.stats.bytesLost, new TextEncoder().encode(old).length);
  });
});

Deno.test("file input: a waiting file that grew after the scan listed it is not taken for truncated", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    const path = join(dir, "a.log");
    let growWhileListing = false;
    // The listing's stat is taken, then the file grows and its task (waiting for room) sees it
    // grown, all before the scan looks at the listing: the listing is older than the task's look.
    const listFiles: typeof listMatches = async (rules) => {
      const matches = await listMatches(rules);
      if (growWhileListing) {
        growWhileListing = false;
        const listed = matches.files.get(path)!.size;
        await Deno.writeTextFile(path, lines(5, 200, 300), { append: true });
        await drive(clock, () => input.files()[0].size > listed, () => "growth not seen");
      }
      return matches;
    };
    const input = start(dir, target, store, { clock, maxBytes: 2048, batchBytes: 1024, listFiles });
    target.pause(); // no server answers: a.log fills the budget and its task waits
    await Deno.writeTextFile(path, lines(5, 0, 200));
    await drive(clock, () => input.openFiles === 1, () => "a.log not followed");
    const scans = input.scans;
    await drive(clock, () => input.scans >= scans + 2, () => "no scans");
    growWhileListing = true;
    await drive(clock, () => !growWhileListing && input.scans >= scans + 4, () => "no scans");
    target.resume();
    await settled(input, clock);
    await whileDriving(clock, input.stop());
    assert.equal(input.stats.truncations, 0);
    expectExactly(target, 5, 300);
  });
});

/** Whether the journal on disk holds a batch planned past the record's offset. */
async function planJournaled(stateDir: string): Promise<boolean> {
  for (const name of ["plans-0.jsonl", "plans-1.jsonl"]) {
    const text = await Deno.readTextFile(join(stateDir, name)).catch(() => "");
    for (const line of text.split("\n")) {
      if (line !== "" && JSON.parse(line).r.planned.length > 0) return true;
    }
  }
  return false;
}

Deno.test("file input: after a restart, a copy of a file whose task could not start yet is not taken for a new file", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const logs = join(dir, "logs");
    const stateDir = join(dir, "state");
    const copy = join(dir, "state-at-kill");
    await Deno.mkdir(logs);
    const path = join(logs, "app.log");
    await Deno.writeTextFile(path, lines(6, 0, 100));
    let store = await CheckpointStore.open(stateDir);
    let input = start(logs, target, store, { clock });
    await drive(clock, () => target.lines.length >= 100, () => `${target.lines.length} lines`);
    // Killed while a batch of lines 100-300 waits for its answer.
    target.pause();
    await Deno.writeTextFile(path, lines(6, 100, 300), { append: true });
    await drive(clock, () => planJournaled(stateDir), () => "no batch planned");
    await copyState(stateDir, copy);
    await whileDriving(clock, input.stop(0));
    await store.close();
    target.resume();
    // While it is down: copytruncate, and new lines in the truncated file.
    await Deno.copyFile(path, `${path}.1`);
    await Deno.truncate(path, 0);
    await Deno.writeTextFile(path, lines(6, 300, 350), { append: true });
    // Restarted; its first listing is taken just before a rename rotation, so the file it lists
    // as the stream's is another one when it opens it.
    let rotateAfterListing = true;
    const listFiles: typeof listMatches = async (rules) => {
      const matches = await listMatches(rules);
      if (rotateAfterListing) {
        rotateAfterListing = false;
        await Deno.rename(path, `${path}.2`);
        await Deno.writeTextFile(path, lines(6, 350, 400));
      }
      return matches;
    };
    store = await CheckpointStore.open(copy);
    input = start(logs, target, store, { clock, listFiles });
    await drive(clock, () => target.lines.length >= 400, () => `${target.lines.length} lines`);
    await settled(input, clock);
    await whileDriving(clock, input.stop());
    await store.close();
    expectExactly(target, 6, 400);
    assert.equal(input.stats.bytesLost, 0);
  });
});

Deno.test("file input keeps each batch within batch.max_bytes", async () => {
  await withDir(async (dir) => {
    const target = new MemoryTarget();
    const clock = new FakeClock();
    const store = CheckpointStore.memory();
    // Lines of 30-36 bytes do not fill 8 KiB exactly: a batch must end at the last whole line
    // that fits, not one line (or one read) past the limit, which costs the server a second
    // locked write.
    const input = start(dir, target, store, { clock, batchBytes: 8192 });
    const text = lines(5, 0, 2000);
    await Deno.writeTextFile(join(dir, "app.log"), text);
    await drive(clock, () => target.lines.length >= 2000, () => `${target.lines.length} lines`);
    await whileDriving(clock, input.stop());
    expectExactly(target, 5, 2000);
    const over = target.batches.filter((b) => b.bytes > 8192).map((b) => b.bytes);
    assert.deepEqual(over, []);
    assert.ok(target.batches.length >= text.length / 8192, `${target.batches.length} batches`);
  });
});
