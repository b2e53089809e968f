/**
 * The live tail across the cluster: a tail on one ingest node sees the lines of another, with
 * its filters.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { SseTail, until } from "./_http.ts";
import { startServer } from "./_server.ts";
import { natsServerPath, NODE_PERMISSIONS, startIngest, startNatsCluster } from "./_nats.ts";

const ignore = natsServerPath() === undefined;

/** POSTs `text` to `url`'s ingest under `source`; it must be acknowledged. */
async function post(url: string, source: string, text: string): Promise<void> {
  const res = await fetch(`${url}/api/v1/ingest?source=${source}`, { method: "POST", body: text });
  assert.equal(res.status, 200);
  await res.body?.cancel();
}

/**
 * Posts lines of source `from-b` to `b` until `tail` shows one: the cluster tail starts its
 * consumer once a tail is open, and sees only what comes after.
 */
async function untilSeenFromB(tail: SseTail, b: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await post(b, "from-b", `keep b ${i}\ndrop b ${i}\n`);
    const seen = await tail.wait((t) => t.lines.some((l) => l.source === "from-b"), 500)
      .then(() => true, () => false);
    if (seen) return;
  }
  assert.fail("the tail never saw a line posted to the other node");
}

Deno.test({
  name: "nats: a tail on one ingest node sees the lines of both, filtered",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using a = await startServer(["-nats", cluster.urls], { permissions: NODE_PERMISSIONS });
  await using b = await startServer(["-nats", cluster.urls], { permissions: NODE_PERMISSIONS });
  const tail = await SseTail.open(a.url, "?grep=keep");
  try {
    assert.equal(tail.status, 200);
    await tail.wait((t) => t.seen.some((s) => "ready" in s));
    await untilSeenFromB(tail, b.url);
    // An ingest node that could not publish stores an empty probe message: not a batch of lines.
    await jetstream(await cluster.client()).publish("logboom.probe");
    await post(a.url, "from-a", "keep a 1\ndrop a 1\n");
    await post(b.url, "from-b", "keep b last\n");
    await tail.wait((t) =>
      t.lines.some((l) => l.line === "keep a 1") && t.lines.some((l) => l.line === "keep b last")
    );
    // Filters apply to the other node's lines as to local ones; each line is shown once.
    assert.ok(tail.lines.every((l) => l.line.startsWith("keep")));
    const texts = tail.lines.map((l) => l.line);
    assert.equal(texts.filter((t) => t === "keep a 1").length, 1);
    assert.equal(texts.filter((t) => t === "keep b last").length, 1);
    const fromB = tail.lines.find((l) => l.line === "keep b last")!;
    assert.equal(fromB.source, "from-b");
    assert.equal(fromB.host, "127.0.0.1");
    assert.doesNotMatch(a.stderr() + b.stderr(), /not a logboom batch/);
  } finally {
    await tail.close();
  }
});

Deno.test({
  name:
    "nats: after a reload that rebuilds the nats sink, a tail still sees the other node's lines",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using a = await startIngest(cluster.urls);
  await using b = await startServer(["-nats", cluster.urls], { permissions: NODE_PERMISSIONS });
  // Another linger: the nats sink is built anew, with a connection of its own.
  const file = join(a.dir, "logboom.json");
  const config = JSON.parse(await Deno.readTextFile(file));
  config.sinks.nats.linger = "30ms";
  await Deno.writeTextFile(`${file}.tmp`, JSON.stringify(config));
  await Deno.rename(`${file}.tmp`, file);
  const stderr = () => a.process!.stderr();
  await until(() => /Config reloaded/.test(stderr()), stderr);
  assert.match(stderr(), /Sinks added none; removed none; rebuilt nats/);
  const tail = await SseTail.open(a.url, "?grep=keep");
  try {
    await tail.wait((t) => t.seen.some((s) => "ready" in s));
    await untilSeenFromB(tail, b.url);
  } finally {
    await tail.close();
  }
});
