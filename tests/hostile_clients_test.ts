/**
 * End-to-end: clients that try to exhaust or stall the server. The program runs as users run it
 * (`--allow-net --allow-write`), some runs under a small descriptor limit (`prlimit`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { metric, until } from "./_http.ts";
import { send, startServer, waitForSize, writeAll } from "./_server.ts";

const encoder = new TextEncoder();

/** Resolves true once the server closed `conn` (read returns end or reset), false after `ms`. */
async function closedWithin(
  conn: Deno.Conn,
  ms: number,
): Promise<{ closed: boolean; text: string }> {
  const buf = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => conn.close(), ms);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return { closed: true, text };
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch (err) {
    // Our own close after `ms` interrupts the read; a reset by the server means closed.
    return {
      closed: !(err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.BadResource),
      text,
    };
  } finally {
    clearTimeout(timer);
    closeAll([conn]);
  }
}

/** One request on its own connection (`Connection: close`): the whole answer as text. */
async function rawGet(port: number, path: string): Promise<string> {
  const conn = await connect(port);
  await writeAll(
    conn,
    encoder.encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
  );
  return (await closedWithin(conn, 10_000)).text;
}

function connect(port: number): Promise<Deno.Conn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

async function healthy(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch {
      // Closed by the server.
    }
  }
}

Deno.test("more idle connections than the descriptor limit, under -maxConnections: refused and counted, nothing dies", async () => {
  const args = ["-logFile", "out.log", "-maxConnections", "20", "-headerTimeout", "1s"];
  await using server = await startServer(args, {
    wrapper: ["prlimit", "--nofile=64:64"],
  });
  const file = join(server.dir, "out.log");
  await send(server.port, "before\n");
  await waitForSize(file, 7);
  // 50 TCP and 30 HTTP connections that say nothing: 80, over the limit of 64 descriptors.
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < 50; i++) conns.push(await connect(server.port));
  for (let i = 0; i < 30; i++) conns.push(await connect(server.httpPort));
  // Those past the cap are closed at once, HTTP ones told why first; the idle HTTP ones that got
  // a slot are closed at the header timeout.
  const answers = await Promise.all(conns.slice(50).map((conn) => closedWithin(conn, 10_000)));
  assert.ok(answers.every((a) => a.closed));
  assert.ok(answers.some((a) => /^HTTP\/1\.1 503 [^]*Too many connections/.test(a.text)));
  closeAll(conns);
  await until(() => healthy(server.url), () => `no /healthz answer:\n${server.stderr()}`);
  await send(server.port, "after\n");
  assert.equal(await waitForSize(file, 13), "before\nafter\n");
  const refusedTcp = await metric(server.url, 'logboom_connections_refused_total{transport="tcp"}');
  const refusedHttpCount = await metric(
    server.url,
    'logboom_connections_refused_total{transport="http"}',
  );
  assert.ok(
    refusedTcp + refusedHttpCount >= 80 - 20,
    `refused ${refusedTcp} + ${refusedHttpCount}`,
  );
  assert.ok(refusedHttpCount >= 1);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("out of descriptors with the default cap: the listeners wait and recover, the process stays up", async () => {
  await using server = await startServer(["-logFile", "out.log"], {
    wrapper: ["prlimit", "--nofile=64:64"],
  });
  const file = join(server.dir, "out.log");
  await send(server.port, "before\n");
  await waitForSize(file, 7);
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < 60; i++) conns.push(await connect(server.port));
  for (let i = 0; i < 40; i++) conns.push(await connect(server.httpPort));
  await until(
    () => /out of file descriptors \(EMFILE\)/.test(server.stderr()),
    () => `no EMFILE warning:\n${server.stderr()}`,
  );
  closeAll(conns);
  // Today Deno.serve's accept loop rejects with EMFILE unhandled, and the process dies here.
  await until(() => healthy(server.url), () => `no /healthz answer:\n${server.stderr()}`);
  await send(server.port, "after\n");
  assert.equal(await waitForSize(file, 13), "before\nafter\n");
  assert.ok(await metric(server.url, 'logboom_accept_errors_total{error="EMFILE"}') >= 1);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("slowloris: a request head that never completes is closed at -headerTimeout", async () => {
  await using server = await startServer(["-headerTimeout", "300ms"]);
  const conn = await connect(server.httpPort);
  await writeAll(conn, encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
  // Today the server holds such a connection for over 70 s.
  const { closed, text } = await closedWithin(conn, 10_000);
  assert.ok(closed, "the server still holds the connection after 10 s");
  assert.equal(text, "");
  assert.equal(await metric(server.url, 'logboom_connections_timed_out_total{phase="header"}'), 1);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a half-open body (Content-Length larger than sent) is closed at -bodyTimeout and stores nothing", async () => {
  await using server = await startServer(["-bodyTimeout", "300ms", "-logFile", "out.log"]);
  const conn = await connect(server.httpPort);
  await writeAll(
    conn,
    encoder.encode(
      `POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1:${server.httpPort}\r\n` +
        "Content-Length: 1000\r\n\r\npartial line 1\npartial line 2\n",
    ),
  );
  const { closed } = await closedWithin(conn, 10_000);
  assert.ok(closed, "the server still holds the connection after 10 s");
  assert.equal(await metric(server.url, 'logboom_connections_timed_out_total{phase="body"}'), 1);
  const res = await fetch(`${server.url}/api/v1/ingest`, { method: "POST", body: "whole\n" });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  assert.equal(await Deno.readTextFile(join(server.dir, "out.log")), "whole\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a TCP connection that sends nothing for -idleTimeout is closed; its lines are stored", async () => {
  await using server = await startServer(["-idleTimeout", "300ms", "-logFile", "out.log"]);
  const conn = await connect(server.port);
  await writeAll(conn, encoder.encode("said once\nunterminated"));
  const { closed } = await closedWithin(conn, 10_000);
  assert.ok(closed, "the server still holds the idle connection after 10 s");
  assert.equal(
    await waitForSize(join(server.dir, "out.log"), 23),
    "said once\nunterminated\n",
  );
  assert.equal(await metric(server.url, 'logboom_connections_timed_out_total{phase="idle"}'), 1);
  assert.equal(await metric(server.url, 'logboom_connections_open{transport="tcp"}'), 0);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("-maxConnections counts TCP and HTTP together: past it HTTP answers 503, TCP is closed", async () => {
  await using server = await startServer(["-maxConnections", "3", "-logFile", "out.log"]);
  const held = [await connect(server.port), await connect(server.port), await connect(server.port)];
  // Once each held connection's line is stored, all three are accepted: the cap is full.
  for (const [i, conn] of held.entries()) await writeAll(conn, encoder.encode(`held ${i}\n`));
  await waitForSize(join(server.dir, "out.log"), 21);
  const refused = await rawGet(server.httpPort, "/healthz");
  assert.match(refused, /^HTTP\/1\.1 503 [^]*retry-after: 1[^]*Too many connections/);
  const extra = await connect(server.port);
  assert.ok((await closedWithin(extra, 10_000)).closed);
  closeAll(held);
  await until(() => healthy(server.url), () => "no /healthz after the held connections closed");
  assert.ok(await metric(server.url, 'logboom_connections_refused_total{transport="http"}') >= 1);
  assert.equal(await metric(server.url, 'logboom_connections_refused_total{transport="tcp"}'), 1);
  assert.equal((await server.stop()).code, 0);
});
