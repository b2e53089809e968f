import assert from "node:assert/strict";
import { formatHostPort, parseHostPort } from "./host_port.ts";

Deno.test("parseHostPort reads host:port, [v6]:port and :port", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:8081"), { hostname: "127.0.0.1", port: 8081 });
  assert.deepEqual(parseHostPort("[::1]:9000"), { hostname: "::1", port: 9000 });
  assert.deepEqual(parseHostPort("localhost:1"), { hostname: "localhost", port: 1 });
  assert.deepEqual(parseHostPort(":8081"), { hostname: "0.0.0.0", port: 8081 });
  for (const bad of ["8081", "host:", "host:0", "host:65536", "::1:80", "a:b"]) {
    assert.throws(() => parseHostPort(bad), RangeError, bad);
  }
  assert.equal(formatHostPort({ hostname: "::1", port: 1 }), "[::1]:1");
  assert.equal(formatHostPort({ hostname: "a", port: 1 }), "a:1");
});
