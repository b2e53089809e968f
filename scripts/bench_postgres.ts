/**
 * PostgreSQL sink benchmark (`deno task bench -scenario postgres`, or this file alone): rows/s of
 * the sink (`pg/sink.ts`) into a table with its three indexes, on a PostgreSQL server of its own
 * with the durable defaults (fsync on, one WAL flush per commit), for transactions of 100, 1,000
 * and 10,000 rows; against a minimal client in the same run: the same rows, already encoded,
 * sent with `COPY` in transactions of the same size on one connection (no queue, no encoding,
 * no partition check, no sequence row). Then the exactly-once path (`writeSequenced`, messages of
 * 1,000 lines, 10 per transaction), and the time of a one-row transaction (Nagle's delay would
 * show here as tens of ms). Alternating rounds, medians.
 *
 * Needs PostgreSQL (`apt-get install postgresql`); nothing from ../shared.
 *
 * @module
 */

import { median } from "./_median.ts";
import { postgresMissing, startPostgres } from "../tests/_postgres.ts";
import type { Batch } from "../src/pipeline/batch.ts";
import { copyRows, openClient } from "../src/pg/client.ts";
import { COPY_COLUMNS, encodeRows, type Rows } from "../src/pg/rows.ts";
import { TableNames } from "../src/pg/schema.ts";
import { PgSink } from "../src/pg/sink.ts";

const ROWS = Number(Deno.env.get("BENCH_PG_ROWS") ?? 300_000);
const LINES_PER_BATCH = 100;
const SIZES = [100, 1000, 10_000];
/** The sink must reach this share of the minimal client's rows/s at 10,000 rows. */
const BAR = 0.7;

const encoder = new TextEncoder();

/** Batches of realistic lines (about 110 bytes), 100 lines each, received now. */
function makeBatches(total: number): Batch[] {
  const batches: Batch[] = [];
  const now = Date.now();
  for (let b = 0; b < total / LINES_PER_BATCH; b++) {
    let text = "";
    for (let i = 0; i < LINES_PER_BATCH; i++) {
      const n = b * LINES_PER_BATCH + i;
      text += `2026-11-30T10:00:00Z INFO api request id=${n} path=/v1/items/${n % 977} ` +
        `status=200 ms=${n % 91} user=u${n % 313}\n`;
    }
    batches.push({
      data: encoder.encode(text),
      lines: LINES_PER_BATCH,
      meta: { source: `app-${b % 4}`, host: "10.0.0.5", input: "bench" },
      receivedAt: now,
    });
  }
  return batches;
}

/** Rows/s of the sink at `size` rows per transaction, into a fresh table. */
async function runSink(url: string, table: string, batches: Batch[], size: number) {
  const sink = new PgSink({ url, table, transactionRows: size, queueBytes: 1024 ** 3 });
  await sink.maintain(); // connected, table and partitions made: not timed
  const t0 = performance.now();
  for (const batch of batches) sink.write(batch);
  await sink.flush();
  const seconds = (performance.now() - t0) / 1000;
  const transactions = sink.stats.transactions;
  await sink.close();
  return { rowsPerSecond: ROWS / seconds, transactions };
}

/** Rows/s of a minimal client: pre-encoded rows, COPY per `size` rows, one connection. */
async function runMinimal(url: string, table: string, rows: Rows[], size: number) {
  const names = new TableNames(table);
  const client = await openClient(url, 10_000);
  await client.connect();
  try {
    await client.query(names.create());
    await client.query(names.createPartitions([Math.floor(Date.now() / 86_400_000) * 86_400_000]));
    const copy = `COPY ${table} (${COPY_COLUMNS.join(", ")}) FROM STDIN`;
    const perTransaction = Math.max(1, size / LINES_PER_BATCH);
    const t0 = performance.now();
    for (let i = 0; i < rows.length; i += perTransaction) {
      await client.query("BEGIN");
      await copyRows(client, copy, rows.slice(i, i + perTransaction));
      await client.query("COMMIT");
    }
    return { rowsPerSecond: ROWS / ((performance.now() - t0) / 1000) };
  } finally {
    await client.end();
  }
}

/** Rows/s of `writeSequenced`: messages of 1,000 lines, 10 per call (one transaction). */
async function runSequenced(url: string, table: string, batches: Batch[]) {
  const sink = new PgSink({ url, table });
  await sink.maintain();
  const perMessage = 1000 / LINES_PER_BATCH;
  const t0 = performance.now();
  let seq = 0;
  for (let i = 0; i < batches.length; i += perMessage * 10) {
    const messages = [];
    for (let m = 0; m < 10 && i + m * perMessage < batches.length; m++) {
      const at = i + m * perMessage;
      messages.push({ seq: ++seq, batches: batches.slice(at, at + perMessage) });
    }
    await sink.writeSequenced("bench", messages);
  }
  const seconds = (performance.now() - t0) / 1000;
  await sink.close();
  return { rowsPerSecond: ROWS / seconds };
}

/** Milliseconds per one-row transaction (flush after each write), median of 200. */
async function oneRowMs(url: string, table: string) {
  const sink = new PgSink({ url, table });
  await sink.maintain();
  const [batch] = makeBatches(LINES_PER_BATCH);
  const one: Batch = {
    ...batch,
    data: batch.data.subarray(0, batch.data.indexOf(10) + 1),
    lines: 1,
  };
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    sink.write(one);
    await sink.flush();
    times.push(performance.now() - t0);
  }
  await sink.close();
  return median(times);
}

/** Runs the benchmark for `rounds` rounds; returns the bars that were missed. */
export async function benchPostgres(rounds: number): Promise<string[]> {
  if (postgresMissing() !== undefined) {
    console.log("Skipped postgres: PostgreSQL is not installed (apt-get install postgresql)");
    return [];
  }
  const server = await startPostgres({ durable: true });
  try {
    const version = (await server.sql("SHOW server_version")).trim();
    console.log(
      `PostgreSQL ${version} (fsync on), ${ROWS} rows of ~110 B per run in batches of ` +
        `${LINES_PER_BATCH}, table with indexes on (ts), (source, ts), (level, ts); ` +
        `${rounds} rounds`,
    );
    const batches = makeBatches(ROWS);
    const rows = batches.map(encodeRows);
    const sink = SIZES.map(() => [] as number[]);
    const minimal = SIZES.map(() => [] as number[]);
    const sequenced: number[] = [];
    let run = 0;
    const drop = (table: string) =>
      server.sql(`DROP TABLE ${table}, ${table}_sequences, ${table}_consumers`);
    for (let r = 0; r < rounds; r++) {
      const parts: string[] = [];
      for (const [i, size] of SIZES.entries()) {
        const a = `b${run++}`;
        const m = await runMinimal(server.url, a, rows, size);
        await drop(a);
        const b = `b${run++}`;
        const s = await runSink(server.url, b, batches, size);
        await drop(b);
        minimal[i].push(m.rowsPerSecond);
        sink[i].push(s.rowsPerSecond);
        parts.push(
          `${size}/tx ${(s.rowsPerSecond / 1000).toFixed(0)}k vs ${
            (m.rowsPerSecond / 1000).toFixed(0)
          }k`,
        );
      }
      const q = `b${run++}`;
      const seq = await runSequenced(server.url, q, batches);
      await drop(q);
      sequenced.push(seq.rowsPerSecond);
      parts.push(`exactly-once 10x1000/tx ${(seq.rowsPerSecond / 1000).toFixed(0)}k`);
      console.log(`  rows/s sink vs minimal COPY: ${parts.join(" | ")}`);
    }
    const t = `b${run++}`;
    const ms = await oneRowMs(server.url, t);
    await drop(t);
    const missed: string[] = [];
    const summary = SIZES.map((size, i) => {
      const ratio = median(sink[i]) / median(minimal[i]);
      if (size === 10_000 && ratio < BAR) {
        missed.push(`postgres at 10,000 rows/tx ${(ratio * 100).toFixed(0)}% < ${BAR * 100}%`);
      }
      return `${size} rows/tx: ${(median(sink[i]) / 1000).toFixed(0)}k rows/s ` +
        `(${(ratio * 100).toFixed(0)}% of minimal ${(median(minimal[i]) / 1000).toFixed(0)}k)`;
    });
    console.log(`Medians: ${summary.join("; ")}`);
    console.log(
      `Exactly-once (writeSequenced, 10 messages of 1,000 lines per transaction): ` +
        `${(median(sequenced) / 1000).toFixed(0)}k rows/s; one-row transaction: ` +
        `${ms.toFixed(2)} ms (median of 200; no Nagle delay)`,
    );
    return missed;
  } finally {
    await server.close();
  }
}

if (import.meta.main) {
  const rounds = Number(Deno.args[Deno.args.indexOf("-rounds") + 1] ?? 3) || 3;
  const missed = await benchPostgres(rounds);
  if (missed.length > 0) {
    console.log(`Bar missed: ${missed.join("; ")}`);
    Deno.exit(1);
  }
}
