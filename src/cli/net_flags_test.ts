import assert from "node:assert/strict";
import { FlagError, parseFlags } from "./flags.ts";
import { DEFAULT_MAX_CONNECTIONS, NET_FLAGS, parseNetFlags } from "./net_flags.ts";

const parse = (...args: string[]) => parseNetFlags(parseFlags(args, NET_FLAGS).values);

Deno.test("connection flags: defaults, the values they take, and clear refusals", () => {
  assert.deepEqual(parse(), {
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    idleTimeoutMs: 60 * 60 * 1000,
  });
  assert.deepEqual(parse("-maxConnections", "10", "-idleTimeout", "90s"), {
    maxConnections: 10,
    idleTimeoutMs: 90_000,
  });
  for (
    const [bad, message] of [
      [["-maxConnections", "0"], /-maxConnections.*at least 1/],
      [["-maxConnections", "many"], /-maxConnections/],
      [["-idleTimeout", "0"], /-idleTimeout.*above zero/],
      [["-idleTimeout", "10"], /-idleTimeout.*duration/],
    ] as const
  ) {
    assert.throws(() => parse(...bad), (err: Error) => {
      assert.ok(err instanceof FlagError);
      assert.match(err.message, message);
      return true;
    });
  }
});
