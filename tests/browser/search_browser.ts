/// <reference lib="dom" />
/**
 * Search in the page: a time range over stored lines, results streamed in, the volume histogram,
 * a result's neighbours; and a line of the live tail opened in search with its neighbours.
 */

import assert from "node:assert/strict";
import { until } from "../_http.ts";
import { BROWSER_TEST, openSession, sendTcp, waitForLine } from "./_browser.ts";

/** Waits until the search API finds `last` stored. */
async function stored(url: string, last: string): Promise<void> {
  const found = async () => {
    const res = await fetch(`${url}/api/v1/search?q=${encodeURIComponent(last)}&from=now-1h`);
    return (await res.text()).includes(`"line":${JSON.stringify(last)}`);
  };
  await until(found, () => `"${last}" was not found by the search API`);
}

/**
 * Lines stored as JSON, each with its time, so a time range selects lines exactly (plain lines
 * in a file not yet indexed have no time of their own and match any range).
 */
const STORE = ["-logFile", "logs/app.log", "-format", "json"];
/** Search reads the stored files: the server needs read permission for them. */
const READ = ["--allow-net", "--allow-write", "--allow-read"];

const LINES = Array.from(
  { length: 40 },
  (_, i) => i === 20 ? "ERROR payment gateway timeout id=7" : `INFO request ${i} ok`,
);

Deno.test({
  name:
    "search a time range: results stream in with a histogram, and a result opens its neighbours",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("search", STORE, {
      path: "",
      permissions: READ,
    });
    const { page, server } = session;
    await sendTcp(server, LINES);
    await stored(server.url, "INFO request 39 ok");
    await page.goto(`${server.url}/#/search?q=gateway&from=now-15m&to=now`);
    await page.waitForSelector(
      ".results .row .c-line:text-is('ERROR payment gateway timeout id=7')",
    );
    await page.waitForSelector(".state.st-live:has-text('1 matched')");
    await page.waitForSelector(".chart canvas");
    // A range that ends before the lines were sent finds none.
    await page.fill("input[name=from]", "now-7d");
    await page.fill("input[name=to]", "now-1d");
    await page.press("input[name=to]", "Enter");
    await page.waitForSelector(".state.st-live:has-text('0 matched')");
    assert.equal(await page.$(".results .row"), null);
    // Back: the first search again, from the history in the URL.
    await page.goBack();
    await page.waitForSelector(".state.st-live:has-text('1 matched')");
    await page.click(".results .row");
    await page.waitForSelector(".context .row.hit");
    assert.equal(
      await page.textContent(".context .row.hit .c-line"),
      "ERROR payment gateway timeout id=7",
    );
    const around = await page.$$eval(
      ".context .row .c-line",
      (els) => els.map((e) => e.textContent),
    );
    // 20 before and 20 after: lines 0 to 39 (there is no 40th).
    assert.deepEqual(around, LINES);
    assert.ok(page.url().includes("ctx="), "the neighbours are in the URL");
    // The query is in the history.
    assert.match(await page.textContent(".history") ?? "", /"gateway"/);
  },
});

Deno.test({
  name: "a live tail line opens in search with its neighbours",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-to-search", STORE, {
      permissions: READ,
    });
    const { page, server } = session;
    await page.waitForSelector(".state.st-live");
    await sendTcp(server, LINES);
    await waitForLine(page, "ERROR payment gateway timeout id=7");
    await stored(server.url, "INFO request 39 ok");
    // Selecting a line pauses the tail, so the line stays put.
    await page.click(".lines .row:has-text('ERROR payment gateway timeout id=7')");
    await page.waitForSelector(".paused:not([hidden])");
    await page.click(".detail button:text-is('Open in search')");
    await page.waitForSelector(".context .row.hit");
    assert.equal(
      await page.textContent(".context .row.hit .c-line"),
      "ERROR payment gateway timeout id=7",
    );
    assert.equal(await page.textContent("nav a[aria-current=page]"), "Search");
  },
});
