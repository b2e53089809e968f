/**
 * Alerts in a running pipeline (`config/pipeline.ts`) on a fake clock: attached by a reload that
 * adds them to a server started without, fired by lines over HTTP ingest, detached again when a
 * reload removes them all, and resolved on the clock.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { until } from "../../tests/_http.ts";
import { freePort } from "../../tests/_server.ts";
import { FakeClock } from "../_fake_clock.ts";
import { Pipeline } from "../config/pipeline.ts";
import { checkServerConfig, type ServerConfig } from "../config/server_config.ts";
import { Receiver } from "./_receiver.ts";

function config(dir: string, port: number, alerts?: unknown): ServerConfig {
  const { config, problems } = checkServerConfig({
    log_level: "error",
    http: { address: `127.0.0.1:${port}` },
    sinks: { file: { type: "file", path: join(dir, "out.log") } },
    ...(alerts === undefined ? {} : { alerts }),
  });
  assert.deepEqual(problems.list, []);
  return config;
}

Deno.test("a reload attaches alerts to a running server, keeps them, and detaches them all", async () => {
  await using receiver = new Receiver();
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const clock = new FakeClock(Date.UTC(2025, 0, 1));
  const url = `http://127.0.0.1:${port}`;
  const rule = { grep: "ERROR", threshold: 1, window: "1m", webhook: receiver.url };
  const pipeline = await Pipeline.start(config(dir, port), { clock });
  const listed = async () => (await (await fetch(`${url}/api/v1/alerts`)).json()).alerts;
  const ingest = async (body: string) => {
    const res = await fetch(`${url}/api/v1/ingest`, { method: "POST", body });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  };
  const metrics = async () => await (await fetch(`${url}/metrics`)).text();
  try {
    assert.deepEqual(await listed(), []);
    await ingest("ERROR before any alert\nERROR again\n");
    const added = await pipeline.reload(config(dir, port, { errors: rule }));
    assert.deepEqual(added.alerts, { added: ["errors"], removed: [], rebuilt: [], unchanged: [] });
    // Counted from the alert's start: the lines before it are not in its window.
    assert.deepEqual((await listed()).map((a: { count: number }) => a.count), [0]);
    await ingest("ERROR one\nfine\nERROR two\n");
    await until(() => receiver.bodies.length === 1, () => "no webhook");
    assert.deepEqual([receiver.bodies[0].state, receiver.bodies[0].count], ["firing", 2]);
    const kept = await pipeline.reload(config(dir, port, { errors: rule, more: rule }));
    assert.deepEqual(kept.alerts.unchanged, ["errors"]);
    assert.deepEqual((await listed()).map((a: { state: string }) => a.state), ["firing", "ok"]);
    // Resolved on the clock: the window empties at 60 s, and resolve_after is the window.
    clock.advance(120_000);
    await until(() => receiver.bodies.length === 2, () => "no resolved webhook");
    assert.deepEqual([receiver.bodies[1].state, receiver.bodies[1].count], ["resolved", 0]);
    const removed = await pipeline.reload(config(dir, port));
    assert.deepEqual(removed.alerts.removed, ["errors", "more"]);
    assert.deepEqual(await listed(), []);
    assert.doesNotMatch(await metrics(), /logboom_alert_/);
    // Attached again, it starts anew.
    await pipeline.reload(config(dir, port, { errors: rule }));
    const [again] = await listed();
    assert.deepEqual([again.state, again.count, again.last_fired], ["ok", 0, undefined]);
    assert.match(await metrics(), /\nlogboom_alert_firing\{alert="errors"\} 0\n/);
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});
