import assert from "node:assert/strict";
import { join } from "node:path";
import { repairTornTail } from "./torn_tail.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("repairTornTail ends a torn last line, once", () =>
  withDir(async (dir) => {
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, "whole\ntor");
    assert.equal(await repairTornTail(path), true);
    assert.equal(await Deno.readTextFile(path), "whole\ntor\n");
    assert.equal(await repairTornTail(path), false, "already whole");
    assert.equal(await Deno.readTextFile(path), "whole\ntor\n");
  }));

Deno.test("repairTornTail leaves whole, empty and missing files alone", () =>
  withDir(async (dir) => {
    const whole = join(dir, "whole.log");
    await Deno.writeTextFile(whole, "a\nb\n");
    assert.equal(await repairTornTail(whole), false);
    assert.equal(await Deno.readTextFile(whole), "a\nb\n");
    const empty = join(dir, "empty.log");
    await Deno.writeTextFile(empty, "");
    assert.equal(await repairTornTail(empty), false);
    assert.equal((await Deno.stat(empty)).size, 0);
    const missing = join(dir, "missing.log");
    assert.equal(await repairTornTail(missing), false);
    await assert.rejects(Deno.stat(missing), Deno.errors.NotFound, "not created");
  }));

/** Bytes this process has read through read(2) so far, page cache included (Linux only). */
async function bytesRead(): Promise<number> {
  // Through cat: Deno wants --allow-all for /proc, but a child may read its parent's counters.
  const cat = await new Deno.Command("cat", { args: [`/proc/${Deno.pid}/io`] }).output();
  const io = new TextDecoder().decode(cat.stdout);
  return Number(/^rchar: (\d+)$/m.exec(io)![1]);
}

Deno.test("repairTornTail reads only the end of a 2 GiB file", () =>
  withDir(async (dir) => {
    const path = join(dir, "big.log");
    const size = 2 * 1024 ** 3;
    // Sparse: 2 GiB of zero bytes that take no disk space, and whose last byte is not a newline.
    await Deno.writeFile(path, new Uint8Array());
    await Deno.truncate(path, size);
    const linux = Deno.build.os === "linux";
    const before = linux ? await bytesRead() : 0;
    assert.equal(await repairTornTail(path), true);
    if (linux) {
      const read = (await bytesRead()) - before;
      assert.ok(read < 1024 * 1024, `read ${read} bytes of a ${size}-byte file`);
    }
    assert.equal((await Deno.stat(path)).size, size + 1);
    using file = await Deno.open(path);
    await file.seek(-2, Deno.SeekMode.End);
    const tail = new Uint8Array(2);
    assert.equal(await file.read(tail), 2);
    assert.deepEqual([...tail], [0, 10]);
  }));
