/**
 * Transform rules in the real server (`serve -config` with a `transforms` section): lines from
 * TCP and HTTP are parsed, levelled, filtered and routed before they are stored; HTTP ingest of
 * lines that are all dropped is answered; `/metrics` counts per step; the rules test route is
 * token-protected; a changed rule applies on reload.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, send } from "./_server.ts";
import { ingest, runCli, SseTail, type TailLine, until } from "./_http.ts";

const PERMISSIONS = [
  "--allow-net",
  "--allow-write",
  "--allow-read=.",
  "--allow-env=LOGBOOM_TOKEN,LOG_TOKENS,LOG_STREAM",
];

function config(tcpPort: number, httpPort: number, filter: string): string {
  return `
log_level: info
http: { address: "127.0.0.1:${httpPort}", token: secret }
inputs:
  app: { type: tcp, address: "127.0.0.1:${tcpPort}", source: app }
sinks:
  file: { type: file, path: "logs/{source}.log", format: json }
transforms:
  app:
    sources: [app]
    steps:
      - { type: parse, format: json }
      - { type: level }
      - ${filter}
      - { type: route, to: errors, level: ">=error" }
`;
}

const AUTH = { authorization: "Bearer secret" };

Deno.test("serve -config with transforms: parsed, levelled, filtered, routed, counted, reloaded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-transforms-" });
  try {
    const tcpPort = freePort();
    const httpPort = freePort();
    const file = join(dir, "logboom.yaml");
    await Deno.writeTextFile(
      file,
      config(tcpPort, httpPort, '{ type: filter, action: exclude, level: "<info" }'),
    );
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.yaml"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    const url = `http://127.0.0.1:${httpPort}`;
    const stored = join(dir, "logs", "app.log");
    let text = "";
    const records = async () => {
      text = await Deno.readTextFile(stored).catch(() => "");
      return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
    };
    const seen = () => `stored so far:\n${text}\nstderr:\n${server.stderr()}`;

    await send(
      tcpPort,
      '{"level":"info","msg":"up"}\n{"level":"debug","msg":"tick"}\n' +
        '{"level":50,"msg":"boom","err":{"code":7}}\n    at Db.open (db.js:10)\n',
    );
    await until(async () => (await records()).length === 3, seen);
    assert.deepEqual(
      (await records()).map((r) => [r.level, r.line, r.fields]),
      [
        ["info", '{"level":"info","msg":"up"}', { level: "info", msg: "up" }],
        ["error", '{"level":50,"msg":"boom","err":{"code":7}}', {
          level: 50,
          msg: "boom",
          "err.code": 7,
          _route: "errors",
        }],
        ["error", "    at Db.open (db.js:10)", {
          _parse_error: "json: not JSON",
          _route: "errors",
        }],
      ],
    );

    // HTTP ingest whose lines are all dropped: answered, nothing stored.
    const answer = await ingest(url, '{"level":"debug"}\n{"level":"trace"}\n', {
      query: "?source=app",
      headers: AUTH,
    });
    assert.equal(answer.status, 200);

    const metrics = async () => await (await fetch(`${url}/metrics`, { headers: AUTH })).text();
    const page = await metrics();
    for (
      const sample of [
        'logboom_received_lines_total{input="app",source="app"} 4',
        'logboom_transform_lines_in_total{pipeline="app",step="2",type="filter"} 6',
        'logboom_transform_lines_dropped_total{pipeline="app",step="2",type="filter"} 3',
        'logboom_transform_errors_total{pipeline="app",step="0",type="parse"} 1',
      ]
    ) {
      assert.ok(page.includes(sample + "\n"), `${sample} in:\n${page}`);
    }
    assert.match(page, /logboom_received_lines_total\{input="http",source="app"\} 2\n/);

    // The rules test route, behind the token like the rest.
    const body = JSON.stringify({
      transforms: { t: { steps: [{ type: "level" }] } },
      lines: ["WARN x"],
    });
    const refused = await fetch(`${url}/api/v1/rules/test`, { method: "POST", body });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const tried = await fetch(`${url}/api/v1/rules/test`, { method: "POST", body, headers: AUTH });
    assert.equal((await tried.json()).results[0].level, "warn");

    // A changed filter applies on reload; the steps that kept their place keep their counters.
    await Deno.writeTextFile(file, config(tcpPort, httpPort, '{ type: filter, level: ">=error" }'));
    await until(
      () =>
        /Transform pipelines reloaded: added none; removed none; compiled anew app/.test(
          server.stderr(),
        ),
      server.stderr,
    );
    await send(tcpPort, '{"level":"warn","msg":"dropped now"}\n{"level":"fatal","msg":"kept"}\n');
    await until(async () => (await records()).length === 4, seen);
    assert.equal((await records())[3].fields.msg, "kept");
    assert.match(
      await metrics(),
      /logboom_transform_lines_in_total\{pipeline="app",step="0",type="parse"\} 8\n/,
    );
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rules give what is read: a template's field always, every field while a live tail is open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-transforms-" });
  try {
    const tcpPort = freePort();
    const httpPort = freePort();
    await Deno.writeTextFile(
      join(dir, "logboom.yaml"),
      `
log_level: info
http: { address: "127.0.0.1:${httpPort}" }
inputs:
  app: { type: tcp, address: "127.0.0.1:${tcpPort}", source: app }
sinks:
  file: { type: file, path: "logs/{fields.service}.log" }
transforms:
  app: { steps: [{ type: parse, format: json }, { type: level }] }
`,
    );
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.yaml"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    const url = `http://127.0.0.1:${httpPort}`;
    const read = (name: string) => Deno.readTextFile(join(dir, "logs", name)).catch(() => "");
    const a = '{"service":"billing","user":"bob","level":"warn","msg":"a"}';
    const b = '{"service":"auth","user":"ann","level":"info","msg":"b"}';
    // No tail: the template's field files each line.
    await send(tcpPort, `${a}\n${b}\n`);
    // Each file is written on its own: one may be complete before the other.
    await until(
      async () => (await read("billing.log")) === `${a}\n` && (await read("auth.log")) === `${b}\n`,
      server.stderr,
    );
    // A tail filters on a field no sink reads, and sees every field.
    const tail = await SseTail.open(url, "?field.user=bob");
    await send(tcpPort, `${b}\n${a}\n`);
    await tail.wait((t) => t.lines.length >= 1);
    const [line] = tail.lines as (TailLine & { level?: string; fields?: unknown })[];
    assert.equal(line.line, a);
    assert.equal(line.level, "warn");
    assert.deepEqual(line.fields, { service: "billing", user: "bob", level: "warn", msg: "a" });
    await tail.close();
    await until(
      async () =>
        (await read("billing.log")) === `${a}\n${a}\n` &&
        (await read("auth.log")) === `${b}\n${b}\n`,
      server.stderr,
    );
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
