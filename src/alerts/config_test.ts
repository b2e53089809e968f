import assert from "node:assert/strict";
import { checkServerConfig } from "../config/server_config.ts";
import { formatProblem } from "../config/keys.ts";
import { redactedWebhook } from "./config.ts";

const BASE = { sinks: { file: { type: "file", path: "/logs/out.log" } } };

function problems(alerts: unknown): string[] {
  return checkServerConfig({ ...BASE, alerts }).problems.list.map(formatProblem);
}

Deno.test("an alert is read with its defaults: resolve_after is the window", () => {
  const { config, problems } = checkServerConfig({
    ...BASE,
    alerts: {
      billing_errors: {
        source: "billing",
        level: "error",
        grep: "timeout",
        fields: { service: "billing", status: 500, retried: false },
        threshold: 10,
        window: "5m",
        webhook: "http://127.0.0.1:9999/hook",
      },
    },
  });
  assert.deepEqual(problems.list, []);
  assert.deepEqual(config.alerts, {
    billing_errors: {
      source: "billing",
      level: "error",
      grep: "timeout",
      fields: { service: "billing", status: "500", retried: "false" },
      threshold: 10,
      window: 300_000,
      resolve_after: 300_000,
      webhook: "http://127.0.0.1:9999/hook",
      webhook_timeout: 10_000,
      max_pending: 100,
    },
  });
  assert.equal(checkServerConfig(BASE).config.alerts, undefined);
  assert.deepEqual(checkServerConfig({ ...BASE, alerts: null }).config.alerts, {});
});

Deno.test("every problem of an alert is reported at its key path", () => {
  assert.deepEqual(
    problems({
      "bad name": { threshold: 1, window: "1m", webhook: "http://h/x" },
      a: {
        level: "loud",
        regex: "(unclosed",
        threshold: -1,
        window: "10ms",
        webhook: "ftp://example.com/x",
        fields: { status: [500] },
        trheshold: 3,
      },
      b: {},
      c: { threshold: 1, window: "1m", webhook: "not a url", resolve_after: "soon" },
      d: "no",
    }),
    [
      "alerts.bad name: a name is 1 to 64 letters, digits, _ or -",
      'alerts.a.trheshold: unknown key; did you mean "threshold"?',
      'alerts.a.level: must be one of trace, debug, info, warn, error, fatal, got "loud"',
      'alerts.a.regex: Invalid regex "(unclosed": missing closing ): `(unclosed`',
      "alerts.a.threshold: must be a whole number of at least 0, got -1",
      'alerts.a.window: must be a duration of at least 1000 ms such as "30s", "15m" or "7d", ' +
      'got "10ms"',
      'alerts.a.webhook: must be an http:// or https:// URL, got "ftp://example.com/x"',
      "alerts.a.fields.status: must be a string, number or boolean, got [500]",
      "alerts.b.threshold: is required",
      "alerts.b.window: is required",
      "alerts.b.webhook: is required",
      'alerts.c.resolve_after: must be a duration such as "30s", "15m" or "7d", got "soon"',
      'alerts.c.webhook: must be an http:// or https:// URL, got "not a url"',
      'alerts.d: must be a mapping with threshold, window and webhook, got "no"',
    ],
  );
  assert.deepEqual(problems([1]), [
    "alerts: must be a mapping of alert names to alerts, got [1]",
  ]);
});

Deno.test("the API shows a webhook's origin only: paths often hold the secret", () => {
  assert.equal(
    redactedWebhook("https://hooks.slack.com/services/T0/B0/XXXX"),
    "https://hooks.slack.com/***",
  );
  assert.equal(redactedWebhook("http://127.0.0.1:9999/"), "http://127.0.0.1:9999/");
  assert.equal(redactedWebhook("http://u:p@h:1/?k=s"), "http://h:1/***");
});
