/// <reference lib="dom" />
/**
 * Alerts in the page: an alert of the config fires on lines sent over TCP, its webhook reaches a
 * local receiver and the page shows it firing.
 */

import assert from "node:assert/strict";
import { Receiver } from "../../src/alerts/_receiver.ts";
import { until } from "../_http.ts";
import { BROWSER_TEST, openSession, sendTcp } from "./_browser.ts";

Deno.test({
  name: "an alert triggered by lines fires its webhook on a local receiver and shows as firing",
  ...BROWSER_TEST,
  async fn() {
    await using receiver = new Receiver();
    await using session = await openSession("alerts", [], {
      path: "/#/alerts",
      config: {
        alerts: {
          db_errors: { grep: "ERROR", threshold: 2, window: "1m", webhook: receiver.url },
        },
      },
    });
    const { page, server } = session;
    await page.waitForSelector("tr.alert-ok");
    assert.match(await page.textContent("tr.alert-ok") ?? "", /db_errors/);
    await sendTcp(server, ["ERROR db down 1", "INFO fine", "ERROR db down 2", "ERROR db down 3"]);
    await until(() => receiver.bodies.length >= 1, server.stderr);
    assert.equal(receiver.bodies[0].alert, "db_errors");
    assert.equal(receiver.bodies[0].state, "firing");
    await page.waitForSelector("tr.alert-firing .badge.firing");
    const row = await page.textContent("tr.alert-firing") ?? "";
    assert.match(row, /db_errors/);
    assert.match(row, /3 \/ 2/);
    await page.waitForFunction(() =>
      /HTTP 200/.test(document.querySelector("tr.alert-firing")?.textContent ?? "")
    );
  },
});
