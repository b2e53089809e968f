import assert from "node:assert/strict";
import { join } from "node:path";
import { VENDOR_DIR, vendoredFiles } from "../../scripts/vendor_web.ts";

Deno.test("the vendored web libraries are the pinned npm packages' files, as the script makes them", async () => {
  const want = await vendoredFiles();
  const have = new Map<string, string>();
  for await (const entry of Deno.readDir(VENDOR_DIR)) {
    if (entry.isFile) have.set(entry.name, await Deno.readTextFile(join(VENDOR_DIR, entry.name)));
  }
  assert.deepEqual([...have.keys()].sort(), [...want.keys()].sort());
  for (const [name, text] of want) {
    // Not deepEqual on the whole map: a mismatch would print 60 KB of minified code.
    assert.ok(have.get(name) === text, `src/web/vendor/${name} differs: run deno task vendor:web`);
  }
});
