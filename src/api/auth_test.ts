import assert from "node:assert/strict";
import { isAuthorized, isLoopback } from "./auth.ts";

Deno.test("isLoopback knows loopback names and addresses, and nothing else", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "app.localhost", "::1"]) {
    assert.equal(isLoopback(host), true, host);
  }
  assert.equal(isLoopback("[::1]"), true);
  assert.equal(isLoopback("::ffff:127.0.0.1"), true);
  for (
    const host of ["0.0.0.0", "10.0.0.1", "::", "example.com", "127.0.0.256", "localhost.evil"]
  ) {
    assert.equal(isLoopback(host), false, host);
  }
});

Deno.test("isAuthorized wants the exact bearer token, and nothing when there is none", () => {
  const req = (authorization?: string) =>
    new Request("http://x/", { headers: authorization ? { authorization } : {} });
  assert.equal(isAuthorized(req(), ""), true);
  assert.equal(isAuthorized(req("Bearer s3cret"), "s3cret"), true);
  assert.equal(isAuthorized(req("bearer s3cret"), "s3cret"), true);
  assert.equal(isAuthorized(req(), "s3cret"), false);
  assert.equal(isAuthorized(req("Bearer s3cre"), "s3cret"), false);
  assert.equal(isAuthorized(req("Basic s3cret"), "s3cret"), false);
});
