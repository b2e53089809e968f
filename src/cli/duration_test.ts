import assert from "node:assert/strict";
import { parseDuration } from "./duration.ts";

Deno.test("parseDuration reads each unit and compound durations", () => {
  assert.equal(parseDuration("200ms"), 200);
  assert.equal(parseDuration("5s"), 5_000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("1m200ms"), 60_200);
  assert.equal(parseDuration("0"), 0);
});

Deno.test("parseDuration rejects what is not a duration, quoting it", () => {
  for (const bad of ["", "5", "h", "-5s", "5 s", "1h 30m", "5S", "1w", "1e3s", "5s!", "0.5ms"]) {
    assert.throws(
      () => parseDuration(bad),
      (err: unknown) => err instanceof RangeError && err.message.includes(`"${bad}"`),
      bad,
    );
  }
  assert.throws(() => parseDuration("9".repeat(20) + "d"), RangeError);
});
