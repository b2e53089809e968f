import assert from "node:assert/strict";
import { DeliveryBudget, REST_LINES } from "./delivery_budget.ts";

Deno.test("DeliveryBudget splits its rate evenly and makes an overspending share wait", () => {
  let now = 0;
  const budget = new DeliveryBudget(1000, { burstMs: 500, now: () => now });
  const a = budget.join();
  // Alone: 1 line per ms, starting empty, saving up to 500 lines; after sending, it rests until
  // REST_LINES more are allowed.
  assert.equal(a.available(), 0);
  assert.equal(a.spend(100), 100 + REST_LINES);
  now += 1000;
  assert.equal(a.available(), 500);
  assert.equal(a.spend(400), 0, "enough left to send again at once");
  assert.equal(a.spend(100), REST_LINES);
  now += REST_LINES;
  assert.equal(a.spend(0), 0);
  const b = budget.join();
  assert.equal(budget.members, 2);
  // Two members: half a line per ms each.
  now += 1000;
  assert.equal(b.available(), 250);
  assert.equal(b.spend(300), (50 + REST_LINES) * 2);
  b.leave();
  b.leave(); // twice is harmless
  assert.equal(budget.members, 1);
  a.leave();
  assert.equal(budget.members, 0);
});

Deno.test("DeliveryBudget lets a share poorer than REST_LINES per burst save up REST_LINES", () => {
  let now = 0;
  // 10 lines per second, bursts of 50 ms: half a line per burst.
  const share = new DeliveryBudget(10, { burstMs: 50, now: () => now }).join();
  now += 100_000;
  assert.equal(share.available(), REST_LINES);
  assert.equal(share.spend(REST_LINES), REST_LINES * 100, "rests until REST_LINES are allowed");
});

Deno.test("a share waking after a lull saved nothing and watches the surge before it saves", () => {
  let now = 0;
  // 1 line per ms, bursts of 500 ms.
  const share = new DeliveryBudget(1000, { burstMs: 500, now: () => now }).join();
  now = 50;
  share.resume(); // a short wait changes nothing
  assert.equal(share.available(), 50);
  now = 2000; // a lull: no reads since 50
  share.resume();
  assert.equal(share.available(), 0, "nothing saved up while nothing came");
  assert.equal(share.spend(1), 100 + 1 + REST_LINES, "the first line, then a watch of 100 ms");
  now = 2100;
  assert.equal(share.available(), 0, "nothing accrues while watching");
  now = 2200;
  assert.equal(share.available(), 99);
});

Deno.test("DeliveryBudget of Infinity never makes anyone wait", () => {
  const share = new DeliveryBudget(Infinity).join();
  assert.equal(share.spend(1e9), 0);
  assert.throws(() => new DeliveryBudget(0), RangeError);
});

Deno.test("DeliveryBudget shrinks in proportion while ingestion runs above its calm rate", () => {
  let now = 0;
  let ingested = 0;
  const budget = new DeliveryBudget(1000, {
    now: () => now,
    ingested: () => ingested,
    calmRate: 100,
  });
  assert.equal(budget.current(), 1000);
  now += 1000;
  ingested += 50; // calm
  assert.equal(budget.current(), 1000);
  now += 1000;
  ingested += 400; // four times the calm rate
  assert.equal(budget.current(), 250);
  now += 10; // too soon to measure again (sampled every 25 ms)
  assert.equal(budget.current(), 250);
  now += 990;
  // Idle again: the rate is let go over about a second, not at once.
  const recovering = budget.current();
  assert.ok(recovering > 250 && recovering < 1000, `${recovering}`);
  now += 5000;
  assert.equal(budget.current(), 1000, "idle for long");
});
