import assert from "node:assert/strict";
import {
  type AgentConfig,
  agentConfigProblems,
  checkAgentConfig,
  ConfigError,
  diffInputs,
  parseAgentConfig,
} from "./config.ts";

const BASE = {
  servers: ["http://127.0.0.1:8081"],
  state_dir: "/tmp/state",
  inputs: [{ source: "app", paths: ["/var/log/app/*.log"] }],
};

function check(doc: unknown): AgentConfig {
  return checkAgentConfig(doc, "/etc/logboom/agent.yaml");
}

function refuses(doc: unknown, key: string, pattern: RegExp): void {
  assert.throws(() => check(doc), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.key, key);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("config fills in defaults and resolves paths from the config's folder", () => {
  const config = check({
    ...BASE,
    state_dir: "state",
    inputs: [{ source: "app", paths: ["a.log"] }],
  });
  assert.equal(config.stateDir, "/etc/logboom/state");
  assert.deepEqual(config.inputs[0].paths, ["/etc/logboom/a.log"]);
  assert.equal(config.inputs[0].name, "app");
  assert.equal(config.inputs[0].startAt, "beginning");
  assert.equal(config.batch.maxBytes, 1024 * 1024);
  assert.equal(config.batch.maxWaitMs, 200);
  assert.equal(config.retry.failoverAfter, 2);
});

Deno.test("config parses the issue's YAML example", () => {
  const yaml = `
servers: ["http://10.0.0.5:8081", "http://10.0.0.6:8081"]   # failover order
token: "secret"
state_dir: /var/lib/logboom-agent
inputs:
  - source: nginx
    paths: ["/var/log/nginx/*.log"]
    exclude: ["*.gz"]
    start_at: end
    multiline: { start: '^\\d{4}-\\d{2}-\\d{2} ' }
batch: { max_bytes: 1048576, max_wait: 200ms }
`;
  const config = parseAgentConfig(yaml, "/etc/agent.yaml");
  assert.deepEqual(config.servers, ["http://10.0.0.5:8081", "http://10.0.0.6:8081"]);
  assert.equal(config.token, "secret");
  assert.equal(config.inputs[0].startAt, "end");
  assert.ok(config.inputs[0].multiline!.start.test("2024-01-02 error"));
  assert.equal(config.batch.maxWaitMs, 200);
});

Deno.test("config names the key at fault in one line", () => {
  refuses({ ...BASE, servers: [] }, "servers", /at least one/);
  refuses({ ...BASE, servers: ["ftp://x"] }, "servers[0]", /http/);
  refuses({ ...BASE, state_dir: undefined }, "state_dir", /required/);
  refuses({ ...BASE, inputs: [{ source: "a" }] }, "inputs[0].paths", /list/);
  refuses(
    { ...BASE, inputs: [{ source: "a", paths: ["x"], start_at: "middle" }] },
    "inputs[0].start_at",
    /beginning or end/,
  );
  refuses(
    { ...BASE, inputs: [{ source: "a", paths: ["x"], pahts: [] }] },
    "inputs[0].pahts",
    /unknown key/,
  );
  refuses({ ...BASE, batch: { max_wait: "soon" } }, "batch.max_wait", /duration/);
  refuses({ ...BASE, batch: { max_bytes: "lots" } }, "batch.max_bytes", /size/);
  refuses(
    { ...BASE, inputs: [{ source: "a", paths: ["x"], multiline: { start: "(" } }] },
    "inputs[0].multiline.start",
    /regular expression/,
  );
  refuses(
    { ...BASE, inputs: [{ source: "a", paths: ["x"] }, { source: "a", paths: ["y"] }] },
    "inputs[1].name",
    /another input/,
  );
  refuses({ ...BASE, sevrers: [] }, "sevrers", /unknown key/);
  assert.throws(() => parseAgentConfig("servers: [", "a.yaml"), /not valid YAML/);
});

Deno.test("config diff restarts only the inputs that changed", () => {
  const before = check({
    ...BASE,
    inputs: [{ source: "a", paths: ["/a"] }, { source: "b", paths: ["/b"] }, {
      source: "c",
      paths: ["/c"],
    }],
  });
  const after = check({
    ...BASE,
    servers: ["http://127.0.0.1:9999"],
    inputs: [{ source: "a", paths: ["/a"] }, { source: "b", paths: ["/b2"] }, {
      source: "d",
      paths: ["/d"],
    }],
  });
  assert.deepEqual(diffInputs(before, after), {
    added: ["d"],
    removed: ["c"],
    changed: ["b"],
    unchanged: ["a"],
  });
  const bigger = check({
    ...BASE,
    inputs: before.inputs.map((i) => ({ source: i.source, paths: i.paths })),
    batch: { max_bytes: 2048 },
  });
  assert.deepEqual(diffInputs(before, bigger).changed, ["a", "b", "c"]);
});

Deno.test("a multiline start pattern runs in linear time: a config cannot freeze the agent", () => {
  const config = parseAgentConfig(
    JSON.stringify({
      ...BASE,
      inputs: [{ source: "a", paths: ["x"], multiline: { start: "(a+)+$" } }],
    }),
    "a.json",
  );
  // On a backtracking engine this line takes 2^40 steps; on the linear one, microseconds.
  assert.equal(config.inputs[0].multiline!.start.test("a".repeat(40) + "!"), false);
  assert.equal(config.inputs[0].multiline!.start.test("aaa"), true);
  // What only a backtracking engine does is refused with the key, before anything runs.
  refuses(
    { ...BASE, inputs: [{ source: "a", paths: ["x"], multiline: { start: "^(a)\\1" } }] },
    "inputs[0].multiline.start",
    /regular expression/,
  );
});

Deno.test("sizes and the metrics address are read as the server reads them (units.ts)", () => {
  const config = check({ ...BASE, batch: { max_bytes: "64KiB" }, metrics: "[::1]:9101" });
  assert.equal(config.batch.maxBytes, 64 * 1024);
  assert.deepEqual(config.metrics, { hostname: "::1", port: 9101 });
  assert.deepEqual(check({ ...BASE, metrics: ":9101" }).metrics, {
    hostname: "0.0.0.0",
    port: 9101,
  });
  assert.equal(check({ ...BASE, max_line: "2m" }).maxLine, 2 * 1024 * 1024);
  refuses({ ...BASE, metrics: "127.0.0.1:70000" }, "metrics", /ADDR:PORT such as/);
  refuses({ ...BASE, metrics: "127.0.0.1" }, "metrics", /ADDR:PORT such as/);
  refuses({ ...BASE, batch: { max_bytes: "1 parsec" } }, "batch.max_bytes", /size from/);
});

Deno.test("agentConfigProblems gives every problem at its key, checkAgentConfig the first", () => {
  const doc = {
    servers: ["ftp://x"],
    state_dir: "/s",
    colour: "blue",
    inputs: [{ paths: [] }, { source: "b", paths: ["/b"], start_at: "middle" }],
    batch: { max_wait: "soon" },
  };
  assert.deepEqual(agentConfigProblems(doc, "/etc/a.json").map((p) => p.key), [
    "colour",
    "servers[0]",
    "inputs[0].source",
    "inputs[0].paths",
    "inputs[1].start_at",
    "batch.max_wait",
  ]);
  refuses(doc, "colour", /unknown key/);
  assert.deepEqual(agentConfigProblems(BASE, "/etc/a.json"), []);
});
