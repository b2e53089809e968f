/// <reference lib="dom" />
/**
 * The control centre in a real browser: the page, the live tail, the token. Run with
 * `deno task test:browser` (needs /usr/bin/chromium).
 */

import assert from "node:assert/strict";
import {
  BROWSER_TEST,
  openSession,
  pushLoki,
  sendTcp,
  tailLines,
  waitForLine,
} from "./_browser.ts";

Deno.test({
  name: "the page loads from the server with its Content-Security-Policy and no console error",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("load");
    const { page, server } = session;
    await page.waitForSelector("nav a[aria-current=page]");
    assert.equal(await page.textContent("nav a[aria-current=page]"), "Live tail");
    await page.waitForSelector(".state.st-live");
    for (const path of ["/", "/ui/app.js", "/ui/style.css", "/ui/vendor/preact.js"]) {
      const res = await fetch(server.url + path, { headers: { accept: "text/html" } });
      await res.body?.cancel();
      assert.equal(res.status, 200, path);
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /script-src 'self'/, path);
      assert.match(csp, /style-src 'self'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    }
    // Every view opens from its link without an error (views of APIs not there say so).
    for (const view of ["Search", "Sources & fleet", "Agent configs", "Rules", "Alerts"]) {
      await page.click(`nav a:text-is("${view}")`);
      await page.waitForSelector(`nav a[aria-current=page]:text-is("${view}")`);
    }
  },
});

Deno.test({
  name: "lines sent over TCP appear in the live tail, newest at the bottom",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-lines");
    const { page, server } = session;
    await page.waitForSelector(".state.st-live");
    const markup = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>";
    await sendTcp(server, ["first line", "Error: Database connection failed", markup, "last line"]);
    await waitForLine(page, "last line");
    assert.deepEqual(await tailLines(page), [
      "first line",
      "Error: Database connection failed",
      markup,
      "last line",
    ]);
    // A line is text, never markup.
    assert.equal(await page.$(".lines img, .lines b"), null);
    assert.notEqual(await page.title(), "pwned");
  },
});

Deno.test({
  name: "the level filter runs on the server and reads from and into the URL",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-level");
    const { page, server } = session;
    await page.waitForSelector(".state.st-live");
    await page.selectOption("select[name=level]", "warn");
    await page.waitForFunction(() => location.hash.includes("level=warn"));
    await page.waitForSelector(".state.st-live");
    await pushLoki(server, "billing", [
      { level: "info", line: "charged card 1" },
      { level: "error", line: "card declined" },
      { level: "warn", line: "retrying charge" },
      { level: "debug", line: "debug detail" },
    ]);
    await waitForLine(page, "retrying charge");
    assert.deepEqual((await tailLines(page)).sort(), ["card declined", "retrying charge"]);
    assert.equal(await page.textContent(".row.lv-error .c-line"), "card declined");
    assert.match(await page.textContent(".row.lv-error .c-meta") ?? "", / billing +error /);
    // The link reproduces the view: a new page on the same URL has the filter set.
    const again = await page.context().newPage();
    await again.goto(page.url());
    assert.equal(await again.inputValue("select[name=level]"), "warn");
    await again.close();
  },
});

Deno.test({
  name: "scrolling up pauses the tail with a count of new lines, and Resume shows them",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-pause");
    const { page, server } = session;
    await page.waitForSelector(".state.st-live");
    const first = Array.from({ length: 300 }, (_, i) => `line ${i + 1}`);
    await sendTcp(server, first);
    await waitForLine(page, "line 300");
    const list = await page.$(".lines");
    const box = (await list!.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -2000);
    await page.waitForSelector(".paused:not([hidden])");
    await sendTcp(server, ["after 1", "after 2", "after 3"]);
    await page.waitForFunction(() =>
      /Paused, 3 new lines/.test(document.querySelector(".paused")?.textContent ?? "")
    );
    assert.ok(!(await tailLines(page)).includes("after 1"), "a paused tail adds no rows");
    await page.click(".paused button.resume");
    await waitForLine(page, "after 3");
    assert.equal(await page.$(".paused:not([hidden])"), null);
    assert.deepEqual((await tailLines(page)).slice(-4), [
      "line 300",
      "after 1",
      "after 2",
      "after 3",
    ]);
    // At the bottom again: the list follows new lines.
    const atBottom = await page.$eval(
      ".lines",
      (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 4,
    );
    assert.ok(atBottom);
  },
});

Deno.test({
  name:
    "with a token the page asks for it once, keeps it for the session and never puts it in a URL",
  ...BROWSER_TEST,
  async fn() {
    const token = "s3cret-token-for-the-page";
    await using session = await openSession("token", ["-token", token], {
      // The wrong token's 401.
      expectedErrors: [/status of 401/],
    });
    const { page, server } = session;
    const html = await (await fetch(server.url + "/", { headers: { accept: "text/html" } })).text();
    assert.ok(!html.includes(token));
    await page.waitForSelector("input[name=token]");
    await page.fill("input[name=token]", "not-the-token");
    await page.press("input[name=token]", "Enter");
    await page.waitForSelector(".login .notice.error:has-text('not the server')");
    await page.fill("input[name=token]", token);
    await page.press("input[name=token]", "Enter");
    await page.waitForSelector(".state.st-live");
    await sendTcp(server, ["seen with the token"]);
    await waitForLine(page, "seen with the token");
    assert.ok(!page.url().includes(token));
    assert.equal(await page.evaluate(() => sessionStorage.getItem("logboom.token")), token);
    // A reload in the same session does not ask again.
    await page.reload();
    await page.waitForSelector(".state.st-live");
    assert.equal(await page.$("input[name=token]"), null);
  },
});

Deno.test({
  name: "a regex the server refuses stops the tail with the server's reason",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("tail-bad-regex", [], {
      path: "/#/tail?regex=(unclosed",
      expectedErrors: [/status of 400/],
    });
    const { page } = session;
    await page.waitForSelector(".state.st-error");
    assert.match(await page.textContent(".state.st-error") ?? "", /Invalid regex/);
    // Fixing it in the form starts the tail.
    await page.fill("input[name=regex]", "^GET ");
    await page.press("input[name=regex]", "Enter");
    await page.waitForSelector(".state.st-live");
  },
});
