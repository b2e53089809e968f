/// <reference lib="dom" />
/**
 * The control centre in Firefox: Debian's `firefox-esr` driven over WebDriver BiDi by npm
 * `puppeteer-core` (Playwright drives only its own patched Firefox builds). The page loads, every
 * view opens, lines arrive, the level filter runs on the server, scrolling up pauses and Resume
 * resumes, with no console error. Run with `deno task test:browser`.
 *
 * Firefox is `/usr/bin/firefox-esr` (`apt-get install firefox-esr`), or `LOGBOOM_FIREFOX`.
 */

import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { type Server, startServer } from "../_server.ts";
import { BROWSER_TEST, pushLoki, SCREENSHOTS, sendTcp } from "./_browser.ts";

const FIREFOX = Deno.env.get("LOGBOOM_FIREFOX") ?? "/usr/bin/firefox-esr";

/** The texts of the tail's rows. */
function rows(page: Page): Promise<string[]> {
  return page.$$eval(".lines .row .c-line", (lines) => lines.map((l) => l.textContent ?? ""));
}

function waitForRow(page: Page, text: string): Promise<unknown> {
  return page.waitForFunction(
    (want: string) =>
      [...document.querySelectorAll(".lines .row .c-line")].some((e) => e.textContent === want),
    { timeout: 15_000 },
    text,
  );
}

async function withFirefox(
  name: string,
  run: (page: Page, server: Server) => Promise<void>,
): Promise<void> {
  try {
    await Deno.stat(FIREFOX);
  } catch {
    throw new Error(
      `No Firefox at ${FIREFOX}: apt-get install firefox-esr (or set LOGBOOM_FIREFOX)`,
    );
  }
  await using server = await startServer();
  let browser: Browser | undefined;
  try {
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: FIREFOX,
      headless: true,
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const errors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (err) => errors.push(`uncaught: ${String(err)}`));
    await page.goto(server.url + "/");
    try {
      await run(page, server);
    } finally {
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: `${SCREENSHOTS}firefox-${name}.png`, fullPage: true });
    }
    assert.deepEqual(errors, [], "the page logged errors");
  } finally {
    await browser?.close();
  }
}

Deno.test({
  name: "Firefox: the page loads, every view opens, lines arrive, the level filter runs",
  ...BROWSER_TEST,
  async fn() {
    await withFirefox("views-tail", async (page, server) => {
      await page.waitForSelector(".state.st-live");
      for (const view of ["Search", "Sources & fleet", "Agent configs", "Rules", "Alerts"]) {
        await page.click(`nav a ::-p-text(${view})`);
        await page.waitForFunction(
          (want: string) =>
            document.querySelector("nav a[aria-current=page]")?.textContent === want,
          {},
          view,
        );
      }
      await page.click("nav a ::-p-text(Live tail)");
      await page.waitForSelector(".state.st-live");
      await sendTcp(server, ["first line", "Error: Database connection failed", "last line"]);
      await waitForRow(page, "last line");
      assert.deepEqual(await rows(page), [
        "first line",
        "Error: Database connection failed",
        "last line",
      ]);
      await page.select("select[name=level]", "warn");
      await page.waitForFunction(() => location.hash.includes("level=warn"));
      await page.waitForSelector(".state.st-live");
      await pushLoki(server, "billing", [
        { level: "info", line: "charged card" },
        { level: "error", line: "card declined" },
      ]);
      await waitForRow(page, "card declined");
      assert.deepEqual(await rows(page), ["card declined"]);
    });
  },
});

Deno.test({
  name: "Firefox: scrolling up pauses the tail with a count of new lines, and Resume shows them",
  ...BROWSER_TEST,
  async fn() {
    await withFirefox("pause", async (page, server) => {
      await page.waitForSelector(".state.st-live");
      await sendTcp(server, Array.from({ length: 300 }, (_, i) => `line ${i + 1}`));
      await waitForRow(page, "line 300");
      const box = (await (await page.$(".lines"))!.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.wheel({ deltaY: -2000 });
      await page.waitForSelector(".paused:not([hidden])");
      await sendTcp(server, ["after 1", "after 2"]);
      await page.waitForFunction(() =>
        /Paused, 2 new lines/.test(document.querySelector(".paused")?.textContent ?? "")
      );
      assert.ok(!(await rows(page)).includes("after 1"), "a paused tail adds no rows");
      await page.click(".paused button.resume");
      await waitForRow(page, "after 2");
      assert.deepEqual((await rows(page)).slice(-3), ["line 300", "after 1", "after 2"]);
    });
  },
});
