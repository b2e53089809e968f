/**
 * Faults through NATS JetStream: the stream leader killed under load, two of three servers down,
 * a storage worker killed, two workers sharing. The oracle: unique numbered lines, every
 * acknowledged one stored exactly once (none missing, none twice, none torn).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { metric, until } from "./_http.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";
import { countLines, FileWriter, startAgent, storedLines, writeConfig } from "./_agent.ts";
import { startServer } from "./_server.ts";
import {
  httpClient,
  natsServerPath,
  NODE_PERMISSIONS,
  numberedLines,
  readAll,
  startIngest,
  startNatsCluster,
  tally,
  untilAllStored,
  withWorkers,
} from "./_nats.ts";

const ignore = natsServerPath() === undefined;
const encoder = new TextEncoder();

/** Sends `count` lines of `client` over TCP in writes of 100 lines; resolves once all are sent. */
async function tcpClient(port: number, client: number, count: number): Promise<void> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  for (let i = 0; i < count; i += 100) {
    const data = encoder.encode(numberedLines(client, i, Math.min(count, i + 100)));
    let at = 0;
    while (at < data.length) at += await conn.write(data.subarray(at));
  }
}

Deno.test({
  name: "nats: kill -9 of the stream leader under HTTP and TCP load loses and doubles nothing",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using server = await startServer(["-nats", cluster.urls], {
    permissions: NODE_PERMISSIONS,
  });
  // With PostgreSQL installed, the worker stores to it as well, and it is checked the same way.
  const pg = postgresMissing() === undefined ? await startPostgres() : undefined;
  try {
    await withWorkers(1, async ([dir], start) => {
      const toPg = pg === undefined ? [] : ["-postgres", pg.url];
      await start(0, [
        "-nats",
        cluster.urls,
        "-logFile",
        "logs/{source}.log",
        "-ackWait",
        "3s",
        ...toPg,
      ]);
      const stop = new AbortController();
      const http = httpClient(server.url, 0, stop.signal);
      const tcpLines = 60_000;
      const tcp = tcpClient(server.port, 1, tcpLines);
      // Awaited below; should a check fail first, the reset of its connection is not the failure.
      tcp.catch(() => {});
      await until(() => http.state.acked >= 1000, () => "no HTTP body acknowledged", 20_000);
      const leader = await cluster.streamLeader("LOGBOOM");
      await cluster.kill(leader);
      const before = http.state.acked;
      // Publishing goes on once the other two elected a new leader.
      await until(
        () => http.state.acked >= before + 1000,
        () => "nothing acked after the kill",
        30_000,
      );
      await cluster.start(leader);
      const after = http.state.acked;
      await until(
        () => http.state.acked >= after + 500,
        () => "nothing acked after the restart",
        20_000,
      );
      stop.abort();
      await http.done;
      await tcp;
      const expected = new Map([[0, http.state.acked], [1, tcpLines]]);
      const { tally: t } = await untilAllStored(
        async () => [await readAll(join(dir, "logs"))],
        expected,
        () => "the worker did not store every acknowledged line",
        40_000,
      );
      assert.deepEqual({ ...t, stored: 0 }, { missing: 0, duplicated: 0, torn: 0, stored: 0 });
      if (pg !== undefined) {
        const { tally: p } = await untilAllStored(
          async () => [await pg.sql("SELECT message FROM logs")],
          expected,
          () => "PostgreSQL does not hold every acknowledged line",
          40_000,
        );
        assert.deepEqual({ ...p, stored: 0 }, { missing: 0, duplicated: 0, torn: 0, stored: 0 });
      }
      // Lines sent after the last acknowledgement may be stored too, each once.
      assert.ok(t.stored >= http.state.acked + tcpLines);
    });
  } finally {
    await pg?.close();
  }
});

Deno.test({
  name: "nats: two of three servers down: 503 with Retry-After, TCP waits, then all flows, once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using server = await startServer(["-nats", cluster.urls], {
    permissions: NODE_PERMISSIONS,
  });
  await withWorkers(1, async ([dir], start) => {
    await start(0, ["-nats", cluster.urls, "-logFile", "logs/{source}.log", "-ackWait", "3s"]);
    const stop = new AbortController();
    const http = httpClient(server.url, 0, stop.signal);
    await until(() => http.state.acked >= 500, () => "no HTTP body acknowledged", 20_000);
    const [, n2, n3] = cluster.nodes.map((n) => n.name);
    await cluster.kill(n2);
    await cluster.kill(n3);
    // No quorum: once a publish failed, ingest refuses with 503 + Retry-After, /readyz says why.
    // (The client above waits on its body under way: its resend queues behind it.)
    let refusal: Response | undefined;
    await until(
      async () => {
        const res = await fetch(`${server.url}/api/v1/ingest?source=probe`, {
          method: "POST",
          body: "probe\n",
          signal: AbortSignal.timeout(1000),
        }).catch(() => undefined);
        await res?.body?.cancel();
        if (res?.status === 503) refusal = res;
        return refusal !== undefined;
      },
      () => "ingest never answered 503",
      30_000,
    );
    assert.equal(refusal!.headers.get("retry-after"), "1");
    // (A reconnect to the server left may answer ready until a publish times out, 5 s.)
    let reason = "";
    await until(
      async () => {
        const ready = await fetch(`${server.url}/readyz`);
        reason = await ready.text();
        return ready.status === 503;
      },
      () => `/readyz stayed ready: ${reason}`,
      20_000,
    );
    assert.match(reason, /JetStream stream LOGBOOM/);
    // TCP: the sink holds its share and the connection stops being read; nothing is dropped.
    const tcpLines = 500_000;
    let tcpDone = false;
    const tcp = tcpClient(server.port, 1, tcpLines).then(() => tcpDone = true);
    // Awaited below; should a check fail first, the reset of its connection is not the failure.
    tcp.catch(() => {});
    await until(
      async () => await metric(server.url, 'logboom_sink_queue_bytes{sink="nats"}') >= 4 << 20,
      () => "the nats sink's queue never filled to its share",
      20_000,
    );
    const queued = await metric(server.url, 'logboom_sink_queue_bytes{sink="nats"}');
    assert.ok(queued < 6 << 20, `queue grew to ${queued} bytes while failing:\n${server.stderr()}`);
    assert.equal(tcpDone, false, "the TCP client sent everything while nothing could be stored");
    const ackedWhileDown = http.state.acked;
    await cluster.start(n2);
    await cluster.start(n3);
    await until(
      () => http.state.acked >= ackedWhileDown + 500,
      () => "ingest did not resume",
      40_000,
    );
    await tcp;
    stop.abort();
    await http.done;
    const expected = new Map([[0, http.state.acked], [1, tcpLines]]);
    const { tally: t } = await untilAllStored(
      async () => [await readAll(join(dir, "logs"))],
      expected,
      () => "the worker did not store every acknowledged line",
      40_000,
    );
    assert.deepEqual({ ...t, stored: 0 }, { missing: 0, duplicated: 0, torn: 0, stored: 0 });
  });
});

Deno.test({
  name: "nats: a storage worker killed -9 while storing, then restarted, stores every line once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using server = await startServer(["-nats", cluster.urls], {
    permissions: NODE_PERMISSIONS,
  });
  const total = 300_000;
  await tcpClient(server.port, 0, total);
  await until(
    async () => await metric(server.url, 'logboom_sink_lines_written_total{sink="nats"}') >= total,
    () => "JetStream did not acknowledge every line",
    30_000,
  );
  await withWorkers(1, async ([dir], start) => {
    const args = ["-nats", cluster.urls, "-logFile", "logs/{source}.log", "-ackWait", "2s"];
    const expected = new Map([[0, total]]);
    for (const share of [0.2, 0.5]) {
      const worker = await start(0, args);
      await until(
        async () => {
          const t = tally([await readAll(join(dir, "logs"))], expected);
          return t.stored >= total * share;
        },
        () => "the worker stored too little",
        30_000,
      );
      await worker.process.kill();
    }
    await start(0, args);
    const { tally: t } = await untilAllStored(
      async () => [await readAll(join(dir, "logs"))],
      expected,
      () => "the restarted worker did not store every line",
      40_000,
    );
    assert.deepEqual(t, { missing: 0, duplicated: 0, torn: 0, stored: total });
  });
});

Deno.test({
  name: "nats: two workers share the partitions, each line stored by one of them, once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using ingest = await startIngest(cluster.urls, { partitions: 2 });
  await withWorkers(2, async (dirs, start) => {
    const args = ["-nats", cluster.urls, "-logFile", "logs/{source}.log", "-partitions", "2"];
    await start(0, [...args, "-partition", "0"]);
    await start(1, [...args, "-partition", "1"]);
    const stop = new AbortController();
    // Eight sources: their hashes spread them over both partitions.
    const clients = Array.from(
      { length: 8 },
      (_, i) => httpClient(ingest.url, i, stop.signal),
    );
    await until(() => clients.every((c) => c.state.acked >= 1000), () => "too few acked", 30_000);
    stop.abort();
    await Promise.all(clients.map((c) => c.done));
    const expected = new Map(clients.map((c, i) => [i, c.state.acked]));
    const { texts: [a, b], tally: t } = await untilAllStored(
      () => Promise.all(dirs.map((d) => readAll(join(d, "logs")))),
      expected,
      () => "the workers did not store every acknowledged line",
      30_000,
    );
    assert.deepEqual({ ...t, stored: 0 }, { missing: 0, duplicated: 0, torn: 0, stored: 0 });
    // Each worker stored its own sources only.
    assert.ok(a.length > 0 && b.length > 0, "one worker stored nothing");
    const sourcesOf = async (d: string) =>
      (await Array.fromAsync(Deno.readDir(join(d, "logs")))).map((e) => e.name)
        .filter((n) => !n.startsWith(".")).sort();
    const [sa, sb] = [await sourcesOf(dirs[0]), await sourcesOf(dirs[1])];
    assert.deepEqual(sa.filter((s) => sb.includes(s)), []);
  });
});

Deno.test({
  name: "nats: an agent fails over when its ingest node is killed -9; every line stored once",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using cluster = await startNatsCluster(3);
  await using a = await startServer(["-nats", cluster.urls], { permissions: NODE_PERMISSIONS });
  await using b = await startServer(["-nats", cluster.urls], { permissions: NODE_PERMISSIONS });
  const agentDir = await Deno.makeTempDir({ prefix: "logboom-agent-" });
  try {
    await withWorkers(1, async ([dir], start) => {
      const worker = await start(0, [
        "-nats",
        cluster.urls,
        "-logFile",
        "logs/{source}.log",
        "-ackWait",
        "3s",
      ]);
      const path = join(agentDir, "app.log");
      await writeConfig(join(agentDir, "agent.json"), {
        servers: [a.url, b.url],
        state_dir: "state",
        inputs: [{ source: "app", paths: [path], max_bytes: "1MiB" }],
        batch: { max_bytes: "64KiB", max_wait: "50ms" },
        retry: { initial: "50ms", max: "500ms", failback_after: "60s", resend_window: "1s" },
        scan_interval: "200ms",
      });
      // A service writing 20,000 lines/s: batches are in flight when the node dies.
      const writer = new FileWriter({ id: 7, path, rate: 20_000 });
      await using agent = await startAgent("agent.json", { cwd: agentDir });
      const out = join(dir, "logs");
      await until(async () => (await storedLines(out)).length > 10_000, () => "nothing stored");
      // The agent's server dies with batches in flight: they go to b, and JetStream keeps the
      // copies a published already once (same message ids from the stream and offset).
      await a.stop("SIGKILL");
      const stored = (await storedLines(out)).length;
      await until(
        async () => (await storedLines(out)).length >= stored + 20_000,
        () =>
          `nothing stored through b; the agent said:\n${agent.stderr().slice(-2000)}\nb said:\n${
            b.stderr().slice(-2000)
          }\nthe worker said:\n${worker.process.stderr().slice(-2000)}`,
        30_000,
      );
      await writer.stop();
      const total = writer.written;
      await until(
        async () => (await storedLines(out)).length >= total,
        () => "not every line stored",
        40_000,
      );
      const counted = countLines(await storedLines(out), new Map([[7, total]]));
      assert.deepEqual(
        { ...counted, examples: [] },
        { missing: 0, duplicated: 0, torn: 0, examples: [] },
      );
    });
  } finally {
    await Deno.remove(agentDir, { recursive: true });
  }
});
