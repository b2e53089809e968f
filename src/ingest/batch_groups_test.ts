import assert from "node:assert/strict";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { BatchGroups } from "./batch_groups.ts";

const text = (data: Uint8Array) => new TextDecoder().decode(data);
const bytes = (s: string) => new TextEncoder().encode(s);

function collect(): {
  batches: { text: string; lines: number; meta: BatchMeta; times?: number[] }[];
  write: (b: Batch) => void;
} {
  const batches: { text: string; lines: number; meta: BatchMeta; times?: number[] }[] = [];
  return {
    batches,
    write: (b) =>
      batches.push({
        text: text(b.data),
        lines: b.lines,
        meta: b.meta,
        times: b.times === undefined ? undefined : [...b.times],
      }),
  };
}

Deno.test("BatchGroups writes one batch per meta, in the order the groups opened", () => {
  const a: BatchMeta = { source: "s", host: "a", input: "i" };
  const b: BatchMeta = { source: "s", host: "b", input: "i" };
  const groups = new BatchGroups();
  const { batches, write } = collect();
  const data = bytes("a1\nb1\na2\nb2\n");
  groups.add(a, data, 0, 3, 1, write);
  groups.add(b, data, 3, 6, 1, write);
  groups.add(a, data, 6, 9, 1, write);
  groups.add(b, data, 9, 12, 1, write);
  assert.equal(groups.bytes, 12);
  assert.equal(batches.length, 0);
  groups.flush(write);
  assert.deepEqual(batches.map((x) => [x.meta.host, x.text, x.lines]), [
    ["a", "a1\na2\n", 2],
    ["b", "b1\nb2\n", 2],
  ]);
  assert.equal(groups.bytes, 0);
  // Buffers are reused: what was lent is overwritten by the next round, and still right.
  groups.add(b, data, 9, 12, 1, write);
  groups.flush(write);
  assert.deepEqual(batches.at(-1)!.text, "b2\n");
});

Deno.test("BatchGroups writes the oldest group when a new one would pass maxGroups", () => {
  const metas = ["x", "y", "z"].map((host): BatchMeta => ({ source: "s", host, input: "i" }));
  const groups = new BatchGroups({ maxGroups: 2 });
  const { batches, write } = collect();
  const line = bytes("l\n");
  groups.add(metas[0], line, 0, 2, 1, write);
  groups.add(metas[1], line, 0, 2, 1, write);
  assert.equal(batches.length, 0);
  groups.add(metas[2], line, 0, 2, 1, write);
  assert.deepEqual(batches.map((x) => x.meta.host), ["x"]);
  assert.equal(groups.groups, 2);
  groups.flush(write);
  assert.deepEqual(batches.map((x) => x.meta.host), ["x", "y", "z"]);
});

Deno.test("BatchGroups keeps each line's time when asked, and grows past its first buffers", () => {
  const meta: BatchMeta = { source: "s", host: "h", input: "i" };
  const groups = new BatchGroups({ times: true });
  const { batches, write } = collect();
  const big = bytes("x".repeat(40_000) + "\n");
  for (let i = 0; i < 100; i++) {
    if (i % 10 === 0) groups.add(meta, big, 0, big.length, 1, write, i);
    else groups.add(meta, bytes("s\n"), 0, 2, 1, write, i === 5 ? NaN : i);
  }
  groups.flush(write);
  assert.equal(batches.length, 1);
  assert.equal(batches[0].lines, 100);
  assert.equal(batches[0].text.length, 10 * big.length + 90 * 2);
  assert.equal(batches[0].times!.length, 100);
  assert.equal(batches[0].times![99], 99);
  assert.ok(Number.isNaN(batches[0].times![5]));
});
