/**
 * The PostgreSQL sink against a real server of its own (`_postgres.ts`): rows and their columns,
 * daily partitions and retention, exactly-once writes of stream messages, and a server that goes
 * away and comes back.
 */

import assert from "node:assert/strict";
import type { Batch } from "../src/pipeline/batch.ts";
import { levelCode } from "../src/pipeline/record.ts";
import { DAY_MS } from "../src/pg/schema.ts";
import { PgSink } from "../src/pg/sink.ts";
import { RetryPolicy } from "../src/retry.ts";
import { until } from "./_http.ts";
import { bindFreePort } from "./_server.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";

const encoder = new TextEncoder();
const FAST_RETRY = new RetryPolicy({ initialMs: 20, maxMs: 200, jitter: "none" });

/**
 * A proxy to PostgreSQL that, when armed, forwards the next COMMIT and cuts the connection
 * before the server's answer reaches the client (then disarms).
 */
class CommitCutter {
  readonly port: number;
  armed = false;
  cuts = 0;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  constructor(target: number) {
    const listener = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = (async () => {
      for await (const client of listener) {
        const task = this.#forward(client, target).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    })().catch(() => {});
  }

  async #forward(client: Deno.Conn, target: number): Promise<void> {
    const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
    this.#conns.add(client).add(server);
    let cutNext = false;
    const close = () => {
      for (const c of [client, server]) {
        try {
          c.close();
        } catch {
          // closed
        }
        this.#conns.delete(c);
      }
    };
    const pipe = async (from: Deno.Conn, to: Deno.Conn, up: boolean) => {
      const buf = new Uint8Array(256 * 1024);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          if (!up && cutNext) {
            this.cuts++;
            break; // the answer to the COMMIT: never delivered
          }
          if (up && this.armed && new TextDecoder().decode(buf.subarray(0, n)).includes("COMMIT")) {
            this.armed = false;
            cutNext = true;
          }
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
        }
      } catch {
        // cut
      }
      close();
    };
    await Promise.all([pipe(client, server, true), pipe(server, client, false)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await Promise.all(this.#tasks);
  }
}

function batch(lines: string[] | Uint8Array, extra: Partial<Batch> = {}): Batch {
  const data = lines instanceof Uint8Array ? lines : encoder.encode(lines.join("\n") + "\n");
  const count = lines instanceof Uint8Array ? data.filter((b) => b === 10).length : lines.length;
  return {
    data,
    lines: count,
    meta: { source: "app", host: "10.0.0.5", input: "test" },
    receivedAt: Date.parse("2026-11-30T10:00:00.000Z"),
    ...extra,
  };
}

Deno.test({
  name: "postgres sink: rows, partitions, exactly once, a server going away",
  ignore: postgresMissing() !== undefined,
  async fn(t) {
    const server = await startPostgres();
    try {
      await t.step("rows keep their columns; fields and labels as jsonb", async () => {
        const sink = new PgSink({ url: server.url, table: "cols", retry: FAST_RETRY });
        try {
          sink.write(batch(["plain one", "tab\there back\\slash"]));
          sink.write(batch(["slow", "odd"], {
            meta: { source: "api", host: "h1", input: "otlp", labels: { app: "nginx" } },
            levels: Uint8Array.of(levelCode("warn"), 0),
            fields: [{ ms: 912, "http.status": 500, ok: false }, undefined],
            times: Float64Array.of(Date.parse("2026-11-30T09:59:59.5Z"), NaN),
          }));
          // Not UTF-8 and a NUL: stored as U+FFFD rather than refused.
          sink.write(batch(Uint8Array.of(0x62, 0xff, 0x00, 0x61, 10)));
          await sink.flush();
        } finally {
          await sink.close();
        }
        const rows = await server.sql(
          "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), " +
            "coalesce(to_char(time AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'), '-'), source, host, " +
            "coalesce(level, '-'), message, coalesce(fields::text, '-'), " +
            "coalesce(labels::text, '-') FROM cols ORDER BY message",
        );
        assert.deepEqual(rows.trimEnd().split("\n"), [
          "2026-11-30 10:00:00.000|-|app|10.0.0.5|-|b\uFFFD\uFFFDa|-|-",
          '2026-11-30 10:00:00.000|-|api|h1|-|odd|-|{"app": "nginx"}',
          "2026-11-30 10:00:00.000|-|app|10.0.0.5|-|plain one|-|-",
          "2026-11-30 10:00:00.000|09:59:59.500|api|h1|warn|slow|" +
          '{"ms": 912, "ok": false, "http.status": 500}|{"app": "nginx"}',
          "2026-11-30 10:00:00.000|-|app|10.0.0.5|-|tab\there back\\slash|-|-",
        ]);
        // A field is found through jsonb as the search finds it.
        assert.deepEqual(
          (await server.sql("SELECT message FROM cols WHERE fields->>'http.status' = '500'"))
            .trim(),
          "slow",
        );
      });

      await t.step(
        "partitions: by day, made ahead and when rows need one, dropped by max age",
        async () => {
          const now = Date.parse("2026-11-30T12:00:00Z");
          let clock = now;
          const sink = new PgSink({
            url: server.url,
            table: "parts",
            maxAgeMs: 2 * DAY_MS,
            retry: FAST_RETRY,
            now: () => clock,
          });
          const partitions = async () =>
            (await server.sql(
              "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid " +
                "WHERE i.inhparent = 'parts'::regclass ORDER BY 1",
            )).trim().split("\n");
          try {
            // Rows received five days ago (a worker catching up) get their day's partition.
            sink.write(batch(["old"], { receivedAt: now - 5 * DAY_MS }));
            sink.write(batch(["new"], { receivedAt: now }));
            await sink.flush();
            assert.deepEqual(await partitions(), [
              "parts_p20261125",
              "parts_p20261130",
              "parts_p20261201",
              "parts_p20261202",
            ]);
            // The next day's run drops what is past two days; today's and the rows kept stay.
            clock = now + DAY_MS;
            assert.deepEqual(await sink.maintain(), ["parts_p20261125"]);
            assert.deepEqual(await partitions(), [
              "parts_p20261130",
              "parts_p20261201",
              "parts_p20261202",
              "parts_p20261203",
            ]);
            assert.deepEqual((await server.sql("SELECT message FROM parts")).trim(), "new");
            assert.deepEqual(sink.stats.partitionsDropped, 1);
          } finally {
            await sink.close();
          }
          // The indexes the search uses are on every partition.
          const indexes = await server.sql(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'parts_p20261130' ORDER BY 1",
          );
          assert.deepEqual(indexes.trim().split("\n").map((d) => d.replace(/^.*USING /, "")), [
            "btree (level, ts) WHERE (level IS NOT NULL)",
            "btree (source, ts)",
            "btree (ts)",
          ]);
        },
      );

      await t.step(
        "exactly once: a redelivered sequence is skipped, out of order is kept",
        async () => {
          const sink = new PgSink({ url: server.url, table: "seq", retry: FAST_RETRY });
          try {
            assert.deepEqual(await sink.lastSequence("w"), 0);
            const first = await sink.writeSequenced("w", [
              { seq: 10, batches: [batch(["m10 a", "m10 b"])] },
              { seq: 12, batches: [batch(["m12"])] },
            ]);
            assert.deepEqual(first, { written: [10, 12], skipped: [] });
            // A redelivery of 12 with 11 (another worker of a shared consumer, late): 11 stored.
            const second = await sink.writeSequenced("w", [
              { seq: 12, batches: [batch(["m12"])] },
              { seq: 11, batches: [batch(["m11"])] },
            ]);
            assert.deepEqual(second, { written: [11], skipped: [12] });
            assert.deepEqual(
              await sink.writeSequenced("w", [{ seq: 10, batches: [batch(["x"])] }]),
              {
                written: [],
                skipped: [10],
              },
            );
            assert.deepEqual(await sink.lastSequence("w"), 12);
            // Another consumer's sequences are its own.
            assert.deepEqual(
              await sink.writeSequenced("v", [{ seq: 10, batches: [batch(["v10"])] }]),
              { written: [10], skipped: [] },
            );
            // Acknowledged sequences are forgotten by the consumer's next transaction, also by
            // one that stores nothing new (a redelivery).
            sink.acked("w", [10]);
            assert.deepEqual(
              await sink.writeSequenced("w", [{ seq: 12, batches: [batch(["m12"])] }]),
              { written: [], skipped: [12] },
            );
            sink.acked("w", [11]);
            await sink.writeSequenced("w", [{ seq: 13, batches: [batch(["m13"])] }]);
            await assert.rejects(
              () => sink.writeSequenced("w", [{ seq: 0, batches: [] }]),
              RangeError,
            );
          } finally {
            await sink.close();
          }
          assert.deepEqual(
            (await server.sql("SELECT string_agg(message, ',' ORDER BY message) FROM seq")).trim(),
            "m10 a,m10 b,m11,m12,m13,v10",
          );
          assert.deepEqual(
            (await server.sql(
              "SELECT string_agg(consumer || ':' || seq, ',' ORDER BY consumer, seq) " +
                "FROM seq_sequences WHERE consumer NOT LIKE 'logboom-sink:%'",
            )).trim(),
            "v:10,w:12,w:13",
          );
        },
      );

      await t.step(
        "the server going away: problems while down, nothing lost or doubled",
        async () => {
          const sink = new PgSink({ url: server.url, table: "down", retry: FAST_RETRY });
          try {
            sink.write(batch(["before"]));
            await sink.flush();
            assert.deepEqual(sink.problems(), []);
            await server.kill();
            await until(() => sink.problems().length > 0, () => "no problem reported");
            const [problem] = sink.problems();
            assert.deepEqual(problem.path, `${server.url} (table down)`);
            for (let i = 0; i < 50; i++) sink.write(batch([`while down ${i}`]));
            const flush = sink.flush();
            await server.restart();
            await flush;
            assert.deepEqual(sink.problems(), []);
          } finally {
            await sink.close();
          }
          assert.deepEqual(
            (await server.sql("SELECT count(*), count(DISTINCT message) FROM down")).trim(),
            "51|51",
          );
        },
      );

      await t.step("a connection lost at COMMIT: the retry stores nothing twice", async () => {
        // The COMMIT reaches the server, its answer never reaches the sink: did it commit?
        await using proxy = new CommitCutter(server.port);
        const url = server.url.replace(`:${server.port}/`, `:${proxy.port}/`);
        const sink = new PgSink({ url, table: "doubt", retry: FAST_RETRY });
        try {
          await sink.maintain();
          proxy.armed = true;
          sink.write(batch(["once a", "once b"]));
          await sink.flush();
          assert.equal(proxy.cuts, 1);
          assert.ok(sink.stats.errors >= 1);
          const stored = await sink.writeSequenced("w", [{ seq: 5, batches: [batch(["seq 5"])] }]);
          assert.deepEqual(stored, { written: [5], skipped: [] });
          proxy.armed = true;
          // Its answer lost as well: the retry finds sequence 5 stored and skips it.
          const again = await sink.writeSequenced("w", [{ seq: 6, batches: [batch(["seq 6"])] }]);
          assert.equal(proxy.cuts, 2);
          assert.deepEqual(again, { written: [], skipped: [6] });
        } finally {
          await sink.close();
        }
        assert.equal(
          (await server.sql("SELECT string_agg(message, ',' ORDER BY message) FROM doubt")).trim(),
          "once a,once b,seq 5,seq 6",
        );
      });

      await t.step("giving up while the server is down: a clear error, no hang", async () => {
        const sink = new PgSink({ url: server.url, table: "gone", retry: FAST_RETRY });
        await sink.maintain();
        await server.kill();
        const stop = new AbortController();
        const pending = sink.writeSequenced(
          "w",
          [{ seq: 1, batches: [batch(["x"])] }],
          stop.signal,
        );
        sink.write(batch(["y", "z"]));
        await until(() => sink.problems().length > 0, () => "no problem reported");
        stop.abort(new Error("worker stopping"));
        await assert.rejects(pending, /worker stopping/);
        await assert.rejects(
          sink.close({ signal: AbortSignal.timeout(200) }),
          /Cannot write 2 rows to postgres:\/\/.* \(table gone\)/,
        );
        await server.restart();
      });
    } finally {
      await server.close();
    }
  },
});
