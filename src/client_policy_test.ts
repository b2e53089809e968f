import assert from "node:assert/strict";
import { RETRY_AFTER_CAP_MS, retryAfterMs, unauthorizedHint } from "./client_policy.ts";

Deno.test("Retry-After is read as seconds or a date, and capped at a minute", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(retryAfterMs("2", now), 2000);
  assert.equal(retryAfterMs(" 0 ", now), 0);
  assert.equal(retryAfterMs("86400", now), RETRY_AFTER_CAP_MS);
  assert.equal(retryAfterMs("99999999999999999999", now), RETRY_AFTER_CAP_MS);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", now), 30_000);
  assert.equal(retryAfterMs("Fri, 02 Jan 2026 00:00:00 GMT", now), RETRY_AFTER_CAP_MS);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 00:00:00 GMT", now), 0, "a date past");
  assert.equal(retryAfterMs("-5", now), 0);
  assert.equal(retryAfterMs("soon", now), 0);
  assert.equal(retryAfterMs(null, now), 0);
});

Deno.test("a 401 without a token names --allow-env=LOGBOOM_TOKEN unless env permission is granted", () => {
  const granted = Deno.permissions.querySync({ name: "env", variable: "LOGBOOM_TOKEN" }).state ===
    "granted";
  const hint = unauthorizedHint(false, "-token T");
  if (granted) assert.match(hint, /set LOGBOOM_TOKEN or give -token T/);
  else assert.match(hint, /--allow-env=LOGBOOM_TOKEN/);
  assert.match(unauthorizedHint(true, "-token T"), /does not accept the token/);
});
