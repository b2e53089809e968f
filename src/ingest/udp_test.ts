import assert from "node:assert/strict";
import { until } from "../../tests/_http.ts";
import { bindFreePort } from "../../tests/_server.ts";
import type { Batch } from "../pipeline/batch.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import { UdpInput, type UdpInputConfig } from "./udp.ts";

/** Keeps copies of what it is given; while `hold` is set it asks producers to wait. */
class Recorder extends TestSink {
  readonly name = "recorder";
  readonly batches: { text: string; lines: number; host: string; source: string }[] = [];
  #release: (() => void) | undefined;
  #room: Promise<void> | undefined;

  get lines(): string[] {
    return this.batches.flatMap((b) => b.text.split("\n").slice(0, -1));
  }

  hold(): void {
    this.#room = new Promise((resolve) => this.#release = resolve);
  }

  release(): void {
    this.#release?.();
    this.#room = undefined;
  }

  write(batch: Batch): boolean {
    const text = new TextDecoder().decode(batch.data);
    assert.equal(text.split("\n").length - 1, batch.lines, "lines counts the batch's newlines");
    this.batches.push({
      text,
      lines: batch.lines,
      host: batch.meta.host,
      source: batch.meta.source,
    });
    return this.#room === undefined;
  }

  override writable(): Promise<void> {
    return this.#room ?? Promise.resolve();
  }
}

function listen(sink: Recorder, config: Partial<UdpInputConfig> = {}): UdpInput {
  return bindFreePort((port) => UdpInput.listen({ hostname: "127.0.0.1", port, ...config }, sink));
}

function sender(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
}

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("UDP input: one or more lines per datagram, framed like TCP lines, with the sender's address", async () => {
  const sink = new Recorder();
  const input = listen(sink);
  const client = sender();
  try {
    for (const d of ["one\ntwo\n", "three", "\r\n  \n", "four\r\n", "", "five\n\nsix"]) {
      await client.send(enc(d), input.addr);
    }
    await until(() => sink.lines.length >= 6, () => JSON.stringify(sink.lines));
    assert.deepEqual(sink.lines, ["one", "two", "three", "four", "five", "six"]);
    assert.ok(sink.batches.every((b) => b.host === "127.0.0.1" && b.source === "udp"));
    const stats = input.stats;
    assert.equal(stats.datagrams, 6);
    assert.equal(stats.lines, 6);
    assert.equal(stats.empty, 2);
    assert.equal(stats.bytes, 8 + 5 + 5 + 6 + 0 + 9);
    // Under the names /metrics knows.
    const counters = input.counters();
    assert.equal(counters.datagrams, 6);
    assert.equal(counters.lines, 6);
    assert.equal(counters.empty_datagrams, 2);
  } finally {
    client.close();
    await input.close({ quietMs: 0 });
  }
});

Deno.test("UDP input: datagrams received back to back share one batch", async () => {
  const sink = new Recorder();
  const flushes: (() => void)[] = [];
  // The end of the burst is held back until the test says so.
  const input = listen(sink, { scheduleFlush: (flush) => (flushes.push(flush), () => {}) });
  const client = sender();
  try {
    for (let i = 0; i < 50; i++) await client.send(enc(`line ${i}\n`), input.addr);
    await until(() => input.stats.datagrams === 50, () => `${input.stats.datagrams} received`);
    assert.equal(sink.batches.length, 0);
    assert.equal(flushes.length, 1, "one flush is scheduled for the whole burst");
    flushes[0]();
    assert.equal(sink.batches.length, 1);
    assert.equal(sink.batches[0].lines, 50);
    assert.deepEqual(sink.lines, Array.from({ length: 50 }, (_, i) => `line ${i}`));
  } finally {
    client.close();
    await input.close({ quietMs: 0 });
  }
});

Deno.test("UDP input: a batch is written once it holds batchBytes, without waiting for the burst's end", async () => {
  const sink = new Recorder();
  const input = listen(sink, { batchBytes: 1000, scheduleFlush: () => () => {} });
  const client = sender();
  try {
    const line = "x".repeat(99) + "\n";
    for (let i = 0; i < 25; i++) await client.send(enc(line), input.addr);
    await until(() => sink.lines.length >= 20, () => `${sink.lines.length} lines`);
    assert.deepEqual(sink.batches.map((b) => b.lines), [10, 10]);
  } finally {
    client.close();
    await input.close({ quietMs: 0 });
  }
  // Closing writes the rest.
  assert.deepEqual(sink.batches.map((b) => b.lines), [10, 10, 5]);
});

Deno.test("UDP input: a full sink stops the reading, the kernel's drops are counted, the rest is stored", async () => {
  const sink = new Recorder();
  const input = listen(sink, { kernelDrops: { everyMs: 60_000 } }); // read through ss (--allow-run)
  const client = sender();
  try {
    sink.hold();
    await client.send(enc("first\n"), input.addr);
    await until(() => sink.lines.length === 1, () => "first line");
    // The input waits for room: the datagrams wait in the kernel, and past its buffer are dropped.
    const sent = 3000;
    const payload = enc("y".repeat(200) + "\n");
    for (let i = 0; i < sent; i++) await client.send(payload, input.addr);
    await input.refreshDrops();
    const held = input.stats;
    // The receive under way when the sink filled takes one more; then nothing is read.
    assert.ok(held.datagrams <= 2, `${held.datagrams} read while the sink is full`);
    assert.ok(held.queuedBytes! > 0, "the kernel holds what was sent");
    assert.ok(
      held.kernelDrops! > 0,
      `a 3000-datagram burst overflows the buffer (${held.kernelDrops})`,
    );
    sink.release();
    await until(
      () => sink.lines.length - 1 + held.kernelDrops! === sent,
      () => `${sink.lines.length - 1} stored + ${held.kernelDrops} dropped of ${sent}`,
    );
    await input.refreshDrops();
    assert.equal(input.stats.kernelDrops, held.kernelDrops);
    assert.equal(input.stats.queuedBytes, 0);
    assert.equal(input.counters().kernel_drops, held.kernelDrops);
  } finally {
    sink.release();
    client.close();
    await input.close({ quietMs: 0 });
  }
});

Deno.test("UDP input: close stores what the socket received, and refuses no one's lines meanwhile", async () => {
  const sink = new Recorder();
  const input = listen(sink, { scheduleFlush: () => () => {} });
  const client = sender();
  try {
    await client.send(enc("a\nb"), input.addr);
    await until(() => input.stats.datagrams === 1, () => "received");
  } finally {
    client.close();
    await input.close({ quietMs: 0 });
  }
  assert.deepEqual(sink.lines, ["a", "b"]);
});
