import assert from "node:assert/strict";
import { ProtoWriter } from "./_proto_writer.ts";
import { ProtobufError, ProtoReader, utf8 } from "./protobuf.ts";

const encoder = new TextEncoder();

Deno.test("utf8: cached short strings are always the bytes' own text", () => {
  // Strings that share length, ends and middle (the cache's hash) but differ elsewhere.
  const texts = [
    "abcdefgh",
    "abXdefgh",
    "abcdeXgh",
    "a",
    "",
    "é",
    "aé",
    "x".repeat(32),
    "x".repeat(33),
    "y".repeat(31) + "é",
    "a\u0000b",
  ];
  for (let round = 0; round < 3; round++) {
    for (const text of texts) {
      const bytes = encoder.encode(`__${text}__`);
      assert.equal(utf8(bytes, 2, bytes.length - 2), text);
    }
  }
  for (let i = 0; i < 20_000; i++) {
    const text = `k${i}`;
    const bytes = encoder.encode(text);
    assert.equal(utf8(bytes, 0, bytes.length), text);
    assert.equal(utf8(bytes, 0, bytes.length), text);
  }
  assert.equal(utf8(Uint8Array.of(0x61, 0xff, 0x62), 0, 3), "a\ufffdb", "invalid UTF-8 replaced");
});

Deno.test("int64 and uint32 varints: edges exact, big values as bigint", () => {
  const values: (number | bigint)[] = [
    0,
    1,
    127,
    128,
    300,
    -1,
    -2,
    2 ** 31,
    -(2 ** 31),
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    2n ** 53n,
    -(2n ** 53n),
    2n ** 63n - 1n,
    -(2n ** 63n),
  ];
  const w = new ProtoWriter();
  for (const v of values) w.varint(v);
  const r = new ProtoReader(w.u8());
  for (const v of values) {
    const got = r.int64();
    assert.equal(typeof v === "bigint" ? BigInt(got) : got, v, String(v));
    if (typeof v === "bigint") assert.equal(typeof got, "bigint");
  }
  assert.equal(r.more(), false);
  // uint32 keeps the low 32 bits, as protobuf does for 32-bit fields.
  const u = new ProtoReader(new ProtoWriter().varint(2 ** 32 + 5).varint(-1).u8());
  assert.equal(u.uint32(), 5);
  assert.equal(u.uint32(), 2 ** 32 - 1);
});

Deno.test("fixed64 nanoseconds to milliseconds is exact", () => {
  let seed = 5n;
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 6364136223846793005n + 1442695040888963407n) % (2n ** 64n);
    const ns = i < 4 ? [0n, 999_999n, 1_000_000n, 2n ** 64n - 1n][i] : seed;
    const r = new ProtoReader(new ProtoWriter().fixed64(1, ns).u8());
    r.tag();
    assert.equal(r.fixed64NanosToMs(), Number(ns / 1_000_000n), String(ns));
  }
});

Deno.test("skip: every wire type, and refusals", () => {
  const w = new ProtoWriter()
    .tag(1, 0).varint(-1)
    .fixed64(2, 7n)
    .len(3, "abc")
    .tag(4, 5).varint(0);
  w.bytes.push(0, 0, 0); // the rest of the fixed32
  const r = new ProtoReader(w.u8());
  const seen: number[] = [];
  while (r.more()) {
    const tag = r.tag();
    seen.push(tag >>> 3);
    r.skip(tag & 7);
  }
  assert.deepEqual(seen, [1, 2, 3, 4]);
  for (const wire of [3, 4, 6, 7]) {
    assert.throws(() => new ProtoReader(Uint8Array.of(1 << 3 | wire)).tag(), ProtobufError);
  }
  assert.throws(() => new ProtoReader(Uint8Array.of(0x80, 0x00)).tag(), /field 0/);
  assert.throws(() => new ProtoReader(Uint8Array.of(0x09, 1, 2, 3)).skip(1), /Truncated 8-byte/);
  assert.throws(() => new ProtoReader(Uint8Array.of(0x0d, 1)).skip(5), /Truncated 4-byte/);
  const inner = new ProtoReader(Uint8Array.of(0x0a, 0x01, 0x08, 0x01));
  inner.tag();
  const outer = inner.enter();
  inner.tag();
  assert.throws(() => inner.uint32(), /Truncated varint/, "a varint may not run past its message");
  assert.equal(outer, 4);
});
