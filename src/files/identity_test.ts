import assert from "node:assert/strict";
import { join } from "node:path";
import type { StreamRecord } from "./checkpoint.ts";
import { hashBytes } from "./fingerprint.ts";
import { holds, keyOf, readHead, tailAt } from "./identity.ts";

Deno.test("holds judges a record as it was when the look began, though an acknowledgement moves it meanwhile", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-identity-" });
  try {
    const path = join(dir, "app.log");
    const line = (i: number) => `line ${String(i).padStart(6, "0")} ${"x".repeat(80)}\n`;
    await Deno.writeTextFile(path, Array.from({ length: 1000 }, (_, i) => line(i)).join(""));
    const info = await Deno.stat(path);
    const head = await readHead(path, info);
    const at = (n: number) => n * line(0).length;
    const record: StreamRecord = {
      stream: "s",
      path,
      dev: info.dev,
      ino: info.ino!,
      head: hashBytes(head),
      headLen: head.length,
      offset: at(100),
      tail: await tailAt(path, at(100)),
      size: info.size,
      mtime: 0,
      planned: [],
      seen: 0,
    };
    const later = { offset: at(200), tail: await tailAt(path, at(200)) };
    assert.notEqual(later.tail, record.tail);
    // The file is the same all along; the tailer's acknowledgement lands while holds reads it,
    // just after holds took the offset.
    let moved = false;
    const looking = new Proxy(record, {
      get(target, key) {
        if (key === "offset" && !moved) {
          moved = true;
          queueMicrotask(() => Object.assign(target, later));
        }
        return Reflect.get(target, key);
      },
    });
    assert.equal(await holds(path, looking, keyOf(info)), "yes");
    assert.equal(record.offset, later.offset);
    assert.equal(await holds(path, record, keyOf(info)), "yes");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
