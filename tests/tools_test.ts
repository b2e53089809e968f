/** What the tests need besides Deno is said up front, with what to install. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { installAdvice, spawnTool } from "./_tools.ts";

const TOOLS_SCRIPT = fileURLToPath(new URL("./_tools.ts", import.meta.url));

Deno.test("on a machine without the tools, the preflight says what to install, and exits 1", async () => {
  // A PATH with nothing but sh.
  const bin = await Deno.makeTempDir({ prefix: "logboom-bare-path-" });
  try {
    await Deno.symlink("/bin/sh", join(bin, "sh"));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-run=sh", "--allow-sys=uid", TOOLS_SCRIPT],
      env: { PATH: bin, NO_COLOR: "1" },
      clearEnv: true,
    }).output();
    assert.equal(out.code, 1);
    const said = new TextDecoder().decode(out.stderr);
    assert.match(
      said,
      /The tests need flock, .*script, gzip.* Install first: apt-get install util-linux bsdutils gzip/,
    );
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("a helper that runs a missing tool says what to install instead of 'Failed to spawn'", () => {
  assert.throws(
    () => spawnTool(new Deno.Command("logboom-no-such-tool"), "logboom-no-such-tool"),
    { message: installAdvice(["logboom-no-such-tool"]) },
  );
  assert.match(installAdvice(["flock"]), /flock: .*apt-get install util-linux/);
});
