import assert from "node:assert/strict";
import { join } from "node:path";
import type { Batch } from "../pipeline/batch.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import type { Sink } from "../pipeline/sink.ts";
import { FileSink } from "../store/file_sink.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { ConnectionGate } from "../net/accept.ts";
import { Deadlines } from "../net/deadlines.ts";
import { HttpError } from "../net/http_error.ts";
import { HttpServer } from "../net/http_server.ts";
import { until } from "../../tests/_http.ts";
import { HttpIngest, readBody } from "./http_ingest.ts";

const decoder = new TextDecoder();
const peer = { hostname: "10.1.2.3" };

/** Keeps copies of what it is given; `flush` waits for `release()` when held. */
class MemorySink extends TestSink {
  readonly name = "memory";
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
  override async flush(): Promise<void> {
    await this.#held;
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

/** Counts what it is given and keeps its marks, without keeping the bytes. */
class CountingSink extends TestSink {
  readonly name = "counting";
  batches = 0;
  lines = 0;
  bytes = 0;
  readonly marks: Batch["mark"][] = [];
  /** Called on each write: the body is all in memory by then. */
  onWrite = () => {};
  write(batch: Batch): boolean {
    this.onWrite();
    this.batches++;
    this.lines += batch.lines;
    this.bytes += batch.data.length;
    this.marks.push(batch.mark);
    return true;
  }
}

const ndjson = { "content-type": "application/x-ndjson" };

Deno.test("HttpIngest keeps memory near the body's size for 40,000 distinct sources", async () => {
  const sink = new CountingSink();
  const ingest = new HttpIngest(sink);
  const records = 40_000;
  let body = "";
  for (let i = 0; i < records; i++) {
    body += JSON.stringify({ line: `line ${i}`, source: `s${i}` }) + "\n";
  }
  const before = Deno.memoryUsage().rss;
  let peak = before;
  // Ingestion yields every few milliseconds, so the sampler sees its peak.
  const sample = () => peak = Math.max(peak, Deno.memoryUsage().rss);
  const sampler = setInterval(sample, 1);
  sink.onWrite = () => sink.batches % 1000 === 0 && sample();
  try {
    const res = await ingest.handle(post(body, ndjson), peer);
    assert.deepEqual(await answer(res), [200, { accepted: records, duplicate: false }]);
  } finally {
    clearInterval(sampler);
  }
  assert.equal(sink.batches, records);
  assert.equal(sink.lines, records);
  // One 64 KiB buffer per source took 3 GB here; a generous bound, far below that.
  const grownMiB = (peak - before) / 1024 / 1024;
  assert.ok(grownMiB < 256, `memory grew by ${grownMiB.toFixed(0)} MiB for a 1.4 MB body`);
});

Deno.test("HttpIngest parses one 15 MiB record and stores it in -maxLine pieces", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink, { maxBody: 32 * 1024 * 1024, maxLine: 1024 * 1024 });
  const line = "abcdefghijklmnop".repeat(15 * 1024 * 1024 / 16) + "\u00e9tail";
  const res = await ingest.handle(
    post(JSON.stringify({ line, source: "big" }) + "\n", ndjson),
    peer,
  );
  assert.deepEqual(await answer(res), [200, { accepted: 16, duplicate: false }]);
  assert.deepEqual(new Set(sink.stored.map((batch) => batch.source)), new Set(["big"]));
  const pieces = sink.stored.map((batch) => batch.text).join("").split("\n").slice(0, -1);
  assert.equal(pieces.length, 16);
  assert.equal(new TextEncoder().encode(pieces[0]).length, 1024 * 1024);
  assert.equal(pieces.join(""), line);
});

Deno.test("HttpIngest stores nothing of a body whose later part is invalid", async () => {
  for (
    const [tail, reason] of [
      ['{"line": "broken"\n', /Record 5001 of the body is not JSON/],
      ['{"line": 42}\n', /Record 5001 of the body has no "line" string/],
      [new Uint8Array([0x7b, 0xff, 0x7d, 10]), /Record 5001 of the body is not valid UTF-8/],
    ] as const
  ) {
    const sink = new MemorySink();
    const ingest = new HttpIngest(sink);
    let head = "";
    for (let i = 0; i < 5000; i++) {
      head += JSON.stringify({ line: `l${i}`, source: `s${i % 700}` }) + "\n";
    }
    const body = new Blob([head, tail]);
    const [status, json] = await answer(await ingest.handle(post(body, ndjson), peer));
    assert.equal(status, 400);
    assert.match((json as { error: string }).error, reason);
    assert.equal(sink.stored.length, 0);
  }
});

Deno.test("HttpIngest gives each part of a stream batch its mark, and resends only what a crash left unstored", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // What a run that crashed between the two files of this batch left: 1 of part 0's 2 lines.
    await Deno.writeTextFile(
      join(dir, "streams.jsonl"),
      JSON.stringify({ s: "s", o: 60, n: 2, k: 0, l: 1, t: 2 }) + "\n",
    );
    const marks = await StreamMarks.open(dir);
    const sink = new MemorySink();
    const counting = new CountingSink();
    const ingest = new HttpIngest(sink, { marks });
    const body = ["a1", "b1", "a2"].map((line) => JSON.stringify({ line, source: line[0] })).join(
      "\n",
    );
    const headers = { ...ndjson, "x-stream-id": "s", "x-stream-offset": "60" };
    assert.deepEqual(
      await answer(await ingest.handle(post(body, headers), peer)),
      [200, { accepted: 3, duplicate: false }],
    );
    assert.deepEqual(sink.stored.map((b) => [b.source, b.text]), [["a", "a2\n"], ["b", "b1\n"]]);
    assert.equal(marks.get("s"), 60);
    const plain = new HttpIngest(counting, { marks });
    await plain.handle(post(body, { ...headers, "x-stream-offset": "90" }), peer);
    assert.deepEqual(counting.marks, [
      { stream: "s", offset: 90, part: 0, parts: 2, total: 2, skipped: 0 },
      { stream: "s", offset: 90, part: 1, parts: 2, total: 1, skipped: 0 },
    ]);
    await marks.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Turns that are always due: every place where ingestion would let others run pauses. */
function everyTurn() {
  const turns = {
    pauses: 0,
    due: () => true,
    pause: () => {
      turns.pauses++;
      return Promise.resolve();
    },
  };
  return turns;
}

Deno.test("HttpIngest pauses between batches and while it gathers a group from many records", async () => {
  const turns = everyTurn();
  const sink = new MemorySink();
  const pausesAtWrite: number[] = [];
  const write = sink.write.bind(sink);
  sink.write = (batch) => {
    pausesAtWrite.push(turns.pauses);
    return write(batch);
  };
  const ingest = new HttpIngest(sink, { turns });
  // Two sources, interleaved: each group is 10,000 runs of the arena, gathered into one batch.
  const records = 20_000;
  let body = "";
  const expected: Record<string, string> = { a: "", b: "" };
  for (let i = 0; i < records; i++) {
    const source = i % 2 === 0 ? "a" : "b";
    body += JSON.stringify({ line: `line ${i}`, source }) + "\n";
    expected[source] += `line ${i}\n`;
  }
  const res = await ingest.handle(post(body, ndjson), peer);
  assert.deepEqual(await answer(res), [200, { accepted: records, duplicate: false }]);
  assert.deepEqual(sink.stored.map((batch) => [batch.source, batch.text]), [
    ["a", expected.a],
    ["b", expected.b],
  ]);
  // Before this, the batches of a body were built and written in one go: 10,000 copies, no turn.
  const between = pausesAtWrite[1] - pausesAtWrite[0];
  assert.ok(between >= 10_000 / 64, `${between} pauses while 10,000 runs were gathered`);
});

Deno.test("HttpIngest writes a large body in batches of at most 1 MiB, with a pause between them", async () => {
  const turns = everyTurn();
  const sink = new MemorySink();
  const batches: { bytes: number; pauses: number }[] = [];
  const write = sink.write.bind(sink);
  sink.write = (batch) => {
    batches.push({ bytes: batch.data.length, pauses: turns.pauses });
    return write(batch);
  };
  const ingest = new HttpIngest(sink, { turns });
  const line = "x".repeat(99) + "\n";
  const body = line.repeat(5 * 1024 * 1024 / line.length);
  for (const headers of [{}, { "content-encoding": "gzip" }] as Record<string, string>[]) {
    sink.stored.length = 0;
    batches.length = 0;
    const sent = "content-encoding" in headers
      ? new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"))
      : body;
    const res = await ingest.handle(post(sent, headers), peer);
    assert.deepEqual(await answer(res), [200, { accepted: body.length / 100, duplicate: false }]);
    assert.equal(sink.stored.map((batch) => batch.text).join(""), body);
    assert.ok(batches.length >= 5, `${batches.length} batches`);
    for (const [i, { bytes, pauses }] of batches.entries()) {
      assert.ok(bytes <= 1024 * 1024, `a batch of ${bytes} bytes`);
      if (i > 0) assert.ok(pauses > batches[i - 1].pauses, "no pause between two batches");
    }
  }
});

Deno.test("HttpIngest marks each batch of a part with the lines before it, and a resend after a crash stores the rest once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, ".logboom");
    const path = join(dir, "{source}.log");
    const line = "y".repeat(99) + "\n";
    const body = line.repeat(3 * 1024 * 1024 / line.length);
    const total = body.length / line.length;
    const headers = { "x-stream-id": "s", "x-stream-offset": "70" };
    // The first run stores the first two batches of the body's only part, then dies.
    const marks = await StreamMarks.open(state, { sync: true });
    const files = await FileSink.open({ path, marks, fsync: "batch" });
    const seen: { mark: Batch["mark"]; lines: number }[] = [];
    let written!: () => void;
    const allWritten = new Promise<void>((resolve) => written = resolve);
    const crashing: Sink = {
      name: "crashing",
      full: false,
      write: (batch) => {
        seen.push({ mark: batch.mark, lines: batch.lines });
        return seen.length <= 2 ? files.write(batch) : true;
      },
      writable: () => Promise.resolve(),
      // Every batch was given to write; the acknowledgement never comes.
      flush: () => {
        written();
        return new Promise(() => {});
      },
      close: () => Promise.resolve(),
    };
    void new HttpIngest(crashing, { marks }).handle(post(body, headers), peer);
    await allWritten;
    await files.flush();
    assert.ok(seen.length >= 3, `${seen.length} batches`);
    // Each batch of the part says how many of its lines come before it.
    let before = 0;
    for (const { mark, lines } of seen) {
      assert.deepEqual(mark, {
        stream: "s",
        offset: 70,
        part: 0,
        parts: 1,
        total,
        skipped: before,
      });
      before += lines;
    }
    assert.equal(before, total);
    const storedLines = seen[2].mark!.skipped;
    await files.close();
    // The next run finds two batches' lines stored, and its resend stores only the rest.
    const again = await StreamMarks.open(state, { sync: true });
    assert.deepEqual([...again.stored("s", 70)!], [[0, storedLines]]);
    const sink = await FileSink.open({ path, marks: again, fsync: "batch" });
    const ingest = new HttpIngest(sink, { marks: again });
    const res = await ingest.handle(post(body, headers), peer);
    assert.deepEqual(await answer(res), [200, { accepted: total, duplicate: false }]);
    assert.equal(await Deno.readTextFile(join(dir, "http.log")), body);
    assert.equal(again.get("s"), 70);
    await sink.close();
    await again.close();
    await marks.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readBody feeds gunzip a little at a time when a body expands 1,000 times", async () => {
  const expanded = 8 * 1024 * 1024;
  const bomb = new Blob([new Uint8Array(expanded).fill(0x61)]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  const sizes: number[] = [];
  const body = readBody(post(bomb, { "content-encoding": "gzip" }), {
    maxBody: 16 * 1024 * 1024,
    gzip: true,
  });
  for await (const chunk of body) sizes.push(chunk.length);
  assert.equal(sizes.reduce((a, b) => a + b, 0), expanded);
  // One 16 KiB slice of it came out as 8 MiB in one uninterruptible step.
  assert.ok(Math.max(...sizes) <= 256 * 1024, `a piece of ${Math.max(...sizes)} bytes`);
});

Deno.test("readBody expands a body that turns into a bomb midway by at most 256 KiB a step", async () => {
  // Ordinary lines first (gunzip's input goes by at their ratio), then 16 MiB of one byte.
  let lines = "";
  for (let i = 0; i < 20_000; i++) lines += `line ${i} ${(i * 7919).toString(36)} ok\n`;
  const text = new TextEncoder().encode(lines);
  const zeros = new Uint8Array(16 * 1024 * 1024).fill(0x61);
  const gzipped = new Blob([text, zeros]).stream().pipeThrough(new CompressionStream("gzip"));
  const sizes: number[] = [];
  const body = readBody(post(gzipped, { "content-encoding": "gzip" }), {
    maxBody: 64 * 1024 * 1024,
    gzip: true,
  });
  for await (const chunk of body) sizes.push(chunk.length);
  assert.equal(sizes.reduce((a, b) => a + b, 0), text.length + zeros.length);
  // Web DecompressionStream fed 16 KiB slices at the lines' ratio: one became 16 MiB (40 ms).
  assert.ok(Math.max(...sizes) <= 256 * 1024, `a piece of ${Math.max(...sizes)} bytes`);
});

Deno.test("HttpIngest answers a body the transport gave up on with its status, stores nothing", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink);
  // What the HTTP server's body stream does when a client stops sending (-bodyTimeout).
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode("first line\nsecond"));
      } else controller.error(new HttpError(408, "The request body stopped arriving"));
    },
  });
  const res = await ingest.handle(post(body), peer);
  assert.deepEqual(await answer(res), [408, { error: "The request body stopped arriving" }]);
  assert.deepEqual(sink.stored, []);
});

Deno.test("HttpIngest reads plain text from logboom's HTTP server straight into its framer: 413, 408, nothing stored on error", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink, { maxBody: 64 });
  const clock = { now: 0 };
  const deadlines = new Deadlines({ now: () => clock.now, sweepMs: 60_000 });
  const gate = new ConnectionGate(10);
  const streamUsed: boolean[] = [];
  const server = HttpServer.listen(
    { hostname: "127.0.0.1", port: 0, gate, deadlines, bodyMs: 2000 },
    async (req, from) => {
      const res = await ingest.handle(req, from);
      streamUsed.push(req.bodyUsed);
      return res;
    },
  );
  const exchange = async (request: string, during?: () => Promise<void>) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await conn.write(new TextEncoder().encode(request));
    const reading = (async () => {
      let text = "";
      const buf = new Uint8Array(4096);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf).catch(() => null)) {
        text += decoder.decode(buf.subarray(0, n));
        if (/\r\n\r\n[^\n]*\n/.test(text)) break;
      }
      return text;
    })();
    const [text] = await Promise.all([reading, during?.()]);
    conn.close();
    return [Number(text.split(" ")[1]), text.slice(text.indexOf("\r\n\r\n") + 4)] as const;
  };
  const head = "POST /api/v1/ingest?source=app HTTP/1.1\r\nHost: x\r\n";
  try {
    // Content-Length and chunked, each in several pieces.
    assert.deepEqual(
      await exchange(`${head}Content-Length: 15\r\n\r\nfirst\r\nsecond\nt`),
      [200, '{"accepted":3,"duplicate":false}\n'],
    );
    assert.deepEqual(
      await exchange(
        `${head}Transfer-Encoding: chunked\r\n\r\n4\r\nchun\r\n6\r\nked\nab\r\n0\r\n\r\n`,
      ),
      [200, '{"accepted":2,"duplicate":false}\n'],
    );
    assert.deepEqual(streamUsed, [false, false], "the body stream was never read");
    assert.deepEqual(sink.stored.map((s) => s.text), ["first\nsecond\nt\n", "chunked\nab\n"]);
    // Over -maxBody in chunks (no Content-Length to refuse at once): 413, nothing stored.
    const big = "x".repeat(40) + "\n";
    const [status] = await exchange(
      `${head}Transfer-Encoding: chunked\r\n\r\n29\r\n${big}\r\n29\r\n${big}\r\n0\r\n\r\n`,
    );
    assert.equal(status, 413);
    // A body that stops arriving: given up at the body timeout (the connection closes, so the
    // handler's 408 is only counted), nothing stored.
    const [late, answered] = await exchange(
      `${head}Content-Length: 60\r\n\r\nwhole line\npart`,
      async () => {
        for (let i = 0; i < 200 && gate.stats.timedOut.body === undefined; i++) {
          clock.now += 2001;
          deadlines.sweep();
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      },
    );
    assert.deepEqual([late, answered], [NaN, ""]);
    assert.deepEqual(sink.stored.map((s) => s.text), ["first\nsecond\nt\n", "chunked\nab\n"]);
    await until(() => ingest.stats.refused[408] === 1, () => JSON.stringify(ingest.stats.refused));
    assert.deepEqual(ingest.stats.refused, { 408: 1, 413: 1 });
  } finally {
    await server.shutdown();
    deadlines.close();
  }
});
