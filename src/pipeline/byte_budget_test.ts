import assert from "node:assert/strict";
import { ByteBudget } from "./byte_budget.ts";

Deno.test("ByteBudget reports full at the limit and wakes waiters on release", async () => {
  const budget = new ByteBudget(100);
  assert.equal(budget.take(60), true);
  assert.equal(budget.take(50), false, "over the limit: the producer must wait");
  assert.equal(budget.full, true);
  let woke = false;
  const waiting = budget.available().then(() => woke = true);
  budget.release(5);
  await Promise.resolve();
  assert.equal(woke, false, "still at 105 of 100: no room yet");
  budget.release(60);
  await waiting;
  assert.equal(woke, true);
  assert.equal(budget.used, 45);
});

Deno.test("ByteBudget rejects a limit that is not a positive integer", () => {
  assert.throws(() => new ByteBudget(0), RangeError);
  assert.throws(() => new ByteBudget(1.5), RangeError);
});
