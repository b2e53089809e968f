/**
 * The `postgres` sink (`pg/sink.ts`): lines stored as rows of a table partitioned by day, written
 * with COPY in transactions, retention by dropping partitions; the search API reads from it.
 *
 * @module
 */

import { pgSinkMetrics } from "../../api/metrics.ts";
import { checkUrl, envProblem, PgSink } from "../../pg/sink.ts";
import { checkTableName } from "../../pg/schema.ts";
import { registerPgSearch } from "../../search/pg.ts";
import { DEFAULT_LABELS } from "../../store/path_template.ts";
import { defineSink } from "../component.ts";
import type { KeyTable } from "../keys.ts";

/** The keys of a `postgres` sink. */
export const POSTGRES_KEYS = {
  url: {
    type: "string",
    required: true,
    nonEmpty: true,
    check: checkUrl,
    doc: "The database, as postgres://user:password@host:5432/database (libpq's PG* " +
      "environment variables fill in what it leaves out)",
  },
  table: {
    type: "string",
    default: "logs",
    check: (name) => checkTableName(name),
    doc: "The table, created with its daily partitions and indexes when missing",
  },
  transaction_rows: {
    type: "count",
    default: 10_000,
    min: 1,
    max: 1_000_000,
    doc: "Most rows one transaction writes (one COPY); what is queued is written at once, " +
      "up to this",
  },
  queue_bytes: {
    type: "size",
    default: "64MiB",
    doc: "Bound of the queue in front of the database; when full, inputs push back on senders",
  },
  max_age: {
    type: "duration",
    doc: "Drop daily partitions whose day ended longer ago than this, e.g. 30d (checked hourly)",
  },
  search: {
    type: "bool",
    default: true,
    doc: "Whether the search API (and the page's search) reads from this table",
  },
  search_timeout: {
    type: "duration",
    default: "30s",
    doc: "statement_timeout of each step of a search (PostgreSQL's regex engine is not " +
      "linear-time: this bounds a costly pattern)",
  },
} as const satisfies KeyTable;

/** The `postgres` sink component. */
export const postgresSink = defineSink({
  type: "postgres",
  service: "PostgreSQL",
  doc: "Lines stored as rows of a PostgreSQL table partitioned by day, written with COPY",
  keys: POSTGRES_KEYS,
  refuse: () => envProblem(),
  build(name, values, context) {
    const sink = new PgSink({
      url: values.url,
      table: values.table,
      transactionRows: values.transaction_rows,
      queueBytes: values.queue_bytes,
      maxAgeMs: values.max_age,
      name,
    });
    if (values.search) {
      const unregister = registerPgSearch(context.stateDir, {
        url: values.url,
        table: values.table,
        timeoutMs: values.search_timeout,
      });
      const close = sink.close.bind(sink);
      sink.close = async (options) => {
        unregister();
        await close(options);
      };
    }
    return Promise.resolve({
      sink,
      metrics: () => pgSinkMetrics(name, sink.stats),
      queueBytes: values.queue_bytes,
      // Each line's time, level and fields are columns of the table.
      // and the labels syslog parses (app, facility, severity) go to `labels`.
      reads: {
        labels: new Set(["host", ...DEFAULT_LABELS]),
        times: true,
        levels: true,
        fields: true,
      },
      outputs: [],
    });
  },
});
