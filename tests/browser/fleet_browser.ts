/// <reference lib="dom" />
/**
 * Sources and fleet in the page: a real agent shipping a file shows with its host, its file's
 * offset, size and lag; its source shows with its counts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startAgent, writeConfig } from "../_agent.ts";
import { BROWSER_TEST, openSession } from "./_browser.ts";

Deno.test({
  name: "an agent shows with its files, offsets and lag, and its source with its counts",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("fleet", [], { path: "/#/fleet" });
    const { page, server } = session;
    const dir = await Deno.makeTempDir({ prefix: "logboom-browser-agent-" });
    try {
      const file = join(dir, "app.log");
      const text = Array.from({ length: 100 }, (_, i) => `agent line ${i}\n`).join("");
      await Deno.writeTextFile(file, text);
      await writeConfig(join(dir, "agent.json"), {
        id: "web-1",
        servers: [server.url],
        state_dir: join(dir, "state"),
        report_interval: "1s",
        inputs: [{ source: "app", paths: [file], start_at: "beginning" }],
      });
      await using _agent = await startAgent(join(dir, "agent.json"), { cwd: dir });
      await page.waitForSelector("tr.agent:has-text('web-1')");
      await page.click("tr.agent:has-text('web-1') button[aria-expanded]");
      const size = new TextEncoder().encode(text).length;
      // Once every line is shipped the report says so: offset = size, no lag.
      await page.waitForFunction(
        (want: string) => {
          const row = [...document.querySelectorAll("table.files tbody tr")]
            .find((tr) => tr.textContent?.includes("app.log"));
          return row !== undefined && row.querySelectorAll("td")[1].textContent === want;
        },
        size.toLocaleString("en-US"),
        { timeout: 20_000 },
      );
      const cells = await page.$$eval(
        "table.files tbody tr td",
        (tds) => tds.map((td) => td.textContent),
      );
      assert.deepEqual(cells, [
        file,
        size.toLocaleString("en-US"),
        size.toLocaleString("en-US"),
        "0 B",
      ]);
      assert.equal(await page.textContent("tr.agent:has-text('web-1') td.lag"), "0 B");
      await page.waitForSelector("table.sources tr:has-text('app')");
      await page.waitForFunction(() => {
        const row = [...document.querySelectorAll("table.sources tbody tr")]
          .find((tr) => tr.querySelector("td")?.textContent === "app");
        return row?.querySelectorAll("td")[4].textContent === "100";
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
