import assert from "node:assert/strict";
import { join } from "node:path";
import { gzipFile } from "./compress.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function gunzip(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const plain = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(plain).arrayBuffer());
}

/** Log-like lines that do not compress to nothing, so the work takes many chunks. */
function lines(count: number): Uint8Array {
  let seed = 42;
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    parts.push(`2026-11-21T23:54:55.123Z web-${seed % 97} GET /item/${seed} ${i}\n`);
  }
  return new TextEncoder().encode(parts.join(""));
}

Deno.test("gzipFile replaces a file with a gzip copy that gzip itself accepts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(dir, "app.2026-11-21T23-54-55.123Z.log");
    const data = lines(50_000);
    await Deno.writeFile(src, data, { mode: 0o640 });
    await Deno.chmod(src, 0o640);
    const gz = await gzipFile(src, { chunkBytes: 4096 });
    assert.equal(gz, src + ".gz");
    assert.equal(await exists(src), false, "the plain file is removed");
    assert.equal(await exists(gz + ".tmp"), false);
    assert.deepEqual(await gunzip(gz), data);
    assert.ok((await Deno.stat(gz)).size < data.length / 2);
    assert.equal((await Deno.stat(gz)).mode! & 0o777, 0o640, "same permissions as the log");
    const check = await new Deno.Command("gzip", { args: ["-t", gz], stderr: "piped" }).output();
    assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzipFile compresses an empty file and replaces a stale temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(dir, "empty.log");
    await Deno.writeFile(src, new Uint8Array());
    await Deno.writeTextFile(src + ".gz.tmp", "left by a crash, longer than the new output");
    const gz = await gzipFile(src);
    assert.deepEqual(await gunzip(gz), new Uint8Array());
    assert.equal(await exists(src + ".gz.tmp"), false);
    assert.equal(await exists(src), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzipFile aborted midway keeps the file and leaves no partial output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(dir, "app.log");
    const data = lines(100_000);
    await Deno.writeFile(src, data);
    const controller = new AbortController();
    const done = gzipFile(src, { signal: controller.signal, chunkBytes: 1024 });
    // Abort once output is being written, not before the work starts.
    while (!(await exists(src + ".gz.tmp")) || (await Deno.stat(src + ".gz.tmp")).size === 0) {
      await Promise.resolve();
    }
    controller.abort();
    await assert.rejects(
      done,
      (err: unknown) => err instanceof DOMException && err.name === "AbortError",
    );
    assert.deepEqual(await Deno.readFile(src), data);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["app.log"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzipFile already aborted touches nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(dir, "app.log");
    await Deno.writeTextFile(src, "a\n");
    await assert.rejects(gzipFile(src, { signal: AbortSignal.abort() }));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["app.log"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzipFile that cannot put the output in place keeps the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = join(dir, "app.log");
    await Deno.writeTextFile(src, "a\nb\n");
    // A non-empty folder where the .gz should go: the rename fails after all the work.
    await Deno.mkdir(join(src + ".gz", "x"), { recursive: true });
    await assert.rejects(gzipFile(src));
    assert.equal(await Deno.readTextFile(src), "a\nb\n");
    assert.equal(await exists(src + ".gz.tmp"), false);
    await assert.rejects(gzipFile(join(dir, "missing.log")), Deno.errors.NotFound);
    assert.equal(await exists(join(dir, "missing.log.gz.tmp")), false);
    await assert.rejects(gzipFile(src, { chunkBytes: 0 }), RangeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
