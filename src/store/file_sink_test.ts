import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { FakeOpener } from "./_fake_files.ts";
import { FileSink } from "./file_sink.ts";

const encoder = new TextEncoder();

function batch(text: string, from: { source?: string; host?: string } = {}): Batch {
  const { source = "tcp", host = "127.0.0.1" } = from;
  return {
    data: encoder.encode(text),
    lines: text.split("\n").length - 1,
    meta: { source, host, input: "test" },
    receivedAt: Date.UTC(2026, 10, 21, 12),
  };
}

Deno.test("file sink routes each batch to its template's file, values sanitized", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "logs/{host}/{source}-{date}.log", opener });
  sink.write(batch("web line\n", { source: "web", host: "10.0.0.5" }));
  sink.write(batch("db line\n", { source: "db", host: "10.0.0.6" }));
  sink.write(batch("escape attempt\n", { source: "../../etc/passwd", host: "10.0.0.5" }));
  await sink.close();
  assert.equal(opener.disk.get("logs/10.0.0.5/web-2026-11-21.log")?.text, "web line\n");
  assert.equal(opener.disk.get("logs/10.0.0.6/db-2026-11-21.log")?.text, "db line\n");
  const escaped = [...opener.disk.keys()].filter((p) => p.includes("passwd"));
  assert.equal(escaped.length, 1);
  assert.ok(escaped[0].startsWith("logs/10.0.0.5/"), escaped[0]);
  assert.ok(!escaped[0].includes(".."), escaped[0]);
});

Deno.test("10,000 sources stay within the open-file cap, and every line lands once", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "logs/{source}.log", opener, maxOpenFiles: 100 });
  let most = 0;
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 10_000; i++) {
      sink.write(batch(`round ${round}\n`, { source: `s${i}` }));
      if (i % 50 === 49) {
        most = Math.max(most, opener.files.filter((f) => !f.closed).length);
        await sink.flush(); // written, so idle and closable
      }
    }
  }
  await sink.close();
  assert.ok(most <= 151, `${most} files open at once`);
  for (const i of [0, 4_999, 9_999]) {
    assert.equal(opener.disk.get(`logs/s${i}.log`)?.text, "round 0\nround 1\n");
  }
  assert.equal(sink.stats.linesWritten, 20_000);
});

Deno.test("file sink stores JSON lines with -format json", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "app.log", opener, format: "json" });
  sink.write(batch("hello\n", { source: "api", host: "10.1.1.1" }));
  await sink.close();
  assert.deepEqual(JSON.parse(opener.disk.get("app.log")!.text), {
    ts: "2026-11-21T12:00:00.000Z",
    source: "api",
    host: "10.1.1.1",
    line: "hello",
  });
});

Deno.test("file sink acknowledges (flush) only what every file has written", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "{source}.log", opener, fsync: "batch" });
  sink.write(batch("a\n", { source: "one" }));
  sink.write(batch("b\n", { source: "two" }));
  await sink.flush();
  assert.deepEqual(opener.disk.get("one.log")?.calls.slice(-1), ["sync"]);
  assert.deepEqual(opener.disk.get("two.log")?.calls.slice(-1), ["sync"]);
  await sink.close();
});

Deno.test("a file idle past idleMs is closed, and reopened by its next line", async () => {
  const opener = new FakeOpener();
  const sink = await FileSink.open({ path: "{source}.log", opener, idleMs: 20 });
  sink.write(batch("first\n", { source: "quiet" }));
  await sink.flush();
  const deadline = Date.now() + 5000;
  while (sink.stats.openFiles > 0) {
    assert.ok(Date.now() < deadline, "the idle file was never closed");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(opener.files[0].closed, true);
  sink.write(batch("second\n", { source: "quiet" }));
  await sink.close();
  assert.equal(opener.disk.get("quiet.log")?.text, "first\nsecond\n");
});
