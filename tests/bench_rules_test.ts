/** `deno task bench -scenario rules`: it runs, stores what it should, and reports each step. */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { hasTool } from "./_tools.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test({
  name: "deno task bench -scenario rules: both runs store every line they should; step costs shown",
  ignore: !await hasTool("go"),
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "bench", "-scenario", "rules", "-rounds", "1", "-c", "2", "-n", "2000"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    // Rates of a tiny run say nothing: only the ratio bar may be missed.
    assert.ok(out.code === 0 || out.code === 1, stdout + new TextDecoder().decode(out.stderr));
    if (out.code === 1) assert.match(stdout, /^Bar missed: rules ratio [\d.]+ < 0\.4$/m);
    assert.match(stdout, /^ {2}plain: ok lines=4000 stored=4000 /m);
    assert.match(
      stdout,
      /^ {2}rules: ok lines=4000 stored=3200 .* steps\(ns\/line\): parse \d+, level \d+, filter \d+$/m,
    );
    assert.match(stdout, /cost per step \(median ns\/line\): parse \d+, level \d+, filter \d+$/m);
  },
});
