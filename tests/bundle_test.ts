/** `deno bundle` turns the program into one JavaScript file that runs with the card's permissions. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN, send, startServer, waitForSize } from "./_server.ts";

Deno.test("the bundled single file serves like main.ts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bundle-" });
  try {
    const bundle = join(dir, "logboom.js");
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform=deno", "-o", bundle, MAIN],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
    await using server = await startServer([], { dir, main: bundle });
    await send(server.port, "bundled\n");
    assert.equal(await waitForSize(join(dir, "aggregated_logs.txt"), 8), "bundled\n");
    assert.equal((await server.stop()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
