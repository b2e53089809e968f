import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import { parseTailArgs } from "./tail.ts";

Deno.test("tail arguments: a server URL, filters and backfill", () => {
  const { config } = parseTailArgs(["-server", "logs:9000", "-grep", "ERR", "-n", "0", "-json"]);
  assert.equal(config.server.href, "http://logs:9000/");
  assert.equal(config.grep, "ERR");
  assert.equal(config.n, 0);
  assert.equal(config.json, true);
  assert.equal(parseTailArgs([]).config.n, 10);
  assert.throws(() => parseTailArgs(["-n", "x"]), FlagError);
  assert.throws(() => parseTailArgs(["-regex", "("]), FlagError);
  assert.throws(() => parseTailArgs(["extra"]), FlagError);
});
