import assert from "node:assert/strict";
import { isAuthorized } from "./auth.ts";

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
