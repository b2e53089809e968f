import assert from "node:assert/strict";
import { importsOf } from "../_imports.ts";

/** Folders of the server: a client command that imports from them drags the server along. */
const SERVER_FOLDERS = ["api/", "store/", "ingest/", "config/", "syslog/"];

Deno.test("client commands import no server module", () => {
  for (const command of ["cli/send.ts", "cli/tail.ts"]) {
    const modules = [...importsOf(command)];
    assert.ok(modules.includes("token.ts") && modules.includes("retry.ts"), command);
    const server = modules.filter((m) => SERVER_FOLDERS.some((folder) => m.startsWith(folder)));
    assert.deepEqual(server, [], `${command} imports server modules`);
  }
});
