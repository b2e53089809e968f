/**
 * End-to-end tests of the live tail: the real program in a subprocess with the design card's
 * `--allow-net --allow-write`, followed over SSE and WebSocket.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SseParser } from "../src/live/sse_decoder.ts";
import { startServer, waitForBytes, writeAll } from "./_server.ts";
import { ingest, metric, rssKb, SseTail, until, WsTail } from "./_http.ts";

const encoder = new TextEncoder();

const FILTER_LINES: [string, string][] = [
  ["web", "web ERROR 1"],
  ["web", "web info 2"],
  ["db", "db ERROR 3"],
  ["db", "db info 4"],
  ["web", "web ERROR end"], // every filter below matches the last line: it says "all arrived"
];
const FILTERS: [string, string[]][] = [
  ["", ["web ERROR 1", "web info 2", "db ERROR 3", "db info 4", "web ERROR end"]],
  ["?source=web", ["web ERROR 1", "web info 2", "web ERROR end"]],
  ["?grep=ERROR", ["web ERROR 1", "db ERROR 3", "web ERROR end"]],
  [`?regex=${encodeURIComponent("^db |end$")}`, ["db ERROR 3", "db info 4", "web ERROR end"]],
  ["?source=web&grep=ERROR&regex=end", ["web ERROR end"]],
];

async function postFilterLines(base: string): Promise<void> {
  for (const [source, line] of FILTER_LINES) {
    assert.equal((await ingest(base, line + "\n", { query: `?source=${source}` })).status, 200);
  }
}

function ended(tail: { lines: { line: string }[] }): boolean {
  return tail.lines.some((l) => l.line.endsWith(" end"));
}

Deno.test("SSE tail: source, grep and regex filters run on the server; a bad regex is a 400", async () => {
  await using server = await startServer([]);
  const tails = await Promise.all(FILTERS.map(([query]) => SseTail.open(server.url, query)));
  await postFilterLines(server.url);
  for (const [i, [query, expected]] of FILTERS.entries()) {
    await tails[i].wait(ended);
    assert.deepEqual(tails[i].lines.map((l) => l.line), expected, query);
    // Every event carries its id, and the stream's cursor follows it.
    // (a cursor: the server run's epoch, then the line id).
    assert.match(tails[i].lastEventId, new RegExp(`^[0-9a-z]+-${tails[i].lines.at(-1)!.id}$`));
  }
  const first = tails[0].lines[0];
  assert.equal(first.source, "web");
  assert.equal(first.host, "127.0.0.1");
  assert.ok(Math.abs(first.ts - Date.now()) < 60_000);
  await Promise.all(tails.map((t) => t.close()));
  const bad = await fetch(`${server.url}/api/v1/tail?regex=${encodeURIComponent("(unclosed")}`);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /Invalid regex "\(unclosed"/);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("WebSocket tail: the same filters, one JSON message per event", async () => {
  await using server = await startServer([]);
  const tails = FILTERS.map(([query]) => new WsTail(server.url, query));
  await Promise.all(tails.map((t) => t.opened()));
  // The first message of a WebSocket tail is its cursor: once it arrived, the tail is subscribed.
  await Promise.all(tails.map((t) => t.wait((w) => w.seen.length > 0)));
  await postFilterLines(server.url);
  for (const [i, [query, expected]] of FILTERS.entries()) {
    await tails[i].wait(ended);
    assert.deepEqual(tails[i].lines.map((l) => l.line), expected, query);
  }
  const bad = new WsTail(server.url, "?regex=(");
  await assert.rejects(bad.opened());
  await bad.close();
  await Promise.all(tails.map((t) => t.close()));
  assert.equal((await server.stop()).code, 0);
});

Deno.test("backfill: n=3 starts with the last three matching lines, then follows", async () => {
  await using server = await startServer([]);
  const body = Array.from({ length: 20 }, (_, i) => `${i % 2 ? "odd" : "even"} ${i}`).join("\n");
  await ingest(server.url, body);
  const sse = await SseTail.open(server.url, "?grep=odd&n=3");
  const ws = new WsTail(server.url, "?grep=odd&n=3");
  await sse.wait((t) => t.lines.length >= 3);
  await ws.wait((t) => t.lines.length >= 3);
  await ingest(server.url, "odd live\neven live\n");
  for (const tail of [sse, ws]) {
    await tail.wait((t) => t.lines.some((l) => l.line === "odd live"));
    assert.deepEqual(tail.lines.map((l) => l.line), ["odd 15", "odd 17", "odd 19", "odd live"]);
  }
  await sse.close();
  await ws.close();
  for (const query of ["?n=-1", "?n=abc", "?n=100001"]) {
    const res = await fetch(`${server.url}/api/v1/tail${query}`);
    assert.equal(res.status, 400, query);
    await res.body?.cancel();
  }
  assert.equal((await server.stop()).code, 0);
});

Deno.test("Last-Event-ID resume: what was missed while away, then dropped for what the ring lost", async () => {
  await using server = await startServer([]);
  let tail = await SseTail.open(server.url);
  await ingest(server.url, "a1\na2\na3\n");
  await tail.wait((t) => t.lines.length === 3);
  const cursor = tail.lastEventId;
  await tail.close();
  await ingest(server.url, "b1\nb2\n");
  tail = await SseTail.open(server.url, "", { "last-event-id": cursor });
  await ingest(server.url, "c1\n");
  await tail.wait((t) => t.lines.some((l) => l.line === "c1"));
  assert.deepEqual(tail.lines.map((l) => l.line), ["b1", "b2", "c1"]);
  assert.ok(!tail.seen.some((s) => "dropped" in s));
  const cursor2 = tail.lastEventId;
  await tail.close();

  // Away while 12,000 lines pass: the ring keeps the last 10,000.
  const bulk = Array.from({ length: 12_000 }, (_, i) => `bulk ${i}`).join("\n");
  await ingest(server.url, bulk);
  tail = await SseTail.open(server.url, "", { "last-event-id": cursor2 });
  const ws = new WsTail(server.url, `?lastEventId=${cursor2}`);
  for (const t of [tail, ws] as (SseTail | WsTail)[]) {
    await t.wait((x) => x.lines.some((l) => l.line === "bulk 11999"));
    const items = t.seen.filter((s) => !("ready" in s));
    assert.deepEqual(items[0], { dropped: 2000 }, "told first how many it missed");
    const lines = t.lines.map((l) => l.line);
    assert.equal(lines.length, 10_000);
    assert.equal(lines[0], "bulk 2000");
  }
  await tail.close();
  await ws.close();
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a subscriber that never reads while 1 GB passes: ingestion goes on, memory stays bounded, it is told what it missed", async () => {
  await using server = await startServer([]);
  const file = join(server.dir, "aggregated_logs.txt");
  // The stalled subscriber: its response body is never read while the gigabyte passes.
  const stalled = await fetch(`${server.url}/api/v1/tail`, {
    headers: { accept: "text/event-stream" },
  });
  assert.equal(stalled.status, 200);
  // Another subscriber, reading, with a filter: it must get every marker line, none dropped.
  const watcher = await SseTail.open(server.url, "?grep=MARK");
  const connections = 4;
  const chunksPerConnection = 256; // 4 x 256 x 1 MiB = 1 GiB
  const linesPerChunk = 10_486;
  const chunk = (c: number, i: number) =>
    encoder.encode(
      `MARK ${c} ${i}`.padEnd(99, ".") + "\n" + ("y".repeat(99) + "\n").repeat(linesPerChunk - 1),
    );
  const total = connections * chunksPerConnection * chunk(0, 0).length;
  const totalLines = connections * chunksPerConnection * linesPerChunk;
  let peakKb = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakKb = Math.max(peakKb, await rssKb(server.child.pid));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async (_, c) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const body = chunk(c, 0);
    for (let i = 0; i < chunksPerConnection; i++) {
      body.set(encoder.encode(`MARK ${c} ${i}`.padEnd(99, ".")), 0);
      await writeAll(conn, body);
    }
  }));
  await waitForBytes(file, total, 120_000);
  const seconds = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  console.log(
    `  1 GiB with a stalled subscriber: ${(total / 1e6 / seconds).toFixed(0)} MB/s, ` +
      `server peak RSS ${(peakKb / 1024).toFixed(0)} MB`,
  );
  assert.equal((await Deno.stat(file)).size, total, "every byte stored");
  assert.ok(peakKb < 400 * 1024, `server RSS reached ${peakKb} kB`);
  await watcher.wait((t) => t.lines.length === connections * chunksPerConnection, 30_000);
  assert.ok(!watcher.seen.some((s) => "dropped" in s), "the reading subscriber lost nothing");
  await watcher.close();

  // Now the stalled subscriber reads. Every line is either received or reported dropped: on this
  // connection, or (when the hub cut it off as stalled) on a resume with its cursor.
  let received = 0;
  let dropped = 0;
  let cursor = "";
  const accounted = () => received + dropped >= totalLines;
  const readAll = async (res: Response) => {
    const parser = new SseParser(cursor);
    const decoder = new TextDecoder();
    const reader = res.body!.getReader();
    const deadline = setTimeout(() => reader.cancel(), 30_000);
    try {
      while (!accounted()) {
        const { done, value } = await reader.read();
        if (done) return;
        for (const e of parser.push(decoder.decode(value, { stream: true }))) {
          if (e.lastEventId !== "") cursor = e.lastEventId;
          if (e.event === "message") received++;
          if (e.event === "dropped") dropped += JSON.parse(e.data).count;
        }
      }
    } finally {
      clearTimeout(deadline);
      await reader.cancel();
    }
  };
  await readAll(stalled);
  if (!accounted()) {
    const resumed = await fetch(`${server.url}/api/v1/tail`, {
      headers: { "last-event-id": cursor },
    });
    await readAll(resumed);
  }
  assert.ok(dropped > totalLines / 2, `told of ${dropped} dropped lines`);
  assert.equal(received + dropped, totalLines, "every line received or reported dropped");
  assert.ok(await metric(server.url, "logboom_live_lines_dropped_total") >= dropped);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("connects and disconnects leak nothing; -maxSubscribers caps live tails with 503", async () => {
  await using server = await startServer(["-maxSubscribers", "300"]);
  const baseline = await rssKb(server.child.pid);
  for (let round = 0; round < 3; round++) {
    const sse = await Promise.all(Array.from({ length: 200 }, () => SseTail.open(server.url)));
    const ws = Array.from({ length: 100 }, () => new WsTail(server.url));
    await Promise.all(ws.map((w) => w.opened()));
    await until(
      async () => await metric(server.url, "logboom_live_subscribers") === 300,
      () => "subscribers not all counted",
    );
    const over = await fetch(`${server.url}/api/v1/tail`);
    assert.equal(over.status, 503);
    assert.ok(over.headers.has("retry-after"));
    assert.match((await over.json()).error, /Too many live subscribers/);
    await ingest(server.url, `round ${round}\n`);
    await Promise.all([...sse, ...ws].map((t) => t.wait((x) => x.lines.length === 1)));
    await Promise.all([...sse.map((t) => t.close()), ...ws.map((t) => t.close())]);
    await until(
      async () => await metric(server.url, "logboom_live_subscribers") === 0,
      () => "subscribers linger after disconnecting",
    );
  }
  const after = await rssKb(server.child.pid);
  assert.ok(after - baseline < 64 * 1024, `RSS grew from ${baseline} to ${after} kB`);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("shutdown ends open tails: SSE streams end, WebSockets close with 1001, exit 0 within 5 s", async () => {
  await using server = await startServer([]);
  const sse = await SseTail.open(server.url);
  const ws = new WsTail(server.url);
  await ws.opened();
  const started = Date.now();
  const status = await server.stop();
  assert.equal(status.code, 0);
  assert.ok(Date.now() - started < 5000);
  await sse.wait((t) => t.ended);
  await ws.wait((t) => t.closeCode !== undefined);
  assert.equal(ws.closeCode, 1001);
  await sse.close();
  await ws.close();
});
