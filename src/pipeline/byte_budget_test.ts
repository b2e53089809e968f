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

Deno.test("ByteBudget drops a wait whose signal aborted: waits during an outage do not pile up", async () => {
  const budget = new ByteBudget(10);
  budget.take(10);
  // A producer that gives up its wait (a timer, a stop) and waits again, many times over.
  for (let i = 0; i < 10_000; i++) {
    const gaveUp = new AbortController();
    const wait = budget.available(gaveUp.signal);
    gaveUp.abort();
    await wait;
  }
  assert.equal(budget.waiting, 0, "nothing left behind by the waits given up");
  const live = budget.available();
  assert.equal(budget.waiting, 1);
  budget.release(10);
  await live;
  assert.equal(budget.waiting, 0);
  assert.equal(await Promise.race([budget.available(AbortSignal.abort()), "pending"]), undefined);
});
