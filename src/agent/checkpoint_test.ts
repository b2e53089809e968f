import assert from "node:assert/strict";
import { join } from "node:path";
import { CHECKPOINT_FILE, CheckpointStore, StateLockedError } from "./checkpoint.ts";

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
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.name !== "lock") await Deno.copyFile(join(dir, entry.name), join(copy, entry.name));
    }
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
