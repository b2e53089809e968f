/// <reference lib="dom" />
/**
 * The rest of the page in a real browser: JSON lines expanded into fields and a field made a
 * column, the keyboard, light and dark, and the rules view's dry run.
 */

import assert from "node:assert/strict";
import { BROWSER_TEST, openSession, SCREENSHOTS, sendTcp, waitForLine } from "./_browser.ts";

Deno.test({
  name: "a JSON line opens into its fields, a field becomes a column, all from the keyboard",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-fields");
    const { page, server } = session;
    await page.waitForSelector(".state.st-live");
    const json = '{"service":"billing","code":502,"msg":"upstream failed"}';
    await sendTcp(server, ["plain line", json]);
    await waitForLine(page, json);
    // Tab to the list, ArrowUp selects the last line (and pauses), Enter toggles its fields.
    await page.focus(".lines");
    await page.keyboard.press("ArrowUp");
    await page.waitForSelector(".detail dt:text-is('service')");
    assert.ok(await page.$(".paused:not([hidden])"), "selecting a line pauses");
    await page.click(".detail dd:has-text('billing') button:text-is('as column')");
    await page.waitForFunction(() => location.hash.includes("cols=service"));
    await page.waitForSelector(".state.st-live");
    await waitForLine(page, json);
    const meta = await page.$$eval(".lines .row .c-meta", (els) => els.map((e) => e.textContent));
    assert.match(meta.at(-1) ?? "", / billing +$/, "the column holds the field's value");
    assert.match(meta.at(-2) ?? "", /tcp +\s+ +$/, "a plain line has an empty column");
    await page.keyboard.press("Escape");
    assert.equal(await page.$(".detail"), null);
  },
});

Deno.test({
  name: "light and dark follow the system, and the toggle overrides it",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("theme", [], { path: "" });
    const { page, server } = session;
    await page.emulateMedia({ colorScheme: "dark" });
    await page.goto(server.url + "/");
    await page.waitForSelector(".state.st-live");
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const becomes = (color: string) =>
      page.waitForFunction(
        (want: string) => getComputedStyle(document.body).backgroundColor === want,
        color,
      );
    assert.equal(await background(), "rgb(13, 17, 23)");
    await page.screenshot({ path: `${SCREENSHOTS}theme-dark.png` });
    await page.click("button.theme"); // auto -> light
    await becomes("rgb(255, 255, 255)");
    await page.reload();
    await page.waitForSelector(".state.st-live");
    assert.equal(await background(), "rgb(255, 255, 255)", "the choice is kept");
    await page.click("button.theme"); // light -> dark
    await becomes("rgb(13, 17, 23)");
  },
});

Deno.test({
  name: "the rules view shows the running rules and dry-runs pasted lines",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("rules", [], {
      path: "/#/rules",
      config: {
        transforms: {
          app: { steps: [{ type: "parse", format: "json" }, { type: "level", fields: ["level"] }] },
        },
      },
    });
    const { page } = session;
    await page.waitForSelector("pre.json");
    assert.match(await page.textContent("pre.json") ?? "", /"format": "json"/);
    await page.fill(
      "textarea[name=lines]",
      '{"level":"error","msg":"card declined"}\n{"level":"info","msg":"ok"}',
    );
    await page.click("form.dryrun button[type=submit]");
    await page.waitForSelector("table.rule-results tbody tr");
    const levels = await page.$$eval(
      "table.rule-results tbody tr",
      (rows) => rows.map((r) => r.querySelectorAll("td")[3].textContent),
    );
    assert.deepEqual(levels, ["error", "info"]);
  },
});

Deno.test({
  name: "a view whose API the server lacks says it is not available instead of breaking",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("unavailable", [], {
      path: "",
      // The 404 answers the test makes the server's stand-in give.
      expectedErrors: [/status of 404/],
    });
    const { page, server } = session;
    // An older server: no alerts route.
    await page.route("**/api/v1/alerts", (route) =>
      route.fulfill({
        status: 404,
        contentType: "application/json",
        body: '{"error":"No route \\"/api/v1/alerts\\""}',
      }));
    await page.goto(server.url + "/#/alerts");
    await page.waitForSelector(".notice.unavailable");
    assert.match(await page.textContent(".notice.unavailable") ?? "", /Alerts is not available/);
    // The other views still work.
    await page.click("nav a:text-is('Live tail')");
    await page.waitForSelector(".state.st-live");
  },
});

Deno.test({
  name: "the selected line is copied to the clipboard with c",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-copy", [], { path: "" });
    const { page, server } = session;
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
    await page.goto(server.url + "/");
    await page.waitForSelector(".state.st-live");
    await sendTcp(server, ["copy me, please"]);
    await waitForLine(page, "copy me, please");
    await page.click(".lines .row:has-text('copy me, please')");
    await page.keyboard.press("c");
    await page.waitForSelector(".detail button:text-is('Copied')");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "copy me, please");
  },
});
