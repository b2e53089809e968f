import assert from "node:assert/strict";
import { HttpClient, HttpRequestError } from "./http_client.ts";
import { listenLow } from "./_test_target.ts";
import { freePort } from "../../tests/_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A raw TCP server running `handle` on each connection (`n` counts them; `closing` resolves when
 * the test ends); `close` ends everything.
 */
function rawServer(handle: (conn: Deno.Conn, n: number, closing: Promise<void>) => Promise<void>) {
  const listener = listenLow();
  const closing = Promise.withResolvers<void>();
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let n = 0;
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      conns.add(conn);
      const task = handle(conn, n++, closing.promise).catch(() => {}).finally(() =>
        tasks.delete(task)
      );
      tasks.add(task);
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    accepted: () => n,
    async close() {
      closing.resolve();
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the handler.
        }
      }
      await Promise.all(tasks);
    },
  };
}

/** Reads one request (head and Content-Length body) from `conn`; `null` at the end. */
async function readRequest(conn: Deno.Conn): Promise<{ head: string; body: Uint8Array } | null> {
  let buf = new Uint8Array(0);
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const text = decoder.decode(buf);
    const end = text.indexOf("\r\n\r\n");
    if (end !== -1) {
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      const headBytes = encoder.encode(text.slice(0, end + 4)).length;
      if (buf.length >= headBytes + length) {
        return { head: text.slice(0, end), body: buf.slice(headBytes, headBytes + length) };
      }
    }
    const n = await conn.read(buffer);
    if (n === null) return null;
    const grown = new Uint8Array(buf.length + n);
    grown.set(buf);
    grown.set(buffer.subarray(0, n), buf.length);
    buf = grown;
  }
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

Deno.test("client posts a body, reads the answer and keeps the connection for the next request", async () => {
  const seen: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: freePort(), onListen() {} },
    async (req) => {
      seen.push(`${req.method} ${new URL(req.url).pathname} ${(await req.bytes()).length}`);
      return Response.json({ accepted: 1 });
    },
  );
  const client = new HttpClient(`http://127.0.0.1:${server.addr.port}/prefix`);
  try {
    for (const size of [10, 5 * 1024 * 1024]) {
      const answer = await client.request({
        method: "POST",
        path: "/api/v1/ingest?source=a",
        headers: { "content-type": "text/plain" },
        body: new Uint8Array(size).fill(97),
        timeoutMs: 10_000,
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(decoder.decode(answer.body)), { accepted: 1 });
    }
    assert.deepEqual(seen, [
      "POST /prefix/api/v1/ingest 10",
      `POST /prefix/api/v1/ingest ${5 * 1024 * 1024}`,
    ]);
    assert.equal(client.connections, 1, "one connection, kept alive");
  } finally {
    client.close();
    await server.shutdown();
  }
});

Deno.test("client times out on a server that accepts and never reads nor answers (half-open)", async () => {
  // Holds each connection until the test ends, reading and answering nothing.
  const server = rawServer((_conn, _n, closing) => closing);
  const client = new HttpClient(server.url);
  try {
    for (const size of [100, 16 * 1024 * 1024]) {
      const err = await client.request({
        method: "POST",
        path: "/api/v1/ingest",
        body: new Uint8Array(size),
        timeoutMs: 300,
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof HttpRequestError, String(err));
      assert.equal(err.timedOut, true);
      // A small body fits the socket buffers (sent, no answer); a large one stalls being sent.
      assert.equal(err.phase, size === 100 ? "answer" : "send");
    }
    assert.equal(client.connections, 0, "the frozen connections are closed");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client says a refused connection never reached the server", async () => {
  const client = new HttpClient(`http://127.0.0.1:${freePort()}`);
  const err = await client.request({ method: "GET", path: "/", timeoutMs: 5000 }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(err instanceof HttpRequestError);
  assert.equal(err.phase, "connect");
  assert.equal(err.timedOut, false);
});

Deno.test("client resends on a new connection when a kept-alive one was closed by the server", async () => {
  // Each connection answers one request (keep-alive promised), then the server closes it.
  const server = rawServer(async (conn) => {
    if (await readRequest(conn) === null) return;
    await write(conn, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    // The next request finds the connection closed before any answer.
    await readRequest(conn);
    conn.close();
  });
  const client = new HttpClient(server.url);
  try {
    for (let i = 0; i < 3; i++) {
      const answer = await client.request({
        method: "POST",
        path: "/",
        body: new Uint8Array(10),
        timeoutMs: 5000,
      });
      assert.equal(decoder.decode(answer.body), "ok");
    }
    assert.equal(server.accepted(), 3);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client reads chunked answers, and an early answer to a body the server did not read", async () => {
  const server = rawServer(async (conn, n) => {
    if (n === 0) {
      await readRequest(conn);
      await write(
        conn,
        "HTTP/1.1 503 Busy\r\nRetry-After: 2\r\nconnection: close\r\n" +
          "transfer-encoding: chunked\r\n\r\n" +
          '5\r\n{"err\r\n4;x=y\r\nor":\r\n3\r\n 1}\r\n0\r\n\r\n',
      );
      return;
    }
    // Answers 413 at once, without reading the 8 MiB body first; then drains until the client
    // closes (which it does once it has the answer).
    await write(
      conn,
      "HTTP/1.1 413 Too Large\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbig\n",
    );
    const sink = new Uint8Array(64 * 1024);
    while (await conn.read(sink) !== null) { /* drained */ }
  });
  const client = new HttpClient(server.url);
  try {
    const busy = await client.request({ method: "GET", path: "/", timeoutMs: 5000 });
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "2");
    assert.equal(decoder.decode(busy.body), '{"error": 1}');
    const big = await client.request({
      method: "POST",
      path: "/",
      body: new Uint8Array(8 * 1024 * 1024),
      timeoutMs: 5000,
    });
    assert.equal(big.status, 413);
    assert.equal(decoder.decode(big.body), "big\n");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client stops a request when its signal aborts", async () => {
  const server = rawServer((_conn, _n, closing) => closing);
  const client = new HttpClient(server.url);
  const stop = new AbortController();
  try {
    const pending = client.request({
      method: "POST",
      path: "/",
      body: new Uint8Array(10),
      timeoutMs: 60_000,
      signal: stop.signal,
    });
    stop.abort(new Error("stopping"));
    const err = await pending.then(() => undefined, (e) => e);
    assert.ok(err instanceof HttpRequestError);
    assert.equal(err.timedOut, false);
    assert.match(String((err.cause as Error)?.message), /stopping/);
  } finally {
    client.close();
    await server.close();
  }
});
