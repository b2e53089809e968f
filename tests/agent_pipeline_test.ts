/**
 * Two batches of a stream in flight: the server stores a batch sent with `X-Stream-Start` only
 * right after the one before it (409 and nothing stored otherwise), and the agent's shipper,
 * however the first batch fails, never loses or doubles a line.
 */
import assert from "node:assert/strict";
import type { Batch } from "../src/pipeline/batch.ts";
import { TestSink } from "../src/pipeline/_test_sink.ts";
import { StreamMarks } from "../src/store/stream_marks.ts";
import { HttpIngest } from "../src/ingest/http_ingest.ts";
import type { RetryConfig } from "../src/agent/config.ts";
import { type ShipBatch, Shipper } from "../src/agent/shipper.ts";
import { until } from "../src/agent/_test_target.ts";
import { freePort } from "./_server.ts";
import { CheckpointStore, type StreamRecord } from "../src/files/checkpoint.ts";
import { type DeliveredBatch, type StreamTarget, Tailer } from "../src/files/tailer.ts";
import { ByteBudget } from "../src/pipeline/byte_budget.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const peer = { hostname: "127.0.0.1" };

const RETRY: RetryConfig = {
  initialMs: 5,
  maxMs: 50,
  timeoutMs: 5000,
  failoverAfter: 2,
  failbackMs: 300,
  resendWindowMs: 60_000,
};

/** Keeps the text of what it is given. */
class MemorySink extends TestSink {
  readonly name = "memory";
  text = "";
  write(batch: Batch): boolean {
    this.text += decoder.decode(batch.data);
    return true;
  }
}

function post(body: string, headers: Record<string, string>): Request {
  return new Request("http://localhost/api/v1/ingest", { method: "POST", body, headers });
}

function stream(offset: number, start?: number): Record<string, string> {
  const headers: Record<string, string> = { "x-stream-id": "s", "x-stream-offset": String(offset) };
  if (start !== undefined) headers["x-stream-start"] = String(start);
  return headers;
}

Deno.test("the server refuses a batch that does not begin at the stream's mark: 409, nothing stored", async () => {
  const sink = new MemorySink();
  const marks = StreamMarks.memory();
  // No wait for the batch before: a gap is refused at once.
  const ingest = new HttpIngest(sink, { marks, inOrderWaitMs: 0 });
  // A stream with nothing stored takes a batch sent ahead only if it begins at 0.
  const ahead = await ingest.handle(post("b\n", stream(4, 2)), peer);
  assert.equal(ahead.status, 409);
  assert.match((await ahead.json()).error, /nothing stored here.*begins at 2/);
  assert.equal(ahead.headers.get("x-stream-mark"), "-1");
  assert.equal(sink.text, "");
  assert.equal(marks.get("s"), undefined);
  const first = await ingest.handle(post("a\n", stream(2, 0)), peer);
  assert.deepEqual(await first.json(), { accepted: 1, duplicate: false });
  assert.equal(first.headers.get("x-stream-mark"), "2");
  // A gap: the batch from 4 to 6 comes before the one from 2 to 4.
  const gap = await ingest.handle(post("c\n", stream(6, 4)), peer);
  assert.equal(gap.status, 409);
  assert.match((await gap.json()).error, /stored to 2.*begins at 4/);
  assert.equal(gap.headers.get("x-stream-mark"), "2");
  assert.equal(sink.text, "a\n");
  assert.equal(marks.get("s"), 2);
  assert.deepEqual(await (await ingest.handle(post("b\n", stream(4, 2)), peer)).json(), {
    accepted: 1,
    duplicate: false,
  });
  assert.deepEqual(await (await ingest.handle(post("c\n", stream(6, 4)), peer)).json(), {
    accepted: 1,
    duplicate: false,
  });
  // Sent again: a duplicate, whatever its start says.
  assert.deepEqual(await (await ingest.handle(post("b\n", stream(4, 0)), peer)).json(), {
    accepted: 0,
    duplicate: true,
  });
  assert.equal(sink.text, "a\nb\nc\n");
  assert.deepEqual(ingest.stats.refused, { 409: 2 });
  const bad = await ingest.handle(post("x\n", stream(6, 7)), peer);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /X-Stream-Start/);
});

Deno.test("the server stores batches sent ahead in the order they came, whichever body ends first", async () => {
  const sink = new MemorySink();
  const marks = StreamMarks.memory();
  const ingest = new HttpIngest(sink, { marks });
  // The first batch's body arrives slowly: the second, sent after it, is read whole first.
  let finish!: () => void;
  const slow = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("one\n"));
      finish = () => {
        controller.enqueue(encoder.encode("two\n"));
        controller.close();
      };
    },
  });
  const first = ingest.handle(
    new Request("http://localhost/api/v1/ingest", {
      method: "POST",
      body: slow,
      headers: stream(8, 0),
    }),
    peer,
  );
  const second = ingest.handle(post("three\n", stream(14, 8)), peer);
  let secondDone = false;
  second.then(() => secondDone = true);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(secondDone, false, "the second batch was stored before the first");
  finish();
  assert.deepEqual(await (await first).json(), { accepted: 2, duplicate: false });
  assert.deepEqual(await (await second).json(), { accepted: 1, duplicate: false });
  assert.equal(sink.text, "one\ntwo\nthree\n");
  assert.equal(marks.get("s"), 14);
});

function batch(offset: number, start: number, text: string): ShipBatch {
  const body = encoder.encode(text);
  return {
    source: "s",
    stream: "s",
    offset,
    start,
    body,
    lines: text.split("\n").length - 1,
    bytes: body.length,
    server: -1,
  };
}

/** A logboom ingest behind `front`, which sees each request first and may answer it itself. */
function serve(
  ingest: HttpIngest,
  front: (req: Request) => Promise<Response | undefined>,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: freePort(), onListen: () => {} },
    async (req) => (await front(req)) ?? await ingest.handle(req, peer),
  );
}

Deno.test("the server keeps a batch that came before the one before it until that one is stored", async () => {
  const sink = new MemorySink();
  const marks = StreamMarks.memory();
  const ingest = new HttpIngest(sink, { marks });
  const second = ingest.handle(post("two\n", stream(8, 4)), peer);
  let secondDone = false;
  second.then(() => secondDone = true);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(secondDone, false, "the second batch was answered before the first came");
  assert.deepEqual(await (await ingest.handle(post("one\n", stream(4, 0)), peer)).json(), {
    accepted: 1,
    duplicate: false,
  });
  assert.deepEqual(await (await second).json(), { accepted: 1, duplicate: false });
  assert.equal(sink.text, "one\ntwo\n");
  assert.equal(marks.get("s"), 8);
  assert.deepEqual(ingest.stats.refused, {});
});

Deno.test("two batches in flight, the first failing: every line stored once, in order", async () => {
  const sink = new MemorySink();
  // The second batch is refused (409) rather than kept until the first is resent.
  const ingest = new HttpIngest(sink, { marks: StreamMarks.memory(), inOrderWaitMs: 0 });
  let secondAnswered!: () => void;
  const secondDone = new Promise<void>((resolve) => secondAnswered = resolve);
  let failed = false;
  const arrivals: string[] = [];
  const http = serve(ingest, async (req) => {
    const offset = req.headers.get("x-stream-offset")!;
    arrivals.push(`${offset}${req.headers.has("x-stream-start") ? "+start" : ""}`);
    if (offset === "12" && !failed) {
      // The first batch in flight fails, but only once the second was answered.
      failed = true;
      await secondDone;
      await req.body?.cancel();
      return new Response("boom", { status: 500 });
    }
    if (offset === "18" && req.headers.has("x-stream-start")) {
      const res = await ingest.handle(req, peer);
      secondAnswered();
      return res;
    }
    return undefined;
  });
  const shipper = new Shipper({
    servers: [`http://127.0.0.1:${http.addr.port}`],
    token: "",
    retry: RETRY,
  });
  const signal = new AbortController().signal;
  try {
    // The first batch goes alone: the server shows it checks X-Stream-Start.
    await shipper.send(batch(6, 0, "zero\n"), { signal });
    const first = shipper.send(batch(12, 6, "one\n"), { signal, previous: Promise.resolve() })
      .then(() => {});
    const second = shipper.send(batch(18, 12, "two\n"), { signal, previous: first });
    await Promise.all([first, second]);
    assert.equal(sink.text, "zero\none\ntwo\n");
    // The two in flight may reach the server in either order; the 409 sends the second again.
    assert.deepEqual(arrivals.slice(0, 3).sort(), ["12+start", "18+start", "6"]);
    assert.deepEqual(arrivals.slice(3), ["12+start", "18"]);
    assert.equal(shipper.stats.outOfOrder, 1);
    assert.deepEqual(ingest.stats.refused, { 409: 1 });
  } finally {
    shipper.close();
    await http.shutdown();
  }
});

Deno.test("a server that does not check X-Stream-Start gets a stream's batches one at a time", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink, { marks: StreamMarks.memory() });
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const arrivals: string[] = [];
  // An older server: it knows no X-Stream-Start, and answers without X-Stream-Mark.
  const http = serve(ingest, async (req) => {
    const offset = req.headers.get("x-stream-offset")!;
    arrivals.push(offset);
    const headers = new Headers(req.headers);
    headers.delete("x-stream-start");
    if (offset === "6") await held;
    const res = await ingest.handle(
      new Request(req.url, { method: "POST", headers, body: await req.arrayBuffer() }),
      peer,
    );
    return new Response(res.body, { status: res.status });
  });
  const shipper = new Shipper({
    servers: [`http://127.0.0.1:${http.addr.port}`],
    token: "",
    retry: RETRY,
  });
  const signal = new AbortController().signal;
  try {
    const first = shipper.send(batch(6, 0, "zero\n"), { signal }).then(() => {});
    const second = shipper.send(batch(12, 6, "one\n"), { signal, previous: first });
    await until(() => arrivals.length > 0, () => "the first batch never came");
    // Sent at once, the second batch would be stored first and the first taken for a duplicate.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(arrivals, ["6"]);
    release();
    await Promise.all([first, second]);
    assert.equal(sink.text, "zero\none\n");
    assert.deepEqual(arrivals, ["6", "12"]);
  } finally {
    shipper.close();
    await http.shutdown();
  }
});

Deno.test("two batches in flight, the first failing at once: the server keeps the second, no 409", async () => {
  const sink = new MemorySink();
  const ingest = new HttpIngest(sink, { marks: StreamMarks.memory() });
  let failed = false;
  const http = serve(ingest, async (req) => {
    if (req.headers.get("x-stream-offset") === "12" && !failed) {
      failed = true;
      await req.body?.cancel();
      return new Response("boom", { status: 500 });
    }
    return undefined;
  });
  const shipper = new Shipper({
    servers: [`http://127.0.0.1:${http.addr.port}`],
    token: "",
    retry: RETRY,
  });
  const signal = new AbortController().signal;
  try {
    await shipper.send(batch(6, 0, "zero\n"), { signal });
    const first = shipper.send(batch(12, 6, "one\n"), { signal, previous: Promise.resolve() })
      .then(() => {});
    const second = shipper.send(batch(18, 12, "two\n"), { signal, previous: first });
    await Promise.all([first, second]);
    assert.equal(sink.text, "zero\none\ntwo\n");
    assert.equal(failed, true);
    assert.equal(shipper.stats.outOfOrder, 0);
    assert.deepEqual(ingest.stats.refused, {});
  } finally {
    shipper.close();
    await http.shutdown();
  }
});

/**
 * A target taking two batches of a stream at once that answers the second before the first (as
 * no server would): the tailer's checkpoint must still wait for the first.
 */
class EarlyTarget implements StreamTarget {
  readonly inFlight = 2;
  readonly held: { batch: DeliveredBatch; release: () => void }[] = [];
  readonly answered: number[] = [];
  prepare(data: Uint8Array): Promise<unknown> {
    return Promise.resolve(data.slice());
  }
  async deliver(_payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void> {
    if (this.held.length === 0) {
      // The first batch is held until released (or the task stops).
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      this.held.push({ batch, release: resolve });
      await promise;
    }
    this.answered.push(batch.offset);
  }
}

Deno.test("with two batches in flight, the checkpoint advances only in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-pipeline-" });
  try {
    const path = `${dir}/a.log`;
    const text = "x".repeat(99) + "\n";
    await Deno.writeTextFile(path, text.repeat(300));
    const file = await Deno.open(path);
    const info = await file.stat();
    const record: StreamRecord = {
      stream: "a:1",
      path,
      dev: info.dev,
      ino: info.ino!,
      head: "",
      headLen: 0,
      offset: 0,
      tail: "",
      size: 0,
      mtime: 0,
      planned: [],
      seen: 0,
    };
    const target = new EarlyTarget();
    const store = CheckpointStore.memory();
    const tailer = new Tailer(record, file, {
      input: "app",
      target,
      store,
      budget: new ByteBudget(1024 * 1024),
      batchBytes: 1000,
      batchWaitMs: 10,
      maxLine: 4096,
      rotateWaitMs: 1000,
      closeIdleMs: 60_000,
    });
    try {
      // The first batch is held; the second is answered at once.
      await until(() => target.answered.length === 1, () => "the second batch was not sent");
      assert.equal(target.held.length, 1);
      const first = target.held[0].batch;
      assert.equal(first.previous, undefined);
      assert.equal(target.answered[0] > first.offset, true);
      assert.equal(record.offset, 0, "the checkpoint passed a batch not acknowledged");
      // Journaled: the two in flight, and the third, sealed and waiting for the first.
      assert.equal(record.planned.length, 3);
      assert.deepEqual(record.planned.slice(0, 2).map((plan) => plan.end), [
        first.offset,
        target.answered[0],
      ]);
      // Waiting for the first batch's answer (two in flight): nothing more is sent meanwhile.
      await until(() => tailer.stalled, () => "the tailer read on past two batches in flight");
      assert.equal(target.answered.length, 1);
      assert.equal(record.offset, 0);
      target.held[0].release();
      await until(() => record.offset === 30_000, () => `offset ${record.offset}`);
      assert.equal(record.planned.length, 0);
      assert.equal(target.answered[1], first.offset);
      const rest = target.answered.slice(1);
      assert.deepEqual(rest, [...rest].sort((a, b) => a - b));
    } finally {
      await tailer.stop(0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
