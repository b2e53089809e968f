/**
 * Alerts with the real program: `serve -config` with an `alerts` section, lines over TCP that
 * cross a threshold (after the transform rules gave them their level), the webhook received on a
 * local receiver, `GET /api/v1/alerts`, `/metrics`, a reload that keeps an alert's state, and
 * `validate` naming every problem of an alert at its key path.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Receiver } from "../src/alerts/_receiver.ts";
import { runCli, until } from "./_http.ts";
import { freePort, send } from "./_server.ts";

const PERMISSIONS = ["--allow-net", "--allow-write", "--allow-read=."];

async function inTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-alerts-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes a config as editors do: a new file renamed over the old one. */
async function rewrite(path: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(config, null, 2));
  await Deno.rename(`${path}.tmp`, path);
}

Deno.test("serve -config: TCP lines past an alert's threshold POST its webhook; the API and /metrics show it; a reload keeps it firing", async () => {
  await using receiver = new Receiver();
  await inTempDir(async (dir) => {
    const [tcpPort, httpPort] = [freePort(), freePort()];
    const file = join(dir, "logboom.json");
    const v1 = {
      http: { address: `127.0.0.1:${httpPort}` },
      inputs: { billing: { type: "tcp", address: `127.0.0.1:${tcpPort}`, source: "billing" } },
      sinks: { file: { type: "file", path: "out.log" } },
      // Levels come from the rules: the alert counts what they made.
      transforms: { levels: { steps: [{ type: "level", inherit: false }] } },
      alerts: {
        errors: {
          source: "bill*",
          level: "error",
          threshold: 2,
          window: "1m",
          webhook: receiver.url,
        },
      },
    };
    await rewrite(file, v1);
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.json"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    const url = `http://127.0.0.1:${httpPort}`;
    const listed = async () => (await (await fetch(`${url}/api/v1/alerts`)).json()).alerts;
    assert.deepEqual((await listed()).map((a: { state: string }) => a.state), ["ok"]);
    await send(
      tcpPort,
      "INFO started\nERROR timeout 1\nWARN slow\nERROR timeout 2\nERROR timeout 3\n",
    );
    await until(() => receiver.bodies.length === 1, server.stderr);
    const fired = receiver.bodies[0];
    assert.deepEqual({ ...fired, since: "" }, {
      alert: "errors",
      state: "firing",
      count: 3,
      threshold: 2,
      window_s: 60,
      since: "",
      sample: ["ERROR timeout 1", "ERROR timeout 2", "ERROR timeout 3"],
    });
    const [errors] = await listed();
    assert.deepEqual(
      [errors.name, errors.state, errors.count, errors.since, errors.last_fired],
      ["errors", "firing", 3, fired.since, fired.since],
    );
    assert.equal(errors.rule.webhook, receiver.url.replace("/hook", "/***"));
    await until(async () => (await listed())[0].webhook.last_status === 200, server.stderr);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /\nlogboom_alert_firing\{alert="errors"\} 1\n/);
    assert.match(metrics, /\nlogboom_alert_webhook_total\{alert="errors",result="ok"\} 1\n/);
    // A reload that adds an alert keeps the unchanged one firing, with its window.
    await rewrite(file, {
      ...v1,
      alerts: {
        ...v1.alerts,
        timeouts: { grep: "timeout", threshold: 3, window: "1m", webhook: receiver.url },
      },
    });
    await until(() => /Alerts reloaded/.test(server.stderr()), server.stderr);
    assert.match(
      server.stderr(),
      /Alerts reloaded: added timeouts; removed none; started anew none; kept errors/,
    );
    const [kept, added] = await listed();
    assert.deepEqual([kept.state, kept.count, kept.since], ["firing", 3, fired.since]);
    assert.deepEqual([added.name, added.state, added.count], ["timeouts", "ok", 0]);
    // The new alert counts from its start: four more lines make it fire, and tell nobody twice.
    await send(tcpPort, "timeout 4\ntimeout 5\ntimeout 6\ntimeout 7\n");
    await until(() => receiver.bodies.length === 2, server.stderr);
    assert.deepEqual(
      [receiver.bodies[1].alert, receiver.bodies[1].state, receiver.bodies[1].count],
      ["timeouts", "firing", 4],
    );
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
    assert.equal(receiver.bodies.length, 2);
  });
});

Deno.test("an alert on a field the rules extract fires, though no sink stores fields", async () => {
  await using receiver = new Receiver();
  await inTempDir(async (dir) => {
    const tcpPort = freePort();
    await rewrite(join(dir, "logboom.json"), {
      http: { address: "off" },
      inputs: { tcp: { type: "tcp", address: `127.0.0.1:${tcpPort}` } },
      sinks: { file: { type: "file", path: "out.log" } },
      transforms: { json: { steps: [{ type: "parse", format: "json" }] } },
      alerts: {
        billing: {
          fields: { service: "billing", status: 500 },
          threshold: 1,
          window: "1m",
          webhook: receiver.url,
        },
      },
    });
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.json"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    const lines = [
      { service: "billing", status: 500, n: 1 },
      { service: "billing", status: 200, n: 2 },
      { service: "web", status: 500, n: 3 },
      { service: "billing", status: 500, n: 4 },
    ].map((record) => JSON.stringify(record) + "\n").join("");
    await send(tcpPort, lines);
    await until(() => receiver.bodies.length === 1, server.stderr);
    assert.deepEqual([receiver.bodies[0].count, receiver.bodies[0].sample], [2, [
      '{"service":"billing","status":500,"n":1}',
      '{"service":"billing","status":500,"n":4}',
    ]]);
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
  });
});

Deno.test("an alert on syslog's level fires though no sink reads levels (HTTP API off)", async () => {
  await using receiver = new Receiver();
  await inTempDir(async (dir) => {
    const port = freePort();
    await rewrite(join(dir, "logboom.json"), {
      http: { address: "off" },
      inputs: { syslog: { type: "syslog", tcp: `127.0.0.1:${port}` } },
      sinks: { file: { type: "file", path: "out.log" } },
      alerts: { errors: { level: "error", threshold: 1, window: "1m", webhook: receiver.url } },
    });
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.json"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    // Severities 3 (error), 6 (info), 2 (critical: fatal), non-transparent framing.
    await send(
      port,
      "<11>1 - h app - - - disk full\n<14>1 - h app - - - fine\n<10>1 - h app - - - gone\n",
    );
    await until(() => receiver.bodies.length === 1, server.stderr);
    assert.deepEqual([receiver.bodies[0].count, receiver.bodies[0].sample], [2, [
      "<11>1 - h app - - - disk full",
      "<10>1 - h app - - - gone",
    ]]);
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
  });
});

Deno.test("validate names every problem of an alert at its key path and exits 2", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "bad.json"),
      JSON.stringify({
        inputs: { tcp: { type: "tcp" } },
        sinks: { file: { type: "file", path: "out.log" } },
        alerts: {
          errors: { level: "err", threshold: 10, window: "5m", webhook: "file:///etc/passwd" },
          slow: { grep: "slow", windw: "1m", webhook: "http://127.0.0.1:9999/hook" },
        },
      }),
    );
    await using validate = runCli(["--allow-read"], ["validate", "-config", "bad.json"], {
      cwd: dir,
    });
    assert.equal((await validate.status()).code, 2);
    assert.equal(
      validate.stderr(),
      [
        "bad.json: 5 problems:",
        '  alerts.errors.level: must be one of trace, debug, info, warn, error, fatal, got "err"',
        '  alerts.errors.webhook: must be an http:// or https:// URL, got "file:///etc/passwd"',
        '  alerts.slow.windw: unknown key; did you mean "window"?',
        "  alerts.slow.threshold: is required",
        "  alerts.slow.window: is required",
        "",
      ].join("\n"),
    );
  });
});
