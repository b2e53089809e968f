import assert from "node:assert/strict";
import { type LineBatch, LineBatcher } from "./line_batcher.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function texts(batches: (LineBatch | undefined)[]): [string, number][] {
  return batches.filter((b) => b !== undefined).map((b) => [decoder.decode(b!.data), b!.offset]);
}

Deno.test("LineBatcher cuts at the last line end before the batch size, with stream offsets", () => {
  const batcher = new LineBatcher({ batchBytes: 10 });
  const out = [
    ...batcher.push(encoder.encode("aaa\nbbb\ncc")),
    ...batcher.push(encoder.encode("c\nddd\n")),
    batcher.end(),
  ];
  assert.deepEqual(texts(out), [["aaa\nbbb\n", 8], ["ccc\nddd\n", 16]]);
});

Deno.test("LineBatcher keeps a long line whole up to the largest batch, then cuts it", () => {
  const batcher = new LineBatcher({ batchBytes: 4, maxBatchBytes: 8 });
  const out = [
    ...batcher.push(encoder.encode("abcdef\n")),
    ...batcher.push(encoder.encode("0123456789")),
    batcher.end(),
  ];
  assert.deepEqual(texts(out), [["abcdef\n", 7], ["01234567", 15], ["89", 17]]);
});

Deno.test("LineBatcher hands out whole lines on demand and the unterminated rest at the end", () => {
  const batcher = new LineBatcher({ batchBytes: 100 });
  assert.deepEqual(batcher.push(encoder.encode("one\ntw")), []);
  assert.deepEqual(texts([batcher.complete()]), [["one\n", 4]]);
  assert.equal(batcher.complete(), undefined);
  assert.equal(batcher.pending, 2);
  assert.deepEqual(texts([batcher.end()]), [["tw", 6]]);
  assert.equal(batcher.end(), undefined);
});
