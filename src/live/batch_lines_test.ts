import assert from "node:assert/strict";
import { BatchLines } from "./batch_lines.ts";

const encoder = new TextEncoder();

function linesOf(texts: string[]): BatchLines {
  return new BatchLines(encoder.encode(texts.map((t) => t + "\n").join("")), texts.length);
}

Deno.test("BatchLines decodes any line, in any order, across decoding steps", () => {
  const texts = Array.from({ length: 1000 }, (_, i) => `line ${i} ${"é".repeat(i % 5)}`);
  const lines = linesOf(texts);
  for (const i of [700, 3, 0, 999, 256, 255, 257, 512]) assert.equal(lines.text(i), texts[i]);
  for (let i = 0; i < texts.length; i++) assert.equal(lines.text(i), texts[i]);
});

Deno.test("BatchLines finds the lines holding a text", () => {
  const lines = linesOf(["a ERROR", "b", "c", "d ERR", "e ERROR", "ERROR"]);
  const needle = "ERROR";
  const found: number[] = [];
  for (let i = lines.find(0, needle); i < lines.count; i = lines.find(i + 1, needle)) found.push(i);
  assert.deepEqual(found, [0, 4, 5]);
  assert.equal(lines.find(0, "zzz"), 6);
  assert.equal(lines.find(6, needle), 6);
});

Deno.test("BatchLines keeps invalid UTF-8 as U+FFFD and a leading BOM as it came", () => {
  const data = new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 10, 0xff, 0x62, 10]);
  const lines = new BatchLines(data, 2);
  assert.equal(lines.text(0), "\ufeffa");
  assert.equal(lines.text(1), "\ufffdb");
});
