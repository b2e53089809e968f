/**
 * Issue 13's first acceptance scenario, end to end and in one run: a 3-node nats-server cluster
 * (JetStream, stream R3), two ingest nodes, two storage workers (one partition each) writing files
 * and PostgreSQL (when installed). Under load from a real agent following a file and from
 * acknowledged HTTP clients, in turn: kill -9 of the stream leader, of an ingest node, of a
 * storage worker, each restarted. Then every acknowledged HTTP line and every line of the agent's
 * file must be stored exactly once in the files and exactly once in PostgreSQL (none missing,
 * none twice, none torn).
 *
 * The other faults are tested one at a time in `nats_faults_test.ts`; this is them together.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { until } from "./_http.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";
import { agentMetric, FileWriter, startAgent, writeConfig } from "./_agent.ts";
import { freePort } from "./_server.ts";
import {
  httpClient,
  natsServerPath,
  readAll,
  startIngest,
  startNatsCluster,
  type StoreProcess,
  untilAllStored,
  withWorkers,
} from "./_nats.ts";

/** The agent's writer id in the lines (`c7 <seq> ...`); the HTTP clients are 0 and 1. */
const AGENT_ID = 7;
/** Lines a second the agent's file gains, and each HTTP client sends (at most). */
const AGENT_RATE = 3000;
const HTTP_RATE = 2000;

/** Bytes in the files under `dir` (dot files left out): cheap, to wait before reading them all. */
async function storedBytes(dir: string): Promise<number> {
  let bytes = 0;
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.name.startsWith(".")) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory) await walk(path);
      else bytes += (await Deno.stat(path)).size;
    }
  };
  await walk(dir).catch(() => {});
  return bytes;
}

/** Bytes of the lines `expected` names: HTTP clients' `c<n> <seq> ` + 40 x, the agent's 100. */
function expectedBytes(expected: Map<number, number>): number {
  let bytes = 0;
  for (const [client, count] of expected) {
    if (client === AGENT_ID) bytes += 100 * count;
    else for (let i = 0; i < count; i++) bytes += `c${client} ${i} `.length + 41;
  }
  return bytes;
}

Deno.test({
  name: "nats acceptance: stream leader, ingest node and storage worker killed -9 in turn " +
    "under agent and HTTP load; every acknowledged line stored once in files and PostgreSQL",
  ignore: natsServerPath() === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const withPg = postgresMissing() === undefined;
  if (!withPg) {
    console.warn("nats acceptance: PostgreSQL is not installed: files are checked, not PostgreSQL");
  }
  // PostgreSQL starts while the cluster does.
  const pgStarting = withPg ? startPostgres() : Promise.resolve(undefined);
  const agentDir = await Deno.makeTempDir({ prefix: "logboom-agent-" });
  try {
    await using cluster = await startNatsCluster(3);
    const pg = await pgStarting;
    // Two ingest nodes, each publishing to the two partitions the two workers share.
    await using a = await startIngest(cluster.urls, { partitions: 2 });
    await using b = await startIngest(cluster.urls, { partitions: 2 });
    await withWorkers(2, async (dirs, start) => {
      const args = (partition: number) => [
        "-nats",
        cluster.urls,
        "-partitions",
        "2",
        "-partition",
        String(partition),
        "-logFile",
        "logs/{source}.log",
        "-ackWait",
        "3s",
        ...(pg === undefined ? [] : ["-postgres", pg.url]),
      ];
      const workers: StoreProcess[] = await Promise.all([start(0, args(0)), start(1, args(1))]);

      // Load: a service writing its file, followed by an agent that lists both ingest nodes, and
      // two HTTP clients (sources http0, http1: one in each partition), each trying the other
      // node on an error or a 503.
      const path = join(agentDir, "app.log");
      const metricsPort = freePort();
      await writeConfig(join(agentDir, "agent.json"), {
        servers: [a.url, b.url],
        state_dir: "state",
        inputs: [{ source: "app", paths: [path], max_bytes: "1MiB" }],
        batch: { max_bytes: "64KiB", max_wait: "50ms" },
        retry: { initial: "50ms", max: "500ms", failback_after: "60s", resend_window: "1s" },
        scan_interval: "200ms",
        metrics: `127.0.0.1:${metricsPort}`,
      });
      const writer = new FileWriter({ id: AGENT_ID, path, rate: AGENT_RATE });
      const stop = new AbortController();
      // The load ends with the test, whatever happens.
      await using _load = {
        async [Symbol.asyncDispose]() {
          stop.abort();
          await writer.stop();
        },
      };
      await using agent = await startAgent("agent.json", { cwd: agentDir });
      const clients = [
        httpClient([a.url, b.url], 0, stop.signal, HTTP_RATE),
        httpClient([b.url, a.url], 1, stop.signal, HTTP_RATE),
      ];
      const agentLines = () => agentMetric(metricsPort, "logboom_agent_lines_total");
      const logs = () =>
        `the agent said:\n${agent.stderr().slice(-1500)}\nworker 0 said:\n${
          workers[0].process.stderr().slice(-1500)
        }\nworker 1 said:\n${workers[1].process.stderr().slice(-1500)}`;
      /** Waits until both HTTP clients and the agent had more lines acknowledged. */
      const progress = async (when: string) => {
        const acked = clients.map((c) => c.state.acked);
        const shipped = await agentLines().catch(() => 0);
        await until(
          async () =>
            clients.every((c, i) => c.state.acked >= acked[i] + 500) &&
            await agentLines().catch(() => 0) >= shipped + 1500,
          () =>
            `too little acknowledged ${when}: HTTP ${acked} then ${
              clients.map((c) => c.state.acked)
            }, agent ${shipped} (${shipped + 1500} wanted)\n${logs()}`,
          30_000,
        );
      };
      await progress("at first");

      // 1. The stream's leader: the other two elect another, publishing resumes.
      const leader = await cluster.streamLeader("LOGBOOM");
      await cluster.kill(leader);
      await progress("with the stream leader killed");
      await cluster.start(leader);
      await progress("with the old stream leader back");

      // 2. Ingest node a, the agent's first server and client 0's: both go on through b.
      await a.kill();
      await progress("with ingest node a killed");
      await a.start();
      await progress("with ingest node a back");

      // 3. Storage worker 0 (partition 0), killed while it stores: its lines wait in the stream.
      const before = await storedBytes(join(dirs[0], "logs"));
      await until(
        async () => await storedBytes(join(dirs[0], "logs")) > before,
        () => `worker 0 stores nothing\n${logs()}`,
        30_000,
      );
      await workers[0].process.kill();
      await progress("with worker 0 killed");
      workers[0] = await start(0, args(0));
      await progress("with worker 0 back");

      // Load stops; everything acknowledged (and all of the agent's file) drains.
      stop.abort();
      await Promise.all(clients.map((c) => c.done));
      await writer.stop();
      const expected = new Map([
        [0, clients[0].state.acked],
        [1, clients[1].state.acked],
        [AGENT_ID, writer.written],
      ]);
      const files = () => Promise.all(dirs.map((d) => readAll(join(d, "logs"))));
      const bytes = expectedBytes(expected);
      const total = [...expected.values()].reduce((sum, n) => sum + n, 0);
      // Sizes first (cheap), then every line.
      await until(
        async () =>
          (await storedBytes(join(dirs[0], "logs"))) +
              (await storedBytes(join(dirs[1], "logs"))) >= bytes,
        () => `the files hold fewer bytes than were acknowledged (${bytes})\n${logs()}`,
        60_000,
      );
      const { texts: [file0, file1], tally: inFiles } = await untilAllStored(
        files,
        expected,
        () => `the files miss acknowledged lines\n${logs()}`,
        30_000,
      );
      assert.deepEqual(
        { ...inFiles, stored: 0 },
        { missing: 0, duplicated: 0, torn: 0, stored: 0 },
        `files: ${JSON.stringify(inFiles)} of ${total} lines acknowledged`,
      );
      // Lines sent and not acknowledged (under way at a kill) may be stored too, once.
      assert.ok(inFiles.stored >= total);
      // Both workers stored their partition.
      assert.ok(file0.length > 0 && file1.length > 0, "a worker stored nothing");

      if (pg !== undefined) {
        const count = async () => Number((await pg.sql("SELECT count(*) FROM logs")).trim());
        await until(
          async () => await count().catch(() => 0) >= total,
          () => `PostgreSQL holds fewer rows than lines acknowledged (${total})\n${logs()}`,
          60_000,
        );
        const { tally: inPg } = await untilAllStored(
          async () => [await pg.sql("SELECT message FROM logs")],
          expected,
          () => `PostgreSQL misses acknowledged lines\n${logs()}`,
          30_000,
        );
        assert.deepEqual(
          { ...inPg, stored: 0 },
          { missing: 0, duplicated: 0, torn: 0, stored: 0 },
          `PostgreSQL: ${JSON.stringify(inPg)} of ${total} lines acknowledged`,
        );
        assert.ok(inPg.stored >= total);
      }
    });
  } finally {
    await (await pgStarting.catch(() => undefined))?.close();
    await Deno.remove(agentDir, { recursive: true }).catch(() => {});
  }
});
