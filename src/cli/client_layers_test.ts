import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Folders of the server: a client command that imports from them drags the server along. */
const SERVER_FOLDERS = ["api/", "store/", "ingest/", "config/", "syslog/"];

/** Every module of `src/` that `entry` imports, directly or not (static imports only). */
function importsOf(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (path: string) => {
    const name = relative(SRC, path);
    if (seen.has(name)) return;
    seen.add(name);
    const text = Deno.readTextFileSync(path);
    for (const match of text.matchAll(/^(?:import|export)[^"';]*?["'](\.{1,2}\/[^"']+)["']/gm)) {
      visit(join(dirname(path), match[1]));
    }
  };
  visit(join(SRC, entry));
  return seen;
}

Deno.test("client commands import no server module", () => {
  for (const command of ["cli/send.ts", "cli/tail.ts"]) {
    const modules = [...importsOf(command)];
    assert.ok(modules.includes("token.ts") && modules.includes("retry.ts"), command);
    const server = modules.filter((m) => SERVER_FOLDERS.some((folder) => m.startsWith(folder)));
    assert.deepEqual(server, [], `${command} imports server modules`);
  }
});
