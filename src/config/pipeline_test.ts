import assert from "node:assert/strict";
import { join } from "node:path";
import { bindFreePort, freePort, send } from "../../tests/_server.ts";
import { until } from "../../tests/_http.ts";
import { Pipeline, ReloadRefused } from "./pipeline.ts";
import { checkServerConfig, type ServerConfig } from "./server_config.ts";

function config(dir: string, inputs: Record<string, unknown>): ServerConfig {
  const { config, problems } = checkServerConfig({
    log_level: "error",
    http: { address: "off" },
    inputs,
    sinks: { file: { type: "file", path: join(dir, "out.log") } },
  });
  assert.deepEqual(problems.list, []);
  return config;
}

Deno.test("a reload whose new input cannot start is refused; the running inputs go on", async () => {
  const dir = await Deno.makeTempDir();
  using taken = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
  const takenPort = (taken.addr as Deno.NetAddr).port;
  const port = freePort();
  const running = config(dir, { a: { type: "tcp", address: `127.0.0.1:${port}` } });
  const pipeline = await Pipeline.start(running);
  try {
    // "a" moves to a port that is free, "b" wants one that is taken: nothing of it applies.
    const next = config(dir, {
      a: { type: "tcp", address: `127.0.0.1:${freePort()}` },
      b: { type: "tcp", address: `127.0.0.1:${takenPort}` },
    });
    await assert.rejects(
      () => pipeline.reload(next),
      (err: unknown) =>
        err instanceof ReloadRefused &&
        new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${takenPort}: .*in use`, "i").test(
          err.message,
        ),
    );
    assert.equal(pipeline.config, running);
    assert.deepEqual(pipeline.inputs.map((i) => i.name), ["a"]);
    await send(port, "still here\n");
    const out = join(dir, "out.log");
    await until(async () => (await Deno.readTextFile(out)) === "still here\n", () => "not stored");
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(() => pipeline.reload(running), ReloadRefused);
});

Deno.test("a reload that moves an address from one input to another stops the first one first", async () => {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const pipeline = await Pipeline.start(
    config(dir, { a: { type: "tcp", address: `127.0.0.1:${port}` } }),
  );
  try {
    const done = await pipeline.reload(
      config(dir, { b: { type: "tcp", address: `127.0.0.1:${port}` } }),
    );
    assert.deepEqual([done.added, done.removed], [["b"], ["a"]]);
    assert.deepEqual(pipeline.inputs.map((i) => [i.name, i.address]), [
      ["b", `tcp://127.0.0.1:${port}`],
    ]);
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});
