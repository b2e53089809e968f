/// <reference lib="dom" />
/**
 * Central agent configs in the page: a config with a mistake is refused with the problem at its
 * key; a good one is saved, a real agent started with `-server` takes it and reports it applied;
 * one it cannot run shows as refused with the reason, and the lines of the file the config it kept
 * names reach the live tail.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { AGENT_PERMISSIONS } from "../_agent.ts";
import { freePort, spawnMain, watchProcess } from "../_server.ts";
import { BROWSER_TEST, openSession, SCREENSHOTS, waitForLine } from "./_browser.ts";

Deno.test({
  name: "a config pushed from the page is checked, saved, applied by an agent and shown applied",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("configs", [], {
      path: "/#/configs?new=1",
      // The refused config's 400, which Chromium logs as a failed resource.
      expectedErrors: [/status of 400 .*\/api\/v1\/agent-configs\/web/],
    });
    const { page, server } = session;
    const dir = await Deno.makeTempDir({ prefix: "logboom-browser-central-" });
    const agent = spawnMain(AGENT_PERMISSIONS, [
      "agent",
      "-server",
      server.url,
      "-id",
      "web-1",
      "-stateDir",
      join(dir, "state"),
      "-poll",
      "1s",
    ], dir);
    const watched = await watchProcess(agent, { notReady: "Agent exited" });
    try {
      const file = join(dir, "app.log");
      await Deno.writeTextFile(file, "from the central config 1\nfrom the central config 2\n");
      await page.fill("input[name=name]", "web");
      await page.fill("input[name=ids]", "web-1");
      // A mistake first: the server's 400 names the key.
      await page.fill("textarea[name=config]", JSON.stringify({ inputs: [{ source: "app" }] }));
      await page.click("form.editor button[type=submit]");
      await page.waitForSelector(".notice.error .problems li");
      assert.match(await page.textContent(".notice.error .problems") ?? "", /config\.inputs/);
      const config = {
        report_interval: "1s",
        inputs: [{ source: "app", paths: [file], start_at: "beginning" }],
      };
      await page.fill("textarea[name=config]", JSON.stringify(config, null, 2));
      await page.click("form.editor button[type=submit]");
      await page.waitForFunction(() => location.hash.includes("name=web"));
      await page.waitForSelector("table.config-list a:text-is('web')");
      assert.match(await page.textContent(".notice.saved") ?? "", /Saved "web" as version \d+/);
      // The agent polls, applies it by hot reload and reports the version it runs.
      await page.waitForSelector("table.agent-configs tr:has-text('web-1') .badge.applied", {
        timeout: 30_000,
      });
      const version = await page.textContent("table.config-list tr:has-text('web') td.num");
      assert.match(
        await page.textContent("table.agent-configs tr:has-text('web-1')") ?? "",
        new RegExp(`web v${version}`),
      );
      await page.screenshot({ path: `${SCREENSHOTS}configs-applied.png`, fullPage: true });
      // A version the agent cannot run (its metrics port is taken) shows as refused, with the
      // reason; the one before keeps running.
      const port = freePort();
      using _taken = Deno.listen({ hostname: "127.0.0.1", port });
      await page.fill(
        "textarea[name=config]",
        JSON.stringify({ ...config, metrics: `127.0.0.1:${port}` }, null, 2),
      );
      await page.click("form.editor button[type=submit]");
      await page.waitForSelector("table.agent-configs tr:has-text('web-1') .badge.refused", {
        timeout: 30_000,
      });
      assert.match(
        await page.textContent("table.agent-configs tr:has-text('web-1') .reason") ?? "",
        /metrics: cannot listen/,
      );
      await page.screenshot({ path: `${SCREENSHOTS}configs-refused.png`, fullPage: true });
      // Its lines arrive, from the config it kept.
      await page.click("nav a:text-is('Live tail')");
      await page.waitForSelector(".state.st-live");
      await Deno.writeTextFile(file, "after the push\n", { append: true });
      await waitForLine(page, "after the push", 30_000);
    } finally {
      await watched.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
