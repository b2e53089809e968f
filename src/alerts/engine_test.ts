import assert from "node:assert/strict";
import { until } from "../../tests/_http.ts";
import { FakeClock } from "../_fake_clock.ts";
import { alertsResponse } from "../api/alerts.ts";
import { Problems } from "../config/keys.ts";
import { batchOf, metaOf } from "../transforms/_test_util.ts";
import { Receiver } from "./_receiver.ts";
import { type AlertsConfig, readAlerts } from "./config.ts";
import { AlertEngine } from "./engine.ts";

/** The `alerts` section `doc`, checked. */
function alerts(doc: Record<string, unknown>): AlertsConfig {
  const problems = new Problems();
  const config = readAlerts(doc, problems)!;
  assert.deepEqual(problems.list, []);
  return config;
}

const START = Date.UTC(2025, 0, 1, 12);
const iso = (ms: number) => new Date(ms).toISOString();

Deno.test("an alert fires past its threshold, tells the webhook, and resolves after resolve_after", async () => {
  await using receiver = new Receiver();
  const clock = new FakeClock(START);
  const engine = new AlertEngine(
    alerts({
      timeouts: {
        source: "billing*",
        grep: "timeout",
        threshold: 2,
        window: "1m",
        resolve_after: "30s",
        webhook: receiver.url,
      },
    }),
    { clock },
  );
  try {
    assert.equal(clock.waiting, 0, "nothing ticks while no alert fires");
    engine.write(batchOf(["timeout a", "ok", "timeout b"], {}, metaOf("billing")));
    // Another source's lines do not count.
    engine.write(batchOf(["timeout x", "timeout y"], {}, metaOf("web")));
    assert.equal(engine.list()[0].state, "ok");
    assert.equal(engine.list()[0].count, 2);
    clock.advance(5_000);
    engine.write(batchOf(["timeout c"], {}, metaOf("billing-eu")));
    const fired = START + 5_000;
    await until(() => receiver.bodies.length === 1, () => "no firing notification");
    assert.deepEqual(receiver.bodies[0], {
      alert: "timeouts",
      state: "firing",
      count: 3,
      threshold: 2,
      window_s: 60,
      since: iso(fired),
      sample: ["timeout a", "timeout b", "timeout c"],
    });
    // More lines while it fires tell nobody.
    engine.write(batchOf(["timeout d"], {}, metaOf("billing")));
    // Lines leave the window 60 s after their bucket: at 60 s the first two have, the count (2)
    // is no more than the threshold, and 30 s later, at 90 s, it resolves.
    clock.advance(59_000);
    assert.equal(engine.list()[0].count, 2);
    assert.equal(engine.list()[0].state, "firing");
    clock.advance(25_999);
    assert.equal(engine.list()[0].state, "firing");
    clock.advance(1);
    assert.equal(engine.list()[0].state, "ok");
    await until(() => receiver.bodies.length === 2, () => "no resolved notification");
    assert.deepEqual(receiver.bodies[1], {
      alert: "timeouts",
      state: "resolved",
      count: 0,
      threshold: 2,
      window_s: 60,
      since: iso(START + 90_000),
      sample: ["timeout a", "timeout b", "timeout c", "timeout d"],
    });
    await until(() => engine.list()[0].webhook.pending === 0, () => "still pending");
    assert.equal(clock.waiting, 0, "nothing ticks once every alert resolved");
    const [status] = engine.list();
    assert.deepEqual(status, {
      name: "timeouts",
      state: "ok",
      count: 0,
      threshold: 2,
      window_s: 60,
      since: iso(START + 90_000),
      last_fired: iso(fired),
      webhook: { last_status: 200, pending: 0 },
      rule: {
        source: "billing*",
        grep: "timeout",
        threshold: 2,
        window_s: 60,
        resolve_after_s: 30,
        webhook: receiver.url.replace("/hook", "/***"),
        webhook_timeout_s: 10,
        max_pending: 100,
      },
    });
  } finally {
    await engine.close();
  }
});

Deno.test("the window slides: lines spread wider than it never fire", async () => {
  await using receiver = new Receiver();
  const clock = new FakeClock(START);
  const engine = new AlertEngine(
    alerts({ errors: { grep: "ERROR", threshold: 2, window: "10s", webhook: receiver.url } }),
    { clock },
  );
  try {
    for (let i = 0; i < 10; i++) {
      engine.write(batchOf(["ERROR one", "ERROR two"]));
      clock.advance(10_000);
    }
    assert.equal(engine.list()[0].state, "ok");
    // Two lines 10 s ago have left; two now and one more half a second later are three.
    engine.write(batchOf(["ERROR one", "ERROR two"]));
    clock.advance(500);
    assert.equal(engine.list()[0].state, "ok");
    engine.write(batchOf(["ERROR three"]));
    assert.equal(engine.list()[0].state, "firing");
    await until(() => receiver.bodies.length === 1, () => "no notification");
    assert.equal(receiver.bodies[0].count, 3);
  } finally {
    await engine.close();
  }
});

Deno.test("a reload keeps the state of the alerts whose rule did not change", async () => {
  await using receiver = new Receiver();
  const clock = new FakeClock(START);
  const rule = { grep: "ERROR", threshold: 0, window: "1m", webhook: receiver.url };
  const engine = new AlertEngine(alerts({ kept: rule, changed: rule, gone: rule }), { clock });
  try {
    engine.write(batchOf(["ERROR"]));
    assert.deepEqual(engine.list().map((a) => a.state), ["firing", "firing", "firing"]);
    await until(() => receiver.bodies.length === 3, () => "not every alert told");
    clock.advance(1_000);
    const changes = engine.configure(
      alerts({ kept: { ...rule }, changed: { ...rule, threshold: 5 }, added: rule }),
    );
    assert.deepEqual(changes, {
      added: ["added"],
      removed: ["gone"],
      rebuilt: ["changed"],
      unchanged: ["kept"],
    });
    const [kept, changed, added] = engine.list();
    assert.deepEqual([kept.name, kept.state, kept.count, kept.since], [
      "kept",
      "firing",
      1,
      iso(START),
    ]);
    assert.deepEqual([changed.name, changed.state, changed.count], ["changed", "ok", 0]);
    assert.deepEqual([added.name, added.state, added.count], ["added", "ok", 0]);
    // The kept alert resolves on time: its tick goes on.
    clock.advance(120_000);
    assert.equal(engine.list()[0].state, "ok");
    await until(() => receiver.bodies.length === 4, () => "no resolved notification");
    assert.deepEqual([receiver.bodies[3].alert, receiver.bodies[3].state], ["kept", "resolved"]);
  } finally {
    await engine.close();
  }
});

Deno.test("GET /api/v1/alerts lists the alerts; /metrics has their state and webhook results", async () => {
  await using receiver = new Receiver();
  receiver.statuses.push(500);
  const clock = new FakeClock(START);
  const engine = new AlertEngine(
    alerts({
      a: { level: "error", threshold: 0, window: "5m", webhook: receiver.url },
      b: { fields: { service: "billing" }, threshold: 9, window: "5m", webhook: receiver.url },
    }),
    { clock },
  );
  try {
    engine.write(batchOf(["boom"], { levels: Uint8Array.of(5) }));
    await until(() => engine.list()[0].webhook.last_error === "HTTP 500", () => "no failure");
    const res = alertsResponse(new Request("http://x/api/v1/alerts"), engine);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^application\/json/);
    const { alerts: listed } = await res.json();
    assert.deepEqual(listed.map((a: Record<string, unknown>) => [a.name, a.state, a.count]), [
      ["a", "firing", 1],
      ["b", "ok", 0],
    ]);
    assert.deepEqual(listed[0].webhook, { last_status: 500, last_error: "HTTP 500", pending: 1 });
    assert.deepEqual(listed[1].rule.fields, { service: "billing" });
    assert.deepEqual([...engine.fieldNames], ["service"]);
    const wrong = alertsResponse(new Request("http://x/api/v1/alerts", { method: "POST" }), engine);
    assert.equal(wrong.status, 405);
    await wrong.body?.cancel();
    const empty = alertsResponse(new Request("http://x/api/v1/alerts"), undefined);
    assert.deepEqual(await empty.json(), { alerts: [] });
    const metrics = engine.metrics();
    for (
      const line of [
        'logboom_alert_firing{alert="a"} 1',
        'logboom_alert_firing{alert="b"} 0',
        'logboom_alert_matched_lines_total{alert="a"} 1',
        'logboom_alert_webhook_total{alert="a",result="error"} 1',
        'logboom_alert_webhook_total{alert="a",result="ok"} 0',
        'logboom_alert_webhook_pending{alert="a"} 1',
      ]
    ) assert.ok(metrics.includes(line + "\n"), `${line} in\n${metrics}`);
    assert.equal(new AlertEngine({}).metrics(), "");
  } finally {
    await engine.close();
  }
});
