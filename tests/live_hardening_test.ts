/**
 * End-to-end tests of the live tail against hostile patterns and server restarts: the real
 * program in a subprocess with the design card's `--allow-net --allow-write`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SseParser } from "../src/live/sse_decoder.ts";
import { freePort, startServer, waitForBytes, writeAll } from "./_server.ts";
import { ingest, metric, runCli, SseTail, TcpProxy, until, WsTail } from "./_http.ts";

const encoder = new TextEncoder();

/** Resolves with `promise`, or fails the test after `ms` (a frozen server never answers). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("an evil tail regex with matching traffic: ingestion goes on, /healthz answers, SIGTERM exits", async () => {
  await using server = await startServer([]);
  const file = join(server.dir, "aggregated_logs.txt");
  // Backtracks about 2^30 steps per line in JavaScript's RegExp: one line froze the process.
  const evil = await SseTail.open(server.url, `?regex=${encodeURIComponent("^(a+)+$")}`);
  // Linear on RE2, but microseconds per character: what its filter time bounds.
  const costly = await SseTail.open(server.url, `?regex=${encodeURIComponent("(a|b)*a.{30}b$")}`);
  assert.equal(evil.status, 200);
  assert.equal(costly.status, 200);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  // Lines of random a and b, which the costly pattern chews on.
  let text = "";
  let seed = 1;
  for (let i = 0; i < 2000; i++) {
    let line = "";
    for (let j = 0; j < 2000; j++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      line += seed & 0x10000 ? "a" : "b";
    }
    text += line + "\n";
  }
  const sent = encoder.encode(text);
  await writeAll(conn, sent);
  await waitForBytes(file, sent.length, 60_000);
  // It ran out of filter time and was told how many lines it did not look at.
  await costly.wait((t) => t.seen.some((s) => "dropped" in s), 30_000);
  // Then the lines that froze the process.
  const more = encoder.encode(("a".repeat(30) + "!\n").repeat(2000));
  await writeAll(conn, more);
  await waitForBytes(file, sent.length + more.length, 60_000);
  const health = await within(5000, "/healthz", fetch(`${server.url}/healthz`));
  assert.equal(health.status, 200);
  await health.body?.cancel();
  // The evil pattern still works: it matches a line of a's only. (Sent again while its filter
  // may still be paying for the lines above.)
  const match = "a".repeat(10);
  for (let i = 0; i < 10 && evil.lines.length === 0; i++) {
    await writeAll(conn, encoder.encode(match + "\n"));
    await evil.wait((t) => t.lines.length > 0, 3000).catch(() => {});
  }
  assert.ok(evil.lines.length > 0, `the evil tail saw ${JSON.stringify(evil.seen.slice(-3))}`);
  assert.deepEqual(new Set(evil.lines.map((l) => l.line)), new Set([match]));
  conn.close();
  // A pattern RE2 cannot run is a clear 400.
  const bad = await fetch(`${server.url}/api/v1/tail?regex=${encodeURIComponent("(?=x)")}`);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /^Invalid regex "\(\?=x\)": invalid or unsupported/);
  await Promise.all([evil.close(), costly.close()]);
  const status = await within(10_000, "SIGTERM", server.stop());
  assert.equal(status.code, 0);
});

/** The `ready` event of an SSE tail opened with `cursor`, and the stream's lines so far. */
async function readyOf(url: string, cursor: string): Promise<Record<string, unknown>> {
  const abort = new AbortController();
  const res = await fetch(`${url}/api/v1/tail`, {
    headers: { accept: "text/event-stream", "last-event-id": cursor },
    signal: abort.signal,
  });
  const parser = new SseParser();
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body!) {
      const ready = parser.push(decoder.decode(chunk, { stream: true }))
        .find((e) => e.event === "ready");
      if (ready) return { ...JSON.parse(ready.data), id: ready.lastEventId };
    }
  } finally {
    abort.abort();
  }
  throw new Error("No ready event");
}

Deno.test("a tail resuming after a server restart gets the new run's first lines and is told so (SSE, WebSocket, logboom tail)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-restart-" });
  const http = freePort();
  const args = ["-port", String(freePort()), "-http", `127.0.0.1:${http}`];
  let server = await startServer(args, { dir });
  // logboom tail goes through a proxy, so the test decides when it can reconnect.
  const proxy = new TcpProxy(http);
  await using cli = runCli(["--allow-net=127.0.0.1"], [
    "tail",
    "-server",
    `http://127.0.0.1:${proxy.port}`,
    "-n",
    "0",
  ]);
  try {
    const sse = await SseTail.open(server.url);
    const subscribed = async () => await metric(server.url, "logboom_live_subscribers") === 2;
    await until(subscribed, () => `logboom tail did not subscribe: ${cli.stderr()}`);
    await ingest(server.url, "a1\na2\na3\n");
    await sse.wait((t) => t.lines.length === 3);
    await until(() => cli.stdout().includes("a3\n"), () => `tail printed ${cli.stdout()}`);
    const cursor = sse.lastEventId;
    await sse.close();
    proxy.down = true;
    assert.equal((await server.stop()).code, 0);

    // The new run takes more lines than the old cursor's id before anyone comes back: a bare
    // id would resume after its line 3 and skip b1 to b3.
    server = await startServer(args, { dir });
    await ingest(server.url, "b1\nb2\nb3\nb4\nb5\n");
    const resumed = await SseTail.open(server.url, "", { "last-event-id": cursor });
    const ws = new WsTail(server.url, `?lastEventId=${cursor}`);
    const expected = ["b1", "b2", "b3", "b4", "b5"];
    for (const tail of [resumed, ws] as (SseTail | WsTail)[]) {
      await tail.wait((t) => t.lines.length >= 5);
      assert.deepEqual(tail.lines.map((l) => l.line), expected);
    }
    assert.match(cursor, /^[0-9a-z]+-3$/, "a cursor names the run and the line");
    assert.notEqual(resumed.lastEventId.split("-")[0], cursor.split("-")[0], "a new epoch");
    const ready = await readyOf(server.url, cursor);
    assert.equal(ready.restarted, true);
    assert.equal(ready.lastId, 0);
    assert.match(String(ready.id), /^[0-9a-z]+-0$/);
    const same = await readyOf(server.url, resumed.lastEventId);
    assert.equal(same.restarted, false);
    assert.equal(same.lastId, 5);

    proxy.down = false;
    await until(
      () => cli.stdout().includes("b5\n"),
      () => `tail printed ${JSON.stringify(cli.stdout())}, said ${cli.stderr()}`,
      20_000,
    );
    assert.equal(cli.stdout(), "a1\na2\na3\nb1\nb2\nb3\nb4\nb5\n");
    assert.match(cli.stderr(), /the server restarted; resuming from the oldest line it holds/);
    await Promise.all([resumed.close(), ws.close()]);
    cli.child.kill("SIGTERM");
    assert.equal((await cli.status()).code, 0);
    assert.equal((await server.stop()).code, 0);
  } finally {
    await proxy.close();
    await server.stop("SIGKILL").catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
