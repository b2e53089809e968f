/**
 * End-to-end tests of the command line a new user meets: logboom's own log lines, the startup
 * line, `--version`, and every command's `-h`.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import { CARD_PERMISSIONS, freePort, send, startServer, watchProcess } from "./_server.ts";
import { runCli, until } from "./_http.ts";

const decoder = new TextDecoder();

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

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const COMMANDS = ["serve", "tail", "send", "agent"];

Deno.test("every command prints its usage with -h, with no permission at all", async () => {
  for (const command of COMMANDS) {
    await using cli = runCli([], [command, "-h"]);
    assert.equal((await cli.status()).code, 0, cli.stderr());
    assert.match(cli.stdout(), new RegExp(`^Usage: logboom \\[?${command}\\]? `), command);
  }
});

Deno.test("deno task install makes a logboom command that runs as the docs show", async () => {
  const root = await Deno.makeTempDir({ prefix: "logboom-install-" });
  try {
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["task", "install"],
      cwd: ROOT,
      env: { DENO_INSTALL_ROOT: root, NO_COLOR: "1" },
    }).output();
    assert.equal(install.code, 0, decoder.decode(install.stderr));
    const logboom = join(root, "bin", "logboom");
    // The installed script runs `deno`: the one running these tests.
    const env = { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}`, NO_COLOR: "1" };
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(logboom, { args, env, cwd: root }).output();
      assert.equal(out.code, 0, `logboom ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
      return decoder.decode(out.stdout);
    };
    assert.equal(await run("--version"), `logboom ${denoJson.version}\n`);
    const help = await run("-h");
    for (const command of COMMANDS) assert.match(help, new RegExp(`^  ${command} +\\w`, "m"));
    for (const command of COMMANDS) {
      assert.match(await run(command, "-h"), new RegExp(`^Usage: logboom \\[?${command}\\]? `));
    }
    await servedAsInstalled(logboom, env, root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * The README's tour with the installed command and only its permissions: serve into a template
 * with rotation (read permission), send a file (read), follow it with tail (net).
 */
async function servedAsInstalled(logboom: string, env: Record<string, string>, dir: string) {
  const [port, httpPort] = [freePort(), freePort()];
  const http = `127.0.0.1:${httpPort}`;
  const child = new Deno.Command(logboom, {
    args: ["serve", "-port", String(port), "-http", http, "-logFile", "logs/{source}/{date}.log"]
      .concat(["-rotateSize", "1MiB"]),
    env,
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const server = await watchProcess(child, { ready: /Listening on/, notReady: "serve failed" });
  try {
    await Deno.writeTextFile(join(dir, "app.log"), "hello from the tour\n");
    const send = await new Deno.Command(logboom, {
      args: ["send", "-server", `http://${http}`, "-source", "app", "app.log"],
      env,
      cwd: dir,
    }).output();
    assert.equal(send.code, 0, decoder.decode(send.stderr));
    const days = [...Deno.readDirSync(join(dir, "logs", "app"))].map((e) => e.name);
    assert.equal(days.length, 1, days.join(", "));
    const stored = await Deno.readTextFile(join(dir, "logs", "app", days[0]));
    assert.equal(stored, "hello from the tour\n");
    const tail = new Deno.Command(logboom, {
      args: ["tail", "-server", `http://${http}`, "-n", "1"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = tail.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let shown = "";
    while (!shown.includes("\n")) shown += (await reader.read()).value ?? "";
    assert.equal(shown, "hello from the tour\n");
    tail.kill("SIGTERM");
    const [tailStatus] = await Promise.all([tail.status, reader.cancel(), tail.stderr.cancel()]);
    assert.equal(tailStatus.code, 0);
    assert.equal((await server.stop()).code, 0, server.stderr());
  } finally {
    await server.kill();
  }
}

Deno.test("the bundled single file knows its version, far from deno.json", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bundle-" });
  try {
    const bundle = join(dir, "logboom.js");
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform=deno", "-o", bundle, join(ROOT, "main.ts")],
      stderr: "piped",
    }).output();
    assert.equal(built.code, 0, decoder.decode(built.stderr));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", bundle, "--version"],
      cwd: dir,
    }).output();
    assert.equal(decoder.decode(out.stdout), `logboom ${denoJson.version}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the card's command in a terminal asks for no permission: serve starts and stores", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-card-tty-" });
  try {
    const port = freePort();
    // script(1) gives it a terminal, where Deno would prompt for any permission not granted.
    await using cli = runCli(["--allow-net", "--allow-write"], ["-port", String(port)], {
      cwd: dir,
      wrapper: ["script", "-qfe", "/dev/null", "-c"],
      env: { TERM: "xterm" },
    });
    await until(() => /Listening on/.test(cli.stdout() + cli.stderr()), () => cli.stdout());
    await send(port, "Error: Database connection failed\n");
    await until(
      async () =>
        (await Deno.readTextFile(join(dir, "aggregated_logs.txt")).catch(() => "")) ===
          "Error: Database connection failed\n",
      () => cli.stdout() + cli.stderr(),
    );
    assert.doesNotMatch(cli.stdout() + cli.stderr(), /Deno requests/);
    cli.child.kill("SIGTERM");
    await cli.status();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
