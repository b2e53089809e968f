import assert from "node:assert/strict";
import { isAuthorized } from "./auth.ts";

const req = (authorization?: string) =>
  new Request("http://x/", { headers: authorization ? { authorization } : {} });
/** Standard base64 of the UTF-8 of `text`. */
const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

Deno.test("isAuthorized wants the exact bearer token, and nothing when there is none", () => {
  assert.equal(isAuthorized(req(), ""), true);
  assert.equal(isAuthorized(req("Bearer s3cret"), "s3cret"), true);
  assert.equal(isAuthorized(req("bearer s3cret"), "s3cret"), true);
  assert.equal(isAuthorized(req("Bearer  two words "), "two words"), true);
  assert.equal(isAuthorized(req(), "s3cret"), false);
  assert.equal(isAuthorized(req("Bearer s3cre"), "s3cret"), false);
  assert.equal(isAuthorized(req("Basic s3cret"), "s3cret"), false);
  assert.equal(isAuthorized(req("Token s3cret"), "s3cret"), false);
});

Deno.test("isAuthorized takes the token as Basic auth's password, whatever the user name", () => {
  for (const user of ["promtail", "", "tenant-1", "üser"]) {
    assert.equal(isAuthorized(req(`Basic ${b64(`${user}:s3cret`)}`), "s3cret"), true, user);
    assert.equal(isAuthorized(req(`BASIC ${b64(`${user}:s3cret`)}`), "s3cret"), true, user);
  }
  // The password is all that follows the first colon: a token may hold colons, or be non-ASCII.
  assert.equal(isAuthorized(req(`Basic ${b64("u:a:b")}`), "a:b"), true);
  assert.equal(isAuthorized(req(`Basic ${b64("u:pässwörd")}`), "pässwörd"), true);
  for (
    const refused of [
      `Basic ${b64("s3cret:")}`, // the token as the user name
      `Basic ${b64("s3cret")}`, // no colon
      `Basic ${b64("u:s3cret ")}`,
      `Basic ${b64("u:s3cre")}`,
      "Basic not base64!",
      "Basic " + btoa("u:\xff"), // not UTF-8
      "Basic",
    ]
  ) {
    assert.equal(isAuthorized(req(refused), "s3cret"), false, refused);
  }
});

Deno.test("isAuthorized takes the token as an ApiKey, as given or as base64 of id:key", () => {
  assert.equal(isAuthorized(req("ApiKey s3cret"), "s3cret"), true);
  assert.equal(isAuthorized(req("apikey s3cret"), "s3cret"), true);
  assert.equal(isAuthorized(req(`ApiKey ${b64("filebeat:s3cret")}`), "s3cret"), true);
  assert.equal(isAuthorized(req(`ApiKey ${b64(":s3cret")}`), "s3cret"), true);
  // A token that is itself base64, sent as given.
  assert.equal(isAuthorized(req(`ApiKey ${b64("id:key")}`), b64("id:key")), true);
  for (
    const refused of [
      `ApiKey ${b64("s3cret")}`,
      `ApiKey ${b64("s3cret:id")}`,
      "ApiKey s3cre",
      `ApiKey ${b64("id:wrong")}`,
    ]
  ) {
    assert.equal(isAuthorized(req(refused), "s3cret"), false, refused);
  }
});
