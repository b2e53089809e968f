import assert from "node:assert/strict";
import { join } from "node:path";
import { denoFiles } from "./_deno_file.ts";

Deno.test({
  name: "a sealed rotation keeps its read bits and is never appended to, even by root",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "app.2026-11-22T00-00-00.000Z.log");
      await Deno.writeTextFile(path, "rotated\n", { mode: 0o640 });
      await Deno.chmod(path, 0o640);
      await denoFiles.seal(path);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o440);
      await assert.rejects(denoFiles.open(path), Deno.errors.PermissionDenied);
      assert.equal(await Deno.readTextFile(path), "rotated\n");
      // A live file opens as before.
      const live = await denoFiles.open(join(dir, "app.log"));
      live.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
