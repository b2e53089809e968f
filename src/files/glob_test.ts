import assert from "node:assert/strict";
import { join } from "node:path";
import { compileExclude, compileGlob, expandGlob, isExcluded } from "./glob.ts";

Deno.test("glob lists only the folders its pattern reaches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-glob-" });
  try {
    for (
      const path of ["a.log", "b.log", "a.log.1", ".hidden.log", "x/c.log", "x/y/d.log", "z.txt"]
    ) {
      await Deno.mkdir(join(dir, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, path), "");
    }
    const names = async (pattern: string) =>
      (await expandGlob(compileGlob(pattern, dir))).map((p) => p.slice(dir.length + 1)).sort();
    assert.deepEqual(await names("*.log"), ["a.log", "b.log"]);
    assert.deepEqual(await names("*.log*"), ["a.log", "a.log.1", "b.log"]);
    assert.deepEqual(await names("**/*.log"), ["a.log", "b.log", "x/c.log", "x/y/d.log"]);
    assert.deepEqual(await names("x/*/d.log"), ["x/y/d.log"]);
    assert.deepEqual(await names("[ab].log"), ["a.log", "b.log"]);
    assert.deepEqual(await names("[!a].log"), ["b.log"]);
    assert.deepEqual(await names("a.log"), ["a.log"]);
    assert.deepEqual(await names("missing/*.log"), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exclude patterns match names, or paths when they have a slash", () => {
  const excludes = [compileExclude("*.gz"), compileExclude("/var/log/private/*")];
  assert.equal(isExcluded("/var/log/app.log.1.gz", excludes), true);
  assert.equal(isExcluded("/var/log/private/x.log", excludes), true);
  assert.equal(isExcluded("/var/log/app.log", excludes), false);
  assert.equal(compileGlob("/var/log/nginx/*.log").root, "/var/log/nginx");
  assert.throws(() => compileGlob(""), TypeError);
  assert.throws(() => compileGlob("/a/[bc.log"), TypeError);
});
