import assert from "node:assert/strict";
import { formatProblem } from "./keys.ts";
import { checkServerConfig, flagKeys } from "./server_config.ts";

const MINIMAL = {
  inputs: { tcp: { type: "tcp" } },
  sinks: { file: { type: "file" } },
};

function problemsOf(doc: unknown): string[] {
  return checkServerConfig(doc).problems.list.map(formatProblem);
}

Deno.test("a minimal config runs on the flags' defaults, with a live sink for the HTTP API", () => {
  const { config, problems } = checkServerConfig(MINIMAL);
  assert.deepEqual(problems.list, []);
  assert.equal(config.log_level, "info");
  assert.deepEqual(config.http.address, { hostname: "127.0.0.1", port: 8081 });
  assert.deepEqual(config.inputs.tcp.address, { hostname: "0.0.0.0", port: 8080 });
  assert.equal(config.sinks.file.path, "aggregated_logs.txt");
  assert.deepEqual(config.sinks.live, { type: "live", max_subscribers: 1000, tail_rate: 200000 });
  assert.deepEqual(config.net, { max_connections: 2048, idle_timeout: 3_600_000 });
});

Deno.test("without the HTTP API no live sink is added, and a declared one is refused", () => {
  const off = checkServerConfig({ ...MINIMAL, http: { address: "off" } });
  assert.deepEqual(off.problems.list, []);
  assert.equal(off.config.sinks.live, undefined);
  assert.deepEqual(
    problemsOf({
      http: { address: "off" },
      inputs: MINIMAL.inputs,
      sinks: { file: { type: "file" }, tails: { type: "live" } },
    }),
    ["sinks.tails: a live sink needs the HTTP API, and http.address is off"],
  );
});

Deno.test("every problem of a config is reported, each with its key path", () => {
  assert.deepEqual(
    problemsOf({
      log_level: "loud",
      storage: { state_dir: "" },
      http: { address: "nowhere", tokn: "x" },
      net: { max_connections: 0 },
      inputs: {
        tcp: { type: "tcp", address: "0.0.0.0:9000", max_line: "big" },
        "bad name": { type: "tcp" },
        api: { type: "http" },
        odd: { type: "smoke" },
        untyped: { address: ":1" },
        files: { type: "watch" },
      },
      sinks: { file: { type: "file", fsync: "sometimes" }, other: { type: "file" } },
      sink: {},
    }),
    [
      'sink: unknown key; did you mean "sinks"?',
      'log_level: must be one of debug, info, warn, error, got "loud"',
      "storage.state_dir: must not be empty",
      'http.tokn: unknown key; did you mean "token"?',
      'http.address: must be host:port such as "127.0.0.1:8081", or off (port 1-65535), got ' +
      '"nowhere"',
      "net.max_connections: must be a whole number of at least 1, got 0",
      'inputs.tcp.max_line: must be a size above zero such as 1048576 or "1MiB", got "big"',
      "inputs.bad name: a name is 1 to 64 letters, digits, _ or -",
      "inputs.api.type: http is configured in the top-level http section, not under inputs",
      'inputs.odd.type: must be one of tcp, watch, syslog, udp, got "smoke"',
      "inputs.untyped.type: is required: one of tcp, watch, syslog, udp",
      "inputs.files.paths: is required",
      'sinks.file.fsync: must be one of never, interval, batch, got "sometimes"',
      "sinks.other: one file sink for now; sinks.file is one (exactly-once HTTP ingest journals " +
      "one sink's files)",
    ],
  );
});

Deno.test("a config needs a file sink and something to read from", () => {
  assert.deepEqual(problemsOf({}), ["sinks: needs a sink of type file, where lines are stored"]);
  assert.deepEqual(problemsOf({ http: { address: "off" }, sinks: MINIMAL.sinks }), [
    "inputs: nothing receives lines: add an input or turn the HTTP API on",
  ]);
  assert.deepEqual(problemsOf([]), [
    "the file must hold a mapping of keys",
    "sinks: needs a sink of type file, where lines are stored",
  ]);
  assert.deepEqual(problemsOf({ ...MINIMAL, inputs: [] }), ["inputs: must be a mapping, got []"]);
});

Deno.test("two listeners on one port are refused before anything runs", () => {
  assert.deepEqual(
    problemsOf({
      http: { address: "127.0.0.1:9000" },
      inputs: {
        a: { type: "tcp", address: "0.0.0.0:9000" },
        b: { type: "tcp", address: "127.0.0.2:9001" },
        c: { type: "tcp", address: "127.0.0.3:9001" },
      },
      sinks: MINIMAL.sinks,
    }),
    ["inputs.a.address: tcp 0.0.0.0:9000 is taken by http.address already"],
  );
});

Deno.test("a file template that could write into the state folder is refused", () => {
  assert.deepEqual(
    problemsOf({
      storage: { state_dir: "logs/state" },
      inputs: MINIMAL.inputs,
      sinks: { file: { type: "file", path: "logs/{source}/{host}.log" } },
    }),
    [
      'sinks.file.path: "logs/{source}/{host}.log" could name files inside the state folder ' +
      '"logs/state": choose another path or storage.state_dir',
    ],
  );
});

Deno.test("relative paths are taken from the config file's folder", () => {
  const { config } = checkServerConfig({
    storage: { state_dir: "state" },
    inputs: { app: { type: "watch", paths: ["app/*.log", "/var/log/x.log"] } },
    sinks: { file: { type: "file", path: "logs/{source}.log" } },
  }, { base: "/etc/logboom" });
  assert.equal(config.storage.state_dir, "/etc/logboom/state");
  assert.deepEqual(config.inputs.app.paths, ["/etc/logboom/app/*.log", "/var/log/x.log"]);
  assert.equal(config.sinks.file.path, "/etc/logboom/logs/{source}.log");
});

Deno.test("flagKeys names the keys each serve flag sets", () => {
  const keys = flagKeys();
  assert.deepEqual(keys.get("port"), ["inputs.<name>.address (type tcp)"]);
  assert.deepEqual(keys.get("logFile"), ["sinks.<name>.path (type file)"]);
  assert.deepEqual(keys.get("maxLine"), [
    "http.max_line",
    "inputs.<name>.max_line (type tcp)",
    "inputs.<name>.max_line (type watch)",
  ]);
  assert.deepEqual(keys.get("http"), ["http.address"]);
});
