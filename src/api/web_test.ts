import assert from "node:assert/strict";
import { LiveHub } from "../live/hub.ts";
import { Router } from "../pipeline/router.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { Api } from "./server.ts";
import { SourceStats } from "./source_stats.ts";
import { CONTENT_SECURITY_POLICY } from "./web.ts";

const peer = { hostname: "127.0.0.1" };
const HTML = { accept: "text/html,application/xhtml+xml" };

function setup(token = "", running?: () => unknown) {
  const hub = new LiveHub();
  const sources = new SourceStats();
  const router = new Router([hub, sources]);
  const api = new Api({ token, loopback: true }, {
    router,
    hub,
    sources,
    marks: StreamMarks.memory(),
    sinkMetrics: () => [],
    server: { running },
  });
  const call = (path: string, init: RequestInit = {}, host = "127.0.0.1:8081") =>
    api.handle(new Request(`http://${host}${path}`, init), peer);
  return { api, call };
}

Deno.test("the page and its files are served without the token, with the policy headers", async () => {
  const { call } = setup("s3cret");
  const page = await call("/", { headers: HTML });
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.equal(page.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  const html = await page.text();
  assert.match(html, /<meta name="logboom-auth" content="token">/);
  assert.ok(!html.includes("s3cret"));
  for (const asset of ["/ui/app.js", "/ui/tail.js", "/ui/vendor/preact.js", "/ui/style.css"]) {
    const res = await call(asset);
    assert.equal(res.status, 200, asset);
    assert.equal(res.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY, asset);
    assert.ok((await res.text()).length > 100, asset);
  }
  // The API itself still wants the token.
  const api = await call("/api/v1/sources");
  assert.equal(api.status, 401);
  await api.body?.cancel();
});

Deno.test("the policy allows no inline script or style, and no other origin", () => {
  assert.match(CONTENT_SECURITY_POLICY, /default-src 'none'/);
  assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /style-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /connect-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /frame-ancestors 'none'/);
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe|\*|http/);
});

Deno.test("a page file unchanged is answered 304, an unknown one 404, a POST 405", async () => {
  const { call } = setup();
  const first = await call("/ui/app.js");
  const etag = first.headers.get("etag")!;
  await first.body?.cancel();
  const again = await call("/ui/app.js", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  const missing = await call("/ui/nope.js");
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error, /nope\.js/);
  const posted = await call("/", { method: "POST", headers: HTML, body: "x" });
  assert.equal(posted.status, 405);
  await posted.body?.cancel();
  const head = await call("/", { method: "HEAD", headers: HTML });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

Deno.test("the page says no token is wanted when the server has none", async () => {
  const { call } = setup();
  const html = await (await call("/", { headers: HTML })).text();
  assert.match(html, /<meta name="logboom-auth" content="none">/);
});

Deno.test("the page passes the Host check: a loopback server without a token serves no other name", async () => {
  const { call } = setup();
  const res = await call("/", { headers: HTML }, "evil.example:8081");
  assert.equal(res.status, 403);
  await res.body?.cancel();
});

Deno.test("GET / without text/html is still the Elasticsearch probe", async () => {
  const { call } = setup();
  const res = await call("/", { headers: { accept: "application/json" } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-security-policy"), null);
  assert.ok("version" in await res.json());
});

Deno.test("GET /api/v1/rules answers the running transforms section", async () => {
  const transforms = { app: { sources: ["app*"], steps: [{ type: "parse", format: "json" }] } };
  const { call } = setup("", () => ({ transforms }));
  assert.deepEqual(await (await call("/api/v1/rules")).json(), { transforms });
  const none = setup("", () => ({}));
  assert.deepEqual(await (await none.call("/api/v1/rules")).json(), { transforms: null });
});

Deno.test("page files are gzipped for a browser that accepts it, each encoding with its own tag", async () => {
  const { call } = setup();
  const plain = await call("/ui/vendor/uPlot.js");
  const text = await plain.text();
  const zipped = await call("/ui/vendor/uPlot.js", { headers: { "accept-encoding": "gzip, br" } });
  assert.equal(zipped.headers.get("content-encoding"), "gzip");
  assert.equal(zipped.headers.get("vary"), "accept-encoding");
  assert.notEqual(zipped.headers.get("etag"), plain.headers.get("etag"));
  const bytes = new Uint8Array(await zipped.arrayBuffer());
  assert.ok(bytes.length < text.length / 2);
  const unzipped = await new Response(
    new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")),
  ).text();
  assert.equal(unzipped, text);
  const again = await call("/ui/vendor/uPlot.js", {
    headers: { "accept-encoding": "gzip", "if-none-match": zipped.headers.get("etag")! },
  });
  assert.equal(again.status, 304);
  // A small file goes as it is.
  const icon = await call("/ui/icon.svg", { headers: { "accept-encoding": "gzip" } });
  assert.equal(icon.headers.get("content-encoding"), null);
  await icon.body?.cancel();
});
