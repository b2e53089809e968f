import assert from "node:assert/strict";
import { ConnectionGate } from "./accept.ts";
import { Deadlines } from "./deadlines.ts";
import { type HttpHandler, HttpServer, type HttpServerOptions } from "./http_server.ts";
import { bodyReaderOf } from "./http1.ts";
import { HttpError } from "./http_error.ts";
import { upgradeWebSocket } from "./websocket.ts";

const encoder = new TextEncoder();

interface Fixture {
  server: HttpServer;
  gate: ConnectionGate;
  clock: { now: number };
  deadlines: Deadlines;
  url: string;
  port: number;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A server on a free loopback port whose timeouts follow a fake clock, swept by hand. */
function serve(handler: HttpHandler, options: Partial<HttpServerOptions> = {}): Fixture {
  const clock = { now: 0 };
  const deadlines = new Deadlines({ now: () => clock.now, sweepMs: 60_000 });
  const gate = options.gate ?? new ConnectionGate(100);
  const server = HttpServer.listen({
    hostname: "127.0.0.1",
    port: 0,
    gate,
    deadlines,
    headerMs: 1000,
    bodyMs: 2000,
    idleMs: 5000,
    sendMs: 10_000,
    ...options,
  }, handler);
  const port = server.addr.port;
  return {
    server,
    gate,
    clock,
    deadlines,
    port,
    url: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      deadlines.close();
    },
  };
}

/** A raw client connection. */
class Raw {
  text = "";
  ended = false;
  readonly conn: Deno.Conn;
  readonly #reading: Promise<void>;
  constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#reading = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          // One char per byte, so WebSocket frames can be read as well as HTTP text.
          this.text += String.fromCharCode(...buf.subarray(0, n));
        }
      } catch {
        // Reset.
      }
      this.ended = true;
    })();
  }
  static async open(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  async send(text: string | Uint8Array): Promise<void> {
    const data = typeof text === "string" ? encoder.encode(text) : text;
    let off = 0;
    while (off < data.length) off += await this.conn.write(data.subarray(off));
  }
  async until(condition: (raw: Raw) => boolean, what: string): Promise<void> {
    for (let i = 0; i < 1500 && !condition(this); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(condition(this), `${what}; got ${JSON.stringify(this.text.slice(0, 400))}`);
  }
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Closed by the server already.
    }
    await this.#reading;
  }
}

const echo: HttpHandler = async (req, peer) => {
  const body = req.body === null ? "" : await req.text();
  return Response.json({
    method: req.method,
    url: req.url,
    host: req.headers.get("host"),
    body: body.length,
    first: body.slice(0, 5),
    peer: peer.hostname,
  });
};

Deno.test("keep-alive carries requests in turn, pipelined too; Connection: close ends it", async () => {
  await using f = serve(echo);
  const raw = await Raw.open(f.port);
  await raw.send(
    "GET /a?x=1 HTTP/1.1\r\nHost: h:1\r\n\r\n" +
      "POST /b HTTP/1.1\r\nHost: h:1\r\nContent-Length: 5\r\n\r\nhello" +
      "POST /c HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
      "3\r\nabc\r\n0\r\n\r\n",
  );
  await raw.until((r) => r.ended, "the server closes after Connection: close");
  const answers = raw.text.split(/HTTP\/1\.1 /).slice(1);
  assert.equal(answers.length, 3, raw.text);
  assert.match(answers[0], /"url":"http:\/\/h:1\/a\?x=1"/);
  assert.match(answers[0], /"peer":"127\.0\.0\.1"/);
  assert.match(answers[1], /"body":5,"first":"hello"/);
  assert.match(answers[2], /connection: close/);
  assert.match(answers[2], /"body":3,"first":"abc"/);
  for (const a of answers) assert.match(a, /^200 OK\r\ncontent-type: application\/json/);
  await raw.close();
});

Deno.test("fetch posts Content-Length and streamed chunked bodies of a few MB", async () => {
  await using f = serve(echo);
  const data = new Uint8Array(3 * 1024 * 1024 + 7).fill(97);
  const fixed = await (await fetch(f.url + "/x", { method: "POST", body: data })).json();
  assert.equal(fixed.body, data.length);
  const streamed = await (await fetch(f.url + "/y", {
    method: "POST",
    body: new Blob([data, data]).stream(),
  })).json();
  assert.equal(streamed.body, 2 * data.length);
});

Deno.test("Expect: 100-continue is answered when the handler reads, and never when it refuses", async () => {
  await using f = serve(async (req) => {
    if (new URL(req.url).pathname === "/refuse") return new Response("no\n", { status: 413 });
    return new Response(`got ${(await req.text()).length}\n`);
  });
  const raw = await Raw.open(f.port);
  await raw.send(
    "POST /read HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
  );
  await raw.until((r) => r.text.includes("100 Continue\r\n\r\n"), "100 Continue");
  await raw.send("abcd");
  await raw.until((r) => r.text.includes("got 4"), "the answer");
  await raw.send(
    "POST /refuse HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
  );
  await raw.until((r) => r.ended, "closed after refusing an unread body");
  assert.equal(raw.text.match(/100 Continue/g)?.length, 1);
  assert.match(raw.text, /HTTP\/1\.1 413 Content Too Large\r\n[^]*connection: close/);
  await raw.close();
});

Deno.test("malformed requests get 400, 431 or 501 with a JSON reason, then the connection closes", async () => {
  await using f = serve(echo, { maxHeadBytes: 1024 });
  for (
    const [request, status] of [
      ["GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
      ["GET / HTTP/1.1\r\n\r\n", 400],
      ["GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
      ["NOT A REQUEST\r\n\r\n", 400],
      ["GET / HTTP/1.1\r\nHost: h\r\nX: " + "y".repeat(2000) + "\r\n\r\n", 431],
      ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
      ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400],
    ] as const
  ) {
    const raw = await Raw.open(f.port);
    await raw.send(request);
    await raw.until((r) => r.ended, `closed after ${request.slice(0, 40)}`);
    assert.match(raw.text, new RegExp(`^HTTP/1\\.1 ${status} `), request.slice(0, 40));
    assert.match(raw.text, /\r\n\r\n\{"error":".+"\}\n$/);
    await raw.close();
  }
});

Deno.test("HEAD answers headers only; 204 has no body; a handler's error is a 500", async () => {
  let errors = 0;
  await using f = serve((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/fail") throw new Error("boom");
    if (path === "/none") return new Response(null, { status: 204 });
    return new Response("twelve bytes");
  }, { onError: () => errors++ });
  const raw = await Raw.open(f.port);
  await raw.send(
    "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /none HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /fail HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  await raw.until((r) => r.ended, "all three answered");
  const [head, none, fail] = raw.text.split(/(?=HTTP\/1\.1 )/);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 12\r\n[^]*\r\n\r\n$/);
  assert.match(none, /^HTTP\/1\.1 204 No Content\r\n(?![^]*content-length)[^]*\r\n\r\n$/);
  assert.match(fail, /^HTTP\/1\.1 500 [^]*"error":"Internal error"/);
  assert.equal(errors, 1);
  await raw.close();
});

Deno.test("a streamed body goes chunked, a chunk written before the next is pulled", async () => {
  let pulls = 0;
  let gate = Promise.withResolvers<void>();
  await using f = serve(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          pulls++;
          if (pulls > 3) return controller.close();
          await gate.promise;
          gate = Promise.withResolvers();
          controller.enqueue(encoder.encode(`event ${pulls}\n`));
        },
      }, { highWaterMark: 0 }),
    )
  );
  const raw = await Raw.open(f.port);
  await raw.send("GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
  gate.resolve();
  await raw.until((r) => r.text.includes("event 1"), "the first event");
  assert.match(raw.text, /transfer-encoding: chunked\r\n/);
  // The stream is not read ahead of the network: one pull waits for the next event.
  assert.equal(pulls, 2);
  gate.resolve();
  await raw.until((r) => r.text.includes("event 2"), "the second event");
  gate.resolve();
  await raw.until((r) => r.text.endsWith("0\r\n\r\n"), "the last chunk");
  await raw.close();
});

Deno.test("a client that goes away cancels the streamed body and aborts request.signal", async () => {
  const cancelled = Promise.withResolvers<void>();
  const aborted = Promise.withResolvers<void>();
  await using f = serve((req) => {
    req.signal.addEventListener("abort", () => aborted.resolve());
    return new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode("ready\n"));
        },
        cancel() {
          cancelled.resolve();
        },
      }),
    );
  });
  const raw = await Raw.open(f.port);
  await raw.send("GET /sse HTTP/1.1\r\nHost: h\r\n\r\n");
  await raw.until((r) => r.text.includes("ready"), "the first chunk");
  await raw.close();
  await cancelled.promise;
  await aborted.promise;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(f.server.connections, 0);
});

Deno.test("slowloris: a head not complete within the header timeout closes the connection", async () => {
  await using f = serve(echo);
  const raw = await Raw.open(f.port);
  await raw.send("GET / HTTP/1.1\r\nHost: x\r\n");
  await untilOpen(f, 1);
  f.clock.now += 999;
  f.deadlines.sweep();
  await raw.send("X-Slow: 1\r\n");
  f.clock.now += 1;
  f.deadlines.sweep();
  await raw.until((r) => r.ended, "closed at the header timeout");
  assert.equal(raw.text, "");
  assert.deepEqual(f.gate.stats.timedOut, { header: 1 });
  await raw.close();
});

Deno.test("a body that stops arriving is given up after the body timeout", async () => {
  const failed = Promise.withResolvers<unknown>();
  const entered = Promise.withResolvers<void>();
  await using f = serve(async (req) => {
    entered.resolve();
    try {
      await req.arrayBuffer();
    } catch (err) {
      failed.resolve(err);
    }
    return new Response("late\n");
  });
  const raw = await Raw.open(f.port);
  await raw.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
  await entered.promise;
  // The handler reads the body: once it waits for the next bytes, the clock moves past the timeout.
  for (let i = 0; i < 200 && f.gate.stats.timedOut.body === undefined; i++) {
    f.clock.now += 2001;
    f.deadlines.sweep();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await raw.until((r) => r.ended, "closed at the body timeout");
  const err = await failed.promise;
  assert.ok(err instanceof HttpError && err.status === 408, String(err));
  assert.deepEqual(f.gate.stats.timedOut, { body: 1 });
  await raw.close();
});

Deno.test("a kept-alive connection idle past the idle timeout is closed; one that talks is not", async () => {
  await using f = serve(echo);
  const raw = await Raw.open(f.port);
  await raw.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await raw.until((r) => r.text.includes('"method":"GET"'), "the answer");
  f.clock.now += 4999;
  f.deadlines.sweep();
  await raw.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
  await raw.until((r) => r.text.includes("/again"), "the second answer");
  f.clock.now += 5000;
  f.deadlines.sweep();
  await raw.until((r) => r.ended, "closed when idle");
  assert.deepEqual(f.gate.stats.timedOut, { idle: 1 });
  await raw.close();
});

Deno.test("past the connection cap a client gets 503 at once, counted; the slot frees on close", async () => {
  const gate = new ConnectionGate(1);
  await using f = serve(echo, { gate });
  const first = await Raw.open(f.port);
  await untilOpen(f, 1);
  const res = await fetch(f.url + "/healthz");
  assert.equal(res.status, 503);
  assert.match((await res.json()).error, /Too many connections/);
  assert.deepEqual(gate.stats.refused, { http: 1 });
  await first.close();
  await untilOpen(f, 0);
  const again = await fetch(f.url + "/healthz");
  assert.equal(again.status, 200);
  await again.body?.cancel();
});

Deno.test("shutdown lets a request under way finish and closes the others at once", async () => {
  const release = Promise.withResolvers<void>();
  const entered = Promise.withResolvers<void>();
  await using f = serve(async () => {
    entered.resolve();
    await release.promise;
    return new Response("finished\n");
  });
  const idle = await Raw.open(f.port);
  const partial = await Raw.open(f.port);
  await partial.send("GET / HTTP/1.1\r\nHost: x\r\n");
  const busy = await Raw.open(f.port);
  await busy.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await entered.promise;
  await untilOpen(f, 3);
  const stopped = f.server.shutdown();
  await idle.until((r) => r.ended, "the idle connection closed");
  await partial.until((r) => r.ended, "the one sending a head closed");
  release.resolve();
  await stopped;
  await busy.until((r) => r.ended, "the busy one answered, then closed");
  assert.match(busy.text, /finished/);
  await idle.close();
  await partial.close();
  await busy.close();
});

Deno.test("WebSocket: handshake, text and binary both ways, a close with 1001 on shutdown", async () => {
  const received: unknown[] = [];
  await using f = serve((req) => {
    const { socket, response } = upgradeWebSocket(req);
    socket.addEventListener("message", (e) => {
      const data = (e as MessageEvent).data;
      received.push(data);
      socket.send(typeof data === "string" ? `echo ${data}` : new Uint8Array([...data, 9]));
    });
    return response;
  });
  const ws = new WebSocket(f.url.replace("http", "ws") + "/tail");
  ws.binaryType = "arraybuffer";
  const messages: unknown[] = [];
  ws.onmessage = (e) =>
    messages.push(typeof e.data === "string" ? e.data : [...new Uint8Array(e.data)]);
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  await new Promise((resolve) => ws.onopen = resolve);
  ws.send("hi");
  ws.send(new Uint8Array([1, 2]));
  ws.send("x".repeat(70_000 - 10_000)); // 16-bit length
  for (let i = 0; i < 500 && messages.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(messages.slice(0, 2), ["echo hi", [1, 2, 9]]);
  assert.equal((messages[2] as string).length, 60_005);
  assert.equal(received.length, 3);
  await f.server.shutdown();
  const event = await closed;
  assert.equal(event.code, 1001);
});

Deno.test("WebSocket: unmasked frames, oversized messages and bad UTF-8 close with 1002, 1009, 1007", async () => {
  await using f = serve((req) => upgradeWebSocket(req, { maxMessageBytes: 100 }).response);
  const mask = [1, 2, 3, 4];
  const masked = (op: number, payload: number[], fin = true) => {
    const head = [(fin ? 0x80 : 0) | op, 0x80 | payload.length, ...mask];
    return new Uint8Array([...head, ...payload.map((b, i) => b ^ mask[i & 3])]);
  };
  const cases: [Uint8Array, number][] = [
    [new Uint8Array([0x81, 2, 104, 105]), 1002],
    [masked(1, Array(101).fill(97).slice(0, 101)).subarray(0, 2 + 4), 1009],
    [masked(1, [0xff, 0xfe]), 1007],
    [masked(0, [97]), 1002],
  ];
  // An oversized length is refused from its header: set a 16-bit length of 200.
  cases[1][0] = new Uint8Array([0x81, 0x80 | 126, 0, 200, ...mask]);
  for (const [frame, code] of cases) {
    const raw = await Raw.open(f.port);
    await raw.send(
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    await raw.until((r) => r.text.includes("\r\n\r\n"), "the 101");
    assert.match(raw.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    // RFC 6455's own example key and answer.
    assert.match(raw.text, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    await raw.send(frame);
    await raw.until((r) => r.ended, `closed for code ${code}`);
    const body = raw.text.slice(raw.text.indexOf("\r\n\r\n") + 4);
    assert.equal(body.charCodeAt(0), 0x88, `a close frame for ${code}`);
    assert.equal((body.charCodeAt(2) << 8) | body.charCodeAt(3), code);
    await raw.close();
  }
});

Deno.test("WebSocket: fragments are joined, a ping is answered with its pong", async () => {
  const received: string[] = [];
  await using f = serve((req) => {
    const { socket, response } = upgradeWebSocket(req);
    socket.addEventListener("message", (e) => received.push((e as MessageEvent).data));
    return response;
  });
  const mask = [9, 8, 7, 6];
  const frame = (first: number, payload: string) => {
    const bytes = [...encoder.encode(payload)];
    return [first, 0x80 | bytes.length, ...mask, ...bytes.map((b, i) => b ^ mask[i & 3])];
  };
  const raw = await Raw.open(f.port);
  await raw.send(
    "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  await raw.until((r) => r.text.includes("\r\n\r\n"), "the 101");
  await raw.send(
    new Uint8Array([
      ...frame(0x01, "hel"),
      ...frame(0x89, "p!"), // a ping between fragments
      ...frame(0x80, "lo"),
    ]),
  );
  await raw.until(() => received.length === 1, "the joined message");
  assert.deepEqual(received, ["hello"]);
  await raw.until((r) => r.text.includes("\x8a\x02p!"), "the pong");
  await raw.close();
});

async function untilOpen(f: Fixture, n: number): Promise<void> {
  for (let i = 0; i < 500 && f.server.connections !== n; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(f.server.connections, n);
}

Deno.test("a handler reads a body straight into its buffer: Content-Length and chunked, then the next request", async () => {
  const bodies: string[] = [];
  await using f = serve(async (req) => {
    const read = bodyReaderOf(req);
    assert.ok(read !== undefined, "the server offers a direct read");
    const buf = new Uint8Array(7);
    let text = "";
    for (let n = await read(buf); n !== null; n = await read(buf)) {
      assert.ok(n > 0 && n <= buf.length);
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    bodies.push(text);
    assert.equal(req.bodyUsed, false, "the body stream was not read");
    return new Response("ok\n");
  });
  const raw = await Raw.open(f.port);
  const long = "0123456789".repeat(30);
  await raw.send(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${long.length}\r\n\r\n${long}`);
  await raw.until((r) => r.text.split("ok\n").length === 2, "the first answer");
  await raw.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello");
  await raw.send("\r\n0e;ext=1\r\n, chunked body\r\n0\r\nx-trailer: 1\r\n\r\n");
  await raw.until((r) => r.text.split("ok\n").length === 3, "the second answer");
  assert.deepEqual(bodies, [long, "hello, chunked body"]);
  assert.equal(raw.ended, false, "the connection carries more requests");
  await raw.close();
});

Deno.test("a direct body read that stops arriving fails with 408; one of a body being streamed is refused", async () => {
  const failed = Promise.withResolvers<unknown>();
  const entered = Promise.withResolvers<void>();
  await using f = serve(async (req) => {
    const read = bodyReaderOf(req)!;
    if (req.headers.get("x-mode") === "stream") {
      const reader = req.body!.getReader();
      await assert.rejects(read(new Uint8Array(8)), TypeError);
      reader.releaseLock();
      return new Response(`${(await req.text()).length}\n`);
    }
    entered.resolve();
    try {
      const buf = new Uint8Array(64);
      while (await read(buf) !== null);
    } catch (err) {
      failed.resolve(err);
    }
    return new Response("late\n");
  });
  const streamed = await Raw.open(f.port);
  await streamed.send(
    "POST / HTTP/1.1\r\nHost: x\r\nX-Mode: stream\r\nContent-Length: 3\r\n\r\nabc",
  );
  await streamed.until((r) => r.text.includes("\r\n\r\n3\n"), "the streamed body, read whole");
  await streamed.close();
  const raw = await Raw.open(f.port);
  await raw.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
  await entered.promise;
  for (let i = 0; i < 200 && f.gate.stats.timedOut.body === undefined; i++) {
    f.clock.now += 2001;
    f.deadlines.sweep();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await raw.until((r) => r.ended, "closed at the body timeout");
  const err = await failed.promise;
  assert.ok(err instanceof HttpError && err.status === 408, String(err));
  await raw.close();
});
