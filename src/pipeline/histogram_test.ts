import assert from "node:assert/strict";
import { Histogram } from "./histogram.ts";

Deno.test("histogram counts values into cumulative le buckets", () => {
  const h = new Histogram([0.1, 1, 10]);
  for (const v of [0.05, 0.1, 0.5, 3, 99]) h.observe(v);
  assert.deepEqual(h.cumulative(), [2, 3, 4, 5]);
  assert.equal(h.count, 5);
  assert.equal(h.sum, 102.65);
  assert.throws(() => new Histogram([1, 1]), RangeError);
});
