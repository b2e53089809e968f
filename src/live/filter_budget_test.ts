import assert from "node:assert/strict";
import { FilterBudget } from "./filter_budget.ts";

function fakeClock() {
  const clock = { now: 0, read: () => clock.now };
  return clock;
}

Deno.test("a share starts with a burst, spends it, and earns its part of the rate back", () => {
  const clock = fakeClock();
  const budget = new FilterBudget({ msPerSecond: 100, burstMs: 20, clock: clock.read });
  const share = budget.join();
  let last = share.start();
  assert.equal(share.balance, 20);
  clock.now += 15;
  last = share.charge(last);
  assert.ok(share.allows());
  clock.now += 10;
  share.charge(last);
  assert.equal(share.balance, -5, "one line may overrun: it is owed");
  assert.ok(!share.allows());
  // 100 ms per second: the 50 ms of wall time since the start earn 5 ms, which pay the debt only.
  clock.now += 25;
  share.start();
  assert.equal(share.balance, 0);
  assert.ok(!share.allows());
  clock.now += 10_000;
  share.start();
  assert.equal(share.balance, 20, "never more than a burst");
});

Deno.test("shares split the rate evenly, and a share that leaves gives its part back", () => {
  const clock = fakeClock();
  const budget = new FilterBudget({ msPerSecond: 100, burstMs: 1000, clock: clock.read });
  const a = budget.join();
  const b = budget.join();
  for (const share of [a, b]) share.charge(share.start() - 1000); // spend the burst
  assert.equal(a.balance, 0);
  clock.now += 1000;
  a.start();
  assert.equal(a.balance, 50);
  b.leave();
  b.leave(); // twice is once
  assert.equal(budget.shares, 1);
  clock.now += 1000;
  a.start();
  assert.equal(a.balance, 150);
});

Deno.test("a budget of nothing is refused", () => {
  assert.throws(() => new FilterBudget({ msPerSecond: 0 }), RangeError);
  assert.throws(() => new FilterBudget({ burstMs: -1 }), RangeError);
});
