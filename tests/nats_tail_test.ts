/**
 * The live tail across the cluster: a tail on one ingest node sees the lines of another, with
 * its filters.
 */

import assert from "node:assert/strict";
import { SseTail } from "./_http.ts";
import { startServer } from "./_server.ts";
import { natsServerPath, NODE_PERMISSIONS, startNatsCluster } from "./_nats.ts";

const ignore = natsServerPath() === undefined;

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
    // The cluster tail starts its consumer once a tail is open: post until a line from b shows.
    const post = async (url: string, source: string, text: string) => {
      const res = await fetch(`${url}/api/v1/ingest?source=${source}`, {
        method: "POST",
        body: text,
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    };
    let seen = false;
    for (let i = 0; i < 40 && !seen; i++) {
      await post(b.url, "from-b", `keep b ${i}\ndrop b ${i}\n`);
      seen = await tail.wait((t) => t.lines.some((l) => l.source === "from-b"), 500)
        .then(() => true, () => false);
    }
    assert.ok(seen, "the tail on a never saw a line posted to b");
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
  } finally {
    await tail.close();
  }
});
