/**
 * Searching PostgreSQL (`search/pg.ts`) against a server of its own: filters as the file search
 * reads them, a search stopped early closes its connection, a costly statement ends at the
 * timeout.
 */

import assert from "node:assert/strict";
import type { Batch } from "../src/pipeline/batch.ts";
import { levelCode } from "../src/pipeline/record.ts";
import { PgSink } from "../src/pg/sink.ts";
import { PgSearch } from "../src/search/pg.ts";
import { parseQuery } from "../src/search/query.ts";
import { until } from "./_http.ts";
import { postgresMissing, startPostgres } from "./_postgres.ts";

const encoder = new TextEncoder();
const T0 = Date.parse("2026-11-30T10:00:00Z");

function batch(source: string, lines: string[], receivedAt: number, extra: Partial<Batch> = {}) {
  return {
    data: encoder.encode(lines.join("\n") + "\n"),
    lines: lines.length,
    meta: { source, host: "h", input: "test" },
    receivedAt,
    ...extra,
  } satisfies Batch;
}

async function lines(search: PgSearch, query: string): Promise<string[]> {
  const out: string[] = [];
  const found = search.search(parseQuery(new URLSearchParams(query), T0 + 3_600_000));
  for (;;) {
    const next = await found.next();
    if (next.done) break;
    for (const hit of next.value) out.push(`${hit.source} ${hit.level ?? "-"} ${hit.line}`);
  }
  return out;
}

Deno.test({
  name: "postgres search: filters, newest first, stopped early, bounded by the timeout",
  ignore: postgresMissing() !== undefined,
  async fn(t) {
    const server = await startPostgres();
    try {
      const url = server.url;
      const sink = new PgSink({ url, table: "logs" });
      sink.write(batch("web", ["GET /a 200", "GET /b 500"], T0));
      sink.write(batch("api", ["slow call", "fast call"], T0 + 1000, {
        levels: Uint8Array.of(levelCode("warn"), levelCode("debug")),
        fields: [{ "http.status": 503 }, { "http.status": 200 }],
      }));
      sink.write(batch("web-2", ["GET /c 500"], T0 + 2000));
      const filler: string[] = [];
      for (let i = 0; i < 20_000; i++) filler.push(`filler line ${i} ${"x".repeat(60)}`);
      sink.write(batch("bulk", filler, T0 - 60_000));
      await sink.flush();
      await sink.close();
      const search = new PgSearch({ url, table: "logs", timeoutMs: 30_000 });

      await t.step("each filter, newest first", async () => {
        assert.deepEqual(await lines(search, "q=T /c 5"), ["web-2 - GET /c 500"]);
        assert.deepEqual(await lines(search, "source=web*&q=GET"), [
          "web-2 - GET /c 500",
          "web - GET /b 500",
          "web - GET /a 200",
        ]);
        // A glob's _ and % are themselves, not LIKE's wildcards.
        assert.deepEqual(await lines(search, "source=w_b"), []);
        assert.deepEqual(await lines(search, "level=info"), ["api warn slow call"]);
        assert.deepEqual(await lines(search, "field.http.status=200"), ["api debug fast call"]);
        assert.deepEqual(await lines(search, `regex=${encodeURIComponent("^GET /[ab] ")}`), [
          "web - GET /b 500",
          "web - GET /a 200",
        ]);
        const from = new Date(T0 + 500).toISOString();
        const to = new Date(T0 + 1500).toISOString();
        // Newest first: of one batch, its last line first (as in a file).
        assert.deepEqual(await lines(search, `from=${from}&to=${to}`), [
          "api debug fast call",
          "api warn slow call",
        ]);
        // Case matters, as in the file search; a quote is just a character.
        assert.deepEqual(await lines(search, "q=get"), []);
        assert.deepEqual(
          await lines(search, `q=${encodeURIComponent("'; DROP TABLE logs; --")}`),
          [],
        );
      });

      await t.step("the limit cuts the answer and says so", async () => {
        const found = search.search(parseQuery(new URLSearchParams("source=bulk&limit=1200")));
        const numbers: number[] = [];
        let next;
        while (!(next = await found.next()).done) {
          for (const hit of next.value) numbers.push(Number(hit.line.split(" ")[2]));
        }
        // One batch over hundreds of pages, newest line first throughout.
        assert.equal(numbers.length, 1200);
        assert.deepEqual(numbers, Array.from({ length: 1200 }, (_, i) => 19_999 - i));
        assert.equal(next.value.truncated, true);
        assert.equal(next.value.matched, 1200);
      });

      await t.step("context: the rows stored around a hit, over pages", async () => {
        const found = search.search(parseQuery(new URLSearchParams("q=filler line 10000 ")));
        const [hit] = (await found.next()).value as { file: string; offset: number }[];
        await found.return(undefined as never);
        const around = await search.context(hit.file, hit.offset, 2, 2);
        assert.deepEqual(
          around?.map((h) => `${h.line.split(" ")[2]}${"hit" in h ? "*" : ""}`),
          ["9998", "9999", "10000*", "10001", "10002"],
        );
        assert.equal(await search.context("logs_p20991231", 0, 1, 1), undefined);
        assert.equal(await search.context("pg_class", 0, 1, 1), undefined);
      });

      await t.step("a search stopped after its first hits closes its connection", async () => {
        const active = async () =>
          Number(
            (await server.sql(
              "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'logboom search'",
            )).trim(),
          );
        const found = search.search(parseQuery(new URLSearchParams("q=filler&limit=100000")));
        const first = await found.next();
        assert.equal(first.done, false);
        assert.equal(await active(), 1);
        await found.return(undefined as never);
        await until(async () => await active() === 0, () => "the search's connection is open");
      });

      await t.step("a statement over search_timeout fails with the timeout", async () => {
        const hasty = new PgSearch({ url, table: "logs", timeoutMs: 1 });
        // A pattern PostgreSQL's engine pays for on each of 20,000 lines.
        const query = `regex=${encodeURIComponent("(x+x+)+y")}&limit=10`;
        await assert.rejects(() => lines(hasty, query), /statement timeout/);
      });
    } finally {
      await server.close();
    }
  },
});
