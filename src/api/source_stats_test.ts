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
