import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { HttpIngest } from "./http_ingest.ts";

const decoder = new TextDecoder();
const peer = { hostname: "10.1.2.3" };

/** Keeps copies of what it is given; `flush` waits for `release()` when held. */
class MemorySink implements Sink {
  readonly name = "memory";
  full = false;
  readonly stored: { text: string; lines: number; source: string; host: string }[] = [];
  #held: Promise<void> | undefined;
  #release: () => void = () => {};
  write(batch: Batch): boolean {
    const { source, host } = batch.meta;
    this.stored.push({ text: decoder.decode(batch.data), lines: batch.lines, source, host });
    return true;
  }
  hold(): void {
    this.#held = new Promise((resolve) => this.#release = resolve);
  }
  release(): void {
    this.#release();
    this.#held = undefined;
  }
  writable(): Promise<void> {
    return Promise.resolve();
  }
  async flush(): Promise<void> {
    await this.#held;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function post(body: BodyInit | null, headers: Record<string, string> = {}, query = ""): Request {
  return new Request(`http://localhost/api/v1/ingest${query}`, { method: "POST", body, headers });
}

async function answer(res: Response): Promise<[number, unknown]> {
  return [res.status, await res.json()];
}

Deno.test("HttpIngest frames text like TCP and answers once the sink flushed", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink, { maxLine: 4 });
  sink.hold();
  const pending = ingest.handle(post("ab\r\n\n  \nabcdefg\nlast"), peer);
  let settled = false;
  pending.then(() => settled = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(settled, false, "answered before the sink acknowledged");
  sink.release();
  assert.deepEqual(await answer(await pending), [200, { accepted: 4, duplicate: false }]);
  assert.deepEqual(sink.stored, [
    { text: "ab\nabcd\nefg\nlast\n", lines: 4, source: "http", host: "10.1.2.3" },
  ]);
});

Deno.test("HttpIngest groups NDJSON records by source and host", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink);
  const body = [
    { line: "a", source: "web" },
    { line: "b" },
    { line: "c", source: "web", host: "h1" },
    { line: "d", source: "web" },
  ].map((r) => JSON.stringify(r)).join("\n");
  const res = await ingest.handle(
    post(body, { "content-type": "application/x-ndjson; charset=utf-8" }, "?source=api"),
    peer,
  );
  assert.deepEqual(await answer(res), [200, { accepted: 4, duplicate: false }]);
  assert.deepEqual(sink.stored.map((b) => [b.source, b.host, b.text]), [
    ["web", "10.1.2.3", "a\nd\n"],
    ["api", "10.1.2.3", "b\n"],
    ["web", "h1", "c\n"],
  ]);
});

Deno.test("HttpIngest refuses stream batches at or below the mark, one resend at a time", async () => {
  const sink = new MemorySink();
  const marks = StreamMarks.memory();
  const ingest = new HttpIngest(sink, { marks });
  const headers = (offset: number) => ({ "x-stream-id": "s", "x-stream-offset": String(offset) });
  sink.hold();
  const first = ingest.handle(post("one\n", headers(4)), peer);
  const resend = ingest.handle(post("one\n", headers(4)), peer);
  await new Promise((resolve) => setTimeout(resolve, 0));
  sink.release();
  assert.deepEqual(await answer(await first), [200, { accepted: 1, duplicate: false }]);
  assert.deepEqual(await answer(await resend), [200, { accepted: 0, duplicate: true }]);
  assert.equal(sink.stored.length, 1);
  assert.equal(marks.get("s"), 4);
  assert.equal(ingest.stats.duplicates, 1);
});

Deno.test("HttpIngest bounds the body compressed and expanded, and says 503 when full", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink, { maxBody: 64 * 1024 });
  // gzip shrinks a run of one byte about 1,000 times: 16 MiB fit in about 16 KiB.
  const zeros = new Uint8Array(16 * 1024 * 1024).fill(0x61);
  const bomb = new Uint8Array(
    await new Response(new Blob([zeros]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  assert.ok(bomb.length < 64 * 1024);
  const [status] = await answer(
    await ingest.handle(post(bomb, { "content-encoding": "gzip" }), peer),
  );
  assert.equal(status, 413);
  assert.equal((await ingest.handle(post("x".repeat(64 * 1024 + 1)), peer)).status, 413);
  sink.full = true;
  const full = await ingest.handle(post("x\n"), peer);
  assert.equal(full.status, 503);
  assert.equal(full.headers.get("retry-after"), "1");
  await full.body?.cancel();
  sink.full = false;
  ingest.close();
  const closed = await ingest.handle(post("x\n"), peer);
  assert.equal(closed.status, 503);
  await closed.body?.cancel();
  assert.equal(sink.stored.length, 0);
  assert.deepEqual(ingest.stats.refused, { 413: 2, 503: 2 });
});
