import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { OTHER_SOURCE, SourceStats } from "./source_stats.ts";

function batch(source: string, input = "tcp", receivedAt = 1): Batch {
  return { data: new Uint8Array(10), lines: 2, meta: { source, host: "h", input }, receivedAt };
}

Deno.test("SourceStats counts per input and source, and gathers sources past its limit", () => {
  const stats = new SourceStats({ maxSources: 2 });
  assert.equal(stats.write(batch("a")), true);
  stats.write(batch("a", "tcp", 5));
  stats.write(batch("b", "http"));
  stats.write(batch("c"));
  stats.write(batch("d"));
  assert.deepEqual(
    stats.list().map((c) => [c.input, c.source, c.lines, c.bytes, c.lastSeen]),
    [["tcp", "a", 4, 20, 5], ["http", "b", 2, 10, 1], ["tcp", OTHER_SOURCE, 4, 20, 1]],
  );
});

Deno.test("SourceStats counts batches of one origin object and of equal ones alike", () => {
  const stats = new SourceStats({ maxSources: 1 });
  const meta = { source: "a", host: "h", input: "tcp" };
  const data = new Uint8Array(10);
  stats.write({ data, lines: 2, meta, receivedAt: 7 });
  stats.write({ data, lines: 2, meta, receivedAt: 3 });
  stats.write({ data, lines: 2, meta: { ...meta }, receivedAt: 1 });
  stats.write({ data, lines: 2, meta: { ...meta, source: "b" }, receivedAt: 1 });
  stats.write({ data, lines: 2, meta: { ...meta, source: "b" }, receivedAt: 9 });
  assert.deepEqual(
    stats.list().map((c) => [c.source, c.lines, c.lastSeen]),
    [["a", 6, 7], [OTHER_SOURCE, 4, 9]],
  );
});

Deno.test("SourceStats gives each source's rates over the last minute and a second by second history", () => {
  let now = 1_000_000_000_000; // a whole second
  const stats = new SourceStats({ clock: { now: () => now } });
  const at = (ms: number, source: string, input = "tcp"): Batch => ({
    data: new Uint8Array(100),
    lines: 10,
    meta: { source, host: "h", input },
    receivedAt: ms,
  });
  // "web": 10 lines a second for 30 seconds over two inputs; "db": once, long ago.
  stats.write(at(now - 3_600_000, "db"));
  for (let s = 0; s < 30; s++) {
    stats.write(at(now + s * 1000, "web", s % 2 === 0 ? "tcp" : "http"));
  }
  now += 30_000;
  let [db, web] = stats.summary();
  assert.equal(db.source, "db");
  assert.equal(db.lines_per_second, 0);
  assert.deepEqual(db.history, new Array(60).fill(0));
  assert.equal(db.last_seen, new Date(now - 30_000 - 3_600_000).toISOString());
  assert.equal(web.lines, 300);
  assert.equal(web.lines_per_second, 300 / 60);
  assert.equal(web.bytes_per_second, 3000 / 60);
  assert.deepEqual(web.history, [...new Array(30).fill(0), ...new Array(30).fill(10)]);
  // A minute later with nothing new, the window is empty again; the totals stay.
  now += 60_000;
  [, web] = stats.summary();
  assert.equal(web.lines_per_second, 0);
  assert.deepEqual(web.history, new Array(60).fill(0));
  assert.equal(web.lines, 300);
  // After a long silence, a second's slot holds only that second.
  stats.write(at(now, "web"));
  now += 1000;
  [, web] = stats.summary();
  assert.deepEqual(web.history, [...new Array(59).fill(0), 10]);
});
