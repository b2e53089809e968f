/**
 * `serve` with a `postgres` sink in its config, against a PostgreSQL server of the test's own:
 * acknowledged HTTP ingest lands as rows, `/readyz` says when the database cannot be reached and
 * nothing acknowledged is lost through it, and the search API reads from the table.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { metric, runCli, until } from "./_http.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";
import { freePort } from "./_server.ts";

const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env=PG*,USER"];

async function ndjson(url: string): Promise<Record<string, unknown>[]> {
  const res = await fetch(url);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.text()).trim().split("\n").map((line) => JSON.parse(line));
}

async function readyz(url: string): Promise<number> {
  const res = await fetch(`${url}/readyz`);
  await res.body?.cancel();
  return res.status;
}

Deno.test({
  name: "serve with a postgres sink: rows, /readyz while the database is down, search from it",
  ignore: postgresMissing() !== undefined,
  async fn() {
    const pg = await startPostgres();
    const dir = await Deno.makeTempDir({ prefix: "logboom-pg-serve-" });
    const httpPort = freePort();
    const url = `http://127.0.0.1:${httpPort}`;
    try {
      const config = join(dir, "logboom.json");
      const withPassword = pg.url.replace("logboom@", "logboom:s3cret@");
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          http: { address: `127.0.0.1:${httpPort}` },
          // Trust authentication ignores the password; it must show nowhere.
          sinks: { db: { type: "postgres", url: withPassword, transaction_rows: 1000 } },
        }),
      );
      // Without the PG* variables node-postgres reads, it says how to run it.
      await using refused = runCli(PERMISSIONS.slice(0, 3), ["serve", "-config", config], {
        cwd: dir,
      });
      assert.notEqual((await refused.status()).code, 0);
      assert.match(refused.stderr(), /--allow-env=PG\*/);
      await using server = runCli(PERMISSIONS, ["serve", "-config", config], { cwd: dir });
      await until(() => /Listening on/.test(server.stderr()), server.stderr);
      const ingest = (body: string, source: string) =>
        fetch(`${url}/api/v1/ingest?source=${source}`, { method: "POST", body });

      // Acknowledged means committed.
      let res = await ingest("GET /a 200\nGET /b 500 boom\n", "web");
      assert.equal(res.status, 200, await res.text());
      assert.equal(
        (await pg.sql("SELECT string_agg(message, ',' ORDER BY message) FROM logs")).trim(),
        "GET /a 200,GET /b 500 boom",
      );
      assert.equal(await readyz(url), 200);
      // Rows and transactions in /metrics.
      assert.equal(await metric(url, 'logboom_sink_lines_written_total{sink="db"}'), 2);
      assert.ok(await metric(url, 'logboom_sink_write_seconds_count{sink="db"}') >= 1);
      const status = await (await fetch(`${url}/api/v1/status`)).text();
      assert.ok(status.includes("logboom:***@") && !status.includes("s3cret"), status);

      // The database goes away: an ingest under way waits and is stored once it is back; once
      // the sink knows, /readyz says so and new ingests are refused with 503 + Retry-After.
      await pg.kill();
      const waiting = ingest("while down\n", "api");
      await until(async () => {
        const r = await fetch(`${url}/readyz`);
        const text = await r.text();
        assert.ok(!text.includes("s3cret"), text);
        return r.status === 503 && text.includes(pg.url.replace("logboom@", "logboom:***@"));
      }, () => "readyz never said the database is down");
      res = await ingest("refused\n", "api");
      assert.equal(res.status, 503, await res.text());
      assert.ok(res.headers.has("retry-after"));
      await pg.restart();
      res = await waiting;
      // Under way before the sink knew (200, stored) or after (503, retried by the client).
      const answer = await res.text();
      await until(async () => await readyz(url) === 200, () => "not ready");
      if (res.status === 503) {
        res = await ingest("while down\n", "api");
        assert.equal(res.status, 200, await res.text());
      } else assert.equal(res.status, 200, answer);
      assert.equal(
        (await pg.sql("SELECT count(*) FROM logs WHERE message = 'while down'")).trim(),
        "1",
      );
      assert.equal(
        (await pg.sql("SELECT count(*) FROM logs WHERE message = 'refused'")).trim(),
        "0",
      );

      // The search API reads the table: text, source glob, newest first, limit, context.
      res = await ingest("later boom\n", "web-2");
      assert.equal(res.status, 200, await res.text());
      const hits = await ndjson(`${url}/api/v1/search?q=boom&source=web*`);
      const done = hits.pop()!;
      assert.deepEqual(hits.map((h) => [h.line, h.source]), [
        ["later boom", "web-2"],
        ["GET /b 500 boom", "web"],
      ]);
      assert.equal(done.done, true);
      assert.equal(done.matched, 2);
      const regex = await ndjson(
        `${url}/api/v1/search?regex=${encodeURIComponent("\\bGET /[a-z] 2")}`,
      );
      assert.deepEqual(regex.slice(0, -1).map((h) => h.line), ["GET /a 200"]);
      const limited = await ndjson(`${url}/api/v1/search?limit=1`);
      assert.deepEqual(limited.map((h) => h.line ?? h.truncated), ["later boom", true]);
      const hit = hits[1];
      const around = await ndjson(
        `${url}/api/v1/search/context?file=${hit.file}&offset=${hit.offset}&before=1&after=0`,
      );
      assert.deepEqual(around.map((h) => [h.line, h.hit ?? false]), [
        ["GET /a 200", false],
        ["GET /b 500 boom", true],
      ]);
      const histogram = await (await fetch(`${url}/api/v1/search/histogram?buckets=1`))
        .json();
      assert.deepEqual(histogram.counts, [4]);
      // A pattern the linear engine takes and PostgreSQL's does not: an error line, not a crash.
      const bad = await ndjson(`${url}/api/v1/search?regex=${encodeURIComponent("(?P<n>boom)")}`);
      assert.equal(bad.length, 1);
      assert.match(String(bad[0].error), /regular expression/);
      assert.equal(await readyz(url), 200);
    } finally {
      await pg.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
