/**
 * TCP -> file without the shared yardstick (`../shared/bench`, Go): what `deno task bench -scenario
 * tcp` measures on a plain clone. C connections send N unique lines of S bytes each
 * (`c<conn> <seq> <filler>`, as the shared load generator does), timed from the first byte sent
 * to the last byte in the file; the file is then checked line by line for missing, duplicated and
 * torn lines. The load generator runs in this process, so it competes with the server for the
 * CPU just as the Go one does; no peer is run, so there is no ratio.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { median } from "./_median.ts";
import { cpuSeconds, freePort, peakRssKb } from "./_proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The workload: connections, lines per connection, bytes per line (newline included). */
export interface TcpLoad {
  c: number;
  n: number;
  s: number;
}

/** One round's figures. */
export interface TcpAloneRun {
  rate: number;
  mbps: number;
  missing: number;
  duplicated: number;
  torn: number;
  rssKb: number;
  cpu: number;
}

/**
 * Writes lines `from` to `to` (exclusive) of connection `conn` into `buf`, returns their bytes.
 * Byte by byte into one reused buffer: generating the load must cost far less than storing it.
 */
function fillLines(buf: Uint8Array, conn: number, from: number, to: number, s: number): number {
  const prefix = new TextEncoder().encode(`c${conn} `);
  let at = 0;
  for (let seq = from; seq < to; seq++) {
    buf.fill(0x78, at, at + s - 1); // "x"
    buf.set(prefix, at);
    let digits = 1;
    for (let rest = seq; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let pos = at + prefix.length + digits;
    buf[pos] = 0x20;
    for (let rest = seq; digits > 0; digits--, rest = Math.floor(rest / 10)) {
      buf[--pos] = 0x30 + rest % 10;
    }
    buf[at + s - 1] = 0x0a;
    at += s;
  }
  return at;
}

async function send(port: number, conn: number, load: TcpLoad): Promise<void> {
  using socket = await Deno.connect({ hostname: "127.0.0.1", port });
  const step = Math.max(1, Math.floor((1 << 20) / load.s));
  const buf = new Uint8Array(step * load.s);
  for (let from = 0; from < load.n; from += step) {
    const end = fillLines(buf, conn, from, Math.min(load.n, from + step), load.s);
    for (let offset = 0; offset < end;) {
      offset += await socket.write(buf.subarray(offset, end));
    }
  }
}

/** Counts missing, duplicated and torn lines in `path`, reading it in chunks. */
async function verify(path: string, load: TcpLoad) {
  const seen = new Uint8Array(load.c * load.n);
  let duplicated = 0;
  let torn = 0;
  const check = (line: string) => {
    const match = /^c(\d+) (\d+) x*$/.exec(line);
    const conn = match ? Number(match[1]) : NaN;
    const seq = match ? Number(match[2]) : NaN;
    if (!match || line.length !== load.s - 1 || !(conn < load.c) || !(seq < load.n)) {
      torn++;
      return;
    }
    if (seen[conn * load.n + seq]) duplicated++;
    seen[conn * load.n + seq] = 1;
  };
  using file = await Deno.open(path);
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const line of parts) check(line);
  }
  if (rest !== "") check(rest);
  const missing = seen.length - seen.reduce((sum, v) => sum + v, 0);
  return { missing, duplicated, torn };
}

async function size(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/** One round: a server with the design card's command line, the load, the check. */
export async function runTcpAlone(load: TcpLoad): Promise<TcpAloneRun> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-tcp-" });
  const port = freePort();
  const out = `${dir}/out.log`;
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-write", `${root}main.ts`, "-port", String(port)]
      .concat(["-logFile", out, "-http", `127.0.0.1:${freePort()}`]),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let tries = 0;; tries++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch (err) {
        if (tries > 300) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const total = load.c * load.n * load.s;
    const start = performance.now();
    await Promise.all(Array.from({ length: load.c }, (_, conn) => send(port, conn, load)));
    const deadline = Date.now() + 300_000;
    while (await size(out) < total) {
      if (Date.now() > deadline) throw new Error(`${await size(out)} of ${total} bytes stored`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const seconds = (performance.now() - start) / 1000;
    const rssKb = await peakRssKb(server.pid);
    const cpu = await cpuSeconds(server.pid);
    return {
      rate: load.c * load.n / seconds,
      mbps: total / seconds / 1e6,
      rssKb,
      cpu,
      ...await verify(out, load),
    };
  } finally {
    try {
      server.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Bounds of the TCP -> file workload that hold without a peer to compare with. */
const MAX_RSS_KB = 200 * 1024;

/** `rounds` rounds of {@linkcode runTcpAlone}; returns the bars missed. */
export async function benchTcpAlone(rounds: number, load: TcpLoad): Promise<string[]> {
  console.log(
    `TCP -> file, ${load.c} connections x ${load.n} lines x ${load.s} B, ${rounds} rounds, ` +
      "logboom alone (no ../shared/bench: no peer, load from this process)",
  );
  const runs: TcpAloneRun[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await runTcpAlone(load);
    runs.push(r);
    console.log(
      `  rate=${r.rate.toFixed(0)} lines/s ${r.mbps.toFixed(1)} MB/s | missing=${r.missing} ` +
        `duplicated=${r.duplicated} torn=${r.torn} | peak_rss=${r.rssKb}kB cpu=${
          r.cpu.toFixed(2)
        }s`,
    );
  }
  const rss = Math.max(...runs.map((r) => r.rssKb));
  const lost = runs.reduce((sum, r) => sum + r.missing + r.duplicated + r.torn, 0);
  console.log(
    `logboom median ${(median(runs.map((r) => r.rate)) / 1e6).toFixed(2)} M lines/s, ` +
      `server CPU median ${median(runs.map((r) => r.cpu)).toFixed(2)} s, ` +
      `peak RSS ${(rss / 1024).toFixed(0)} MB, missing+duplicated+torn ${lost}`,
  );
  const misses = [
    rss > MAX_RSS_KB && `peak RSS ${(rss / 1024).toFixed(0)} MB > 200 MB`,
    lost > 0 && `${lost} lines missing, duplicated or torn`,
  ];
  return misses.filter((m): m is string => typeof m === "string");
}
