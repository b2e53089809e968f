/**
 * End-to-end tests of the HTTP API's ingestion, operations and security: the real program in a
 * subprocess with the design card's `--allow-net --allow-write` (plus read or env permission
 * where a test is about them), talked to over real HTTP.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CARD_PERMISSIONS,
  freePort,
  holdLock,
  send,
  startServer,
  waitForSize,
  writeAll,
} from "./_server.ts";
import { gzip, ingest, metric, rssKb, until, WsTail } from "./_http.ts";

const encoder = new TextEncoder();

Deno.test("HTTP ingest answers 200 only once the lines are in the file (-fsync batch)", async () => {
  await using server = await startServer(["-fsync", "batch"]);
  const file = join(server.dir, "aggregated_logs.txt");
  const answer = await ingest(server.url, "first line\r\n\n  \nsecond line\nno newline", {
    query: "?source=app",
  });
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.json, { accepted: 3, duplicate: false });
  // No polling: the acknowledgement means stored.
  assert.equal(await Deno.readTextFile(file), "first line\nsecond line\nno newline\n");
  const empty = await ingest(server.url, "");
  assert.deepEqual(empty.json, { accepted: 0, duplicate: false });
  assert.equal((await server.stop()).code, 0);
});

Deno.test("HTTP ingest takes NDJSON records, each with its own source and host", async () => {
  await using server = await startServer(["-logFile", "logs/{source}.log"]);
  const body = [
    JSON.stringify({
      line: "from web",
      source: "web",
      host: "10.0.0.7",
      ts: "2026-01-01T00:00:00Z",
    }),
    JSON.stringify({ line: "default source" }),
    "",
    JSON.stringify({ line: "two\nlines", source: "web" }),
  ].join("\n");
  const answer = await ingest(server.url, body, {
    query: "?source=api",
    headers: { "content-type": "application/x-ndjson" },
  });
  assert.deepEqual(answer.json, { accepted: 4, duplicate: false });
  assert.equal(
    await Deno.readTextFile(join(server.dir, "logs/web.log")),
    "from web\ntwo\nlines\n",
  );
  assert.equal(await Deno.readTextFile(join(server.dir, "logs/api.log")), "default source\n");
  const sources = await (await fetch(`${server.url}/api/v1/sources`)).json();
  assert.deepEqual(
    sources.sources.map((s: { source: string; lines: number }) => [s.source, s.lines]),
    [["api", 1], ["web", 3]],
  );
  assert.equal((await server.stop()).code, 0);
});

Deno.test("HTTP ingest refuses a malformed body with a reason, and stores none of it", async () => {
  await using server = await startServer(["-fsync", "batch"]);
  const file = join(server.dir, "aggregated_logs.txt");
  const ndjson = { "content-type": "application/x-ndjson" };
  const cases: [BodyInit, Record<string, string>, number, RegExp][] = [
    ['{"line":"ok"}\nnot json\n', ndjson, 400, /Record 2 of the body is not JSON/],
    ['{"line":"ok"}\n{"nope":1}\n', ndjson, 400, /Record 2 of the body has no "line" string/],
    ['["line"]\n', ndjson, 400, /Record 1 of the body is not a JSON object/],
    ["not gzip at all", { "content-encoding": "gzip" }, 400, /not valid gzip/],
    ["x\n", { "content-encoding": "br" }, 415, /Content-Encoding "br"/],
    ["x\n", { "content-type": "image/png" }, 415, /Content-Type "image\/png"/],
    ["x\n", { "x-stream-id": "s" }, 400, /X-Stream-Id and X-Stream-Offset go together/],
    ["x\n", { "x-stream-id": "s", "x-stream-offset": "-1" }, 400, /X-Stream-Offset must be/],
  ];
  for (const [body, headers, status, reason] of cases) {
    const answer = await ingest(server.url, body, { headers });
    assert.equal(
      answer.status,
      status,
      `${JSON.stringify(headers)}: ${JSON.stringify(answer.json)}`,
    );
    assert.match(String(answer.json.error), reason);
  }
  const wrongMethod = await fetch(`${server.url}/api/v1/ingest`);
  await wrongMethod.body?.cancel();
  assert.equal(wrongMethod.status, 405);
  assert.equal(await Deno.readTextFile(file), "");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a batch resent with the same stream offset is refused as duplicate, also after restarts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-e2e-" });
  const file = join(dir, "aggregated_logs.txt");
  // Read permission on the folder is what lets the marks be reloaded at startup.
  const permissions = [...CARD_PERMISSIONS, `--allow-read=${dir}`];
  const batch = (n: number, offset: number, id = "agent-1:/var/log/app.log") =>
    ingest(server.url, `batch ${n}\n`, {
      query: "?source=app",
      headers: { "x-stream-id": id, "x-stream-offset": String(offset) },
    });
  let server = await startServer(["-fsync", "batch"], { dir, permissions });
  try {
    assert.deepEqual((await batch(1, 8)).json, { accepted: 1, duplicate: false });
    assert.deepEqual((await batch(1, 8)).json, { accepted: 0, duplicate: true });
    assert.deepEqual((await batch(0, 3)).json, { accepted: 0, duplicate: true }, "below the mark");
    // Concurrent resends of one batch: exactly one is stored.
    const racing = await Promise.all([batch(2, 16), batch(2, 16), batch(2, 16)]);
    assert.deepEqual(racing.map((r) => r.json.duplicate).sort(), [false, true, true]);
    assert.deepEqual((await batch(1, 8, "another-stream")).json, { accepted: 1, duplicate: false });
    assert.equal(await metric(server.url, "logboom_ingest_duplicates_total"), 4);
    assert.equal((await server.stop()).code, 0);

    server = await startServer(["-fsync", "batch"], { dir, permissions });
    assert.deepEqual((await batch(2, 16)).json, { accepted: 0, duplicate: true }, "after SIGTERM");
    assert.deepEqual((await batch(3, 24)).json, { accepted: 1, duplicate: false });
    // kill -9 right after the acknowledgement: the mark was durable before the answer.
    await server.stop("SIGKILL");

    server = await startServer(["-fsync", "batch"], { dir, permissions });
    assert.deepEqual((await batch(3, 24)).json, { accepted: 0, duplicate: true }, "after SIGKILL");
    assert.equal((await server.stop()).code, 0);
    assert.equal(
      await Deno.readTextFile(file),
      "batch 1\nbatch 2\nbatch 1\nbatch 3\n",
      "each batch stored once",
    );
  } finally {
    await server[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without read permission the marks hold for the process only, and it says so at startup", async () => {
  await using server = await startServer([]);
  assert.match(
    server.stderr(),
    /Stream marks are kept in memory only \(no read permission\)/,
  );
  const headers = { "x-stream-id": "s", "x-stream-offset": "2" };
  assert.equal((await ingest(server.url, "a\n", { headers })).json.duplicate, false);
  assert.equal((await ingest(server.url, "a\n", { headers })).json.duplicate, true);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("gzip bodies are accepted; a gzip bomb and an oversized body get 413 and store nothing", async () => {
  await using server = await startServer(["-fsync", "batch", "-maxBody", "2MiB"]);
  const file = join(server.dir, "aggregated_logs.txt");
  const lines = Array.from({ length: 1000 }, (_, i) => `compressed line ${i}`).join("\n") + "\n";
  const ok = await ingest(server.url, await gzip(lines), {
    headers: { "content-encoding": "gzip" },
  });
  assert.deepEqual(ok.json, { accepted: 1000, duplicate: false });
  assert.equal(await Deno.readTextFile(file), lines);

  // 256 MiB of "a\n" in about 1 MiB of gzip: within the limit compressed, far over it expanded.
  const expanded = encoder.encode("a\n".repeat(512 * 1024)); // 1 MiB
  let chunks = 0;
  const source = new ReadableStream<BufferSource>({
    pull(controller) {
      controller.enqueue(expanded);
      if (++chunks >= 256) controller.close();
    },
  });
  const compressed = source.pipeThrough(new CompressionStream("gzip"));
  const bomb = new Uint8Array(await new Response(compressed).arrayBuffer());
  assert.ok(bomb.length < 2 * 1024 * 1024, `bomb is ${bomb.length} bytes`);
  const before = await rssKb(server.child.pid);
  const refused = await ingest(server.url, bomb, { headers: { "content-encoding": "gzip" } });
  assert.equal(refused.status, 413);
  assert.match(String(refused.json.error), /over the limit of 2097152 bytes/);
  const after = await rssKb(server.child.pid);
  assert.ok(after - before < 100 * 1024, `RSS grew from ${before} to ${after} kB`);

  const big = await ingest(server.url, "x".repeat(2 * 1024 * 1024 + 1));
  assert.equal(big.status, 413);
  const chunked = await ingest(
    server.url,
    ReadableStream.from([
      encoder.encode("y".repeat(1_100_000)),
      encoder.encode("y".repeat(1_100_000)),
    ]),
  );
  assert.equal(chunked.status, 413, "a streamed body without Content-Length is counted too");
  assert.equal(await Deno.readTextFile(file), lines, "nothing of the refused bodies was stored");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a full queue answers 503 with Retry-After instead of queueing more", async () => {
  await using server = await startServer(["-queueBytes", "1MiB", "-fsync", "batch"]);
  const file = join(server.dir, "aggregated_logs.txt");
  await waitForSize(file, 0);
  // Another process holds the file's lock, so nothing drains from the queue.
  const holder = await holdLock(file);
  const big = ("z".repeat(99) + "\n").repeat(15_000); // 1.5 MB: past the 1 MiB bound
  const first = ingest(server.url, big);
  await until(
    async () => {
      const res = await fetch(`${server.url}/readyz`);
      await res.body?.cancel();
      return res.status === 503;
    },
    () => "the queue never filled",
  );
  const second = await ingest(server.url, "one more\n");
  assert.equal(second.status, 503);
  assert.equal(second.headers.get("retry-after"), "1");
  assert.match(String(second.json.error), /queue is full/);
  await holder.release();
  assert.deepEqual((await first).json, { accepted: 15_000, duplicate: false });
  assert.equal((await ingest(server.url, "one more\n")).status, 200);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("/metrics, /healthz, /readyz and /api/v1/sources report what happened", async () => {
  await using server = await startServer([]);
  await ingest(server.url, "a\nb\n", { query: "?source=web" });
  await send(server.port, "t1\nt2\nt3\n");
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  await until(
    async () =>
      await metric(server.url, 'logboom_received_lines_total{input="tcp",source="tcp"}') === 3,
    () => "TCP lines not counted",
  );
  const text = await res.text();
  for (
    const expected of [
      'logboom_received_lines_total{input="http",source="web"} 2',
      'logboom_received_bytes_total{input="http",source="web"} 4',
      'logboom_sink_queue_bytes{sink="file"}',
      'logboom_sink_write_seconds_bucket{sink="file",le="+Inf"}',
      "logboom_live_subscribers 0",
      "logboom_live_lines_dropped_total 0",
      "logboom_ingest_duplicates_total 0",
      'logboom_errors_total{component="file"} 0',
      'logboom_http_requests_total{route="/api/v1/ingest",code="200"} 1',
    ]
  ) assert.ok(text.includes(expected), `missing ${expected}`);
  await until(
    async () => await metric(server.url, 'logboom_sink_lines_written_total{sink="file"}') === 5,
    () => "lines not written",
  );
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(await health.text(), "ok\n");
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal([ready.status, await ready.text()].join(" "), "200 ready\n");
  const sources = await (await fetch(`${server.url}/api/v1/sources`)).json();
  assert.deepEqual(sources.sources.map((s: { source: string }) => s.source), ["tcp", "web"]);
  assert.ok(!Number.isNaN(Date.parse(sources.sources[0].lastSeen)));
  const missing = await fetch(`${server.url}/nope`);
  await missing.body?.cancel();
  assert.equal(missing.status, 404);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("with a token every route but /healthz needs it; LOGBOOM_TOKEN works too", async () => {
  for (
    const [args, extra, env] of [
      [["-token", "s3cret"], [], {}],
      [[], ["--allow-env=LOGBOOM_TOKEN"], { LOGBOOM_TOKEN: "s3cret" }],
    ] as [string[], string[], Record<string, string>][]
  ) {
    const previous = Deno.env.get("LOGBOOM_TOKEN");
    for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
    let server;
    try {
      server = await startServer(args, { permissions: [...CARD_PERMISSIONS, ...extra] });
    } finally {
      if (previous === undefined) Deno.env.delete("LOGBOOM_TOKEN");
      else Deno.env.set("LOGBOOM_TOKEN", previous);
    }
    await using _ = server;
    const status = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${server.url}${path}`, init);
      await res.body?.cancel();
      return res.status;
    };
    const good = { authorization: "Bearer s3cret" };
    const bad = { authorization: "Bearer s3cret-not" };
    assert.equal(await status("/healthz"), 200);
    for (const path of ["/metrics", "/readyz", "/api/v1/sources", "/api/v1/tail"]) {
      assert.equal(await status(path), 401, path);
      assert.equal(await status(path, { headers: bad }), 401, path);
    }
    assert.equal(await status("/api/v1/ingest", { method: "POST", body: "x\n" }), 401);
    assert.equal(await status("/metrics", { headers: good }), 200);
    assert.equal(
      await status("/api/v1/ingest", { method: "POST", body: "x\n", headers: good }),
      200,
    );
    const noToken = new WsTail(server.url);
    await assert.rejects(noToken.opened());
    await noToken.close();
    const withToken = new WsTail(server.url, "", good);
    await withToken.opened();
    await withToken.close();
    assert.equal(await Deno.readTextFile(join(server.dir, "aggregated_logs.txt")), "x\n");
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("-http on a non-loopback address without a token refuses to start, in one line", async () => {
  const port = freePort();
  {
    await using server = await startServer(["-http", `0.0.0.0:${port}`], { waitReady: false });
    assert.equal((await server.exited()).code, 1);
    const lines = server.stderr().trim().split("\n");
    assert.equal(lines.length, 1, server.stderr());
    assert.match(lines[0], /Refusing to serve HTTP on 0\.0\.0\.0:\d+ without a token.*Set -token/);
  }
  await using server = await startServer(["-http", `0.0.0.0:${port}`, "-token", "t"]);
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: { authorization: "Bearer t" },
  });
  await res.body?.cancel();
  assert.equal(res.status, 200);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("-http port in use: one clear line and exit 1; -http off serves no HTTP", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
  const port = (taken.addr as Deno.NetAddr).port;
  {
    await using server = await startServer(["-http", `127.0.0.1:${port}`], { waitReady: false });
    assert.equal((await server.exited()).code, 1);
    const lines = server.stderr().trim().split("\n").filter((l) => !l.includes("Stream marks"));
    assert.equal(lines.length, 1, server.stderr());
    assert.match(
      lines[0],
      new RegExp(`Cannot serve HTTP on 127\\.0\\.0\\.1:${port}: .*in use`, "i"),
    );
    assert.match(lines[0], /choose another with -http 127\.0\.0\.1:PORT, or .* -http off$/);
  }
  await using server = await startServer(["-http", "off"]);
  assert.doesNotMatch(server.stderr(), /HTTP API/);
  await send(server.port, "tcp still works\n");
  await waitForSize(join(server.dir, "aggregated_logs.txt"), 16);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("browsers from other sites are refused: WebSocket Origin, cross-site posts, DNS rebinding", async () => {
  await using server = await startServer(["-allowOrigin", "https://logs.example.com"]);
  const host = `127.0.0.1:${server.httpPort}`;
  const evil = new WsTail(server.url, "", { origin: "https://evil.example" });
  await assert.rejects(evil.opened());
  await evil.close();
  for (const origin of [`http://${host}`, "https://logs.example.com"]) {
    const ws = new WsTail(server.url, "", { origin });
    await ws.opened();
    await ws.close();
  }
  const post = await ingest(server.url, "forged\n", {
    headers: { origin: "https://evil.example" },
  });
  assert.equal(post.status, 403);
  assert.match(String(post.json.error), /Origin "https:\/\/evil\.example" is not allowed/);
  // A site whose name was rebound to 127.0.0.1 is same-origin with itself, but names itself.
  // fetch() sets Host itself, so this request is written by hand.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
  await writeAll(
    conn,
    encoder.encode(
      `GET /metrics HTTP/1.1\r\nHost: evil.example:${server.httpPort}\r\nConnection: close\r\n\r\n`,
    ),
  );
  const answer = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  assert.match(answer, /^HTTP\/1\.1 403/);
  assert.match(answer, /Host \\"evil\.example:\d+\\" is not allowed/);
  assert.equal(await Deno.readTextFile(join(server.dir, "aggregated_logs.txt")), "");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("search says it needs read permission when the server may not read the log folder", async () => {
  await using server = await startServer(["-logFile", "out.log"]);
  const res = await fetch(`${server.url}/api/v1/search?q=x`);
  assert.equal(res.status, 503);
  assert.match(
    (await res.json()).error,
    /needs read permission on their folder: run with --allow-read=\.$/,
  );
  assert.equal((await server.stop()).code, 0);
});
