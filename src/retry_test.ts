import assert from "node:assert/strict";
import { RETRY_AFTER_CAP_MS, retryAfterMs, RetryPolicy } from "./retry.ts";

const now = Date.parse("2026-01-01T00:00:00Z");

Deno.test("Retry-After: delay-seconds, capped at a minute by default", () => {
  assert.equal(retryAfterMs("2", { now }), 2000);
  assert.equal(retryAfterMs(" 0 ", { now }), 0);
  assert.equal(retryAfterMs("86400", { now }), RETRY_AFTER_CAP_MS);
  assert.equal(retryAfterMs("99999999999999999999", { now }), RETRY_AFTER_CAP_MS);
  assert.equal(retryAfterMs("30", { now, capMs: 10_000 }), 10_000, "a caller's own cap");
});

Deno.test("Retry-After: an HTTP date, from now, capped; a date past is no wait", () => {
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", { now }), 30_000);
  assert.equal(retryAfterMs("Fri, 02 Jan 2026 00:00:00 GMT", { now }), RETRY_AFTER_CAP_MS);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 00:00:00 GMT", { now }), 0);
});

Deno.test("Retry-After: garbage, negatives and absence are no wait", () => {
  for (const value of ["-5", "1.5", "soon", "", "  ", null, undefined]) {
    assert.equal(retryAfterMs(value, { now }), 0, String(value));
  }
});

Deno.test("RetryPolicy doubles from the first delay up to the longest, whatever the attempt", () => {
  const policy = new RetryPolicy({ initialMs: 250, maxMs: 5000, jitter: "none" });
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 1000].map((attempt) => policy.delayMs(attempt)),
    [250, 500, 1000, 2000, 4000, 5000, 5000, 5000],
  );
});

Deno.test("RetryPolicy's equal jitter keeps half the delay and draws the other half", () => {
  let draw = 0;
  const policy = new RetryPolicy({ initialMs: 100, maxMs: 10_000, random: () => draw });
  assert.equal(policy.delayMs(3), 400, "the least: half of 800");
  draw = 0.999999;
  assert.ok(policy.delayMs(3) < 800 && policy.delayMs(3) > 799.9, "the most: just under 800");
  draw = 0.5;
  assert.equal(policy.delayMs(20), 7500, "capped before the jitter");
});

Deno.test("RetryPolicy waits what Retry-After asks when longer, within its own cap", () => {
  const policy = new RetryPolicy({
    initialMs: 500,
    maxMs: 10_000,
    jitter: "none",
    retryAfterCapMs: 10_000,
  });
  assert.equal(policy.delayMs(0, "3", now), 3000);
  assert.equal(policy.delayMs(4, "3", now), 8000, "the backoff when longer");
  assert.equal(policy.delayMs(0, "3600", now), 10_000, "capped");
  assert.equal(policy.delayMs(0, "Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(policy.delayMs(0, "later", now), 500, "garbage: the backoff");
  assert.equal(policy.delayMs(0, null, now), 500);
  assert.throws(() => new RetryPolicy({ initialMs: -1, maxMs: 5 }), RangeError);
  assert.throws(() => new RetryPolicy({ initialMs: NaN, maxMs: 5 }), RangeError);
});
