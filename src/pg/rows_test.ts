import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { copyJson, copyText, encodeRows } from "./rows.ts";
import { checkTableName, TableNames } from "./schema.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const T = Date.parse("2026-11-30T10:00:00.000Z");

function batch(text: string, extra: Partial<Batch> = {}): Batch {
  return {
    data: encoder.encode(text),
    lines: text.split("\n").length - 1,
    meta: { source: "web", host: "10.0.0.5", input: "tcp" },
    receivedAt: T,
    ...extra,
  };
}

Deno.test("COPY rows: one per line, NULLs, escapes", () => {
  const rows = encodeRows(batch("a\tb\\c\rd\nplain\n"));
  assert.equal(rows.rows, 2);
  assert.equal(
    decoder.decode(rows.data),
    "2026-11-30T10:00:00.000Z\t\\N\tweb\t10.0.0.5\t\\N\ta\\tb\\\\c\\rd\t\\N\t\\N\n" +
      "2026-11-30T10:00:00.000Z\t\\N\tweb\t10.0.0.5\t\\N\tplain\t\\N\t\\N\n",
  );
});

Deno.test("COPY rows: time, level, fields and labels where the batch has them", () => {
  const rows = encodeRows(batch("x\ny\n", {
    meta: { source: "s\tt", host: "h", input: "syslog", labels: { app: "nginx" } },
    times: Float64Array.of(T - 500, NaN),
    levels: Uint8Array.of(5, 0),
    fields: [{ "http.status": 500, path: "a\\b" }, {}],
  }));
  assert.equal(
    decoder.decode(rows.data),
    "2026-11-30T10:00:00.000Z\t2026-11-30T09:59:59.500Z\ts\\tt\th\terror\tx\t" +
      '{"http.status":500,"path":"a\\\\\\\\b"}\t{"app":"nginx"}\n' +
      '2026-11-30T10:00:00.000Z\t\\N\ts\\tt\th\t\\N\ty\t\\N\t{"app":"nginx"}\n',
  );
});

Deno.test("COPY rows: what PostgreSQL would refuse is made storable", () => {
  // NUL cannot be in text nor jsonb; bytes that are not UTF-8 are replaced.
  assert.equal(copyText("a\u0000b"), "a\uFFFDb");
  assert.equal(copyJson({ k: "a\u0000b" }), '{"k":"a\uFFFDb"}');
  assert.equal(copyJson({}), "\\N");
  assert.equal(copyJson(undefined), "\\N");
  const bad = encodeRows(batch("", { data: Uint8Array.of(0x61, 0xff, 10), lines: 1 }));
  assert.match(decoder.decode(bad.data), /\ta\uFFFD\t/);
  // A receive time that is not one (a clock gone wrong) is taken as now: the row still has a day.
  const before = Date.now();
  const odd = encodeRows(batch("z\n", { receivedAt: NaN }));
  assert.ok(odd.receivedAt >= before && odd.receivedAt <= Date.now());
  assert.ok(encodeRows(batch("z\n", { receivedAt: 1e16 })).receivedAt <= Date.now());
});

Deno.test("table names: checked, partitions named by day and read back", () => {
  assert.equal(checkTableName("logs_2"), undefined);
  for (const bad of ["Logs", "1logs", "logs;drop", "", "a".repeat(41), 'x"y']) {
    assert.ok(checkTableName(bad) !== undefined, bad);
  }
  assert.throws(() => new TableNames("no-dash"), /Bad table name/);
  const names = new TableNames("logs");
  const day = Date.parse("2026-11-30T00:00:00Z");
  assert.equal(names.partition(day), "logs_p20261130");
  assert.equal(names.dayOf("logs_p20261130"), day);
  assert.equal(names.dayOf("logs_sequences"), undefined);
  assert.equal(names.dayOf("logs_p2026113"), undefined);
});
