/// <reference lib="dom" />
/**
 * The live tail after a network cut: the page says it is disconnected, reconnects by itself with
 * its last cursor, and shows the lines sent meanwhile, each once.
 */

import assert from "node:assert/strict";
import { TcpProxy } from "../_http.ts";
import { BROWSER_TEST, openSession, sendTcp, tailLines, waitForLine } from "./_browser.ts";

Deno.test({
  name:
    "the live tail reconnects after a network cut and resumes from its cursor, no line lost or doubled",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("reconnect", [], {
      path: "",
      // What Chromium itself logs for the cut stream and the refused reconnects.
      expectedErrors: [/net::ERR_/],
    });
    const { page, server } = session;
    const proxy = new TcpProxy(server.httpPort);
    try {
      await page.goto(`http://127.0.0.1:${proxy.port}/`);
      await page.waitForSelector(".state.st-live");
      await sendTcp(server, ["before 1", "before 2"]);
      await waitForLine(page, "before 2");
      proxy.down = true;
      proxy.cut();
      await page.waitForSelector(".state.st-reconnecting");
      await sendTcp(server, ["during 1", "during 2", "during 3"]);
      proxy.down = false;
      await waitForLine(page, "during 3", 30_000);
      await page.waitForSelector(".state.st-live");
      await sendTcp(server, ["after 1"]);
      await waitForLine(page, "after 1");
      assert.deepEqual(await tailLines(page), [
        "before 1",
        "before 2",
        "during 1",
        "during 2",
        "during 3",
        "after 1",
      ]);
    } finally {
      await proxy.close();
    }
  },
});

Deno.test({
  name: "lines the server no longer holds when the tail comes back are counted as dropped",
  ...BROWSER_TEST,
  async fn() {
    await using session = await openSession("reconnect-dropped", [], {
      path: "",
      expectedErrors: [/net::ERR_/],
    });
    const { page, server } = session;
    const proxy = new TcpProxy(server.httpPort);
    try {
      await page.goto(`http://127.0.0.1:${proxy.port}/`);
      await page.waitForSelector(".state.st-live");
      await sendTcp(server, ["before"]);
      await waitForLine(page, "before");
      proxy.down = true;
      proxy.cut();
      await page.waitForSelector(".state.st-reconnecting");
      // Far more than the server's ring of recent lines (10,000) while the page is away.
      // One connection, so "last" is stored last.
      await sendTcp(server, [...Array.from({ length: 30_000 }, (_, i) => `missed ${i}`), "last"]);
      proxy.down = false;
      await waitForLine(page, "last", 30_000);
      await page.waitForFunction(() =>
        /\d+ dropped/.test(document.querySelector(".tailbar .counts")?.textContent ?? "")
      );
      const counts = await page.textContent(".tailbar .counts") ?? "";
      const dropped = Number(/([\d,]+) dropped/.exec(counts)![1].replaceAll(",", ""));
      assert.ok(dropped >= 10_000 && dropped < 30_000, counts);
    } finally {
      await proxy.close();
    }
  },
});
