/**
 * Searching the PostgreSQL table (`pg/schema.ts`) instead of the files, with the answers of the
 * file search (`search.ts`): the same query (`query.ts`), hits newest first in batches read
 * through a cursor, the same histogram and context.
 *
 * - `q`: `strpos(message, q) > 0`, case-sensitive as the file search.
 * - `regex`: `message ~ pattern`, PostgreSQL's engine (the pattern was checked by the linear-time
 *   one first). That engine is not linear-time, so every step of a search runs under a
 *   `statement_timeout` (`search_timeout`, 30 s by default): a costly pattern fails with a
 *   timeout, it never runs on.
 * - `from`/`to`: on `ts`, the receive time (its index); `source`: `=` or `LIKE` for a glob;
 *   `level`: that level or above; `field.NAME=VALUE`: `fields->>'NAME' = 'VALUE'`.
 * - A hit's `file` is the partition and its `offset` the row's place in it (its `ctid` as
 *   block x 65,536 + item), which `context` reads around (rows in the order they were stored).
 *
 * A search that is cancelled (the client went away) cancels its statement on the server
 * (`pg_cancel_backend`) and closes its connection.
 *
 * @module
 */

import { levelCode, LEVELS } from "../pipeline/record.ts";
import { endClient, openClient, type PgClient, type QueryResult } from "../pg/client.ts";
import { TableNames } from "../pg/schema.ts";
import type { SearchQuery } from "./query.ts";
import type { Hit } from "./scan.ts";
import { emptySummary, type Histogram, type SearchSummary } from "./search.ts";

/** Rows fetched from the cursor at a time. */
const FETCH_ROWS = 500;

/** Where a PostgreSQL search reads. */
export interface PgSearchConfig {
  /** The database. */
  url: string;
  /** The table. */
  table: string;
  /** `statement_timeout` of each statement, in ms. */
  timeoutMs: number;
}

/** What the search routes ask of a store: the file search and this one both answer it. */
export interface SearchBackend {
  /** Hits newest first in batches, then the summary. */
  search(query: SearchQuery, signal?: AbortSignal): AsyncGenerator<Hit[], SearchSummary>;
  /** Counts per bucket of time. */
  histogram(query: SearchQuery, buckets: number, signal?: AbortSignal): Promise<Histogram>;
  /** The lines around one hit; `undefined` when `file` is not known. */
  context(
    file: string,
    offset: number,
    before: number,
    after: number,
    signal?: AbortSignal,
  ): Promise<(Hit & { hit?: true })[] | undefined>;
}

/** PostgreSQL searches registered by the running `postgres` sinks, by state folder. */
const registered = new Map<string | undefined, PgSearchConfig[]>();

/**
 * Makes the search routes of the server with state folder `stateDir` read from `config`'s table
 * (the last registered wins); returns what undoes it.
 */
export function registerPgSearch(
  stateDir: string | undefined,
  config: PgSearchConfig,
): () => void {
  const list = registered.get(stateDir) ?? [];
  list.push(config);
  registered.set(stateDir, list);
  return () => {
    const at = list.indexOf(config);
    if (at !== -1) list.splice(at, 1);
    if (list.length === 0 && registered.get(stateDir) === list) registered.delete(stateDir);
  };
}

/** The PostgreSQL search of the server with state folder `stateDir`, if one is registered. */
export function pgSearchFor(stateDir: string | undefined): SearchBackend | undefined {
  const config = registered.get(stateDir)?.at(-1);
  return config === undefined ? undefined : new PgSearch(config);
}

/** A search over one PostgreSQL table. */
export class PgSearch implements SearchBackend {
  readonly #config: PgSearchConfig;
  readonly #names: TableNames;

  /** @param config the table and its database. */
  constructor(config: PgSearchConfig) {
    this.#config = config;
    this.#names = new TableNames(config.table);
  }

  /** See {@linkcode SearchBackend.search}. */
  async *search(query: SearchQuery, signal?: AbortSignal): AsyncGenerator<Hit[], SearchSummary> {
    const summary = emptySummary();
    const session = await this.#open(signal);
    try {
      const { client } = session;
      const where = conditions(client, query);
      // One more than the limit tells whether the answer is cut.
      await session.query(
        "BEGIN READ ONLY;\n" +
          `DECLARE hits NO SCROLL CURSOR FOR SELECT ts, source, level, message, ` +
          `tableoid::regclass::text AS file, ctid::text AS rid FROM ${this.#names.table} ` +
          `${where} ORDER BY ts DESC, ctid DESC LIMIT ${query.limit + 1}`,
      );
      const files = new Set<string>();
      for (;;) {
        const res = await session.query(`FETCH ${FETCH_ROWS} FROM hits`);
        const rows = res.rows as unknown as Row[];
        const take = rows.slice(0, Math.max(0, query.limit - summary.matched));
        if (take.length < rows.length) summary.truncated = true;
        if (take.length > 0) {
          summary.matched += take.length;
          for (const row of take) files.add(row.file);
          summary.files = files.size;
          yield take.map(hitOf);
        }
        if (rows.length < FETCH_ROWS || summary.truncated) break;
      }
      return summary;
    } finally {
      await session.close();
    }
  }

  /** See {@linkcode SearchBackend.histogram}. */
  async histogram(
    query: SearchQuery,
    buckets: number,
    signal?: AbortSignal,
    now = Date.now(),
  ): Promise<Histogram> {
    const session = await this.#open(signal);
    try {
      const { client } = session;
      let { from, to } = query;
      if (!Number.isFinite(to)) to = now;
      if (!Number.isFinite(from)) {
        const res = await session.query(
          `SELECT (extract(epoch FROM min(ts)) * 1000)::float8 AS first FROM ${this.#names.table}`,
        );
        const first = res.rows[0]?.first;
        from = typeof first === "number" && first < to ? first : to - 3_600_000;
      }
      if (from >= to) from = to - 1;
      const stepMs = Math.max(1, Math.ceil((to - from) / buckets));
      const where = conditions(client, { ...query, from, to });
      const res = await session.query(
        `SELECT floor(((extract(epoch FROM ts) * 1000)::float8 - ${from}) / ${stepMs})::int ` +
          `AS bucket, count(*)::int AS n FROM ${this.#names.table} ${where} GROUP BY 1`,
      );
      const counts = new Array<number>(buckets).fill(0);
      for (const row of res.rows as { bucket: number; n: number }[]) {
        counts[Math.min(buckets - 1, Math.max(0, row.bucket))] += row.n;
      }
      return { from, to, stepMs, counts, unplaced: 0 };
    } finally {
      await session.close();
    }
  }

  /** See {@linkcode SearchBackend.context}: rows of the partition in the order stored. */
  async context(
    file: string,
    offset: number,
    before: number,
    after: number,
    signal?: AbortSignal,
  ): Promise<(Hit & { hit?: true })[] | undefined> {
    if (this.#names.dayOf(file) === undefined) return undefined;
    const session = await this.#open(signal);
    try {
      const exists = await session.query(`SELECT to_regclass('${file}') IS NOT NULL AS known`);
      if (exists.rows[0]?.known !== true) return undefined;
      const tid = `'(${Math.floor(offset / 65536)},${offset % 65536})'::tid`;
      const columns = `ts, source, level, message, '${file}' AS file, ctid::text AS rid`;
      const res = await session.query(
        `(SELECT ${columns} FROM ${file} WHERE ctid < ${tid} ORDER BY ctid DESC LIMIT ${before})` +
          ` UNION ALL (SELECT ${columns} FROM ${file} WHERE ctid >= ${tid} ORDER BY ctid ` +
          `LIMIT ${after + 1})`,
      );
      const hits = (res.rows as unknown as Row[]).map(hitOf);
      hits.sort((a, b) => a.offset - b.offset);
      const at = hits.findIndex((hit) => hit.offset === offset);
      if (at === -1) return [];
      return hits.map((hit, i) => i === at ? { ...hit, hit: true as const } : hit);
    } finally {
      await session.close();
    }
  }

  /** A connection for one search, with `statement_timeout` set, cancelled by `signal`. */
  async #open(signal?: AbortSignal): Promise<Session> {
    signal?.throwIfAborted();
    const client = await openClient(this.#config.url, 10_000, "logboom search");
    client.on("error", () => {}); // a connection lost mid-search fails its query
    try {
      await client.connect();
    } catch (err) {
      await endClient(client);
      throw err;
    }
    let running = false;
    const cancel = () => {
      if (running && client.processID !== null) {
        void cancelBackend(this.#config.url, client.processID);
      }
    };
    signal?.addEventListener("abort", cancel, { once: true });
    const session: Session = {
      client,
      async query(sql) {
        signal?.throwIfAborted();
        running = true;
        try {
          return await client.query(sql);
        } finally {
          running = false;
        }
      },
      async close() {
        signal?.removeEventListener("abort", cancel);
        await endClient(client);
      },
    };
    try {
      // A client that stops reading holds the search's transaction (and its locks) open at
      // most a minute past the statement timeout.
      const timeout = Math.max(1, Math.round(this.#config.timeoutMs));
      await session.query(
        `SET statement_timeout = ${timeout}; ` +
          `SET idle_in_transaction_session_timeout = ${timeout + 60_000}`,
      );
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }
}

interface Session {
  client: PgClient;
  query(sql: string): Promise<QueryResult>;
  close(): Promise<void>;
}

interface Row {
  ts: Date;
  source: string;
  level: string | null;
  message: string;
  file: string;
  /** The ctid as text: named apart, so that ORDER BY ctid sorts the tid, not its text. */
  rid: string;
}

function hitOf(row: Row): Hit {
  const [block, item] = row.rid.slice(1, -1).split(",").map(Number);
  return {
    ts: row.ts.getTime(),
    source: row.source,
    level: row.level,
    line: row.message,
    file: row.file,
    offset: block * 65536 + item,
  };
}

/** The query's WHERE clause, values as escaped literals. */
function conditions(client: PgClient, query: SearchQuery): string {
  const and: string[] = [];
  const literal = (value: string) => client.escapeLiteral(value);
  if (Number.isFinite(query.from)) {
    and.push(`ts >= ${literal(new Date(query.from).toISOString())}::timestamptz`);
  }
  if (Number.isFinite(query.to)) {
    and.push(`ts <= ${literal(new Date(query.to).toISOString())}::timestamptz`);
  }
  if (query.q !== undefined) and.push(`strpos(message, ${literal(query.q)}) > 0`);
  if (query.regex !== undefined) and.push(`message ~ ${literal(pgPattern(query.regex.source))}`);
  const glob = query.source?.pattern;
  if (glob !== undefined && glob !== "*") {
    if (!/[*?]/.test(glob)) and.push(`source = ${literal(glob)}`);
    else {
      const like = glob.replace(/[\\%_]/g, (c) => "\\" + c).replaceAll("*", "%").replaceAll(
        "?",
        "_",
      );
      and.push(`source LIKE ${literal(like)}`);
    }
  }
  if (query.minLevel > 0) {
    const levels = LEVELS.filter((level) => levelCode(level) >= query.minLevel);
    and.push(`level IN (${levels.map(literal).join(", ")})`);
  }
  for (const [name, value] of query.fields) {
    and.push(`fields->>${literal(name)} = ${literal(value)}`);
  }
  return and.length === 0 ? "" : "WHERE " + and.join(" AND ");
}

/**
 * A pattern of JavaScript's syntax for PostgreSQL's engine (ARE), where `\b` means a backspace:
 * its word boundary is `\y`. Other common syntax (`\d`, `\w`, `\s`, classes, `(?i)` at the
 * start) means the same in both.
 */
export function pgPattern(pattern: string): string {
  return pattern.replace(/((?:^|[^\\])(?:\\\\)*)\\b/g, "$1\\y");
}

/** Asks the server to cancel what process `pid` runs (a search whose client went away). */
async function cancelBackend(url: string, pid: number): Promise<void> {
  const client = await openClient(url, 5_000);
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT pg_cancel_backend($1)", [pid]);
  } catch {
    // The search ends with its connection anyway.
  } finally {
    await endClient(client);
  }
}
