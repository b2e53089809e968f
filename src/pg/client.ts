/**
 * The few parts of `pg` (node-postgres) and `pg-copy-streams` logboom uses, typed here: their
 * `@types` packages bring `@types/node`, which would retype Deno's own globals (`setTimeout`'s
 * id) for the whole program.
 *
 * `pg` sets TCP_NODELAY on its socket (`connection.js`: `stream.setNoDelay(true)`), so a COPY's
 * last message is not held back by Nagle's algorithm waiting for the server's delayed ACK (which
 * cost the `postgres` package about 87 ms per COPY here, FIELD_NOTES).
 *
 * @module
 */

import type { Rows } from "./rows.ts";

/** `pg` and `pg-copy-streams`, once loaded. */
let modules:
  | { Client: new (options: unknown) => PgClient; copyFrom: (sql: string) => CopyStream }
  | undefined;

/**
 * Loads `pg` and `pg-copy-streams`, once, when a client is first opened: `pg` reads the
 * environment as it loads (`USER`, `PG*`), which would ask a terminal user for env permission (or
 * be refused) in every run of logboom, PostgreSQL configured or not.
 */
async function load(): Promise<NonNullable<typeof modules>> {
  if (modules === undefined) {
    const [pg, copy] = await Promise.all([import("pg"), import("pg-copy-streams")]);
    modules = {
      Client: (pg.default as unknown as { Client: new (options: unknown) => PgClient }).Client,
      copyFrom: copy.from as unknown as (sql: string) => CopyStream,
    };
  }
  return modules;
}

/** A result of one statement. */
export interface QueryResult {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}

/** A writable COPY stream (a Node `Writable`). */
interface CopyStream {
  write(chunk: Uint8Array): boolean;
  end(): void;
  on(event: "error", listener: (err: Error) => void): void;
  on(event: "finish", listener: () => void): void;
}

/** A `pg.Client`, as far as it is used. */
export interface PgClient {
  connect(): Promise<void>;
  end(): Promise<void>;
  /** One statement with `$1` parameters, or several separated by `;` without (an array then). */
  query(sql: string, values?: unknown[]): Promise<QueryResult>;
  query(copy: CopyStream): CopyStream;
  escapeLiteral(text: string): string;
  on(event: "error", listener: (err: Error) => void): void;
  on(event: "end", listener: () => void): void;
  /** The server process's id, for `pg_cancel_backend`. */
  readonly processID: number | null;
}

/**
 * A client for `url` (not connected yet), named `applicationName` in `pg_stat_activity` (the
 * sink's is `logboom`, a search's `logboom search`); with `queryTimeoutMs`, a statement whose
 * answer takes longer fails on the client's side (the caller then drops the connection).
 */
export async function openClient(
  url: string,
  connectTimeoutMs: number,
  applicationName = "logboom",
  queryTimeoutMs?: number,
): Promise<PgClient> {
  const { Client } = await load();
  return new Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
    // Probes after 10 s of silence: a server gone without closing the socket is noticed.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: applicationName,
    ...(queryTimeoutMs === undefined ? {} : { query_timeout: queryTimeoutMs }),
  });
}

/** Bytes of COPY data sent per message, about. */
const CHUNK_BYTES = 256 * 1024;

/** Sends `rows` through one `COPY ... FROM STDIN`; resolves once the server took them all. */
export function copyRows(client: PgClient, sql: string, rows: readonly Rows[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // Loaded with the client.
    const stream = client.query(modules!.copyFrom(sql));
    stream.on("error", reject);
    stream.on("finish", () => resolve());
    // Few large messages: each chunk costs two socket writes (its header, its bytes).
    let pending: Uint8Array[] = [];
    let size = 0;
    const send = () => {
      if (pending.length === 1) stream.write(pending[0]);
      else if (pending.length > 1) {
        const joined = new Uint8Array(size);
        let at = 0;
        for (const part of pending) {
          joined.set(part, at);
          at += part.length;
        }
        stream.write(joined);
      }
      pending = [];
      size = 0;
    };
    for (const r of rows) {
      if (size + r.data.length > CHUNK_BYTES && pending.length > 0) send();
      pending.push(r.data);
      size += r.data.length;
    }
    send();
    stream.end();
  });
}

/**
 * Ends `client`'s connection, waiting at most `timeoutMs` (a server that vanished without closing
 * the socket would hold `end()` until TCP gives up); never throws.
 */
export async function endClient(client: PgClient, timeoutMs = 2000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    client.end().catch(() => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
  ]);
  clearTimeout(timer);
}
