import assert from "node:assert/strict";
import { planReload } from "./reload.ts";
import { checkServerConfig, type ServerConfig } from "./server_config.ts";

function config(doc: Record<string, unknown>): ServerConfig {
  const { config, problems } = checkServerConfig({
    sinks: { file: { type: "file" } },
    ...doc,
  });
  assert.deepEqual(problems.list, []);
  return config;
}

const INPUTS = {
  a: { type: "tcp", address: ":9000" },
  b: { type: "tcp", address: ":9001" },
  c: { type: "watch", paths: ["/x/*.log"] },
};
const RUNNING = config({ inputs: INPUTS });

Deno.test("a reload adds, removes and changes inputs one by one", () => {
  const plan = planReload(
    RUNNING,
    config({
      log_level: "debug",
      inputs: {
        a: { type: "tcp", address: ":9000" },
        b: { type: "tcp", address: ":9001", max_line: "64KiB" },
        d: { type: "tcp", address: ":9002" },
      },
    }),
  );
  assert.deepEqual(plan, {
    added: ["d"],
    removed: ["c"],
    changed: ["b"],
    unchanged: ["a"],
    logLevel: true,
  });
});

Deno.test("a reload that changes the API, sinks, net or storage is refused whole", () => {
  const plan = planReload(
    RUNNING,
    config({
      http: { address: "127.0.0.1:9999" },
      net: { max_connections: 10 },
      inputs: {},
    }),
  );
  assert.equal(
    plan.refused,
    "http, net changed, and only inputs and log_level are applied while running: restart " +
      "logboom to apply the rest",
  );
  assert.deepEqual([plan.added, plan.removed, plan.changed], [[], [], []]);
  assert.match(
    planReload(RUNNING, config({ inputs: INPUTS, sinks: { file: { type: "file", path: "x" } } }))
      .refused!,
    /^sinks changed/,
  );
});
