import assert from "node:assert/strict";
import { join } from "node:path";
import { CHECKPOINT_FILE, CheckpointStore, StateLockedError } from "./checkpoint.ts";
import { FakeClock } from "../_fake_clock.ts";
import { copyState } from "./_test_target.ts";

Deno.test("checkpoints persist atomically, reload, and lock their folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-state-" });
  try {
    const store = await CheckpointStore.open(dir, { host: "web 1" });
    assert.match(store.agentId, /^web_1-[0-9a-f]{8}$/);
    await assert.rejects(CheckpointStore.open(dir), StateLockedError);
    const { records, known } = store.input("app");
    assert.equal(known, false);
    records.set("s1", {
      stream: "s1",
      path: "/var/log/a.log",
      dev: 1,
      ino: 2,
      head: "h",
      headLen: 10,
      offset: 100,
      tail: "t",
      size: 200,
      mtime: 0,
      planned: [{ end: 150, tail: "t2", server: 1 }],
      seen: Date.now(),
    });
    // Many calls while a write runs share a few writes (group commit).
    await Promise.all(Array.from({ length: 50 }, () => store.persist()));
    assert.ok(store.writes <= 3, `${store.writes} writes`);
    await store.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(
      names,
      [CHECKPOINT_FILE, "lock", "plans-0.jsonl", "plans-1.jsonl"],
      "no temporary file left",
    );
    const again = await CheckpointStore.open(dir);
    assert.equal(again.agentId, store.agentId);
    const state = again.input("app");
    assert.equal(state.known, true);
    assert.deepEqual(state.records.get("s1")!.planned, [{ end: 150, tail: "t2", server: 1 }]);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoints in memory need no folder", async () => {
  const store = CheckpointStore.memory("me");
  store.input("x").records.clear();
  await store.persist();
  await store.close();
  assert.equal(store.agentId, "me");
  assert.equal(join("a", "b"), "a/b");
});

Deno.test("checkpoints: plans journaled before a crash are found after it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-state-" });
  const copy = await Deno.makeTempDir({ prefix: "logboom-state-copy-" });
  try {
    const store = await CheckpointStore.open(dir, { snapshotEveryMs: 0 });
    const { records } = store.input("app");
    const record = {
      stream: "s1",
      path: "/var/log/a.log",
      dev: 1,
      ino: 2,
      head: "h",
      headLen: 10,
      offset: 0,
      tail: "",
      size: 0,
      mtime: 0,
      planned: [] as { end: number; tail: string; server: number }[],
      seen: Date.now(),
    };
    records.set("s1", record);
    await store.persist();
    // Two batches planned; the first acknowledged and snapshotted, the second not.
    record.planned.push({ end: 100, tail: "a", server: 0 });
    await store.journal("app", record);
    record.planned.push({ end: 200, tail: "b", server: 1 });
    await store.journal("app", record);
    record.offset = 100;
    record.planned.shift();
    await store.persist();
    record.planned.push({ end: 300, tail: "c", server: 1 });
    await store.journal("app", record);
    // The files as kill -9 would leave them (the store is never closed).
    await copyState(dir, copy);
    const after = await CheckpointStore.open(copy);
    const found = after.input("app").records.get("s1")!;
    assert.equal(found.offset, 100);
    assert.deepEqual(found.planned.map((p) => p.end), [200, 300]);
    await after.close();
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(copy, { recursive: true });
  }
});

function record(stream: string) {
  return {
    stream,
    path: `/var/log/${stream}.log`,
    dev: 1,
    ino: 2,
    head: "h",
    headLen: 10,
    offset: 0,
    tail: "",
    size: 0,
    mtime: 0,
    planned: [] as { end: number; tail: string; server: number }[],
    seen: Date.now(),
  };
}

/** The state folder as kill -9 would leave it, opened by a new store. */
async function reopenCopy(dir: string, copy: string): Promise<CheckpointStore> {
  await copyState(dir, copy);
  return await CheckpointStore.open(copy);
}

Deno.test("checkpoints: a failed snapshot leaves its plans in the journal until one succeeds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-state-" });
  const copy = await Deno.makeTempDir({ prefix: "logboom-state-copy-" });
  const clock = new FakeClock();
  const store = await CheckpointStore.open(dir, { snapshotEveryMs: 0, clock });
  try {
    const { records } = store.input("app");
    const first = record("s1");
    const second = record("s2");
    records.set("s1", first);
    records.set("s2", second);
    first.planned.push({ end: 100, tail: "a", server: 0 });
    await store.journal("app", first);
    // The snapshot cannot be written (its temporary name is taken by a folder), twice.
    await Deno.mkdir(join(dir, `${CHECKPOINT_FILE}.tmp`));
    store.schedule();
    await until(() => store.failures >= 1 && clock.waiting === 1);
    second.planned.push({ end: 200, tail: "b", server: 0 });
    await store.journal("app", second);
    // Retried 100 ms later (then 200, 400, ... up to 5 s), not before.
    clock.advance(99);
    assert.equal(store.failures, 1);
    clock.advance(1);
    await until(() => store.failures >= 2 && clock.waiting === 1);
    assert.equal(store.failing, true);
    // Killed now: both plans must be found, though no snapshot holds them.
    const after = await reopenCopy(dir, copy);
    const found = after.input("app").records;
    assert.deepEqual(found.get("s1")?.planned.map((p) => p.end), [100]);
    assert.deepEqual(found.get("s2")?.planned.map((p) => p.end), [200]);
    await after.close();
    // The obstacle goes: the store's own retry writes the snapshot, nothing else asked for it.
    await Deno.remove(join(dir, `${CHECKPOINT_FILE}.tmp`));
    clock.advance(200);
    await until(() => !store.failing);
    await store.writable();
    const saved = JSON.parse(await Deno.readTextFile(join(dir, CHECKPOINT_FILE)));
    assert.deepEqual(
      saved.inputs.app.map((r: { planned: { end: number }[] }) => r.planned[0].end),
      [100, 200],
    );
  } finally {
    await Deno.remove(join(dir, `${CHECKPOINT_FILE}.tmp`)).catch(() => {});
    await store.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(copy, { recursive: true });
  }
});

Deno.test("checkpoints: writable() holds shippers back while snapshots fail", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-state-" });
  const clock = new FakeClock();
  const store = await CheckpointStore.open(dir, { snapshotEveryMs: 0, clock });
  try {
    await store.writable(); // resolves at once while writes succeed
    await Deno.mkdir(join(dir, `${CHECKPOINT_FILE}.tmp`));
    store.schedule();
    await until(() => store.failing);
    let passed = false;
    const waiting = store.writable().then(() => passed = true);
    const stop = new AbortController();
    const aborted = store.writable(stop.signal);
    stop.abort(new Error("stopped"));
    await assert.rejects(aborted, /stopped/);
    await until(() => clock.waiting === 1);
    clock.advance(100);
    await until(() => store.failures >= 2 && clock.waiting === 1);
    clock.advance(200);
    await until(() => store.failures >= 3 && clock.waiting === 1);
    assert.equal(passed, false);
    await Deno.remove(join(dir, `${CHECKPOINT_FILE}.tmp`));
    clock.advance(400);
    await waiting;
  } finally {
    await Deno.remove(join(dir, `${CHECKPOINT_FILE}.tmp`)).catch(() => {});
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Polls `condition` every 5 ms, for at most 10 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
