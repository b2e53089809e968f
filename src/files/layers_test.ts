import assert from "node:assert/strict";
import { importsOf, SRC } from "../_imports.ts";

/** Where the file library's users live: it imports none of them. */
const ABOVE = ["agent/", "cli/", "api/", "ingest/", "live/", "config/", "store/", "syslog/"];

Deno.test("the file library imports nothing from the agent, the server or the commands", () => {
  const modules = [...Deno.readDirSync(`${SRC}/files`)]
    .map((entry) => entry.name)
    .filter((name) => name.endsWith(".ts") && !name.endsWith("_test.ts"));
  assert.ok(modules.includes("file_input.ts") && modules.includes("tailer.ts"));
  for (const name of modules) {
    const above = [...importsOf(`files/${name}`)]
      .filter((m) => ABOVE.some((folder) => m.startsWith(folder)));
    assert.deepEqual(above, [], `files/${name} imports modules above it`);
  }
});
