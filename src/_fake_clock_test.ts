import assert from "node:assert/strict";
import { FakeClock } from "./_fake_clock.ts";
import { pause } from "./clock.ts";

Deno.test("fake clock fires timers in the order they fall due, each at its own time", () => {
  const clock = new FakeClock(1000);
  const fired: string[] = [];
  clock.timer(300, () => fired.push(`b@${clock.now()}`));
  clock.timer(100, () => {
    fired.push(`a@${clock.now()}`);
    // Set while the clock moves: fired too when it falls due before the end.
    clock.timer(50, () => fired.push(`c@${clock.now()}`));
  });
  const cancel = clock.timer(200, () => fired.push("cancelled"));
  cancel();
  assert.equal(clock.waiting, 2);
  clock.advance(299);
  assert.deepEqual(fired, ["a@1100", "c@1150"]);
  assert.equal(clock.now(), 1299);
  clock.advance(1);
  assert.deepEqual(fired, ["a@1100", "c@1150", "b@1300"]);
  assert.equal(clock.waiting, 0);
});

Deno.test("pause ends on the clock's time, or at once when its signal aborts", async () => {
  const clock = new FakeClock();
  let done = false;
  const paused = pause(clock, 5000).then(() => done = true);
  clock.advance(4999);
  await Promise.resolve();
  assert.equal(done, false);
  clock.advance(1);
  await paused;
  const stop = new AbortController();
  const stopped = pause(clock, 60_000, stop.signal);
  stop.abort();
  await stopped;
  assert.equal(clock.waiting, 0, "the aborted pause's timer is cancelled");
});
