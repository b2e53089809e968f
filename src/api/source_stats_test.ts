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
