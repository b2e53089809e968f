/**
 * End to end through NATS JetStream into PostgreSQL: `serve -nats` publishes, `logboom store
 * -postgres` writes the rows with their stream sequences (`PgSink.writeSequenced`); a worker
 * killed with SIGKILL and started again leaves every line stored once. Starts its own nats-server
 * cluster (`_nats.ts`) and PostgreSQL (`_postgres.ts`).
 */

import assert from "node:assert/strict";
import { metric, until } from "./_http.ts";
import { natsServerPath, NODE_PERMISSIONS, startNatsCluster, startStore } from "./_nats.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";
import { clientLines, freePort, send, startServer, verifyLines } from "./_server.ts";

const SIZE = 60;
const COUNT = 20_000;

/** Starts `logboom store` with `args`, allowed libpq's variables, once it stores. */
async function startPgStore(args: string[], dir: string) {
  return (await startStore(args, dir, ["--allow-env=PG*,USER"])).process;
}

Deno.test({
  name: "postgres: logboom store -postgres stores every line once through a worker's kill -9",
  ignore: natsServerPath() === undefined || postgresMissing() !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const pg = await startPostgres();
  const dir = await Deno.makeTempDir({ prefix: "logboom-pg-store-" });
  try {
    await using cluster = await startNatsCluster(3);
    await using server = await startServer(["-nats", cluster.urls], {
      permissions: NODE_PERMISSIONS,
    });
    await send(server.port, clientLines(0, COUNT, SIZE));
    const status = `http://127.0.0.1:${freePort()}`;
    const args = ["-nats", cluster.urls, "-postgres", pg.url, "-ackWait", "2s"];
    args.push("-http", status.slice("http://".length));
    const rows = async () => Number((await pg.sql("SELECT count(*) FROM logs")).trim());
    let worker = await startPgStore(args, dir);
    // Killed while storing: what it committed and had not acked is delivered again.
    await send(server.port, clientLines(1, COUNT, SIZE));
    await until(async () => await rows().catch(() => 0) > 0, worker.stderr, 30_000);
    await worker.stop("SIGKILL");
    worker = await startPgStore(args, dir);
    try {
      await until(async () => await rows() >= 2 * COUNT, worker.stderr, 60_000);
      // A last batch after the redeliveries: nothing more comes.
      await send(server.port, clientLines(2, 100, SIZE));
      await until(async () => await rows() >= 2 * COUNT + 100, worker.stderr, 30_000);
      const text = await pg.sql(
        "SELECT message FROM logs WHERE message LIKE 'c0 %' OR message LIKE 'c1 %'",
      );
      assert.deepEqual(verifyLines(text, 2, COUNT, SIZE), {
        lines: 2 * COUNT,
        missing: 0,
        duplicated: 0,
        torn: 0,
      });
      assert.equal(await rows(), 2 * COUNT + 100);
      // Its /metrics show its PostgreSQL sink: rows of this run, transactions timed, no error.
      const written = await metric(status, 'logboom_sink_lines_written_total{sink="postgres"}');
      assert.ok(written >= 100 && written <= 2 * COUNT + 100, String(written));
      assert.ok(await metric(status, 'logboom_sink_write_seconds_count{sink="postgres"}') > 0);
      assert.equal(await metric(status, 'logboom_errors_total{component="postgres"}'), 0);
      assert.equal(await metric(status, 'logboom_sink_queue_bytes{sink="postgres"}'), 0);
      const consumers = await pg.sql("SELECT count(*) FROM logs_consumers WHERE last_seq > 0");
      assert.ok(Number(consumers.trim()) >= 1);
    } finally {
      assert.equal((await worker.stop()).code, 0, worker.stderr());
    }
  } finally {
    await pg.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
