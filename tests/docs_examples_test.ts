/**
 * The rule examples in docs/rules.md are the files the transforms tests run (as serve configs and
 * through `rules test`): a doc example that drifts from them fails here.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

Deno.test("docs/rules.md shows each tested rule example as written", async () => {
  const doc = await Deno.readTextFile(`${root}docs/rules.md`);
  const blocks = [...doc.matchAll(/```yaml\n([^]*?)```/g)].map((m) => m[1]);
  for (const name of ["json_app", "access_log", "logfmt"]) {
    const example = await Deno.readTextFile(`${root}src/transforms/examples/${name}.yaml`);
    assert.ok(blocks.includes(example), `${name}.yaml is not in docs/rules.md as written`);
  }
});
