import assert from "node:assert/strict";
import { join } from "node:path";
import { until } from "../../tests/_http.ts";
import { LiveHub } from "../live/hub.ts";
import type { Batch } from "../pipeline/batch.ts";
import { Router } from "../pipeline/router.ts";
import { searchGauge } from "../search/search.ts";
import { FileSink, type FileSinkConfig } from "../store/file_sink.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { searchRoute } from "./search.ts";
import { Api } from "./server.ts";
import { SourceStats } from "./source_stats.ts";

const encoder = new TextEncoder();
const T0 = Date.parse("2026-11-20T00:00:00Z");
const HOUR = 3_600_000;

function batch(lines: string[], source: string, receivedAt: number): Batch {
  return {
    data: encoder.encode(lines.map((l) => l + "\n").join("")),
    lines: lines.length,
    meta: { source, host: "10.0.0.1", input: "test" },
    receivedAt,
  };
}

/** A store in a temporary folder: `logs/{source}.log`, indexed, written through a file sink. */
async function store(
  options: Partial<FileSinkConfig> = {},
): Promise<{ dir: string; sink: FileSink; layout: { outputs: string[]; stateDir: string } }> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-search-" });
  const path = join(dir, "logs/{source}.log");
  const stateDir = join(dir, "logs/.logboom");
  let now = T0;
  const sink = await FileSink.open({ path, index: { stateDir }, clock: () => now, ...options });
  (store as unknown as { setNow: (t: number) => void }).setNow = (t) => now = t;
  return { dir, sink, layout: { outputs: [path], stateDir } };
}

function setNow(t: number): void {
  (store as unknown as { setNow: (t: number) => void }).setNow(t);
}

async function writeAt(sink: FileSink, b: Batch): Promise<void> {
  setNow(b.receivedAt);
  sink.write(b);
  await sink.flush();
}

async function ask(
  layout: { outputs: string[]; stateDir: string },
  route: string,
  query: string,
): Promise<{ status: number; lines: Record<string, unknown>[]; text: string }> {
  const res = await searchRoute(new Request(`http://x${route}?${query}`), route, layout);
  const text = await res.text();
  const lines = res.headers.get("content-type")?.includes("ndjson")
    ? text.trimEnd().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
    : [JSON.parse(text)];
  return { status: res.status, lines, text };
}

/** Three hours of web lines (rotated every hour, older ones gzipped) and one of api lines. */
async function hoursOfLines() {
  const s = await store({ rotateEveryMs: HOUR, compress: true });
  for (let h = 0; h < 3; h++) {
    for (let m = 0; m < 60; m += 10) {
      const at = T0 + h * HOUR + m * 60_000;
      const lines = [`INFO web h${h} m${m} ok`, `ERROR web h${h} m${m} failed timeout`];
      await writeAt(s.sink, batch(lines, "web", at));
    }
  }
  await writeAt(s.sink, batch(["WARN api slow h2 timeout"], "api", T0 + 2 * HOUR + 1000));
  await s.sink.tidied();
  await s.sink.close();
  return s;
}

Deno.test("search finds lines across plain and gzipped files, newest first, with a done line", async () => {
  const { dir, layout } = await hoursOfLines();
  try {
    const names = [...Deno.readDirSync(join(dir, "logs"))].map((e) => e.name).sort();
    assert.ok(names.some((n) => n.endsWith(".log.gz")), names.join(" "));
    const { status, lines } = await ask(layout, "/api/v1/search", "q=failed&source=web");
    assert.equal(status, 200);
    const hits = lines.slice(0, -1);
    const done = lines.at(-1)!;
    assert.equal(hits.length, 18);
    assert.deepEqual(hits.map((h) => h.line).slice(0, 2), [
      "ERROR web h2 m50 failed timeout",
      "ERROR web h2 m40 failed timeout",
    ]);
    assert.equal(hits.at(-1)!.line, "ERROR web h0 m0 failed timeout");
    assert.ok(hits.some((h) => String(h.file).endsWith(".gz")), "found in gzipped files too");
    assert.equal(hits[0].source, "web");
    assert.equal(hits[0].level, "error");
    assert.equal(hits[0].ts, new Date(T0 + 2 * HOUR + 50 * 60_000).toISOString());
    assert.deepEqual(
      { done: done.done, matched: done.matched, truncated: done.truncated },
      { done: true, matched: 18, truncated: false },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("search filters: source glob, level, regex, time range; limit truncates", async () => {
  const { dir, layout } = await hoursOfLines();
  try {
    const lines = async (query: string) =>
      (await ask(layout, "/api/v1/search", query)).lines.filter((l) => !l.done).map((l) => l.line);
    assert.deepEqual(await lines("q=timeout&source=a*"), ["WARN api slow h2 timeout"]);
    assert.equal((await lines("level=warn")).length, 19, "warn and error");
    assert.deepEqual(await lines("level=warn&source=api"), ["WARN api slow h2 timeout"]);
    assert.deepEqual(await lines("regex=h1%20m[23]0%20ok"), [
      "INFO web h1 m30 ok",
      "INFO web h1 m20 ok",
    ]);
    const from = new Date(T0 + HOUR + 20 * 60_000).toISOString();
    const to = new Date(T0 + HOUR + 30 * 60_000).toISOString();
    assert.deepEqual(await lines(`q=ok&from=${from}&to=${to}`), [
      "INFO web h1 m30 ok",
      "INFO web h1 m20 ok",
    ]);
    const limited = await ask(layout, "/api/v1/search", "q=web&limit=3");
    assert.equal(limited.lines.length, 4);
    assert.equal(limited.lines.at(-1)!.truncated, true);
    assert.equal(limited.lines.at(-1)!.matched, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("search reads JSON-format lines: their time, source, level and fields", async () => {
  const s = await store({ format: "json" });
  const { dir, sink } = s;
  try {
    const b = (line: string, fields: Record<string, string>, level: number, at: number) => ({
      ...batch([line], "billing", at),
      levels: new Uint8Array([level]),
      fields: [fields],
    });
    sink.write(b("charge ok", { service: "billing", code: "200" }, 3, T0));
    sink.write(b("charge failed", { service: "billing", code: "500" }, 5, T0 + 1000));
    await sink.flush();
    await sink.close();
    const hits = (await ask(s.layout, "/api/v1/search", "field.code=500")).lines.slice(0, -1);
    assert.equal(hits.length, 1);
    assert.deepEqual(
      { line: hits[0].line, level: hits[0].level, source: hits[0].source, ts: hits[0].ts },
      {
        line: "charge failed",
        level: "error",
        source: "billing",
        ts: new Date(T0 + 1000).toISOString(),
      },
    );
    // The text is looked for in the message, not in the JSON around it.
    assert.equal((await ask(s.layout, "/api/v1/search", "q=billing")).lines.length, 1);
    assert.equal((await ask(s.layout, "/api/v1/search", "level=error")).lines.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("search answers 400 for a bad regex, time, limit or parameter", async () => {
  const layout = { outputs: ["/nonexistent/{source}.log"], stateDir: "/nonexistent/.logboom" };
  for (
    const [query, message] of [
      ["regex=(a", "Bad regex"],
      ["regex=(a)\\1", "Bad regex"],
      ["from=yesterday", "Cannot read the time"],
      ["from=now-2x", "Cannot read the time"],
      ["limit=0", "limit"],
      ["limit=100001", "limit"],
      ["level=loud", "Unknown level"],
      ["colour=red", "Unknown parameter"],
    ]
  ) {
    const res = await searchRoute(
      new Request(`http://x/api/v1/search?${query}`),
      "/api/v1/search",
      layout,
    );
    assert.equal(res.status, 400, query);
    assert.match((await res.json()).error, new RegExp(message), query);
  }
  const res = await searchRoute(
    new Request("http://x/api/v1/search/histogram?buckets=0"),
    "/api/v1/search/histogram",
    layout,
  );
  assert.equal(res.status, 400);
  await res.body?.cancel();
});

Deno.test("a search cancelled by its client stops reading and closes its file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-search-" });
  try {
    // 64 MiB of matching lines: far more than one read.
    await Deno.mkdir(join(dir, "logs"));
    const line = encoder.encode("match me ".repeat(10) + "\n");
    const block = new Uint8Array(line.length * 10_000);
    for (let i = 0; i < 10_000; i++) block.set(line, i * line.length);
    using file = await Deno.open(join(dir, "logs/big.log"), { write: true, create: true });
    for (let i = 0; i < 70; i++) await file.write(block);
    const layout = { outputs: [join(dir, "logs/{source}.log")], stateDir: join(dir, ".logboom") };
    const abort = new AbortController();
    const req = new Request("http://x/api/v1/search?q=match&limit=100000", {
      signal: abort.signal,
    });
    const res = await searchRoute(req, "/api/v1/search", layout);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    assert.equal(searchGauge.active, 1, "the search is running");
    abort.abort();
    await reader.cancel();
    await until(() => searchGauge.active === 0, () => "the search went on after the cancel");
    // The resource sanitizer fails this test if the search left its file open.
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("context gives a hit's neighbours, oldest first, the hit marked", async () => {
  const { dir, layout } = await hoursOfLines();
  try {
    const hit = (await ask(layout, "/api/v1/search", "q=h1%20m30%20failed")).lines[0];
    const { status, lines } = await ask(
      layout,
      "/api/v1/search/context",
      `file=${encodeURIComponent(String(hit.file))}&offset=${hit.offset}&before=2&after=1`,
    );
    assert.equal(status, 200);
    assert.deepEqual(lines.map((l) => l.line), [
      "ERROR web h1 m20 failed timeout",
      "INFO web h1 m30 ok",
      "ERROR web h1 m30 failed timeout",
      "INFO web h1 m40 ok",
    ]);
    assert.deepEqual(lines.map((l) => l.hit ?? false), [false, false, true, false]);
    const missing = await ask(layout, "/api/v1/search/context", "file=../../etc/passwd&offset=0");
    assert.equal(missing.status, 404, "only stored files are read");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("histogram counts matching lines per bucket of time", async () => {
  const { dir, layout } = await hoursOfLines();
  try {
    const from = new Date(T0).toISOString();
    const to = new Date(T0 + 3 * HOUR - 1).toISOString();
    const { status, lines } = await ask(
      layout,
      "/api/v1/search/histogram",
      `q=failed&from=${from}&to=${to}&buckets=3`,
    );
    assert.equal(status, 200);
    const h = lines[0];
    assert.equal(h.step_ms, HOUR);
    assert.deepEqual(h.counts, [6, 6, 6]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a time range skips the files and the parts of files outside it", async () => {
  const s = await store({ rotateBytes: 512 * 1024 });
  try {
    // 40 minutes of lines, a batch of ~64 KiB every minute: several files, several marks each.
    const filler = "x".repeat(100);
    for (let m = 0; m < 40; m++) {
      const lines = Array.from({ length: 600 }, (_, i) => `minute ${m} line ${i} ${filler}`);
      await writeAt(s.sink, batch(lines, "app", T0 + m * 60_000));
    }
    await s.sink.close();
    const from = new Date(T0 + 20 * 60_000).toISOString();
    const to = new Date(T0 + 20 * 60_000 + 30_000).toISOString();
    const { lines } = await ask(s.layout, "/api/v1/search", `q=line%205&from=${from}&to=${to}`);
    const done = lines.at(-1)!;
    assert.ok(lines.slice(0, -1).every((l) => String(l.line).startsWith("minute 20 ")));
    assert.equal(done.matched, 111, "lines 5, 5x and 5xx of minute 20");
    const total = Number(done.scanned_bytes) + Number(done.skipped_bytes);
    assert.ok(
      Number(done.scanned_bytes) < total / 10,
      `read ${done.scanned_bytes} of ${total} bytes for a minute of forty`,
    );
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("retention deletes the index of each file it deletes", async () => {
  const s = await store({ rotateBytes: 4096, keep: 1 });
  try {
    for (let i = 0; i < 6; i++) {
      await writeAt(s.sink, batch([`line ${i} ${"y".repeat(3000)}`], "app", T0 + i * 1000));
    }
    await s.sink.tidied();
    await s.sink.close();
    const logs = [...Deno.readDirSync(join(s.dir, "logs"))].filter((e) => e.isFile)
      .map((e) => e.name).sort();
    const indexes = [...Deno.readDirSync(join(s.layout.stateDir, "index"))].map((e) => e.name)
      .sort();
    assert.equal(logs.length, 2, logs.join(" "));
    assert.deepEqual(indexes, logs.map((n) => n + ".idx"));
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("search routes check the token and the origin like every route", async () => {
  const { dir, layout } = await hoursOfLines();
  try {
    const hub = new LiveHub();
    const sources = new SourceStats();
    const api = new Api({ token: "sekret" }, {
      router: new Router([hub, sources]),
      hub,
      sources,
      marks: StreamMarks.memory(),
      sinkMetrics: () => [],
      server: layout,
    });
    const call = (headers: Record<string, string>) =>
      api.handle(
        new Request("http://127.0.0.1:8081/api/v1/search?q=ok", { headers }),
        { hostname: "127.0.0.1" },
      );
    const refused = await call({});
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const foreign = await call({ authorization: "Bearer sekret", origin: "http://evil.example" });
    assert.equal(foreign.status, 403);
    await foreign.body?.cancel();
    const ok = await call({ authorization: "Bearer sekret" });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /"done":true/);
    await api.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
