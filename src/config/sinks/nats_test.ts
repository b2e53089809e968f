import assert from "node:assert/strict";
import { parseServeArgs, serverConfigFromFlags } from "../../cli/serve.ts";
import { parseServerConfig } from "../load.ts";

Deno.test("serve -nats: JetStream takes the file sink's place", () => {
  const { config } = parseServeArgs(["-nats", "nats://a:4222,b:4222", "-natsStream", "LOGS"]);
  const server = serverConfigFromFlags(config);
  assert.equal(server.sinks.file, undefined);
  assert.equal(server.sinks.nats.type, "nats");
  assert.deepEqual(server.sinks.nats.servers, ["nats://a:4222", "b:4222"]);
  assert.equal(server.sinks.nats.stream, "LOGS");
  assert.equal(server.sinks.nats.replicas, 3);
  assert.equal(serverConfigFromFlags(parseServeArgs([]).config).sinks.nats, undefined);
});

Deno.test("serve -nats: the queue is the nats sink's own (16 MiB) unless -queueBytes says", () => {
  const queue = (...args: string[]) =>
    serverConfigFromFlags(parseServeArgs(["-nats", "nats://a:4222", ...args]).config).sinks.nats
      .queue_bytes;
  assert.equal(queue(), 16 * 1024 * 1024);
  assert.equal(queue("-queueBytes", "1MiB"), 1024 * 1024);
  assert.equal(queue("--queueBytes=128MiB"), 128 * 1024 * 1024);
});

Deno.test("nats sink keys: bad servers, stream names and subjects are refused at their key", () => {
  const problems = (sink: Record<string, unknown>) => {
    try {
      parseServerConfig(JSON.stringify({ sinks: { js: { type: "nats", ...sink } } }), "x.json");
      return "";
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.equal(problems({ servers: ["nats://10.0.0.1:4222"] }), "");
  assert.match(problems({}), /sinks\.js\.servers/);
  assert.match(problems({ servers: ["http://x:1"] }), /sinks\.js\.servers.*nats:\/\//s);
  assert.match(problems({ servers: ["a:4222"], stream: "a.b" }), /sinks\.js\.stream/);
  assert.match(problems({ servers: ["a:4222"], subject: "a.>" }), /sinks\.js\.subject/);
  assert.match(problems({ servers: ["a:4222"], replicas: 7 }), /sinks\.js\.replicas/);
});

Deno.test("serve -nats with file flags says they are not used", () => {
  const { warnings } = parseServeArgs(["-nats", "a:4222", "-logFile", "x.log", "-compress"]);
  assert.deepEqual(warnings, [
    "-nats replaces the log file: -logFile, -compress not used (give them to logboom store, " +
    "which writes the files)",
  ]);
  assert.deepEqual(parseServeArgs(["-nats", "a:4222"]).warnings, []);
});
