/**
 * End-to-end tests of the command line a new user meets: logboom's own log lines, the startup
 * line, `--version`, and every command's `-h`.
 */

import assert from "node:assert/strict";
import { CARD_PERMISSIONS, startServer } from "./_server.ts";
import { runCli } from "./_http.ts";

Deno.test("logs show a -logFile template as written, never undefined", async () => {
  await using server = await startServer(["-logFile", "logs/{source}/{date}.log"]);
  assert.match(server.stderr(), /appending to "logs\/\{source\}\/\{date\}\.log"/);
  assert.equal((await server.stop()).code, 0);
  assert.doesNotMatch(server.stderr(), /undefined/);
});

Deno.test("a startup error quotes the bad template as written, never undefined", async () => {
  await using server = await startServer(["-logFile", "x/{nope}.log"], { waitReady: false });
  assert.equal((await server.exited()).code, 1);
  const lines = server.stderr().trim().split("\n");
  assert.equal(lines.length, 1, server.stderr());
  assert.match(lines[0], /Cannot open log file "x\/\{nope\}\.log": Unknown placeholder "\{nope\}"/);
  assert.doesNotMatch(server.stderr(), /undefined/);
});

Deno.test("the startup line says whether the HTTP API needs a token, and why LOGBOOM_TOKEN is not read", async () => {
  const notRead =
    /env permission for LOGBOOM_TOKEN is not granted, so a token set there is not read/g;
  {
    // The card's permissions: no env permission, so a LOGBOOM_TOKEN set is not read.
    await using server = await startServer([], { env: { LOGBOOM_TOKEN: "t" } });
    assert.match(server.stderr(), /HTTP API on http:\/\/127\.0\.0\.1:\d+ \(no token required/);
    assert.equal(server.stderr().match(notRead)?.length, 1, server.stderr());
    const res = await fetch(`${server.url}/metrics`);
    await res.body?.cancel();
    assert.equal(res.status, 200, "without the token, the API is open");
    assert.equal((await server.stop()).code, 0);
  }
  {
    await using server = await startServer([], {
      permissions: [...CARD_PERMISSIONS, "--allow-env=LOGBOOM_TOKEN"],
      env: { LOGBOOM_TOKEN: "t" },
    });
    assert.match(
      server.stderr(),
      /HTTP API on http:\/\/127\.0\.0\.1:\d+ \(bearer token required\)/,
    );
    assert.doesNotMatch(server.stderr(), notRead);
    assert.equal((await server.stop()).code, 0);
  }
  await using server = await startServer(["-token", "t"]);
  assert.match(server.stderr(), /HTTP API on http:\/\/127\.0\.0\.1:\d+ \(bearer token required\)/);
  assert.doesNotMatch(server.stderr(), notRead);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("tail: a 401 says that no token was sent, and which permission reads LOGBOOM_TOKEN", async () => {
  await using server = await startServer(["-token", "t"]);
  const net = `--allow-net=127.0.0.1:${server.httpPort}`;
  const tailStderr = async (permissions: string[], args: string[] = []) => {
    await using cli = runCli(permissions, ["tail", "-server", server.url, ...args], {
      env: { LOGBOOM_TOKEN: "t" },
    });
    assert.equal((await cli.status()).code, 1, cli.stderr());
    return cli.stderr();
  };
  assert.match(
    await tailStderr([net]),
    /401: Missing or wrong bearer token \(no token was sent; env permission for LOGBOOM_TOKEN is not granted, so a token set there is not read: run with --allow-env=LOGBOOM_TOKEN or pass -token\)/,
  );
  assert.doesNotMatch(await tailStderr([net], ["-token", "wrong"]), /no token was sent/);
  assert.equal((await server.stop()).code, 0);
});
