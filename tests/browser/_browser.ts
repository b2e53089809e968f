/// <reference lib="dom" />
/**
 * The browser tests' harness: a real server (`main.ts serve` as a subprocess, with the design
 * card's permissions) and headless Chromium driven by npm `playwright-core`. Every page fails its
 * test on any console error or uncaught exception, and leaves a screenshot in
 * `tests/browser/screenshots/` (ignored by git).
 *
 * Chromium is Debian's `/usr/bin/chromium` (`apt-get install chromium`), or `LOGBOOM_CHROMIUM`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type ConsoleMessage, type Page } from "playwright-core";
import { join } from "node:path";
import {
  freePort,
  type Server,
  spawnMain,
  type StartOptions,
  startServer,
  watchProcess,
} from "../_server.ts";

/** Where each test's screenshot goes. */
export const SCREENSHOTS = fileURLToPath(new URL("./screenshots/", import.meta.url));

/** The browser the tests drive. */
export const CHROMIUM = Deno.env.get("LOGBOOM_CHROMIUM") ?? "/usr/bin/chromium";

/** A server, a browser and a page on the server's control centre. */
export interface Session {
  server: Server;
  browser: Browser;
  page: Page;
  /** Console errors and uncaught exceptions seen so far. */
  errors: string[];
  /** Saves the screenshot, checks no console error was seen, closes everything. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode openSession}. */
export interface SessionOptions extends StartOptions {
  /** The path (and hash) to open; default `/`. Empty: open nothing yet. */
  path?: string;
  /** Console errors that are expected (matched by text), e.g. a 401 on a wrong token. */
  expectedErrors?: RegExp[];
  /** Viewport; default 1280 x 800. */
  viewport?: { width: number; height: number };
  /**
   * Runs `serve -config` with this config (its `http` address and a `tcp` input named `tcp` are
   * added, on free ports) instead of flags; `args` are then ignored.
   */
  config?: Record<string, unknown>;
}

/**
 * Starts a server with `args`, Chromium, and a page on the control centre; the screenshot is
 * named `name`.
 */
export async function openSession(
  name: string,
  args: string[] = [],
  options: SessionOptions = {},
): Promise<Session> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `No Chromium at ${CHROMIUM}: apt-get install chromium (or set LOGBOOM_CHROMIUM)`,
    );
  }
  const server = options.config === undefined
    ? await startServer(args, options)
    : await startConfigServer(options.config, options.permissions);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    const context = await browser.newContext({
      viewport: options.viewport ?? { width: 1280, height: 800 },
    });
    const page = await context.newPage();
    const errors: string[] = [];
    const expected = options.expectedErrors ?? [];
    page.on("console", (message: ConsoleMessage) => {
      if (message.type() !== "error") return;
      const text = `${message.text()} (${message.location().url})`;
      if (!expected.some((re) => re.test(text))) errors.push(text);
    });
    page.on("pageerror", (err: Error) => errors.push(`uncaught: ${err.stack ?? err.message}`));
    const path = options.path ?? "/";
    if (path !== "") await page.goto(server.url + path);
    const opened = browser;
    return {
      server,
      browser: opened,
      page,
      errors,
      async [Symbol.asyncDispose]() {
        try {
          await Deno.mkdir(SCREENSHOTS, { recursive: true });
          await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
          assert.deepEqual(errors, [], "the page logged errors");
        } finally {
          await opened.close();
          await server[Symbol.asyncDispose]();
        }
      },
    };
  } catch (err) {
    await browser?.close();
    await server[Symbol.asyncDispose]();
    throw err;
  }
}

/**
 * Runs `main.ts serve -config logboom.json` in a new temporary folder, with `config` plus an HTTP
 * address and a TCP input on free ports.
 */
export async function startConfigServer(
  config: Record<string, unknown>,
  permissions = ["--allow-net", "--allow-write", "--allow-read=."],
): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-browser-" });
  const [port, httpPort] = [freePort(), freePort()];
  const inputs = (config.inputs ?? {}) as Record<string, unknown>;
  const full = {
    sinks: { file: { type: "file", path: "out.log" } },
    ...config,
    http: { ...(config.http as object ?? {}), address: `127.0.0.1:${httpPort}` },
    inputs: { ...inputs, tcp: { type: "tcp", address: `127.0.0.1:${port}` } },
  };
  await Deno.writeTextFile(join(dir, "logboom.json"), JSON.stringify(full, null, 2));
  const child = spawnMain(permissions, ["serve", "-config", "logboom.json"], dir);
  let watched;
  try {
    watched = await watchProcess(child, {
      ready: /Listening on/,
      notReady: "Server exited before listening",
    });
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  return {
    port,
    httpPort,
    url: `http://127.0.0.1:${httpPort}`,
    dir,
    child,
    stderr: watched.stderr,
    stop: watched.stop,
    exited: watched.exited,
    async [Symbol.asyncDispose]() {
      await watched.kill();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Sends lines over the server's TCP input and closes the connection. */
export async function sendTcp(server: Server, lines: string[]): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const data = new TextEncoder().encode(lines.map((l) => l + "\n").join(""));
    for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
  } finally {
    conn.close();
  }
}

/** Pushes lines with a level and a source over the Loki route (labels become level and fields). */
export async function pushLoki(
  server: Server,
  source: string,
  lines: Array<{ level: string; line: string }>,
  token = "",
): Promise<void> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const streams = lines.map(({ level, line }, i) => ({
    stream: { service_name: source, level },
    values: [[String(now + BigInt(i)), line]],
  }));
  const res = await fetch(`${server.url}/loki/api/v1/push`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === "" ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify({ streams }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 204, `Loki push answered ${res.status}`);
}

/** The texts of the live tail's line rows, in order. */
export function tailLines(page: Page): Promise<string[]> {
  return page.$$eval(
    ".lines .row:not(.marker) .c-line",
    (els) => els.map((e) => e.textContent ?? ""),
  );
}

/** Waits until the live tail shows a line with exactly this text. */
export async function waitForLine(page: Page, text: string, timeout = 15_000): Promise<void> {
  await page.waitForFunction(
    (want: string) =>
      [...document.querySelectorAll(".lines .row .c-line")].some((e) => e.textContent === want),
    text,
    { timeout },
  );
}

/** Test options every browser test shares: Playwright keeps timers and pipes of its own. */
export const BROWSER_TEST = { sanitizeOps: false, sanitizeResources: false } as const;
