/**
 * End-to-end tests of the command line a new user meets: logboom's own log lines, the startup
 * line, `--version`, and every command's `-h`.
 */

import assert from "node:assert/strict";
import { startServer } from "./_server.ts";

Deno.test("logs show a -logFile template as written, never undefined", async () => {
  await using server = await startServer(["-logFile", "logs/{source}/{date}.log"]);
  assert.match(server.stderr(), /appending to "logs\/\{source\}\/\{date\}\.log"/);
  assert.equal((await server.stop()).code, 0);
  assert.doesNotMatch(server.stderr(), /undefined/);
});

Deno.test("a startup error quotes the bad template as written, never undefined", async () => {
  await using server = await startServer(["-logFile", "x/{nope}.log"], { waitReady: false });
  assert.equal((await server.exited()).code, 1);
  const lines = server.stderr().trim().split("\n");
  assert.equal(lines.length, 1, server.stderr());
  assert.match(lines[0], /Cannot open log file "x\/\{nope\}\.log": Unknown placeholder "\{nope\}"/);
  assert.doesNotMatch(server.stderr(), /undefined/);
});
