/**
 * End-to-end tests of signals: SIGHUP (logrotate's postrotate) at any moment reopens the files or
 * is ignored, and never ends `serve`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  clientLines,
  holdLock,
  MAIN,
  send,
  startServer,
  verifyLines,
  waitForBytes,
} from "./_server.ts";
import { until } from "./_http.ts";

function storm(child: Deno.ChildProcess, count: number): void {
  for (let i = 0; i < count; i++) child.kill("SIGHUP");
}

Deno.test("a storm of SIGHUPs at startup and during the shutdown drain never ends serve", async () => {
  await using server = await startServer(["-logFile", "app.log", "-logLevel", "debug"], {
    waitReady: false,
  });
  const { child } = server;
  let ended: Deno.CommandStatus | undefined;
  child.status.then((status) => ended = status);
  // From logboom's first line, while it is still opening its files and ports (before its first
  // line, Deno itself is starting: any program dies of a SIGHUP before it installs a handler).
  await until(() => ended !== undefined || /Starting logboom/.test(server.stderr()), server.stderr);
  storm(child, 200);
  await until(() => ended !== undefined || /Listening on/.test(server.stderr()), server.stderr);
  assert.equal(
    ended,
    undefined,
    `the storm at startup ended it (${JSON.stringify(ended)}): ${server.stderr()}`,
  );

  const path = join(server.dir, "app.log");
  await send(server.port, clientLines(0, 1000));
  await waitForBytes(path, 1000 * 60);
  // A held lock keeps the drain waiting, so the next storm lands while it runs.
  const lock = await holdLock(path);
  await send(server.port, clientLines(1, 1000));
  child.kill("SIGTERM");
  await until(() => /Stopping/.test(server.stderr()), () => server.stderr());
  storm(child, 200);
  await until(
    () => ended !== undefined || /Stopping[^]*SIGHUP: reopening/.test(server.stderr()),
    () => `no SIGHUP handled during the drain: ${server.stderr()}`,
  );
  await lock.release();
  const status = await server.exited();
  assert.equal(status.signal, null, server.stderr());
  assert.equal(status.code, 0, server.stderr());
  const verdict = verifyLines(await Deno.readTextFile(path), 2, 1000);
  assert.deepEqual(verdict, { lines: 2000, missing: 0, duplicated: 0, torn: 0 });
});

Deno.test("main.ts catches SIGHUP before it loads the rest of logboom", async () => {
  // Loading the commands' modules takes 0.1-0.15 s, during which a SIGHUP (logrotate's
  // postrotate, a closed terminal) ended the process: main.ts imports them only dynamically,
  // after its first line installed the handler.
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", MAIN],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(success, "deno info failed");
  const graph = JSON.parse(new TextDecoder().decode(stdout));
  const entry = graph.modules.find((m: { local?: string }) => m.local === MAIN);
  const loadedFirst = (entry.dependencies ?? [])
    .filter((d: { isDynamic?: boolean }) => !d.isDynamic)
    .map((d: { specifier: string }) => d.specifier);
  assert.deepEqual(loadedFirst, []);
});
