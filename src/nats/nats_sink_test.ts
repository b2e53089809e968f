import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type NatsCluster, natsServerPath, startNatsCluster } from "../../tests/_nats.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { until } from "../../tests/_http.ts";
import { connect } from "@nats-io/transport-node";
import { connectNats } from "./connection.ts";
import { unpackMessage } from "./message.ts";
import { NatsSink, type NatsSinkOptions } from "./nats_sink.ts";

const ignore = natsServerPath() === undefined;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const META: BatchMeta = { source: "web", host: "10.0.0.1", input: "http", labels: { app: "api" } };
const STREAM = { name: "S", subject: "s", replicas: 1, duplicateWindowMs: 60_000, maxBytes: 0 };

function batch(from: number, count: number, extra: Partial<Batch> = {}): Batch {
  let text = "";
  for (let i = from; i < from + count; i++) text += `line ${i}\n`;
  return {
    data: encoder.encode(text),
    lines: count,
    meta: META,
    receivedAt: 1_700_000_000_000,
    ...extra,
  };
}

async function sink(cluster: NatsCluster, options: Partial<NatsSinkOptions> = {}) {
  const nc = await connectNats(cluster.urls.split(","), "test");
  return new NatsSink({ nc, stream: STREAM, ...options });
}

/** Every message of the stream's partition 0, unpacked (not the probes'). */
async function messages(cluster: NatsCluster): Promise<Batch[]> {
  const nc = await cluster.client();
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info("S", { subjects_filter: "s.0" });
  const consumer = await jetstream(nc).consumers.get("S", { filter_subjects: "s.0" });
  const out: Batch[] = [];
  for (let i = 0; i < (state.subjects?.["s.0"] ?? 0); i++) {
    const m = await consumer.next({ expires: 2000 });
    assert.ok(m !== null);
    out.push(unpackMessage(m.data, m.headers));
  }
  return out;
}

Deno.test({
  name: "NatsSink: lines of one origin fill messages up to the line bound, in order, with extras",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const s = await sink(cluster, { maxLines: 100 });
  // 7 batches of 30 lines: 210 lines -> messages of 100, 100 and 10 lines.
  for (let b = 0; b < 7; b++) {
    const levels = new Uint8Array(30).fill(b === 2 ? 5 : 0);
    const fields = b === 3 ? Array.from({ length: 30 }, (_, i) => ({ n: b * 30 + i })) : undefined;
    s.write(batch(b * 30, 30, { levels, fields }));
  }
  await s.flush();
  assert.equal(s.stats.linesWritten, 210);
  assert.equal(s.pendingAcks, 0);
  await s.close();
  const got = await messages(cluster);
  assert.deepEqual(got.map((m) => m.lines), [100, 100, 10]);
  const text = got.map((m) => decoder.decode(m.data)).join("");
  assert.equal(text, Array.from({ length: 210 }, (_, i) => `line ${i}\n`).join(""));
  assert.deepEqual(got[0].meta, META);
  assert.equal(got[0].receivedAt, 1_700_000_000_000);
  // Batch 2's lines (60-89) are errors (5); batch 3's (90-119) have fields; the rest none.
  const levels = got.flatMap((m) => Array.from(m.levels ?? new Uint8Array(m.lines)));
  assert.deepEqual(levels.map((l, i) => l === 5 ? i : -1).filter((i) => i >= 0)[0], 60);
  assert.equal(levels.filter((l) => l === 5).length, 30);
  const fields = got.flatMap((m) => m.fields ?? new Array(m.lines).fill(undefined));
  assert.deepEqual(fields[90], { n: 90 });
  assert.deepEqual(fields[119], { n: 119 });
  assert.equal(fields[120], undefined);
});

Deno.test({
  name: "NatsSink: a marked batch resent through another node is stored once (same message ids)",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const mark = { stream: "agent-1", offset: 5000, part: 0, parts: 1, total: 3000, skipped: 0 };
  // 3,000 lines of one marked part: three messages of 1,000, each id from the mark.
  const a = await sink(cluster);
  a.write(batch(0, 3000, { mark }));
  await a.flush();
  await a.close();
  const b = await sink(cluster);
  b.write(batch(0, 3000, { mark }));
  await b.flush();
  assert.equal(b.stats.duplicates, 3);
  await b.close();
  const got = await messages(cluster);
  assert.equal(got.reduce((n, m) => n + m.lines, 0), 3000);
});

Deno.test({
  name:
    "NatsSink: with nothing to publish, problems() says when JetStream has no quorum, and when back",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  const s = await sink(cluster, { stream: { ...STREAM, replicas: 3 }, probeEveryMs: 200 });
  try {
    s.write(batch(0, 10));
    await s.flush();
    assert.deepEqual(s.problems(), []);
    assert.equal(s.blocked(), false);
    await cluster.kill("n2");
    await cluster.kill("n3");
    await until(() => s.problems().length > 0, () => "no problem reported", 20_000);
    assert.equal(s.problems()[0].path, "JetStream stream S");
    assert.equal(s.blocked(), true);
    await cluster.start("n2");
    await cluster.start("n3");
    await until(() => s.problems().length === 0, () => "the problem stayed", 30_000);
    assert.equal(s.blocked(), false);
  } finally {
    await s.close();
  }
});

Deno.test({
  name: "NatsSink: a stream deleted while running is made again, and the batch stored",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const s = await sink(cluster);
  try {
    s.write(batch(0, 10));
    await s.flush();
    const jsm = await jetstreamManager(await cluster.client());
    await jsm.streams.delete("S");
    s.write(batch(10, 10));
    await s.flush();
    assert.equal((await jsm.streams.info("S")).state.messages, 1);
  } finally {
    await s.close();
  }
});

Deno.test({
  name:
    "NatsSink: an acknowledgement that comes after its publish timed out is not counted; the retry's is, once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const s = await sink(cluster, { publishTimeoutMs: 300 });
  try {
    s.write(batch(0, 10));
    await s.flush();
    // Frozen, the server takes the publish into its socket and answers only once thawed, after
    // the sink gave up on that attempt and sent the message again under the same id.
    cluster.signal("n1", "SIGSTOP");
    s.write(batch(10, 10));
    const flushed = s.flush();
    await until(() => s.stats.errors > 0, () => "the publish did not time out");
    assert.match(s.problems()[0]?.error ?? "", /no acknowledgement within 300 ms/);
    cluster.signal("n1", "SIGCONT");
    await flushed;
    assert.equal(s.stats.messages, 2);
    assert.equal(s.stats.linesWritten, 20);
    assert.equal(s.stats.duplicates, 1);
    assert.equal(s.pendingAcks, 0);
    assert.equal(s.queuedBytes, 0);
    // Only a duplicate was acknowledged since: a probe, now that nothing is under way, says that
    // JetStream stores again.
    await until(() => s.problems().length === 0, () => JSON.stringify(s.problems()));
  } finally {
    await s.close();
  }
  const got = await messages(cluster);
  assert.deepEqual(got.map((m) => m.lines), [10, 10]);
});

Deno.test({
  name: "NatsSink: while publishes fail, an acknowledgement of a duplicate does not unblock inputs",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  // A stream full after the first message refuses new ones, but still tells a resend of the first
  // that it has it: an answer from the leader that says nothing of whether it can store.
  const s = await sink(cluster, { stream: { ...STREAM, maxBytes: 1024 }, probeEveryMs: 100 });
  const mark = { stream: "agent-1", offset: 100, part: 0, parts: 1, total: 10, skipped: 0 };
  s.write(batch(0, 10, { mark }));
  await s.flush();
  s.write(batch(10, 300));
  await until(() => s.blocked(), () => "a refused publish did not block");
  s.write(batch(0, 10, { mark }));
  await until(() => s.stats.duplicates === 1, () => "the resend was not answered");
  assert.equal(s.blocked(), true);
  assert.match(s.problems()[0].error, /maximum bytes|exceed/i);
  // The refused message is never stored: close gives up on it, and says so.
  await assert.rejects(s.close({ signal: AbortSignal.abort() }), /not acknowledged/);
});

Deno.test({
  name:
    "NatsSink: back through the last server, the leader's stale view of its dead followers is not taken for a quorum",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  const stream = { ...STREAM, replicas: 3 };
  const first = await sink(cluster, { stream });
  first.write(batch(0, 10));
  await first.flush();
  await first.close();
  // Connected to a follower: when both followers die it reconnects to the leader, which for
  // seconds still lists them as current and lately heard.
  const leader = await cluster.streamLeader("S");
  const followers = cluster.nodes.filter((n) => n.name !== leader);
  const url = (n: { port: number }) => `nats://127.0.0.1:${n.port}`;
  const nc = await connect({
    servers: [...followers.map(url), url(cluster.nodes.find((n) => n.name === leader)!)],
    noRandomize: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  const s = new NatsSink({ nc, stream, probeEveryMs: 100, publishTimeoutMs: 1000 });
  try {
    s.write(batch(10, 10));
    await s.flush();
    assert.equal(nc.getServer(), `127.0.0.1:${followers[0].port}`);
    for (const f of followers) await cluster.kill(f.name);
    await until(() => s.blocked(), () => "losing the connection did not block");
    // Blocked until a probe fails to store a message: never unblocked before (nothing is stored).
    await until(
      () => !s.blocked() || /not stored/.test(s.problems()[0]?.error ?? ""),
      () => `no probe failed: ${JSON.stringify(s.problems())}`,
      20_000,
    );
    assert.equal(s.blocked(), true, "unblocked without a quorum");
    for (const f of followers) await cluster.start(f.name);
    await until(() => !s.blocked(), () => JSON.stringify(s.problems()), 30_000);
    s.write(batch(20, 10));
    await s.flush();
  } finally {
    await s.close();
  }
  assert.equal((await messages(cluster)).reduce((n, m) => n + m.lines, 0), 30);
});
