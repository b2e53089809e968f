import assert from "node:assert/strict";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { type NatsCluster, natsServerPath, startNatsCluster } from "../../tests/_nats.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { until } from "../../tests/_http.ts";
import { postgresMissing, startPostgres } from "../../tests/_postgres.ts";
import { PgSink } from "../pg/sink.ts";
import type { BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { FileSink } from "../store/file_sink.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { NatsSink } from "./nats_sink.ts";
import { StoreWorker } from "./store_worker.ts";

const ignore = natsServerPath() === undefined;
const encoder = new TextEncoder();
const META: BatchMeta = { source: "app", host: "h1", input: "tcp" };

/** Publishes `messages` messages of 100 numbered lines each through a NatsSink. */
async function publish(urls: string, messages: number): Promise<void> {
  const { connectNats } = await import("./connection.ts");
  const nc = await connectNats(urls.split(","), "test publisher");
  const sink = new NatsSink({
    nc,
    stream: { name: "T", subject: "t", replicas: 1, duplicateWindowMs: 60_000, maxBytes: 0 },
    maxLines: 100,
  });
  for (let m = 0; m < messages; m++) {
    let text = "";
    for (let i = 0; i < 100; i++) text += `line ${m * 100 + i}\n`;
    sink.write({ data: encoder.encode(text), lines: 100, meta: META, receivedAt: Date.now() });
  }
  await sink.close();
}

/**
 * Runs `test` with a one-server cluster whose stream `T` holds `messages` messages of 100 lines, a
 * client of it, and a folder removed afterwards.
 */
async function withPublished(
  messages: number,
  test: (env: { cluster: NatsCluster; nc: NatsConnection; dir: string }) => Promise<void>,
): Promise<void> {
  await using cluster = await startNatsCluster(1);
  const dir = await Deno.makeTempDir({ prefix: "logboom-worker-" });
  try {
    await publish(cluster.urls, messages);
    await test({ cluster, nc: await cluster.client(), dir });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function openStore(dir: string) {
  const marks = await StreamMarks.open(join(dir, ".state"), { sync: true });
  const files = await FileSink.open({ marks, path: join(dir, "out.log"), fsync: "batch" });
  return { marks, files };
}

Deno.test({
  name:
    "StoreWorker: a group stored but not acked (a crash) is delivered again and not stored twice",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await withPublished(20, async ({ nc, dir }) => {
    // The first run stores a group, then "crashes" before its acks.
    let first = await openStore(dir);
    let crashed = false;
    const worker1 = new StoreWorker({
      nc,
      stream: "T",
      subject: "t",
      partitions: [0],
      files: first.files,
      marks: first.marks,
      ackWaitMs: 1000,
      groupMessages: 8,
      beforeAck: () => {
        crashed = true;
        throw new Error("crash before the acks");
      },
    });
    worker1.start();
    await until(() => crashed, () => "the first worker stored nothing");
    await worker1.close();
    await first.files.close();
    await first.marks.close();
    const stored = (await Deno.readTextFile(join(dir, "out.log"))).split("\n").length - 1;
    assert.ok(stored >= 100, "the crashed run stored nothing");

    // The second run gets the unacked messages again and skips what the first stored.
    first = await openStore(dir);
    const worker2 = new StoreWorker({
      nc,
      stream: "T",
      subject: "t",
      partitions: [0],
      files: first.files,
      marks: first.marks,
      ackWaitMs: 1000,
    });
    worker2.start();
    const jsm = await jetstreamManager(nc);
    await until(
      async () => {
        const info = await jsm.consumers.info("T", worker2.consumerName(0));
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      () => "the second worker did not ack everything",
      20_000,
    );
    await worker2.close();
    await first.files.close();
    await first.marks.close();
    const lines = (await Deno.readTextFile(join(dir, "out.log"))).split("\n").filter((l) => l);
    assert.equal(lines.length, 2000);
    assert.equal(new Set(lines).size, 2000);
    assert.ok(worker2.stats.redelivered >= 1, "nothing was delivered again");
  });
});

Deno.test({
  name: "StoreWorker: files and PostgreSQL both hold every line once after a crash before the acks",
  ignore: ignore || postgresMissing() !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const pgServer = await startPostgres();
  const dir = await Deno.makeTempDir({ prefix: "logboom-worker-" });
  try {
    await publish(cluster.urls, 20);
    const nc = await cluster.client();
    const run = async (crash: boolean) => {
      const { marks, files } = await openStore(dir);
      const pg = new PgSink({ url: pgServer.url, table: "logs" });
      let crashed = false;
      const worker = new StoreWorker({
        nc,
        stream: "T",
        subject: "t",
        partitions: [0],
        files,
        marks,
        pg,
        ackWaitMs: 1000,
        groupMessages: 8,
        beforeAck: crash
          ? () => {
            crashed = true;
            throw new Error("crash before the acks");
          }
          : undefined,
      });
      worker.start();
      if (crash) await until(() => crashed, () => "the first worker stored nothing", 20_000);
      else {
        const jsm = await jetstreamManager(nc);
        await until(
          async () => {
            const info = await jsm.consumers.info("T", worker.consumerName(0));
            return info.num_pending === 0 && info.num_ack_pending === 0;
          },
          () => "the second worker did not ack everything",
          20_000,
        );
      }
      await worker.close();
      await files.close();
      await marks.close();
      await pg.close();
    };
    await run(true);
    assert.ok(Number(await pgServer.sql("SELECT count(*) FROM logs")) >= 100);
    await run(false);
    const lines = (await Deno.readTextFile(join(dir, "out.log"))).split("\n").filter((l) => l);
    assert.equal(lines.length, 2000);
    assert.equal(new Set(lines).size, 2000);
    const rows = await pgServer.sql("SELECT count(*), count(DISTINCT message) FROM logs");
    assert.equal(rows.trim(), "2000|2000");
  } finally {
    await pgServer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "StoreWorker: a second worker on a partition that another reads waits, storing nothing",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const dirs = [
    await Deno.makeTempDir({ prefix: "logboom-worker-" }),
    await Deno.makeTempDir({ prefix: "logboom-worker-" }),
  ];
  const stores = [await openStore(dirs[0]), await openStore(dirs[1])];
  const nc = await cluster.client();
  const worker = (i: number) =>
    new StoreWorker({
      nc,
      stream: "T",
      subject: "t",
      partitions: [0],
      files: stores[i].files,
      marks: stores[i].marks,
    });
  const first = worker(0);
  const second = worker(1);
  try {
    await publish(cluster.urls, 5);
    first.start();
    await until(() => first.stats.lines === 500, () => "the first worker stored nothing");
    second.start();
    await until(
      () => second.problems().some((p) => /read by another worker/.test(p.error)),
      () => "the second worker did not see the first",
    );
    await publish(cluster.urls, 5);
    await until(() => first.stats.lines === 1000, () => "the first worker stopped");
    assert.equal(second.stats.lines, 0);
  } finally {
    await first.close();
    await second.close();
    for (const { files, marks } of stores) {
      await files.close();
      await marks.close();
    }
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "StoreWorker: a store slower than ack_wait stores each message once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(1);
  const dir = await Deno.makeTempDir({ prefix: "logboom-worker-" });
  const { marks, files } = await openStore(dir);
  // The disk stalls for three ack waits before the first group is stored.
  let release = () => {};
  const stalled = new Promise<void>((resolve) => release = resolve);
  let flushes = 0;
  const slow: Sink = {
    name: "slow",
    get full() {
      return files.full;
    },
    write: (batch) => files.write(batch),
    writable: (batch) => files.writable(batch),
    flush: async (batches) => {
      if (flushes++ === 0) await stalled;
      await files.flush(batches);
    },
    close: (options) => files.close(options),
  };
  const nc = await cluster.client();
  const worker = new StoreWorker({
    nc,
    stream: "T",
    subject: "t",
    partitions: [0],
    files: slow,
    marks,
    ackWaitMs: 1000,
  });
  try {
    await publish(cluster.urls, 20);
    worker.start();
    await until(() => flushes > 0, () => "nothing stored");
    // The fault itself: a stall longer than three ack waits (not a wait for something to happen).
    await new Promise((resolve) => setTimeout(resolve, 3500));
    release();
    const jsm = await jetstreamManager(nc);
    await until(
      async () => {
        const info = await jsm.consumers.info("T", worker.consumerName(0));
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      () => "the worker did not ack everything",
      20_000,
    );
    await worker.close();
    await files.close();
    await marks.close();
    const lines = (await Deno.readTextFile(join(dir, "out.log"))).split("\n").filter((l) => l);
    assert.equal(new Set(lines).size, 2000);
    assert.equal(lines.length, 2000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "StoreWorker: closed as it starts (its consumer not yet reading), it stops",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await withPublished(1, async ({ nc, dir }) => {
    const { marks, files } = await openStore(dir);
    // A SIGTERM that comes while the worker makes or checks its consumer: the reading it starts
    // after that must end too, or close() waits for ever.
    const worker = new StoreWorker({
      nc,
      stream: "T",
      subject: "t",
      partitions: [0],
      files,
      marks,
    });
    worker.start();
    const closed = worker.close().then(() => "closed");
    const deadline = AbortSignal.timeout(15_000);
    const hung = new Promise((resolve) =>
      deadline.addEventListener("abort", () => resolve("hung"), { once: true })
    );
    assert.equal(await Promise.race([closed, hung]), "closed");
    await files.close();
    await marks.close();
  });
});
