/**
 * The PostgreSQL table logboom writes, its daily partitions and their retention, and the SQL the
 * sink and the search send. Every statement that changes the schema runs under an advisory lock
 * of the table, so several workers starting together, or creating the same day's partition, wait
 * for each other instead of failing.
 *
 * The table (`logs` by default):
 *
 * | column    | type          | what                                                        |
 * | --------- | ------------- | ----------------------------------------------------------- |
 * | `ts`      | `timestamptz` | when logboom received the line; the partition key           |
 * | `time`    | `timestamptz` | the line's own time as its sender stated it, or NULL        |
 * | `source`  | `text`        | the source (`tcp`, an HTTP client's `source`, ...)          |
 * | `host`    | `text`        | the sending host                                            |
 * | `level`   | `text`        | `trace` ... `fatal`, or NULL                                |
 * | `message` | `text`        | the line, without its newline                               |
 * | `fields`  | `jsonb`       | the line's fields (dotted keys), or NULL                    |
 * | `labels`  | `jsonb`       | what the input parsed for the batch (syslog's app...), or NULL |
 *
 * partitioned by day of `ts` (UTC) as `<table>_pYYYYMMDD`, with indexes on `(ts)`,
 * `(source, ts)` and `(level, ts)` (of the rows with a level); and `<table>_sequences (consumer, seq, stored_at)`, the
 * stream sequences stored per consumer, and `<table>_consumers (consumer, last_seq, updated_at)`,
 * each consumer's highest.
 *
 * @module
 */

/** How long a schema change waits for the table's lock (see `createPartitions`). */
const LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'";

/** One day in ms. */
export const DAY_MS = 86_400_000;

/** What a table name may be: it is put into SQL, so nothing that needs quoting. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

/** Why `name` cannot be a table name, or `undefined`. */
export function checkTableName(name: string): string | undefined {
  if (!TABLE_NAME.test(name)) {
    return "a table name is 1 to 40 of a-z, 0-9 and _, not starting with a digit";
  }
}

/** The names of one table's relations. */
export class TableNames {
  /** The partitioned table. */
  readonly table: string;
  /** The stream sequences stored. */
  readonly sequences: string;
  /** Each consumer's highest sequence. */
  readonly consumers: string;

  /** @param table a name {@linkcode checkTableName} accepts. */
  constructor(table: string) {
    const problem = checkTableName(table);
    if (problem !== undefined) throw new RangeError(`Bad table name "${table}": ${problem}`);
    this.table = table;
    this.sequences = `${table}_sequences`;
    this.consumers = `${table}_consumers`;
  }

  /** The partition holding day `dayStart` (ms, midnight UTC). */
  partition(dayStart: number): string {
    return `${this.table}_p${new Date(dayStart).toISOString().slice(0, 10).replaceAll("-", "")}`;
  }

  /** The day a partition's name holds (ms, midnight UTC), or `undefined` for another name. */
  dayOf(partition: string): number | undefined {
    const match = /^(\d{4})(\d{2})(\d{2})$/.exec(partition.slice(this.table.length + 2));
    if (!partition.startsWith(`${this.table}_p`) || match === null) return undefined;
    return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  }

  /** The advisory lock key of the table's schema changes (a SQL expression). */
  get lock(): string {
    return `pg_advisory_xact_lock(hashtext('logboom:${this.table}'))`;
  }

  /** The statements creating the table, its indexes and the sequence tables (idempotent). */
  create(): string {
    const t = this.table;
    return [
      "BEGIN",
      `SELECT ${this.lock}`,
      `CREATE TABLE IF NOT EXISTS ${t} (ts timestamptz NOT NULL, time timestamptz, ` +
      `source text NOT NULL, host text NOT NULL, level text, message text NOT NULL, ` +
      `fields jsonb, labels jsonb) PARTITION BY RANGE (ts)`,
      `CREATE INDEX IF NOT EXISTS ${t}_ts ON ${t} (ts)`,
      `CREATE INDEX IF NOT EXISTS ${t}_source_ts ON ${t} (source, ts)`,
      // Lines without a level (plain text) cost this index nothing.
      `CREATE INDEX IF NOT EXISTS ${t}_level_ts ON ${t} (level, ts) WHERE level IS NOT NULL`,
      `CREATE TABLE IF NOT EXISTS ${this.sequences} (consumer text NOT NULL, ` +
      `seq bigint NOT NULL, stored_at timestamptz NOT NULL DEFAULT now(), ` +
      `PRIMARY KEY (consumer, seq))`,
      `CREATE TABLE IF NOT EXISTS ${this.consumers} (consumer text PRIMARY KEY, ` +
      `last_seq bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
      "COMMIT",
    ].join(";\n");
  }

  /**
   * The statements creating the partitions of `days` (ms, midnight UTC) that are missing. A
   * partition is created under an exclusive lock of the table, which waits for the searches
   * reading it, and writes would queue behind that wait: `lock_timeout` gives up after 5 s
   * instead (tried again later; partitions are made days ahead).
   */
  createPartitions(days: Iterable<number>): string {
    const statements = ["BEGIN", LOCK_TIMEOUT, `SELECT ${this.lock}`];
    for (const day of days) {
      const from = new Date(day).toISOString();
      const to = new Date(day + DAY_MS).toISOString();
      statements.push(
        `CREATE TABLE IF NOT EXISTS ${this.partition(day)} PARTITION OF ${this.table} ` +
          `FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }
    statements.push("COMMIT");
    return statements.join(";\n");
  }

  /** The query listing the table's partitions by name. */
  listPartitions(): string {
    return `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid ` +
      `WHERE i.inhparent = '${this.table}'::regclass ORDER BY 1`;
  }

  /** The statements dropping `partitions` (names from {@linkcode TableNames.partition}). */
  dropPartitions(partitions: readonly string[]): string {
    return [
      "BEGIN",
      LOCK_TIMEOUT,
      `SELECT ${this.lock}`,
      ...partitions.map((name) => `DROP TABLE IF EXISTS ${name}`),
      "COMMIT",
    ].join(";\n");
  }
}

/** Midnight UTC of the day `ms` falls in. */
export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}
