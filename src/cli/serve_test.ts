import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import { checkServerConfig } from "../config/server_config.ts";
import { parseServeArgs, serverConfigFromFlags } from "./serve.ts";

Deno.test("serve defaults to port 8080 and aggregated_logs.txt", () => {
  const { config, warnings } = parseServeArgs([]);
  assert.equal(config.port, 8080);
  assert.equal(config.logFile, "aggregated_logs.txt");
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.maxLine, 1024 * 1024);
  assert.equal(config.queueBytes, 64 * 1024 * 1024);
  assert.equal(config.fsync, "interval");
  assert.deepEqual(warnings, []);
});

Deno.test("serve takes the specification's -port 9000 -logFile custom_logs.txt", () => {
  const { config } = parseServeArgs(["-port", "9000", "-logFile", "custom_logs.txt"]);
  assert.equal(config.port, 9000);
  assert.equal(config.logFile, "custom_logs.txt");
});

Deno.test("an invalid port warns and falls back to both defaults (Example 3)", () => {
  for (const port of ["abc", "80", "1023", "65536", "9000.5", "-1", " 9000", "0x2328"]) {
    const { config, warnings } = parseServeArgs(["-port", port, "-logFile", "custom_logs.txt"]);
    assert.deepEqual(warnings, [`Invalid port number: ${port}`], port);
    assert.equal(config.port, 8080);
    assert.equal(config.logFile, "aggregated_logs.txt");
  }
  assert.deepEqual(parseServeArgs(["-port", "1024"]).warnings, []);
  assert.deepEqual(parseServeArgs(["-port", "65535"]).warnings, []);
});

Deno.test("other bad values stop serve with a FlagError", () => {
  assert.throws(() => parseServeArgs(["-fsync", "sometimes"]), FlagError);
  assert.throws(() => parseServeArgs(["-logLevel", "loud"]), FlagError);
  assert.throws(() => parseServeArgs(["-maxLine", "big"]), FlagError);
  assert.throws(() => parseServeArgs(["stray"]), { message: 'Unexpected argument "stray"' });
});

Deno.test("serve takes the storage flags", () => {
  const { config } = parseServeArgs([
    "-logFile",
    "logs/{source}.log",
    "-rotateSize",
    "100MiB",
    "-rotateEvery",
    "24h",
    "-compress",
    "-keep",
    "7",
    "-maxAge",
    "30d",
    "-format",
    "json",
    "-maxOpenFiles",
    "64",
  ]);
  assert.equal(config.logFile, "logs/{source}.log");
  assert.equal(config.rotateBytes, 100 * 1024 * 1024);
  assert.equal(config.rotateEveryMs, 24 * 3600 * 1000);
  assert.equal(config.compress, true);
  assert.equal(config.keep, 7);
  assert.equal(config.maxAgeMs, 30 * 24 * 3600 * 1000);
  assert.equal(config.format, "json");
  assert.equal(config.maxOpenFiles, 64);
  const plain = parseServeArgs([]).config;
  assert.equal(plain.rotateBytes, undefined);
  assert.equal(plain.compress, false);
});

Deno.test("bad storage values are refused with the flag named", () => {
  assert.throws(() => parseServeArgs(["-rotateEvery", "daily"]), /-rotateEvery/);
  assert.throws(() => parseServeArgs(["-rotateEvery", "0s"]), /-rotateEvery/);
  assert.throws(() => parseServeArgs(["-keep", "-1"]), /-keep/);
  assert.throws(() => parseServeArgs(["-maxOpenFiles", "0"]), /-maxOpenFiles/);
  assert.throws(() => parseServeArgs(["-format", "xml"]), /-format/);
});

Deno.test("the flags build the same config object a config file gives", () => {
  const flags = serverConfigFromFlags(parseServeArgs([]).config);
  const file = checkServerConfig({
    inputs: { tcp: { type: "tcp" } },
    sinks: { file: { type: "file" } },
  });
  assert.deepEqual(file.problems.list, []);
  assert.deepEqual(flags, file.config);
  const set = serverConfigFromFlags(
    parseServeArgs([
      "-port=9000",
      "-host=127.0.0.1",
      "-logFile=logs/{source}.log",
      "-format=json",
      "-fsync=batch",
      "-queueBytes=8MiB",
      "-rotateSize=100MiB",
      "-rotateEvery=24h",
      "-compress",
      "-keep=7",
      "-maxAge=30d",
      "-maxOpenFiles=64",
      "-maxLine=64KiB",
      "-stateDir=state",
      "-logLevel=warn",
      "-http=127.0.0.1:9001",
      "-token=t",
      "-maxBody=1MiB",
      "-maxSubscribers=5",
      "-tailRate=0",
      "-allowOrigin=https://a.example",
      "-headerTimeout=5s",
      "-bodyTimeout=6s",
      "-maxConnections=10",
      "-idleTimeout=90s",
      "-watch",
      "/var/log/a.log",
      "/var/log/b.log",
    ]).config,
  );
  const same = checkServerConfig({
    log_level: "warn",
    storage: { state_dir: "state" },
    http: {
      address: "127.0.0.1:9001",
      token: "t",
      max_body: "1MiB",
      max_line: "64KiB",
      allow_origin: ["https://a.example"],
      header_timeout: "5s",
      body_timeout: "6s",
    },
    net: { max_connections: 10, idle_timeout: "90s" },
    inputs: {
      tcp: { type: "tcp", address: "127.0.0.1:9000", max_line: "64KiB" },
      watch: { type: "watch", paths: ["/var/log/a.log", "/var/log/b.log"], max_line: "64KiB" },
    },
    sinks: {
      file: {
        type: "file",
        path: "logs/{source}.log",
        format: "json",
        fsync: "batch",
        queue_bytes: "8MiB",
        rotate_size: "100MiB",
        rotate_every: "24h",
        compress: true,
        keep: 7,
        max_age: "30d",
        max_open_files: 64,
      },
      live: { type: "live", max_subscribers: 5, tail_rate: 0 },
    },
  });
  assert.deepEqual(same.problems.list, []);
  assert.deepEqual(set, same.config);
  const off = serverConfigFromFlags(parseServeArgs(["-http", "off"]).config);
  assert.equal(off.sinks.live, undefined);
});

Deno.test("-config stands alone: another flag is refused, naming its key in the file", () => {
  const { configFile } = parseServeArgs(["-config", "logboom.yaml"]);
  assert.equal(configFile, "logboom.yaml");
  assert.throws(() => parseServeArgs(["-config", "x.yaml", "-port", "9000"]), {
    name: "FlagError",
    message: 'Flag "-port" cannot be used with -config: the file holds the whole configuration ' +
      "(in the file: inputs.<name>.address (type tcp))",
  });
  assert.throws(
    () => parseServeArgs(["-logLevel=debug", "-config=x.yaml"]),
    /-logLevel.*log_level/,
  );
  assert.throws(() => parseServeArgs(["-config", "x.yaml", "stray"]), /Unexpected argument/);
  assert.throws(() => parseServeArgs(["-config", ""]), /-config" needs a file/);
});
