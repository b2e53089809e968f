import assert from "node:assert/strict";
import type { LiveLine } from "./subscription.ts";
import { decodeRun, endOfLines, LINE_OVERHEAD_BYTES, type Run, runCost, splitRun } from "./run.ts";

const encoder = new TextEncoder();

function run(lines: string[], firstId = 7): Run {
  const data = encoder.encode(lines.map((line) => line + "\n").join(""));
  return { data, firstId, count: lines.length, source: "app", host: "h", ts: 1000 };
}

Deno.test("runCost counts each line's bytes without its newline, plus the per-line overhead", () => {
  assert.equal(runCost(run(["abc", "de"])), 3 + 2 + 2 * LINE_OVERHEAD_BYTES);
  assert.equal(runCost(run([""])), LINE_OVERHEAD_BYTES, "an empty line still costs");
});

Deno.test("endOfLines finds the end of the first n lines, or the end of the data", () => {
  const { data } = run(["a", "bb", "ccc"]);
  assert.equal(endOfLines(data, 0), 0);
  assert.equal(endOfLines(data, 1), 2);
  assert.equal(endOfLines(data, 2), 5);
  assert.equal(endOfLines(data, 3), data.length);
  assert.equal(endOfLines(data, 9), data.length);
});

Deno.test("decodeRun makes numbered records, keeps a BOM and replaces invalid UTF-8", () => {
  const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0x0a, 0x62, 0xff, 0x0a]);
  const into: LiveLine[] = [];
  decodeRun({ ...run([]), data: bytes, count: 2 }, into);
  assert.deepEqual(into, [
    { id: 7, source: "app", host: "h", ts: 1000, line: "\ufeffa" },
    { id: 8, source: "app", host: "h", ts: 1000, line: "b\ufffd" },
  ]);
});

Deno.test("splitRun cuts bytes, levels and fields at a line, and the costs add up", () => {
  const base = run(["a", "bb", "ccc"]);
  const fielded: Run = {
    ...base,
    levels: new Uint8Array([1, 5, 6]),
    fields: [{ k: "1" }, undefined, { k: "3" }],
    fieldBytes: 100,
  };
  const [head, tail] = splitRun(fielded, 1);
  assert.equal(runCost(head) + runCost(tail), runCost(fielded));
  const lines: LiveLine[] = [];
  decodeRun(head, lines);
  decodeRun(tail, lines);
  assert.deepEqual(lines, [
    { id: 7, source: "app", host: "h", ts: 1000, level: "trace", line: "a", fields: { k: "1" } },
    { id: 8, source: "app", host: "h", ts: 1000, level: "error", line: "bb" },
    { id: 9, source: "app", host: "h", ts: 1000, level: "fatal", line: "ccc", fields: { k: "3" } },
  ]);
  // A plain run splits into plain runs.
  const [plain] = splitRun(base, 2);
  assert.deepEqual(Object.keys(plain).sort(), Object.keys(base).sort());
});
