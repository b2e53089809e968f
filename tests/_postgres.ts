/**
 * A PostgreSQL server of the tests' own: `initdb` in a temp folder, then `postgres` on a free
 * loopback port (below 32768), trust authentication for user `logboom`, `fsync=off` (the tests
 * check what logboom sends, not the server's durability). PostgreSQL refuses to run as root: as
 * root, its programs run as the `postgres` user (Debian's package makes it) through `setpriv`.
 *
 * When PostgreSQL is not installed, {@linkcode postgresMissing} says what to install and the tests
 * that need it are skipped (`ignore`), printing that once.
 *
 * @module
 */

import { freePort } from "./_server.ts";

/** Where Debian puts PostgreSQL's programs; the newest version is used. */
const PG_ROOT = "/usr/lib/postgresql";

/** The folder of `initdb` and `postgres`, or `undefined` when not installed. */
export function postgresBin(): string | undefined {
  const fromEnv = Deno.env.get("LOGBOOM_PG_BIN");
  if (fromEnv) return fromEnv;
  let versions: string[];
  try {
    versions = [...Deno.readDirSync(PG_ROOT)].map((e) => e.name).filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    try {
      Deno.statSync(`${PG_ROOT}/${version}/bin/postgres`);
      return `${PG_ROOT}/${version}/bin`;
    } catch {
      // not this one
    }
  }
  return undefined;
}

let told = false;

/**
 * Why the PostgreSQL tests cannot run here (what to install), or `undefined` when they can.
 * Printed once per process when it is not `undefined`.
 */
export function postgresMissing(): string | undefined {
  const missing = postgresBin() === undefined
    ? "PostgreSQL is not installed: the PostgreSQL sink tests are skipped. Install it with " +
      "apt-get install postgresql (Debian/Ubuntu), or set LOGBOOM_PG_BIN to its bin folder"
    : undefined;
  if (missing !== undefined && !told) {
    told = true;
    console.warn(missing);
  }
  return missing;
}

/** A running PostgreSQL server. */
export interface PgServer {
  /** `postgres://logboom@127.0.0.1:PORT/logboom`. */
  readonly url: string;
  readonly port: number;
  /** Stops it (fast shutdown) and deletes its folder. */
  close(): Promise<void>;
  /**
   * Stops it at once, keeping its data: immediate shutdown (SIGQUIT), which ends every backend
   * without a checkpoint, as a crash would (a restart recovers from the WAL).
   */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** Runs one SQL text with psql and returns its unaligned, tuples-only output. */
  sql(text: string): Promise<string>;
}

/** Options of {@linkcode startPostgres}. */
export interface PgServerOptions {
  /** Keep PostgreSQL's defaults: fsync and full page writes on (benchmarks). Default false. */
  durable?: boolean;
}

/** Starts a server; call {@linkcode postgresMissing} first. */
export async function startPostgres(options: PgServerOptions = {}): Promise<PgServer> {
  const bin = postgresBin();
  if (bin === undefined) throw new Error(postgresMissing());
  const dir = await Deno.makeTempDir({ prefix: "logboom-pg-" });
  // `id`, not Deno.uid(): the bench task has no --allow-sys.
  const asRoot = (await run(["id", "-u"], [])).trim() === "0";
  let user: string[] = [];
  if (asRoot) {
    const id = await run(["id", "-u", "postgres"], []);
    const gid = await run(["id", "-g", "postgres"], []);
    await run(["chown", "-R", `${id.trim()}:${gid.trim()}`, dir], []);
    user = ["setpriv", `--reuid=${id.trim()}`, `--regid=${gid.trim()}`, "--clear-groups", "--"];
  }
  const data = `${dir}/data`;
  await run([
    `${bin}/initdb`,
    "-D",
    data,
    "-U",
    "logboom",
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
    "--no-instructions",
  ], user);
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command(user[0] ?? `${bin}/postgres`, {
      args: [
        ...user.slice(1),
        ...(user.length > 0 ? [`${bin}/postgres`] : []),
        "-D",
        data,
        "-p",
        String(port),
        "-k",
        dir,
        "-c",
        "listen_addresses=127.0.0.1",
        ...(options.durable ? [] : ["-c", "fsync=off", "-c", "full_page_writes=off"]),
        "-c",
        "max_connections=40",
        "-c",
        `shared_buffers=${options.durable ? "128MB" : "32MB"}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const log: string[] = [];
    const decoder = new TextDecoder();
    // Drained, so the server never blocks on a full pipe; kept for a failure's message.
    child.stderr.pipeTo(
      new WritableStream({ write: (chunk) => void log.push(decoder.decode(chunk)) }),
    ).catch(() => {});
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await new Deno.Command(`${bin}/pg_isready`, {
        args: ["-h", "127.0.0.1", "-p", String(port), "-U", "logboom", "-d", "postgres"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (ready.success) break;
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL did not start on port ${port}: ${log.join("")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const stop = async (signal: Deno.Signal) => {
    if (child === undefined) return;
    const proc = child;
    child = undefined;
    try {
      proc.kill(signal);
    } catch {
      // already gone
    }
    await proc.status;
  };
  await start();
  const url = `postgres://logboom@127.0.0.1:${port}/logboom`;
  const server = ["-h", "127.0.0.1", "-p", String(port), "-U", "logboom"];
  const sql = (text: string) =>
    run([
      `${bin}/psql`,
      ...server,
      "-d",
      "logboom",
      "-X",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-c",
      text,
    ], []);
  await sql("SELECT 1").catch(async () => {
    await run([`${bin}/createdb`, ...server, "logboom"], []);
  });
  return {
    url,
    port,
    sql,
    kill: () => stop("SIGQUIT"),
    restart: start,
    async close() {
      await stop("SIGINT");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs `args` (after `prefix`, e.g. setpriv's), returns its stdout, throws with its stderr. */
async function run(args: string[], prefix: string[]): Promise<string> {
  const all = [...prefix, ...args];
  const out = await new Deno.Command(all[0], {
    args: all.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!out.success) {
    throw new Error(`${args.join(" ")} failed: ${decoder.decode(out.stderr)}`);
  }
  return decoder.decode(out.stdout);
}
