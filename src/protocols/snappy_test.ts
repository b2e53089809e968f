import assert from "node:assert/strict";
import SnappyJS from "snappyjs";
import { HttpError } from "../net/http_error.ts";
import {
  decompressSnappy,
  decompressSnappySliced,
  SNAPPY_STEP_BYTES,
  SnappyDecoder,
  snappyLength,
} from "./snappy.ts";

const MB = 1 << 20;
const encoder = new TextEncoder();

function varint(n: number): number[] {
  const out = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function literal(bytes: number[]): number[] {
  const n = bytes.length - 1;
  if (n < 60) return [n << 2, ...bytes];
  const len: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) len.push(v % 256);
  return [(59 + len.length) << 2, ...len, ...bytes];
}

function sample(size: number): Uint8Array {
  const words = ["level=info", "msg=hello", "user=42", "path=/api/v1", "\u00e9t\u00e9"];
  let s = "";
  for (let i = 0; s.length < size; i++) s += words[(i * 7) % words.length] + " " + i + "\n";
  return encoder.encode(s.slice(0, size));
}

Deno.test("snappy: blocks compressed by snappyjs come back byte for byte", () => {
  for (const size of [0, 1, 59, 60, 61, 300, 65_536, 200_000]) {
    const raw = sample(size);
    const block = SnappyJS.compress(raw);
    assert.equal(snappyLength(block), raw.length);
    assert.deepEqual(decompressSnappy(block, MB), raw, `size ${size}`);
  }
});

Deno.test("snappy: every element kind, by hand", () => {
  const abc = [...encoder.encode("abcdefgh")];
  const long = Array.from({ length: 70_000 }, (_, i) => i % 251);
  const block = Uint8Array.of(
    ...varint(8 + 70_000 + 5 + 11 + 20 + 64 + 3),
    ...literal(abc), // short literal
    ...literal(long), // literal with 2 length bytes (tag 61)
    0x01 | (1 << 2),
    8, // copy1: len 5, offset 8, inside `long`
    0x01 | (7 << 2),
    3, // copy1: len 11, offset 3: overlapping, repeats 3 bytes
    0x02 | (19 << 2),
    20,
    0, // copy2: len 20, offset 20
    0x03 | (63 << 2),
    64,
    0,
    0,
    0, // copy4: len 64, offset 64
    ...literal([1, 2, 3]),
  );
  const out = decompressSnappy(block, MB);
  const want: number[] = [...abc, ...long];
  const copy = (len: number, offset: number) => {
    for (let i = 0; i < len; i++) want.push(want[want.length - offset]);
  };
  copy(5, 8);
  copy(11, 3);
  copy(20, 20);
  copy(64, 64);
  want.push(1, 2, 3);
  assert.deepEqual([...out], want);
  // A literal length in 4 bytes (tag 63), as encoders may write it for small lengths too.
  assert.deepEqual(
    decompressSnappy(Uint8Array.of(2, 63 << 2, 1, 0, 0, 0, 9, 8), 10),
    Uint8Array.of(9, 8),
  );
});

function refused(input: Uint8Array, status: number, pattern: RegExp, max = MB): void {
  assert.throws(() => decompressSnappy(input, max), (err) => {
    assert.ok(err instanceof HttpError, `not an HttpError: ${err}`);
    assert.equal(err.status, status);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("snappy: malformed blocks are a clear 400", () => {
  refused(Uint8Array.of(), 400, /empty/);
  refused(Uint8Array.of(0x80, 0x80), 400, /length is truncated/);
  refused(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 400, /longer than 32 bits/);
  refused(Uint8Array.of(4, 0x01 | (0 << 2), 1), 400, /offset 1 before the start/);
  refused(Uint8Array.of(8, ...literal([1]), 0x01, 0), 400, /offset 0/);
  refused(Uint8Array.of(5, 4 << 2, 1, 2), 400, /literal runs past the input/);
  refused(Uint8Array.of(1, ...literal([1, 2])), 400, /literal overflows/);
  refused(Uint8Array.of(3, ...literal([1, 2])), 400, /declares 3 bytes but holds 2/);
  refused(Uint8Array.of(9, ...literal([1, 2]), 0x01 | (7 << 2), 2), 400, /copy overflows/);
  refused(Uint8Array.of(9, ...literal([1]), 0x02), 400, /copy is truncated/);
  refused(Uint8Array.of(9, ...literal([1]), 0x03, 1, 0), 400, /copy is truncated/);
  refused(Uint8Array.of(9, 62 << 2, 1), 400, /literal's length is truncated/);
  refused(
    Uint8Array.of(0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59),
    400,
    /framing format/,
  );
  // JSON sent as if snappy: `{` declares 123 bytes, `"` is a copy with nothing to copy.
  refused(encoder.encode('{"streams":[]}'), 400, /Malformed snappy/);
});

Deno.test("snappy: a declared length over the limit is a 413 before anything is allocated", () => {
  // 4 GiB - 1 declared in a 6-byte body: allocating it would throw or exhaust memory.
  refused(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f, 0), 413, /declares 4294967295/);
  refused(SnappyJS.compress(sample(2000)), 413, /over the limit of 1000/, 1000);
  const raw = sample(1000);
  assert.equal(decompressSnappy(SnappyJS.compress(raw), raw.length).length, raw.length);
});

Deno.test("snappy: every truncation and mutation of a real block is decoded or a 400", () => {
  const block = SnappyJS.compress(sample(3000));
  let errors = 0;
  const check = (input: Uint8Array) => {
    try {
      decompressSnappy(input, 4000);
    } catch (err) {
      if (!(err instanceof HttpError) || (err.status !== 400 && err.status !== 413)) throw err;
      errors++;
    }
  };
  for (let n = 0; n < block.length; n++) check(block.subarray(0, n));
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 3000; i++) {
    const copy = block.slice();
    for (let k = 0; k < 2; k++) {
      copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    }
    check(copy);
  }
  assert.ok(errors >= block.length, `every truncation is refused (${errors})`);
});

Deno.test("snappy: decoded a step at a time, any budget gives the same bytes and the same errors", () => {
  const block = SnappyJS.compress(sample(50_000));
  const whole = decompressSnappy(block, MB);
  for (const budget of [1, 3, 64, 1000, 40_000]) {
    const decoder = new SnappyDecoder(block, MB);
    let steps = 1;
    while (!decoder.step(budget)) steps++;
    assert.deepEqual(decoder.output, whole, `budget ${budget}`);
    assert.ok(steps >= whole.length / (budget + 64), `budget ${budget}: ${steps} steps`);
  }
  // A truncated block is refused whether it is read in one step or in many.
  const cut = block.subarray(0, block.length - 5);
  const sliced = new SnappyDecoder(cut, MB);
  assert.throws(() => {
    while (!sliced.step(7));
  }, /Malformed snappy block/);
  // Elements left over once the declared length is reached.
  assert.throws(() => decompressSnappy(Uint8Array.of(1, ...literal([1]), ...literal([2])), MB), {
    message: /holds more than the 1 bytes it declares/,
  });
});

Deno.test("snappy: no step makes much more output than its budget", () => {
  // Short literals and copies, as log lines compress: no element is longer than 64 bytes.
  const block = SnappyJS.compress(sample(200_000));
  const decoder = new SnappyDecoder(block, MB);
  let before = 0;
  let longest = 0;
  for (;;) {
    const done = decoder.step(4096);
    const made = done ? decoder.output.length - before : countMade(decoder, before);
    longest = Math.max(longest, made);
    if (done) break;
    before += made;
  }
  assert.ok(longest <= 4096 + 64, `${longest} bytes in one step`);
});

/** Bytes made so far: the output is zero past them (the sample holds no zero bytes). */
function countMade(decoder: SnappyDecoder, from: number): number {
  const i = decoder.output.indexOf(0, from);
  return (i < 0 ? decoder.output.length : i) - from;
}

Deno.test("decompressSnappySliced: pauses between steps of a large block", async () => {
  const raw = sample(2 * SNAPPY_STEP_BYTES + 100);
  let pauses = 0;
  const out = await decompressSnappySliced(SnappyJS.compress(raw), MB, {
    due: () => true,
    pause: () => Promise.resolve(void pauses++),
  });
  assert.deepEqual(out, raw);
  assert.equal(pauses, 2);
});
