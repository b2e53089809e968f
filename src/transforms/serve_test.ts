import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, send } from "../../tests/_server.ts";
import { until } from "../../tests/_http.ts";
import { Pipeline } from "../config/pipeline.ts";
import { checkServerConfig, type ServerConfig } from "../config/server_config.ts";

function config(dir: string, port: number, transforms?: unknown): ServerConfig {
  const { config, problems } = checkServerConfig({
    log_level: "error",
    http: { address: "off" },
    inputs: { tcp: { type: "tcp", address: `127.0.0.1:${port}` } },
    sinks: { file: { type: "file", path: join(dir, "out.log") } },
    ...(transforms === undefined ? {} : { transforms }),
  });
  assert.deepEqual(problems.list, []);
  return config;
}

const DROP_DEBUG = {
  quiet: { steps: [{ type: "level" }, { type: "filter", action: "exclude", level: "debug" }] },
};

Deno.test("rules come, change and go by reload, on a server started without a transforms section", async () => {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const out = join(dir, "out.log");
  let last = "";
  const stored = async () => last = await Deno.readTextFile(out).catch(() => "");
  const seen = () => `stored so far: ${JSON.stringify(last)}`;
  const pipeline = await Pipeline.start(config(dir, port));
  try {
    await send(port, "DEBUG kept\n");
    await until(async () => (await stored()) === "DEBUG kept\n", seen);
    const done = await pipeline.reload(config(dir, port, DROP_DEBUG));
    assert.deepEqual(done.transforms, { added: ["quiet"], removed: [], rebuilt: [] });
    await send(port, "DEBUG dropped\nINFO stored\n");
    await until(async () => (await stored()).endsWith("INFO stored\n"), seen);
    // Without the section, lines pass on as received again.
    await pipeline.reload(config(dir, port));
    await send(port, "DEBUG stored again\n");
    await until(async () => (await stored()).endsWith("DEBUG stored again\n"), seen);
    assert.equal(await stored(), "DEBUG kept\nINFO stored\nDEBUG stored again\n");
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("route: a file sink's path names {fields._route}, and each line goes to its route's file", async () => {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const { config, problems } = checkServerConfig({
    log_level: "error",
    http: { address: "off" },
    inputs: { tcp: { type: "tcp", address: `127.0.0.1:${port}` } },
    sinks: { file: { type: "file", path: join(dir, "{fields._route}.log") } },
    transforms: {
      routes: {
        steps: [
          { type: "level" },
          { type: "route", to: "errors", level: ">=error" },
          { type: "route", to: "main" },
        ],
      },
    },
  });
  assert.deepEqual(problems.list, []);
  const pipeline = await Pipeline.start(config);
  const read = (name: string) => Deno.readTextFile(join(dir, name)).catch(() => "");
  try {
    await send(port, "INFO a\nERROR b\n  at c\nWARN d\n");
    await until(
      async () =>
        (await read("main.log")) === "INFO a\nWARN d\n" &&
        (await read("errors.log")) === "ERROR b\n  at c\n",
      () => "the lines did not reach their routes' files",
    );
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});
