import assert from "node:assert/strict";
import { join } from "node:path";
import { bindFreePort, freePort, send, writeAll } from "../../tests/_server.ts";
import { SseTail, until } from "../../tests/_http.ts";
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

Deno.test("a reload whose new input or sink cannot start is refused; the running ones go on", async () => {
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
    // A sink that cannot open refuses the reload too: "out.log" is a file, not a folder.
    const unwritable = checkServerConfig({
      log_level: "error",
      http: { address: "off" },
      inputs: { a: { type: "tcp", address: `127.0.0.1:${port}` } },
      sinks: { file: { type: "file", path: join(dir, "out.log", "{source}.log") } },
    }).config;
    await assert.rejects(
      () => pipeline.reload(unwritable),
      (err: unknown) =>
        err instanceof ReloadRefused && /Cannot open log file .*out\.log/.test(err.message),
    );
    assert.equal(pipeline.config, running);
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

/** A config with the HTTP API on `httpPort`, the file sink at `path` and the state in `dir`. */
function withApi(
  dir: string,
  httpPort: number,
  parts: { http?: Record<string, unknown>; inputs?: Record<string, unknown>; sinks?: object },
): ServerConfig {
  const { config, problems } = checkServerConfig({
    log_level: "error",
    storage: { state_dir: join(dir, "state") },
    http: { address: `127.0.0.1:${httpPort}`, ...parts.http },
    inputs: parts.inputs ?? {},
    sinks: parts.sinks ?? { file: { type: "file", path: join(dir, "out.log") } },
  });
  assert.deepEqual(problems.list, []);
  return config;
}

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/api/v1/ingest`, { method: "POST", body, headers });
  await res.body?.cancel();
  return res.status;
}

Deno.test("a reload applies the HTTP API's keys in place and binds its new address before the old one goes", async () => {
  const dir = await Deno.makeTempDir();
  const [port, moved] = [freePort(), freePort()];
  const pipeline = await Pipeline.start(withApi(dir, port, { http: { token: "one" } }));
  try {
    const url = `http://127.0.0.1:${port}`;
    const tail = await SseTail.open(url, "", { authorization: "Bearer one" });
    assert.equal(await post(url, "a\n", { authorization: "Bearer one" }), 200);
    const done = await pipeline.reload(
      withApi(dir, port, { http: { token: "two", max_body: "1KiB" } }),
    );
    assert.deepEqual([done.http, done.sinks.rebuilt], [["token", "max_body"], []]);
    assert.equal(await post(url, "b\n", { authorization: "Bearer one" }), 401);
    assert.equal(await post(url, "c\n", { authorization: "Bearer two" }), 200);
    assert.equal(await post(url, "x".repeat(2000) + "\n", { authorization: "Bearer two" }), 413);
    // The tail opened before the reload goes on (the live sink did not change).
    await tail.wait((t) => t.lines.length === 2);
    assert.deepEqual(tail.lines.map((l) => l.line), ["a", "c"]);
    const api = pipeline.inputs.find((i) => i.type === "http")!;
    await pipeline.reload(withApi(dir, moved, { http: { token: "two" } }));
    assert.equal(pipeline.inputs.find((i) => i.type === "http"), api, "the same API, moved");
    assert.equal(api.address, `http://127.0.0.1:${moved}`);
    await assert.rejects(() => fetch(`${url}/healthz`), TypeError, "the old address is closed");
    const next = `http://127.0.0.1:${moved}`;
    assert.equal(await post(next, "d\n", { authorization: "Bearer two" }), 200);
    await tail.wait((t) => t.lines.length === 3);
    await tail.close();
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reload that rebuilds the live sink ends its tails; a new tail reads the new hub", async () => {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const pipeline = await Pipeline.start(withApi(dir, port, {}));
  try {
    const tail = await SseTail.open(url);
    await pipeline.reload(withApi(dir, port, {
      sinks: {
        file: { type: "file", path: join(dir, "out.log") },
        live: { type: "live", max_subscribers: 5 },
      },
    }));
    await tail.wait((t) => t.ended);
    const again = await SseTail.open(url);
    assert.equal(await post(url, "after\n"), 200);
    await again.wait((t) => t.lines.length === 1);
    await again.close();
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reload that moves the sinks' output where a watch input looks rebuilds it: logboom never reads back what it writes", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "in"));
  const config = (out: string) => {
    const { config, problems } = checkServerConfig({
      log_level: "error",
      storage: { state_dir: join(dir, "state") },
      http: { address: "off" },
      inputs: { files: { type: "watch", paths: [join(dir, "in/*.log")] } },
      sinks: { file: { type: "file", path: out } },
    });
    assert.deepEqual(problems.list, []);
    return config;
  };
  const pipeline = await Pipeline.start(config(join(dir, "out.log")));
  try {
    const out = join(dir, "in/stored.log");
    const done = await pipeline.reload(config(out));
    assert.deepEqual([done.rebuilt, done.sinks.rebuilt], [["files"], ["file"]]);
    await Deno.writeTextFile(join(dir, "in/app.log"), "once\n");
    await until(async () => (await Deno.readTextFile(out).catch(() => "")) !== "", () => "");
  } finally {
    await pipeline.close();
  }
  try {
    assert.equal(await Deno.readTextFile(join(dir, "in/stored.log")), "once\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tcp inputs with their own source file their lines apart; a lower connection cap applies to the next connection", async () => {
  const dir = await Deno.makeTempDir();
  const [a, b] = [freePort(), freePort()];
  const config = (maxConnections: number) => {
    const { config, problems } = checkServerConfig({
      log_level: "error",
      http: { address: "off" },
      net: { max_connections: maxConnections },
      inputs: {
        a: { type: "tcp", address: `127.0.0.1:${a}` },
        b: { type: "tcp", address: `127.0.0.1:${b}`, source: "edge" },
      },
      sinks: { file: { type: "file", path: join(dir, "{source}.log") } },
    });
    assert.deepEqual(problems.list, []);
    return config;
  };
  const pipeline = await Pipeline.start(config(10));
  try {
    await send(a, "to a\n");
    await send(b, "to b\n");
    const stored = (name: string) => Deno.readTextFile(join(dir, name)).catch(() => "");
    await until(async () => await stored("tcp.log") === "to a\n", () => "a's line");
    await until(async () => await stored("edge.log") === "to b\n", () => "b's line");
    using open = await Deno.connect({ hostname: "127.0.0.1", port: a });
    await until(() => pipeline.inputs[0].stats().connections === 1, () => "not accepted");
    const done = await pipeline.reload(config(1));
    assert.deepEqual([done.net, done.updated, done.rebuilt], [["max_connections"], [], []]);
    // The open connection stays; the next one is closed at once, as over the cap.
    using refused = await Deno.connect({ hostname: "127.0.0.1", port: b });
    assert.equal(await refused.read(new Uint8Array(1)), null);
    await writeAll(open, new TextEncoder().encode("still open\n"));
    await until(async () => (await stored("tcp.log")).endsWith("still open\n"), () => "");
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});
