import assert from "node:assert/strict";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { cutLines, type Packed, Packer } from "./packer.ts";
import { seededRandom } from "../_seeded_random.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const META: BatchMeta = { source: "web", host: "10.0.0.1", input: "tcp" };

/** `cutLines` done a line at a time with `indexOf`. */
function naiveCut(data: Uint8Array, start: number, maxLines: number, maxBytes: number) {
  let end = start;
  let lines = 0;
  while (lines < maxLines) {
    const next = data.indexOf(10, end) + 1;
    if (next === 0 || next - start > maxBytes) break;
    end = next;
    lines++;
  }
  return { end, lines };
}

Deno.test("cutLines: finds the same cut as a line-by-line scan, at any alignment", () => {
  const next = seededRandom(7);
  for (let trial = 0; trial < 5000; trial++) {
    const size = 1 + Math.floor(next() * 400);
    const offset = Math.floor(next() * 8);
    const buffer = new Uint8Array(size + 8);
    const data = buffer.subarray(offset, offset + size);
    // Newlines dense or sparse, and bytes just above and below 10 that fool a sloppy word test.
    const density = next() < 0.5 ? 0.02 : 0.3;
    for (let i = 0; i < size; i++) {
      const r = next();
      data[i] = r < density ? 10 : r < density + 0.1 ? 11 : r < density + 0.2 ? 0x8a : 9;
    }
    const start = Math.floor(next() * size);
    const maxLines = 1 + Math.floor(next() * 20);
    const maxBytes = 1 + Math.floor(next() * 200);
    const out = { end: -1, lines: -1 };
    cutLines(data, start, maxLines, maxBytes, out);
    assert.deepEqual(out, naiveCut(data, start, maxLines, maxBytes), `trial ${trial}`);
  }
});

interface Line {
  text: string;
  level: number;
}

/** What the packer should make of `lines`, one line at a time. */
function expected(lines: Line[], maxLines: number, maxBytes: number): Line[][] {
  const out: Line[][] = [];
  let current: Line[] = [];
  let bytes = 0;
  const seal = () => {
    if (current.length > 0) out.push(current);
    current = [];
    bytes = 0;
  };
  for (const line of lines) {
    let text = line.text;
    while (text.length > maxBytes) {
      seal();
      out.push([{ text: text.slice(0, maxBytes - 1) + "\n", level: line.level }]);
      text = text.slice(maxBytes - 1);
    }
    if (current.length === maxLines || bytes + text.length > maxBytes) seal();
    current.push({ text, level: line.level });
    bytes += text.length;
    if (current.length === maxLines || bytes === maxBytes) seal();
  }
  seal();
  return out;
}

/** `lines` as a batch, with the lines' ends (as the TCP input gives them) when `withEnds`. */
function batchOf(lines: Line[], offset: number, withEnds: boolean): Batch {
  const bytes = encoder.encode(lines.map((l) => l.text).join(""));
  // At an odd place in a larger buffer, as batches framed out of a read buffer are.
  const buffer = new Uint8Array(bytes.length + offset);
  buffer.set(bytes, offset);
  let at = 0;
  const ends = Uint32Array.from(lines, (l) => at += encoder.encode(l.text).length);
  return {
    data: buffer.subarray(offset),
    lines: lines.length,
    meta: META,
    receivedAt: 1_700_000_000_000,
    levels: Uint8Array.from(lines, (l) => l.level),
    ...(withEnds ? { ends } : {}),
  };
}

function linesOf(packed: Packed): Line[] {
  const texts = decoder.decode(packed.data).split(/(?<=\n)/);
  return texts.map((text, i) => ({ text, level: packed.extras.levels![i] }));
}

Deno.test("Packer: messages are as full as the bounds allow, lines and levels in order, cut by a scan or by the lines' ends", () => {
  const next = seededRandom(11);
  for (let trial = 0; trial < 300; trial++) {
    const maxLines = 1 + Math.floor(next() * 30);
    const maxBytes = 16 + Math.floor(next() * 300);
    const all: Line[] = [];
    const sealed: Packed[] = [];
    // Each message's bytes are given back once read, as the sink does after the acknowledgement,
    // so that later messages reuse them: what was in them must not show.
    const packer = new Packer({ maxLines, maxBytes }, (p) => {
      sealed.push({ ...p, data: p.data.slice() });
      if (next() < 0.8) packer.release(p.data);
    });
    const batches = 1 + Math.floor(next() * 12);
    for (let b = 0; b < batches; b++) {
      const lines: Line[] = [];
      const count = 1 + Math.floor(next() * 40);
      for (let i = 0; i < count; i++) {
        // Mostly short lines; now and then one longer than a whole message.
        const length = next() < 0.05 ? maxBytes + Math.floor(next() * 3 * maxBytes) : 1 +
          Math.floor(next() * 40);
        const text = `${all.length + lines.length}:`.padEnd(length, "x").slice(0, length);
        lines.push({ text: text + "\n", level: Math.floor(next() * 7) });
      }
      all.push(...lines);
      packer.add(batchOf(lines, Math.floor(next() * 4), next() < 0.5));
    }
    packer.sealAll();
    assert.equal(packer.bytes, 0);
    assert.equal(packer.open, 0);
    for (const p of sealed) {
      assert.ok(p.lines <= maxLines && p.data.length <= maxBytes, `trial ${trial}`);
      assert.equal(p.extras.levels!.length, p.lines);
      assert.deepEqual(p.meta, META);
    }
    assert.deepEqual(sealed.map(linesOf), expected(all, maxLines, maxBytes), `trial ${trial}`);
  }
});

Deno.test("Packer: buffers given back are reused, and what they held never shows", () => {
  const sealed: Packed[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let reused = 0;
  const packer = new Packer({ maxLines: 1000, maxBytes: 512 * 1024 }, (p) => {
    if (buffers.has(p.data.buffer)) reused++;
    buffers.add(p.data.buffer);
    sealed.push({ ...p, data: p.data.slice() });
    packer.release(p.data);
  });
  let expected = "";
  for (let b = 0; b < 40; b++) {
    // Batches of 700 lines of 150 bytes: messages of 1,000 lines out of parts of two batches.
    let text = "";
    for (let i = 0; i < 700; i++) {
      text += `${b}:${i}:`.padEnd(149, String.fromCharCode(97 + b % 26)) + "\n";
    }
    expected += text;
    packer.add({ data: encoder.encode(text), lines: 700, meta: META, receivedAt: 0 });
  }
  packer.sealAll();
  assert.ok(reused > 20, `only ${reused} messages reused a buffer`);
  assert.equal(sealed.map((p) => decoder.decode(p.data)).join(""), expected);
  assert.ok(sealed.every((p) => p.lines === 1000 || p === sealed.at(-1)));
});

Deno.test("Packer: a batch's bytes are copied, not borrowed", () => {
  const sealed: Packed[] = [];
  const packer = new Packer({ maxLines: 3, maxBytes: 1024 }, (p) => sealed.push(p));
  const data = encoder.encode("a\nb\nc\nd\n");
  packer.add({ data, lines: 4, meta: META, receivedAt: 0 });
  // The input reuses its read buffer for the next read.
  data.fill(120);
  packer.sealAll();
  assert.deepEqual(sealed.map((p) => decoder.decode(p.data)), ["a\nb\nc\n", "d\n"]);
});

Deno.test("Packer: a marked batch gets messages of its own, cut and named the same on a resend", () => {
  const mark = { stream: "agent-1", offset: 900, part: 1, parts: 2, total: 5, skipped: 0 };
  const run = () => {
    const sealed: Packed[] = [];
    const packer = new Packer({ maxLines: 2, maxBytes: 1024 }, (p) => sealed.push(p));
    packer.add({ data: encoder.encode("x\n"), lines: 1, meta: META, receivedAt: 0 });
    packer.add({
      data: encoder.encode("1\n2\n3\n4\n5\n"),
      lines: 5,
      meta: META,
      receivedAt: 0,
      mark,
    });
    return sealed.map((p) => [p.id, decoder.decode(p.data)]);
  };
  const first = run();
  assert.deepEqual(first, [
    ["agent-1:900:1:0:0", "1\n2\n"],
    ["agent-1:900:1:0:1", "3\n4\n"],
    ["agent-1:900:1:0:2", "5\n"],
  ]);
  assert.deepEqual(run(), first);
});
