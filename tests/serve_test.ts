/**
 * End-to-end tests of `serve`: the real program in a subprocess, run with only the design card's
 * `--allow-net --allow-write`, fed over real TCP connections.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  clientLines,
  freePort,
  holdLock,
  MAIN,
  send,
  startServer,
  verifyLines,
  waitForBytes,
  waitForSize,
  writeAll,
} from "./_server.ts";

const encoder = new TextEncoder();

function sortedLines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "").sort();
}

Deno.test("example 1: three clients' messages all land in aggregated_logs.txt", async () => {
  await using server = await startServer([]);
  const messages = [
    "Error: Database connection failed",
    "Info: User logged in",
    "Warning: Disk space low",
  ];
  await Promise.all(messages.map((m) => send(server.port, m + "\n")));
  const file = join(server.dir, "aggregated_logs.txt");
  const text = await waitForSize(file, messages.join("\n").length + 1);
  assert.deepEqual(sortedLines(text), [...messages].sort());
  assert.equal((await server.stop()).code, 0);
});

Deno.test("example 2: -port 9000 -logFile custom_logs.txt listens on 9000 and writes there", async () => {
  await using server = await startServer(["-port", "9000", "-logFile", "custom_logs.txt"]);
  assert.equal(server.port, 9000);
  await send(9000, "Info: custom\n");
  const text = await waitForSize(join(server.dir, "custom_logs.txt"), 13);
  assert.equal(text, "Info: custom\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("example 3: an invalid port prints the error and runs on 8080 with the default file", async () => {
  await using server = await startServer(["-port", "abc", "-logFile", "custom_logs.txt"]);
  assert.match(server.stderr(), /^Invalid port number: abc$/m);
  await send(8080, "Info: on the default port\n");
  const text = await waitForSize(join(server.dir, "aggregated_logs.txt"), 26);
  assert.equal(text, "Info: on the default port\n");
  await assert.rejects(Deno.stat(join(server.dir, "custom_logs.txt")), Deno.errors.NotFound);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("50 concurrent clients x 10,000 lines: none missing, duplicated or torn", async () => {
  await using server = await startServer(["-logFile", "logs/all.log"]);
  const clients = 50;
  const count = 10_000;
  const payloads = Array.from({ length: clients }, (_, c) => clientLines(c, count));
  await Promise.all(payloads.map(async (payload) => {
    // Odd-sized writes, so lines are split across reads at every possible place.
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    for (let offset = 0; offset < payload.length; offset += 4093) {
      await writeAll(conn, payload.subarray(offset, offset + 4093));
    }
  }));
  const text = await waitForSize(join(server.dir, "logs/all.log"), clients * count * 60);
  assert.deepEqual(verifyLines(text, clients, count), {
    lines: clients * count,
    missing: 0,
    duplicated: 0,
    torn: 0,
  });
  assert.equal((await server.stop()).code, 0);
});

Deno.test("empty and whitespace-only messages are skipped; CRLF and a missing last newline are fine", async () => {
  await using server = await startServer([]);
  await send(server.port, "\n   \n\t\r\nWindows line\r\n\n");
  await send(server.port, "no trailing newline");
  const file = join(server.dir, "aggregated_logs.txt");
  const text = await waitForSize(file, 33);
  assert.deepEqual(sortedLines(text), ["Windows line", "no trailing newline"]);
  assert.equal(text.length, 33, "nothing else was stored");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a client that disconnects mid-line disturbs nobody, and its partial line is kept", async () => {
  await using server = await startServer([]);
  const steady = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await writeAll(steady, clientLines(0, 1000));
  await send(server.port, "c1 0 half a li"); // gone before the newline
  await writeAll(steady, encoder.encode("still here\n"));
  steady.close();
  const file = join(server.dir, "aggregated_logs.txt");
  const text = await waitForSize(file, 1000 * 60 + 15 + 11);
  const lines = sortedLines(text);
  assert.ok(lines.includes("c1 0 half a li"));
  assert.ok(lines.includes("still here"));
  const rest = lines.filter((l) => l.startsWith("c0 ")).join("\n") + "\n";
  assert.deepEqual(verifyLines(rest, 1, 1000), { lines: 1000, missing: 0, duplicated: 0, torn: 0 });
  assert.equal((await server.stop()).code, 0);
});

Deno.test("while another process holds the file's flock nothing is written, and nothing is lost after", async () => {
  await using server = await startServer([]);
  const file = join(server.dir, "aggregated_logs.txt");
  await waitForSize(file, 0);
  const holder = await holdLock(file);
  await Promise.all([0, 1, 2].map((c) => send(server.port, clientLines(c, 2000))));
  // A negative can only be observed over time: the file must stay empty while the lock is held.
  const until = Date.now() + 500;
  while (Date.now() < until) {
    assert.equal((await Deno.stat(file)).size, 0, "written while another process held the lock");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await holder.release();
  const text = await waitForSize(file, 3 * 2000 * 60);
  assert.deepEqual(verifyLines(text, 3, 2000), { lines: 6000, missing: 0, duplicated: 0, torn: 0 });
  assert.equal((await server.stop()).code, 0);
});

Deno.test("SIGTERM stores everything already sent, releases the lock and exits 0 within 5 s", async () => {
  await using server = await startServer([]);
  const payloads = [0, 1, 2, 3].map((c) => clientLines(c, 25_000));
  await Promise.all(payloads.map((p) => send(server.port, p)));
  // An unterminated last line of a connection still open at shutdown is stored too.
  const open = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await writeAll(open, encoder.encode("c4 0 "));
  const started = Date.now();
  const status = await server.stop("SIGTERM");
  const elapsed = Date.now() - started;
  open.close();
  assert.equal(status.code, 0);
  assert.ok(elapsed < 5000, `took ${elapsed} ms`);
  const text = await Deno.readTextFile(join(server.dir, "aggregated_logs.txt"));
  assert.deepEqual(verifyLines(text.replace("c4 0 \n", ""), 4, 25_000), {
    lines: 100_000,
    missing: 0,
    duplicated: 0,
    torn: 0,
  });
  assert.ok(text.includes("c4 0 \n"));
  const check = await new Deno.Command("flock", {
    args: ["--nonblock", "--exclusive", join(server.dir, "aggregated_logs.txt"), "true"],
  }).output();
  assert.equal(check.code, 0, "the lock is free after exit");
});

Deno.test("SIGINT stops it cleanly too", async () => {
  await using server = await startServer([]);
  await send(server.port, "bye\n");
  assert.equal((await server.stop("SIGINT")).code, 0);
  assert.equal(await Deno.readTextFile(join(server.dir, "aggregated_logs.txt")), "bye\n");
});

Deno.test("a missing parent folder is created", async () => {
  await using server = await startServer(["-logFile", "a/b/c/app.log"]);
  await send(server.port, "deep\n");
  assert.equal(await waitForSize(join(server.dir, "a/b/c/app.log"), 5), "deep\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a 2 GiB existing file is appended to without being read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-e2e-" });
  const file = join(dir, "aggregated_logs.txt");
  const big = 2 * 1024 ** 3;
  await Deno.writeFile(file, new Uint8Array(0));
  await Deno.truncate(file, big); // sparse: no disk used, but a real 2 GiB file
  try {
    await using server = await startServer([], { dir });
    await send(server.port, "after two gigabytes\n");
    await waitForBytes(file, big + 20);
    assert.equal((await server.stop()).code, 0);
    using f = await Deno.open(file);
    await f.seek(big, Deno.SeekMode.Start);
    const tail = new Uint8Array(64);
    const n = await f.read(tail);
    assert.equal(new TextDecoder().decode(tail.subarray(0, n ?? 0)), "after two gigabytes\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("port in use: one clear line on stderr and exit 1", async () => {
  using taken = Deno.listen({ hostname: "0.0.0.0", port: freePort() });
  const port = (taken.addr as Deno.NetAddr).port;
  await using server = await startServer(["-port", String(port)], { waitReady: false });
  const status = await server.exited();
  assert.equal(status.code, 1);
  const lines = server.stderr().trim().split("\n");
  assert.equal(lines.length, 1, server.stderr());
  assert.match(lines[0], new RegExp(`Cannot listen on 0\\.0\\.0\\.0:${port}: .*in use`, "i"));
  assert.match(lines[0], /choose another with -port N$/);
});

Deno.test("log file is a directory: one clear line and exit 1", async () => {
  await using server = await startServer(["-logFile", "."], { waitReady: false });
  const status = await server.exited();
  assert.equal(status.code, 1);
  const lines = server.stderr().trim().split("\n");
  assert.equal(lines.length, 1, server.stderr());
  assert.match(lines[0], /Cannot open log file "\.": Is a directory/);
});

Deno.test("log file permission denied: one clear line and exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-e2e-" });
  const locked = join(dir, "locked");
  await Deno.mkdir(locked, { mode: 0o555 });
  // Root ignores file modes; without CAP_DAC_OVERRIDE it obeys them like any user.
  const wrapper = Deno.uid() === 0
    ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    : [];
  try {
    await using server = await startServer(["-logFile", join(locked, "app.log")], {
      dir,
      wrapper,
      waitReady: false,
    });
    const status = await server.exited();
    assert.equal(status.code, 1);
    const lines = server.stderr().trim().split("\n");
    assert.equal(lines.length, 1, server.stderr());
    assert.match(lines[0], /Cannot open log file ".*app\.log": Permission denied/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-h prints every flag with its default; an unknown flag prints usage and exits 2", async () => {
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-write", MAIN, ...args],
    }).output();
  const help = await run("-h");
  assert.equal(help.code, 0);
  const usage = new TextDecoder().decode(help.stdout);
  for (
    const flag of ["-port N", "-logFile PATH", "-host ADDR", "-maxLine BYTES", "-logLevel LEVEL"]
  ) {
    assert.ok(usage.includes(flag), flag);
  }
  assert.match(usage, /\(default 8080\)/);
  assert.match(usage, /\(default aggregated_logs\.txt\)/);
  const bad = await run("-prot", "9000");
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /Unknown flag "-prot"[\s\S]*Usage:/);
});

Deno.test("1,000 connections open at once are each served", async () => {
  await using server = await startServer([]);
  const clients = 1000;
  const conns = await Promise.all(
    Array.from(
      { length: clients },
      () => Deno.connect({ hostname: "127.0.0.1", port: server.port }),
    ),
  );
  await Promise.all(conns.map(async (conn, c) => {
    await writeAll(conn, clientLines(c, 10));
    conn.close();
  }));
  const text = await waitForSize(join(server.dir, "aggregated_logs.txt"), clients * 10 * 60);
  assert.deepEqual(verifyLines(text, clients, 10), {
    lines: clients * 10,
    missing: 0,
    duplicated: 0,
    torn: 0,
  });
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a full queue stops reading: the sender is held back, memory stays bounded, nothing lost", async () => {
  await using server = await startServer(["-queueBytes", "1MiB"]);
  const file = join(server.dir, "aggregated_logs.txt");
  await waitForBytes(file, 0);
  const holder = await holdLock(file);
  // 96 MiB: far more than the 1 MiB queue plus what loopback socket buffers can hold.
  const chunk = encoder.encode(("y".repeat(99) + "\n").repeat(10_486));
  const total = chunk.length * 96;
  let sent = false;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const sending = (async () => {
    try {
      for (let i = 0; i < 96; i++) await writeAll(conn, chunk);
      sent = true;
    } finally {
      conn.close();
    }
  })();
  // Reported by `await sending` below; a failed assertion before it must not leave it unhandled.
  sending.catch(() => {});
  const until = Date.now() + 1500;
  let rssKb = 0;
  while (Date.now() < until) {
    // Deno reads /proc only under --allow-all, so ask cat.
    const proc = await new Deno.Command("cat", { args: [`/proc/${server.child.pid}/status`] })
      .output();
    const status = new TextDecoder().decode(proc.stdout);
    rssKb = Math.max(rssKb, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(sent, false, "the sender was not held back");
  assert.ok(rssKb < 150 * 1024, `server RSS ${rssKb} kB while the file was locked`);
  await holder.release();
  await sending;
  await waitForBytes(file, total);
  assert.equal((await Deno.stat(file)).size, total);
  assert.equal((await server.stop()).code, 0);
});
