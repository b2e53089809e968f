/** The ports tests and benchmarks listen on stay below the kernel's ephemeral range. */

import assert from "node:assert/strict";
import { bindFreePort, freePort, TEST_PORTS } from "./_server.ts";
import { freePort as benchFreePort } from "../scripts/_proc.ts";

Deno.test("freePort gives free loopback ports below 32768, for tests and benchmarks alike", () => {
  assert.ok(TEST_PORTS.max < 32768);
  for (const pick of [freePort, benchFreePort]) {
    for (let i = 0; i < 20; i++) {
      const port = pick();
      assert.ok(port >= TEST_PORTS.min && port <= TEST_PORTS.max, String(port));
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    }
  }
});

Deno.test("freePort never gives one port twice: two servers started together never meet", () => {
  // A server's TCP and HTTP ports are both picked before it binds either (CI once got one port
  // for both). 500 picks of ~12,800 ports would repeat one about ten times over.
  const ports = Array.from({ length: 500 }, () => freePort());
  assert.equal(new Set(ports).size, ports.length);
});

Deno.test("bindFreePort tries another port while one is in use, and stops at other errors", () => {
  const tried: number[] = [];
  const port = bindFreePort((p) => {
    tried.push(p);
    if (tried.length < 4) throw new Deno.errors.AddrInUse("taken");
    return p;
  });
  assert.equal(tried.length, 4);
  assert.equal(port, tried[3]);
  assert.throws(
    () =>
      bindFreePort(() => {
        throw new Deno.errors.PermissionDenied("no");
      }),
    Deno.errors.PermissionDenied,
  );
});
