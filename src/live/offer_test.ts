import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { BatchLines } from "./batch_lines.ts";
import { compileFilter, type FilterOptions } from "./filter.ts";
import { FilterBudget } from "./filter_budget.ts";
import { offerAll, offerMatching, runMaker } from "./offer.ts";
import { Subscriber } from "./subscriber.ts";
import type { LiveEvent } from "./subscription.ts";

const encoder = new TextEncoder();

function batch(lines: string[]): Batch {
  return {
    data: encoder.encode(lines.map((line) => line + "\n").join("")),
    lines: lines.length,
    meta: { source: "app", host: "10.0.0.1", input: "test" },
    receivedAt: 1000,
  };
}

function subscriber(queueBytes: number, filter: FilterOptions = {}, budget?: FilterBudget) {
  const compiled = compileFilter(filter, 8192);
  return new Subscriber(1, compiled, {
    after: 0,
    restarted: false,
    filterShare: compiled.regex ? budget?.join() : undefined,
    queueBytes,
    maxEventLines: 1000,
    noticeMs: 0,
    now: () => 0,
    counters: { delivered: 0, dropped: 0 },
    nextId: () => 1,
    onRoom: () => {},
    onEnd: () => {},
    signal: undefined,
  });
}

function transcript(sub: Subscriber): string[] {
  const events: LiveEvent[] = [];
  for (let event = sub.poll(); event !== undefined; event = sub.poll()) events.push(event);
  return events.flatMap((event) =>
    event.type === "dropped"
      ? [`dropped ${event.count}`]
      : event.lines.map((l) => `${l.id} ${l.line}`)
  );
}

Deno.test("runMaker numbers runs from the batch's first id and copies what it queues", () => {
  const b = batch(["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
  const lines = new BatchLines(b.data, b.lines);
  const make = runMaker(b, lines, 41);
  const big = make(0, 3); // a third of the batch: one shared copy
  const big2 = make(3, 6);
  const small = make(8, 9); // under a quarter: a copy of its own
  assert.deepEqual([big.firstId, big.count, big2.firstId, small.firstId], [41, 3, 44, 49]);
  assert.equal(big.data.buffer, big2.data.buffer, "large runs share one copy of the batch");
  assert.notEqual(small.data.buffer, big.data.buffer);
  b.data.fill(0x3f);
  assert.equal(new TextDecoder().decode(big.data), "a\nb\nc\n", "the batch may be reused");
  assert.equal(new TextDecoder().decode(small.data), "i\n");
});

Deno.test("offerAll queues lines from the start as far as they fit; always one into an empty queue", () => {
  const b = batch(["line 1", "line 2", "line 3"]);
  const lines = new BatchLines(b.data, b.lines);
  const roomy = subscriber(2 * (6 + 64));
  assert.equal(offerAll(roomy, lines, runMaker(b, lines, 1)), 1);
  assert.deepEqual(transcript(roomy), ["1 line 1", "2 line 2"]);

  const tiny = subscriber(1);
  assert.equal(offerAll(tiny, lines, runMaker(b, lines, 1)), 2);
  assert.deepEqual(transcript(tiny), ["1 line 1"]);
});

Deno.test("offerMatching queues matching lines until one does not fit, then only counts", () => {
  const b = batch(["x 1", "ERR 2", "x 3", "ERR 4", "ERR 5", "x 6", "ERR 7"]);
  const sub = subscriber(2 * (5 + 64), { grep: "ERR" });
  const lines = new BatchLines(b.data, b.lines);
  assert.equal(offerMatching(sub, lines, runMaker(b, lines, 1)), 2, "ERR 5 and ERR 7");
  assert.deepEqual(transcript(sub), ["2 ERR 2", "4 ERR 4"]);
});

Deno.test("offerMatching counts the lines a regex had no time for apart from the full ones", () => {
  // Each reading of the clock is 2 ms later; a burst of 3 ms looks at two lines.
  let t = 0;
  const budget = new FilterBudget({ msPerSecond: 1, burstMs: 3, clock: () => t += 2 });
  const sub = subscriber(1024, { regex: "^l" }, budget);
  const b = batch(["l1", "l2", "l3", "l4", "l5"]);
  const lines = new BatchLines(b.data, b.lines);
  assert.equal(offerMatching(sub, lines, runMaker(b, lines, 1)), 0, "nothing was too big");
  assert.equal(sub.unfiltered, 3);
  assert.deepEqual(transcript(sub), ["1 l1", "2 l2"]);
});
