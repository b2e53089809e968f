import assert from "node:assert/strict";
import { DeliveryBudget, MAX_REST_MS, REST_LINES } from "./delivery_budget.ts";

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

Deno.test("a share too poor to earn REST_LINES in MAX_REST_MS rests that long, not longer", () => {
  let now = 0;
  // 10 lines per second: 10 lines per MAX_REST_MS (a second), half a line per 50 ms burst.
  const share = new DeliveryBudget(10, { burstMs: 50, now: () => now }).join();
  now += 100_000;
  assert.equal(share.available(), 10, "it saves up what it rests for");
  assert.equal(share.spend(10), MAX_REST_MS);
  assert.equal(share.keepLines(), 20, "what 2 s bring, and two rests' worth");
  // 1,000 lines per second: REST_LINES come well within a second.
  const rich = new DeliveryBudget(1000, { burstMs: 50, now: () => now }).join();
  assert.equal(rich.spend(0), REST_LINES);
  assert.equal(rich.keepLines(), 2000);
});

Deno.test("among others, a share waking after a lull saved nothing and watches the surge", () => {
  let now = 0;
  // 2 lines per ms, shared by two: 1 line per ms each, bursts of 500 ms.
  const budget = new DeliveryBudget(2000, { burstMs: 500, now: () => now });
  const alone = budget.join();
  const share = budget.join();
  now = 50;
  assert.equal(share.available(), 0, "joining others, it watches for 100 ms");
  now = 150;
  share.resume(); // a short wait changes nothing
  assert.equal(share.available(), 50);
  now = 2000; // a lull: no reads since 150
  share.resume();
  assert.equal(share.available(), 0, "nothing saved up while nothing came");
  assert.equal(share.spend(1), 100 + 1 + REST_LINES, "the first line, then a watch of 100 ms");
  now = 2100;
  assert.equal(share.available(), 0, "nothing accrues while watching");
  now = 2200;
  assert.equal(share.available(), 99);
  share.leave();
  // Alone, a share waking after a lull spends what it saved: its queue would overflow otherwise.
  alone.resume();
  assert.equal(alone.available(), 1000);
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

Deno.test("a surge is believed within 5 ms, not only at the next 25 ms sample", () => {
  let now = 0;
  let ingested = 0;
  const budget = new DeliveryBudget(200_000, { now: () => now, ingested: () => ingested });
  assert.equal(budget.current(), 200_000);
  now += 5;
  ingested += 400; // 80,000 lines/s: calm, nothing to measure before 25 ms
  assert.equal(budget.current(), 200_000);
  now += 5;
  ingested += 40_000; // 4,040,000 lines/s over these 10 ms
  assert.equal(budget.current(), 200_000 * 100_000 / 4_040_000);
});

Deno.test("a lone tail saves up 10 ms of the budget while it waits, not more", () => {
  let now = 0;
  const share = new DeliveryBudget(200_000, { now: () => now }).join();
  now += 1000;
  // Spent at once when lines come: a tail that stopped reading is sent these before its socket
  // fills, so the default keeps them few.
  assert.equal(share.available(), 2000);
});
