import assert from "node:assert/strict";
import { LiveHub } from "../live/hub.ts";
import { SseParser } from "../live/sse_decoder.ts";
import { Router } from "../pipeline/router.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { Api } from "./server.ts";
import { SourceStats } from "./source_stats.ts";

const peer = { hostname: "127.0.0.1" };

function setup(token = "") {
  const hub = new LiveHub();
  const sources = new SourceStats();
  const router = new Router([hub, sources]);
  const api = new Api({ token, loopback: true }, {
    router,
    hub,
    sources,
    marks: StreamMarks.memory(),
    sinkMetrics: () => [{ name: "live", linesWritten: hub.stats.linesDelivered }],
  });
  const call = (path: string, init: RequestInit = {}) =>
    api.handle(new Request(`http://127.0.0.1:8081${path}`, init), peer);
  return { hub, api, call };
}

Deno.test("Api routes: health without a token, everything else behind it", async () => {
  const { api, call } = setup("t");
  const auth = { authorization: "Bearer t" };
  assert.equal(await (await call("/healthz")).text(), "ok\n");
  for (const path of ["/readyz", "/metrics", "/api/v1/sources", "/nope"]) {
    const res = await call(path);
    assert.equal(res.status, 401, path);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="logboom"');
    await res.body?.cancel();
  }
  assert.equal((await call("/readyz", { headers: auth })).status, 200);
  const missing = await call("/nope", { headers: auth });
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const wrong = await call("/metrics", { method: "POST", headers: auth, body: "x" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET, HEAD");
  await wrong.body?.cancel();
  const posted = await call("/api/v1/ingest?source=s", {
    method: "POST",
    headers: auth,
    body: "a\nb\n",
  });
  assert.deepEqual(await posted.json(), { accepted: 2, duplicate: false });
  const sources = await (await call("/api/v1/sources", { headers: auth })).json();
  assert.equal(sources.sources[0].source, "s");
  assert.equal(sources.sources[0].lines, 2);
  const metrics = await (await call("/metrics", { headers: auth })).text();
  assert.match(metrics, /^logboom_http_requests_total\{route="\/api\/v1\/ingest",code="200"\} 1$/m);
  assert.match(metrics, /^logboom_http_requests_total\{route="other",code="401"\} 1$/m);
  await api.close();
});

Deno.test("Api tail over SSE: a ready cursor first, then lines; closing the API ends it", async () => {
  const { hub, api, call } = setup();
  await call("/api/v1/ingest", { method: "POST", body: "before\n" }).then((r) => r.body?.cancel());
  const res = await call("/api/v1/tail?grep=x");
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  const events = [];
  hub.write({
    data: new TextEncoder().encode("x1\ny\nx2\n"),
    lines: 3,
    meta: { source: "s", host: "h", input: "test" },
    receivedAt: 0,
  });
  while (events.length < 3) events.push(...parser.push((await reader.read()).value!));
  // Cursors are "<epoch>-<line id>": one epoch for this run, then the ids.
  const epoch = events[0].lastEventId.split("-")[0];
  assert.match(epoch, /^[0-9a-z]+$/);
  assert.deepEqual(events.map((e) => [e.event, e.lastEventId]), [
    ["ready", `${epoch}-1`],
    ["message", `${epoch}-2`],
    ["message", `${epoch}-4`],
  ]);
  assert.equal(JSON.parse(events[2].data).line, "x2");
  await api.close();
  for (;;) if ((await reader.read()).done) break;
  const after = await call("/api/v1/tail");
  assert.equal(after.status, 503);
  await after.body?.cancel();
  await hub.close();
});
