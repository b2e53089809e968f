/**
 * End to end through NATS JetStream: `serve -nats` publishes, `logboom store` writes files. Each
 * test starts its own nats-server cluster on loopback ports (`_nats.ts`).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { clientLines, freePort, send, startServer, verifyLines } from "./_server.ts";
import { metric, until } from "./_http.ts";
import {
  natsServerPath,
  NODE_PERMISSIONS,
  readAll,
  startNatsCluster,
  startStore,
} from "./_nats.ts";

const ignore = natsServerPath() === undefined;
const SIZE = 60;

Deno.test({
  name: "nats: HTTP and TCP lines are acknowledged once JetStream has them, and stored once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using server = await startServer(["-nats", cluster.urls], {
    permissions: NODE_PERMISSIONS,
  });
  const count = 2000;
  // HTTP: 20 bodies of 100 lines, each acknowledged (200) only once JetStream stored it.
  const body = clientLines(0, count, SIZE);
  const text = new TextDecoder().decode(body).split("\n");
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${server.url}/api/v1/ingest?source=web`, {
      method: "POST",
      body: text.slice(i * 100, i * 100 + 100).join("\n") + "\n",
      headers: { "x-stream-id": "s0", "x-stream-offset": String((i + 1) * 100) },
    });
    const answer = await res.text();
    assert.equal(res.status, 200, answer);
  }
  // The 200s came after JetStream had the lines: the stream holds them before any worker runs.
  const nc = await cluster.client();
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info("LOGBOOM");
  assert.ok(info.state.messages >= 1 && info.state.bytes >= 100 * (SIZE - 1) * 20);
  assert.equal(info.config.num_replicas, 3);
  // A resend of an acknowledged body (a client retrying) is stored once.
  const again = await fetch(`${server.url}/api/v1/ingest?source=web`, {
    method: "POST",
    body: text.slice(1900, 2000).join("\n") + "\n",
    headers: { "x-stream-id": "s0", "x-stream-offset": "2000" },
  });
  assert.equal(again.status, 200);
  await again.body?.cancel();
  // TCP: another client's lines.
  await send(server.port, clientLines(1, count, SIZE));

  const dir = await Deno.makeTempDir({ prefix: "logboom-store-" });
  try {
    const status = `http://127.0.0.1:${freePort()}`;
    const worker = await startStore(
      [
        "-nats",
        cluster.urls,
        "-logFile",
        "logs/{source}.log",
        "-http",
        status.slice("http://".length),
      ],
      dir,
    );
    try {
      await until(
        async () => {
          const v = verifyLines(await readAll(join(dir, "logs")), 2, count, SIZE);
          return v.lines >= 2 * count;
        },
        () => "the worker did not store every line",
        30_000,
      );
      const verdict = verifyLines(await readAll(join(dir, "logs")), 2, count, SIZE);
      assert.deepEqual(verdict, { lines: 2 * count, missing: 0, duplicated: 0, torn: 0 });
      assert.ok((await Deno.stat(join(dir, "logs/web.log"))).size > 0);
      assert.ok((await Deno.stat(join(dir, "logs/tcp.log"))).size > 0);
      // Its /metrics: the worker's counters and its file sink's, as a server shows a sink's.
      assert.equal(await metric(status, "logboom_store_lines_total"), 2 * count);
      assert.equal(
        await metric(status, 'logboom_sink_lines_written_total{sink="file"}'),
        2 * count,
      );
      assert.equal(await metric(status, 'logboom_sink_open_files{sink="file"}'), 2);
      assert.equal(await metric(status, 'logboom_errors_total{component="file"}'), 0);
      assert.ok(await metric(status, 'logboom_sink_write_seconds_count{sink="file"}') > 0);
      assert.equal(await metric(status, 'logboom_sink_consumer_lag{sink="store"}'), 0);
      assert.equal(await (await fetch(`${status}/readyz`)).text(), "ready\n");
    } finally {
      await worker.process.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
