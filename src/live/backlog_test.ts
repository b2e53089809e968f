import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { recentLines } from "./backlog.ts";
import { compileFilter, type FilterOptions } from "./filter.ts";
import { LineRing } from "./line_ring.ts";
import type { Queued } from "./run.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function batch(lines: string[], source = "app"): Batch {
  return {
    data: encoder.encode(lines.map((line) => line + "\n").join("")),
    lines: lines.length,
    meta: { source, host: "h", input: "test" },
    receivedAt: 1000,
  };
}

function reader(filter: FilterOptions = {}, limit = 1024 * 1024) {
  return { filter: compileFilter(filter, 8192), filterShare: undefined, limit };
}

/** Ids and texts of the runs, `dropped N` for the gaps. */
function shown(items: readonly Queued[]): string[] {
  return items.flatMap((item) =>
    "dropped" in item ? [`dropped ${item.dropped}`] : decoder.decode(item.data)
      .split("\n").slice(0, item.count).map((line, i) => `${item.firstId + i} ${line}`)
  );
}

Deno.test("backfill: the newest matching lines, oldest first, marked as backlog", () => {
  const ring = new LineRing();
  ring.push(batch(["x 1", "ERR 2", "x 3"]));
  ring.push(batch(["ERR 4", "ERR 5"], "db"));
  ring.push(batch(["ERR 6", "x 7"]));
  const { items, missed } = recentLines(ring, reader({ grep: "ERR" }), 0, 3);
  assert.deepEqual(shown(items), ["4 ERR 4", "5 ERR 5", "6 ERR 6"]);
  assert.equal(missed, 0);
  assert.ok(items.every((item) => "dropped" in item || item.backlog === true));
  const db = recentLines(ring, reader({ source: "db" }), 0, 10);
  assert.deepEqual(shown(db.items), ["4 ERR 4", "5 ERR 5"]);
});

Deno.test("backfill stops at the subscriber's queue bound, keeping the newest lines", () => {
  const ring = new LineRing();
  ring.push(batch(["line 1", "line 2", "line 3", "line 4"]));
  const { items } = recentLines(ring, reader({}, 2 * (6 + 64)), 0, 10);
  assert.deepEqual(shown(items), ["3 line 3", "4 line 4"]);
});

Deno.test("resume: every line after the cursor, and counts of what it cannot have where it was", () => {
  const ring = new LineRing();
  ring.push(batch(["a 1", "a 2"]));
  ring.skip(3); // lines 3 to 5, over the ring's rate
  ring.push(batch(["a 6", "a 7"]));
  const all = recentLines(ring, reader(), 1, Infinity);
  assert.deepEqual(shown(all.items), ["2 a 2", "dropped 3", "6 a 6", "7 a 7"]);
  assert.equal(all.missed, 3);

  // Only two lines fit: the oldest that do not are counted before them.
  const bounded = recentLines(ring, reader({}, 2 * (3 + 64)), 0, Infinity);
  assert.deepEqual(shown(bounded.items), ["dropped 5", "6 a 6", "7 a 7"]);
  assert.equal(bounded.missed, 5);
  assert.equal(bounded.unfiltered, 0);
});
