import assert from "node:assert/strict";
import { planReload } from "./reload.ts";
import { checkServerConfig, type ServerConfig } from "./server_config.ts";

function config(doc: Record<string, unknown>): ServerConfig {
  const { config, problems } = checkServerConfig({
    sinks: { file: { type: "file", path: "/logs/out.log" } },
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

Deno.test("a reload adds, removes and changes inputs and sinks one by one", () => {
  const plan = planReload(
    RUNNING,
    config({
      log_level: "debug",
      inputs: {
        a: { type: "tcp", address: ":9000" },
        b: { type: "tcp", address: ":9001", max_line: "64KiB" },
        d: { type: "tcp", address: ":9002" },
      },
      sinks: { file: { type: "file", path: "/logs/{source}.log", rotate_size: "1MiB" } },
    }),
  );
  assert.deepEqual(plan, {
    added: ["d"],
    removed: ["c"],
    changed: ["b"],
    unchanged: ["a"],
    sinks: { added: [], removed: [], changed: ["file"], unchanged: ["live"] },
    http: [],
    net: [],
    logLevel: true,
    transforms: { added: [], removed: [], changed: [], unchanged: [] },
  });
});

Deno.test("a reload applies the HTTP API's keys and net in place, a new address included", () => {
  const plan = planReload(
    RUNNING,
    config({
      inputs: INPUTS,
      http: { address: "127.0.0.1:9999", token: "t", max_body: "1MiB" },
      net: { max_connections: 10, idle_timeout: "5m" },
      sinks: {
        file: { type: "file", path: "/logs/out.log" },
        live: { type: "live", tail_rate: 5 },
      },
    }),
  );
  assert.equal(plan.refused, undefined);
  assert.deepEqual(plan.http, ["address", "token", "max_body"]);
  assert.deepEqual(plan.net, ["max_connections", "idle_timeout"]);
  assert.deepEqual(plan.sinks.changed, ["live"]);
});

Deno.test("a reload that moves the state folder or turns the API on or off is refused whole", () => {
  const refused = (doc: Record<string, unknown>) => planReload(RUNNING, config(doc)).refused;
  assert.match(
    refused({ inputs: INPUTS, storage: { state_dir: "/state" } })!,
    /^storage\.state_dir changed from \(unset\) to "\/state": .*restart logboom to apply it$/,
  );
  assert.match(
    refused({ inputs: INPUTS, http: { address: "off" } })!,
    /^http\.address turned the HTTP API off: .*restart logboom/,
  );
  // The state folder is beside the file sink's files unless set: moving them would move it.
  assert.match(
    refused({ inputs: INPUTS, sinks: { file: { type: "file", path: "/elsewhere/out.log" } } })!,
    /moves the state folder \(stream marks\) from "\/logs\/\.logboom" to "\/elsewhere\/\.logboom".* set storage\.state_dir: "\/logs\/\.logboom" to keep it/,
  );
  const kept = planReload(
    config({ inputs: INPUTS, storage: { state_dir: "/state" } }),
    config({
      inputs: INPUTS,
      storage: { state_dir: "/state" },
      sinks: { file: { type: "file", path: "/elsewhere/out.log" } },
    }),
  );
  assert.equal(kept.refused, undefined);
  assert.deepEqual(kept.sinks.changed, ["file"]);
  const whole = planReload(RUNNING, config({ inputs: { a: INPUTS.a }, http: { address: "off" } }));
  assert.deepEqual([whole.added, whole.removed, whole.changed, whole.sinks.changed], [
    [],
    [],
    [],
    [],
  ]);
});
