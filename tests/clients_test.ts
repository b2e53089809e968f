/**
 * End-to-end tests of the `tail` and `send` commands: the real program as both server and client,
 * each client run with only the permissions the README gives it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, waitForSize } from "./_server.ts";
import { ingest, runCli, TcpProxy, until } from "./_http.ts";

function sendPermissions(httpPort: number, file?: string): string[] {
  return [`--allow-net=127.0.0.1:${httpPort}`, ...(file ? [`--allow-read=${file}`] : [])];
}

Deno.test("send: a file over HTTP, batched and gzipped, each line stored once; exit 0", async () => {
  await using server = await startServer(["-fsync", "batch"]);
  const file = join(server.dir, "input.log");
  const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
  await Deno.writeTextFile(file, lines.join("\n")); // no newline after the last line
  await using cli = runCli(sendPermissions(server.httpPort, file), [
    "send",
    "-server",
    server.url,
    "-batch",
    "64KiB",
    file,
  ]);
  const status = await cli.status();
  assert.equal(status.code, 0, cli.stderr());
  assert.match(cli.stderr(), /delivered 20000 lines/);
  // Acknowledged means stored: no waiting.
  const stored = await Deno.readTextFile(join(server.dir, "aggregated_logs.txt"));
  assert.equal(stored, lines.join("\n") + "\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("send: stdin with -source, into the source's own file", async () => {
  await using server = await startServer(["-logFile", "logs/{source}.log"]);
  await using cli = runCli(sendPermissions(server.httpPort), [
    "send",
    "-server",
    server.url,
    "-source",
    "billing",
  ], { stdin: true });
  await cli.input("invoice 1\ninvoice 2\n", true);
  assert.equal((await cli.status()).code, 0, cli.stderr());
  assert.equal(
    await Deno.readTextFile(join(server.dir, "logs/billing.log")),
    "invoice 1\ninvoice 2\n",
  );
  assert.equal((await server.stop()).code, 0);
});

Deno.test("send: lines read from a pipe that pauses are sent without waiting for the end", async () => {
  await using server = await startServer([]);
  await using cli = runCli(sendPermissions(server.httpPort), ["send", "-server", server.url], {
    stdin: true,
  });
  await cli.input("first, while the pipe stays open\n");
  const file = join(server.dir, "aggregated_logs.txt");
  await waitForSize(file, 33);
  await cli.input("second\n", true);
  assert.equal((await cli.status()).code, 0, cli.stderr());
  assert.equal(await Deno.readTextFile(file), "first, while the pipe stays open\nsecond\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("send: a lost answer is retried, and the server refuses the resent batch as duplicate", async () => {
  await using server = await startServer(["-fsync", "batch"]);
  const proxy = new TcpProxy(server.httpPort);
  try {
    proxy.loseResponses = 2; // the first two answers never reach the client
    const file = join(server.dir, "input.log");
    const lines = Array.from({ length: 3000 }, (_, i) => `retried line ${i}`);
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    await using cli = runCli([`--allow-net=127.0.0.1:${proxy.port}`, `--allow-read=${file}`], [
      "send",
      "-server",
      `http://127.0.0.1:${proxy.port}`,
      "-batch",
      "16KiB",
      file,
    ]);
    const status = await cli.status();
    assert.equal(status.code, 0, cli.stderr());
    assert.match(cli.stderr(), /retrying/);
    const stored = await Deno.readTextFile(join(server.dir, "aggregated_logs.txt"));
    assert.equal(stored, lines.join("\n") + "\n", "every line exactly once, in order");
    const duplicates = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(duplicates, /^logboom_ingest_duplicates_total 2$/m);
  } finally {
    await proxy.close();
  }
  assert.equal((await server.stop()).code, 0);
});

Deno.test("send: exit 1 when not everything was delivered (server down, wrong token)", async () => {
  await using server = await startServer(["-token", "right"]);
  {
    await using cli = runCli(sendPermissions(server.httpPort), [
      "send",
      "-server",
      server.url,
      "-token",
      "wrong",
    ], { stdin: true });
    await cli.input("refused\n", true);
    assert.equal((await cli.status()).code, 1);
    assert.match(cli.stderr(), /refused a batch.*401 Missing or wrong bearer token/);
    assert.match(cli.stderr(), /NOT everything was delivered/);
  }
  assert.equal((await server.stop()).code, 0);
  await using cli = runCli(sendPermissions(server.httpPort), [
    "send",
    "-server",
    server.url,
    "-retryFor",
    "1s",
  ], { stdin: true });
  await cli.input("nobody listens\n", true);
  assert.equal((await cli.status()).code, 1);
  assert.match(cli.stderr(), /giving up on a batch/);
});

Deno.test("send: a 401 names the missing --allow-env=LOGBOOM_TOKEN when the token is in the env", async () => {
  await using server = await startServer(["-token", "secret"]);
  // The token is set, but the permission to read it is not granted: it is never sent.
  await using cli = runCli(sendPermissions(server.httpPort), ["send", "-server", server.url], {
    stdin: true,
    env: { LOGBOOM_TOKEN: "secret" },
  });
  await cli.input("needs the token\n", true);
  assert.equal((await cli.status()).code, 1);
  assert.match(cli.stderr(), /401 .*run with --allow-env=LOGBOOM_TOKEN/);
  // With the permission, the same command delivers.
  await using allowed = runCli(
    [...sendPermissions(server.httpPort), "--allow-env=LOGBOOM_TOKEN"],
    ["send", "-server", server.url],
    { stdin: true, env: { LOGBOOM_TOKEN: "secret" } },
  );
  await allowed.input("has the token\n", true);
  assert.equal((await allowed.status()).code, 0, allowed.stderr());
  assert.equal((await server.stop()).code, 0);
});

Deno.test("send: raw TCP with host:port streams the lines; exit 0 once the server read them", async () => {
  await using server = await startServer([]);
  await using cli = runCli([`--allow-net=127.0.0.1:${server.port}`], [
    "send",
    "-server",
    `127.0.0.1:${server.port}`,
  ], { stdin: true });
  await cli.input("tcp one\ntcp two without newline", true);
  assert.equal((await cli.status()).code, 0, cli.stderr());
  assert.match(cli.stderr(), /delivered 2 lines/);
  const text = await waitForSize(join(server.dir, "aggregated_logs.txt"), 32);
  assert.equal(text, "tcp one\ntcp two without newline\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("tail: filters and backfill, escapes control characters, reconnects and resumes, marks drops", async () => {
  await using server = await startServer([]);
  const proxy = new TcpProxy(server.httpPort);
  try {
    await ingest(server.url, "X old 1\nother\nX old 2\nX old 3\n");
    await using cli = runCli([`--allow-net=127.0.0.1:${proxy.port}`], [
      "tail",
      "-server",
      `http://127.0.0.1:${proxy.port}`,
      "-grep",
      "X",
      "-n",
      "2",
    ]);
    await until(() => cli.stdout().includes("X old 3"), () => cli.stdout() + cli.stderr());
    await ingest(server.url, "X live \x1b[2J\x1b]0;pwned\x07 ok\nnot shown\n");
    await until(() => cli.stdout().includes("ok\n"), () => cli.stdout());
    assert.equal(
      cli.stdout(),
      "X old 2\nX old 3\nX live \\x1b[2J\\x1b]0;pwned\\x07 ok\n",
      "backfill of 2, then live lines, escaped",
    );

    // The connection drops and stays refused while 12,000 lines pass: the ring keeps 10,000.
    proxy.down = true;
    proxy.cut();
    await until(() => cli.stderr().includes("connection lost"), () => cli.stderr());
    const bulk = Array.from({ length: 12_000 }, (_, i) => `X bulk ${i}`).join("\n");
    await ingest(server.url, bulk);
    proxy.down = false;
    await until(() => cli.stdout().includes("X bulk 11999\n"), () => cli.stderr(), 30_000);
    const after = cli.stdout().split("\n").slice(3, -1);
    // Lines no longer in memory cannot be filtered: the count includes "not shown" too.
    assert.equal(after[0], "--- logboom: 2001 lines dropped here (too slow or away) ---");
    assert.equal(after[1], "X bulk 2000");
    assert.equal(after.length, 1 + 10_000);
    assert.match(cli.stderr(), /reconnected/);
    cli.child.kill("SIGTERM");
    assert.equal((await cli.status()).code, 0);
  } finally {
    await proxy.close();
  }
  assert.equal((await server.stop()).code, 0);
});

Deno.test("tail: -json prints records; levels are coloured only on a terminal", async () => {
  await using server = await startServer([]);
  await ingest(server.url, "ERROR disk full \x9b31m\nINFO fine\n", { query: "?source=app" });
  const permissions = [`--allow-net=127.0.0.1:${server.httpPort}`];
  {
    await using cli = runCli(permissions, ["tail", "-server", server.url, "-json"]);
    await until(() => cli.stdout().split("\n").length > 2, () => cli.stdout());
    const [first, second] = cli.stdout().split("\n").map((l) => l && JSON.parse(l));
    assert.equal(first.line, "ERROR disk full \x9b31m");
    assert.equal(first.source, "app");
    assert.ok(!cli.stdout().includes("\x9b"), "C1 control escaped in JSON");
    assert.equal(second.line, "INFO fine");
    cli.child.kill("SIGINT");
    assert.equal((await cli.status()).code, 0);
  }
  {
    await using cli = runCli(permissions, ["tail", "-server", server.url]);
    await until(() => cli.stdout().includes("INFO fine"), () => cli.stdout());
    assert.ok(!cli.stdout().includes("\x1b["), "no colour into a pipe");
    cli.child.kill("SIGTERM");
    await cli.status();
  }
  {
    // script(1) gives the command a terminal as stdout.
    await using cli = runCli(permissions, ["tail", "-server", server.url], {
      // The transcript goes to /dev/null, not to a "typescript" file in the working folder.
      wrapper: ["script", "-qfe", "/dev/null", "-c"],
      env: { TERM: "xterm" },
    });
    await until(() => cli.stdout().includes("fine"), () => cli.stdout());
    assert.ok(cli.stdout().includes("\x1b[31mERROR\x1b[0m disk full \\x9b31m"), cli.stdout());
    assert.ok(cli.stdout().includes("\x1b[32mINFO\x1b[0m fine"), cli.stdout());
    cli.child.kill("SIGTERM");
    await cli.status();
  }
  assert.equal((await server.stop()).code, 0);
});

Deno.test("tail: a refused request is reported and exits 1; a bad regex is a usage error", async () => {
  await using server = await startServer(["-token", "t"]);
  const permissions = [`--allow-net=127.0.0.1:${server.httpPort}`];
  {
    await using cli = runCli(permissions, ["tail", "-server", server.url]);
    assert.equal((await cli.status()).code, 1);
    assert.match(cli.stderr(), /Server answered 401: Missing or wrong bearer token/);
  }
  {
    await using cli = runCli([...permissions, "--allow-env=LOGBOOM_TOKEN"], [
      "tail",
      "-server",
      server.url,
    ], { env: { LOGBOOM_TOKEN: "t" } });
    await ingest(server.url, "with the token from the environment\n", {
      headers: { authorization: "Bearer t" },
    });
    await until(() => cli.stdout().includes("environment"), () => cli.stdout() + cli.stderr());
    cli.child.kill("SIGTERM");
    assert.equal((await cli.status()).code, 0);
  }
  await using cli = runCli(permissions, ["tail", "-server", server.url, "-regex", "("]);
  assert.equal((await cli.status()).code, 2);
  assert.match(cli.stderr(), /Flag "-regex" is not a valid regular expression/);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("send and tail print their usage with -h", async () => {
  for (const command of ["send", "tail"]) {
    await using cli = runCli([], [command, "-h"]);
    assert.equal((await cli.status()).code, 0);
    assert.match(cli.stdout(), new RegExp(`Usage: logboom ${command}`));
  }
});
