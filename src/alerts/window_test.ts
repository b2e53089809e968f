import assert from "node:assert/strict";
import { bucketMsFor, MAX_BUCKETS, SlidingCount } from "./window.ts";

Deno.test("a sliding count forgets what left the window, a bucket at a time", () => {
  const count = new SlidingCount(10_000);
  count.add(0, 3);
  count.add(4_500, 2);
  assert.equal(count.total(9_999), 5);
  // The bucket of time 0 leaves at 10 s; the one of 4.5 s at 14 s.
  assert.equal(count.total(10_000), 2);
  count.add(10_200, 1);
  assert.equal(count.total(13_999), 3);
  assert.equal(count.total(14_000), 1);
  // 10.2 s is in the bucket from 10 s, which leaves at 20 s.
  assert.equal(count.total(19_999), 1);
  assert.equal(count.total(20_000), 0);
  // A long gap empties it at once.
  count.add(100_000, 7);
  assert.equal(count.total(100_000), 7);
  assert.equal(count.total(1_000_000), 0);
});

Deno.test("a clock set back adds to the newest bucket rather than losing counts", () => {
  const count = new SlidingCount(5_000);
  count.add(10_000, 1);
  count.add(9_000, 1);
  assert.equal(count.total(10_000), 2);
  assert.equal(count.total(15_000), 0);
});

Deno.test("long windows get wider buckets, so memory stays within 3,600 of them", () => {
  assert.equal(bucketMsFor(5 * 60_000), 1000);
  assert.equal(bucketMsFor(3_600_000), 1000);
  assert.equal(bucketMsFor(7 * 86_400_000), 168_000);
  const week = new SlidingCount(7 * 86_400_000);
  assert.ok(Math.ceil(week.windowMs / week.bucketMs) <= MAX_BUCKETS);
  week.add(0, 1);
  assert.equal(week.total(7 * 86_400_000 - 168_001), 1);
  assert.equal(week.total(7 * 86_400_000), 0);
});
