import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { LineRing } from "./line_ring.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function batch(lines: string[], source = "app"): Batch {
  return {
    data: encoder.encode(lines.map((line) => line + "\n").join("")),
    lines: lines.length,
    meta: { source, host: "10.0.0.1", input: "test" },
    receivedAt: 1000,
  };
}

/** Every line held, oldest first, as `id:text`. */
function contents(ring: LineRing): string[] {
  const out: string[] = [];
  for (const chunk of [...ring.newestFirst()].reverse()) {
    const texts = decoder.decode(chunk.data).split("\n").slice(0, -1);
    texts.forEach((text, i) => out.push(`${chunk.firstId + i}:${text}`));
  }
  return out;
}

Deno.test("LineRing numbers lines across batches and keeps at least the last maxLines", () => {
  const ring = new LineRing({ maxLines: 4 });
  assert.equal(ring.push(batch(["a", "b", "c"])), 1);
  assert.equal(ring.push(batch(["d", "e"])), 4);
  assert.deepEqual(contents(ring), ["1:a", "2:b", "3:c", "4:d", "5:e"], "one batch over is fine");
  ring.push(batch(["f"]));
  assert.equal(ring.lines, 6, "without the oldest batch only 3 lines would be left");
  ring.push(batch(["g"]));
  assert.deepEqual(contents(ring), ["4:d", "5:e", "6:f", "7:g"], "whole batches are dropped");
  assert.equal(ring.bytes, 8);
  assert.equal(ring.oldestId, 4);
  assert.equal(ring.nextId, 8);
});

Deno.test("LineRing never holds more than the byte bound, dropping whole batches", () => {
  const ring = new LineRing({ maxBytes: 10 });
  ring.push(batch(["aa", "bb", "cc"]));
  ring.push(batch(["d"]));
  assert.deepEqual(contents(ring), ["4:d"]);
  assert.equal(ring.bytes, 2);
  ring.push(batch(["eeeeeee"]));
  assert.deepEqual(contents(ring), ["4:d", "5:eeeeeee"]);
  assert.equal(ring.oldestId, 4);
  assert.equal(ring.bytes, 10);
});

Deno.test("LineRing copies only the tail of a batch larger than its bounds", () => {
  const ring = new LineRing({ maxLines: 2, maxBytes: 100 });
  assert.equal(ring.push(batch(["1", "2", "3", "4", "5"])), 1);
  assert.deepEqual(contents(ring), ["4:4", "5:5"]);
  const bytes = new LineRing({ maxBytes: 5 });
  bytes.push(batch(["one", "two", "x"]));
  assert.deepEqual(contents(bytes), ["3:x"]);
  bytes.push(batch(["far too long"]));
  assert.deepEqual(contents(bytes), ["3:x"], "a line over the bound is not kept, nor evicts");
  assert.equal(bytes.nextId, 5, "but it still takes an id");
});

Deno.test("LineRing owns its copy: the producer may reuse its buffer", () => {
  const ring = new LineRing();
  const b = batch(["hello"]);
  ring.push(b);
  b.data.fill(0x21);
  assert.deepEqual(contents(ring), ["1:hello"]);
});

Deno.test("LineRing with a zero bound keeps nothing but still numbers lines", () => {
  const ring = new LineRing({ maxLines: 0 });
  ring.push(batch(["a"]));
  assert.equal(ring.lines, 0);
  assert.equal(ring.oldestId, 2);
  assert.throws(() => new LineRing({ maxBytes: -1 }), RangeError);
  assert.throws(() => new LineRing({ maxLines: 1.5 }), RangeError);
});

Deno.test("LineRing stays bounded over many single-line batches", () => {
  const ring = new LineRing({ maxLines: 100 });
  for (let i = 0; i < 5000; i++) ring.push(batch([`line ${i}`]));
  assert.equal(ring.lines, 100);
  assert.equal([...ring.newestFirst()].length, 100);
  assert.equal(contents(ring)[0], "4901:line 4900");
});

Deno.test("LineRing reuses one arena: what it holds stays exact as writes wrap around", () => {
  const ring = new LineRing({ maxLines: 1_000_000, maxBytes: 100 });
  // What the ring should hold: the newest batches whose bytes fit, a batch over the bound cut to
  // the tail of lines that fits.
  let kept: { lines: string[]; bytes: number }[] = [];
  let id = 1;
  for (let i = 0; i < 2000; i++) {
    // Batches of 1 to 7 lines of varying lengths, so the arena wraps at every possible place.
    const lines = Array.from(
      { length: 1 + (i % 7) },
      (_, j) => `${i}.${j}${"x".repeat((i * j) % 11)}`,
    );
    ring.push(batch(lines));
    const entries = lines.map((line) => `${id++}:${line}`);
    const size = (entry: string) => entry.length - entry.indexOf(":");
    let bytes = entries.reduce((sum, e) => sum + size(e), 0);
    while (bytes > 100) bytes -= size(entries.shift()!);
    if (entries.length > 0) kept.push({ lines: entries, bytes });
    while (kept.reduce((sum, k) => sum + k.bytes, 0) > 100) kept = kept.slice(1);
    assert.deepEqual(contents(ring), kept.flatMap((k) => k.lines), `after batch ${i}`);
    assert.equal(ring.bytes, kept.reduce((sum, k) => sum + k.bytes, 0));
  }
});

Deno.test("LineRing.skip numbers lines it does not keep: the ids have a gap", () => {
  const ring = new LineRing({ maxLines: 10 });
  ring.push(batch(["a", "b"]));
  assert.equal(ring.skip(3), 3);
  assert.equal(ring.push(batch(["f"])), 6);
  assert.equal(ring.nextId, 7);
  assert.equal(ring.lines, 3);
  assert.deepEqual(contents(ring), ["1:a", "2:b", "6:f"]);
});

Deno.test("LineRing keeps the newest maxLines of a batch over it, found from either end", () => {
  for (const count of [5, 7, 9, 12]) {
    const ring = new LineRing({ maxLines: 4, maxBytes: 1024 });
    const lines = Array.from({ length: count }, (_, i) => `line ${i}`);
    ring.push(batch(lines));
    const kept = lines.slice(-4).map((text, i) => `${count - 3 + i}:${text}`);
    assert.deepEqual(contents(ring), kept, `${count} lines`);
    assert.equal(ring.lines, 4);
  }
  // Skipping from the front would leave more bytes than the bound: fewer lines are kept.
  const ring = new LineRing({ maxLines: 4, maxBytes: 12 });
  ring.push(batch(["aaaaaaaaaaaaaaaaaaaa", "bb", "cccccc", "dd", "e"]));
  assert.deepEqual(contents(ring), ["3:cccccc", "4:dd", "5:e"]);
});
