import assert from "node:assert/strict";
import {
  bodyFraming,
  bodyStream,
  type ByteSource,
  ConnReader,
  encodeChunk,
  headEnd,
  parseHead,
} from "./http1.ts";
import { HttpError } from "./http_error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);

/** A connection that returns `pieces` one read at a time, then ends. */
function source(pieces: Uint8Array[]): ByteSource & { reads: number } {
  const queue = [...pieces];
  const src = {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      src.reads++;
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      const n = Math.min(p.length, next.length);
      p.set(next.subarray(0, n));
      if (n < next.length) queue.unshift(next.subarray(n));
      return Promise.resolve(n);
    },
  };
  return src;
}

function splitEvery(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.slice(i, i + size));
  return out;
}

function throwsStatus(fn: () => unknown, status: number, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, status);
    if (message) assert.match(err.message, message);
    return true;
  });
}

Deno.test("parseHead reads the request line and fields, lowercasing names, CRLF or LF", () => {
  const head = parseHead(bytes(
    "POST /api/v1/ingest?source=a HTTP/1.1\r\nHost: x:1\r\nX-Stream-Id:  s1 \r\nA: b: c\r\n\r\n",
  ));
  assert.deepEqual(head, {
    method: "POST",
    target: "/api/v1/ingest?source=a",
    version: 11,
    headers: [["host", "x:1"], ["x-stream-id", "s1"], ["a", "b: c"]],
  });
  assert.equal(parseHead(bytes("\r\nGET / HTTP/1.0\nHost: y\n\n")).version, 10);
  assert.equal(headEnd(bytes("GET / HTTP/1.1\r\nA: b\r\n\r\nbody")), 24);
  assert.equal(headEnd(bytes("GET / HTTP/1.1\nA: b\n\nbody")), 21);
  assert.equal(headEnd(bytes("GET / HTTP/1.1\r\nA: b\r\n")), -1);
});

Deno.test("parseHead refuses malformed heads with 400, other versions with 505, many fields with 431", () => {
  for (
    const bad of [
      "GET /\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\n folded: yes\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nA: x\u0000y\r\n\r\n",
      "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n",
      "GET / FTP/1.1\r\n\r\n",
      "GET /\u0001 HTTP/1.1\r\n\r\n",
    ]
  ) throwsStatus(() => parseHead(bytes(bad)), 400);
  throwsStatus(() => parseHead(bytes("GET / HTTP/2.0\r\n\r\n")), 505, /HTTP\/2\.0/);
  const many = "GET / HTTP/1.1\r\n" + "A: b\r\n".repeat(101) + "\r\n";
  throwsStatus(() => parseHead(bytes(many)), 431);
});

Deno.test("bodyFraming: length, chunked, none; refuses what request smuggling is made of", () => {
  assert.deepEqual(bodyFraming([["content-length", "12"]]), { type: "length", length: 12 });
  assert.deepEqual(bodyFraming([["content-length", "0"]]), { type: "none" });
  assert.deepEqual(bodyFraming([["content-length", "5, 5"]]), { type: "length", length: 5 });
  assert.deepEqual(bodyFraming([["transfer-encoding", "Chunked"]]), { type: "chunked" });
  assert.deepEqual(bodyFraming([]), { type: "none" });
  throwsStatus(() => bodyFraming([["content-length", "5"], ["content-length", "6"]]), 400);
  throwsStatus(() => bodyFraming([["content-length", "-1"]]), 400);
  throwsStatus(() => bodyFraming([["content-length", "1e3"]]), 400);
  throwsStatus(
    () => bodyFraming([["transfer-encoding", "chunked"], ["content-length", "3"]]),
    400,
    /together/,
  );
  throwsStatus(() => bodyFraming([["transfer-encoding", "gzip, chunked"]]), 501);
  throwsStatus(
    () => bodyFraming([["transfer-encoding", "chunked"], ["transfer-encoding", "x"]]),
    501,
  );
});

async function readBody(
  wire: Uint8Array,
  framing: ReturnType<typeof bodyFraming>,
  readSize: number,
): Promise<{ body: string; state: { done: boolean; failed: boolean }; rest: string }> {
  const reader = new ConnReader(source(splitEvery(wire, readSize)), 64);
  const state = { done: false, failed: false };
  let armed = 0;
  const stream = bodyStream(reader, framing, {
    beforeRead: () => armed++,
    afterRead: () => armed--,
  }, state);
  const body = decoder.decode(await new Response(stream).arrayBuffer());
  assert.equal(armed, 0);
  return { body, state, rest: decoder.decode(reader.peek()) };
}

Deno.test("chunked bodies decode whatever way the bytes are split, extensions and trailers too", async () => {
  const wire = bytes(
    "5;ext=1\r\nhello\r\n1A\r\n" + "abcdefghijklmnopqrstuvwxyz" + "\r\n0\r\nTrailer: t\r\n\r\nNEXT",
  );
  for (const size of [1, 2, 3, 7, 64, 1000]) {
    const { body, state, rest } = await readBody(wire, { type: "chunked" }, size);
    assert.equal(body, "helloabcdefghijklmnopqrstuvwxyz", `split every ${size}`);
    assert.deepEqual(state, { done: true, failed: false });
    // What follows the body stays for the next request.
    assert.ok("NEXT".startsWith(rest), `split every ${size}: rest "${rest}"`);
  }
});

Deno.test("length bodies end at their length; the bytes after them stay buffered", async () => {
  const { body, state, rest } = await readBody(bytes("0123456789GET"), {
    type: "length",
    length: 10,
  }, 4);
  assert.equal(body, "0123456789");
  assert.deepEqual(state, { done: true, failed: false });
  assert.ok("GET".startsWith(rest));
});

Deno.test("a body cut short or a malformed chunk errors the stream with a 400", async () => {
  for (
    const [wire, framing] of [
      ["0123", { type: "length", length: 10 }],
      ["5\r\nhel", { type: "chunked" }],
      ["zz\r\nhello\r\n0\r\n\r\n", { type: "chunked" }],
      ["5\r\nhelloXX\r\n0\r\n\r\n", { type: "chunked" }],
      ["5" + "0".repeat(5000) + "\r\n", { type: "chunked" }],
    ] as const
  ) {
    await assert.rejects(
      readBody(bytes(wire), framing, 3),
      (err: unknown) => err instanceof HttpError && err.status === 400,
      wire.slice(0, 20),
    );
  }
});

Deno.test("a large length body is handed on as read, not copied through the head buffer", async () => {
  const data = new Uint8Array(300_000).fill(120);
  const src = source([data]);
  const reader = new ConnReader(src, 64);
  const state = { done: false, failed: false };
  const chunks: Uint8Array[] = [];
  for await (
    const chunk of bodyStream(reader, { type: "length", length: data.length }, {
      beforeRead() {},
      afterRead() {},
    }, state)
  ) chunks.push(chunk);
  assert.equal(chunks.reduce((n, c) => n + c.length, 0), data.length);
  assert.ok(chunks.every((c) => c.length === 64 * 1024 || c === chunks.at(-1)));
  assert.ok(state.done);
});

Deno.test("encodeChunk frames data as one chunk of a chunked body", () => {
  assert.equal(
    decoder.decode(encodeChunk(bytes("hello world, 26 characters"))),
    "1a\r\nhello world, 26 characters\r\n",
  );
});
