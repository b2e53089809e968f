import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import { parseServeArgs } from "./serve.ts";

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
