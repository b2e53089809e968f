import assert from "node:assert/strict";
import { FlagError } from "./flags.ts";
import { flagsFromObject, parseStoreArgs } from "./store.ts";

Deno.test("store: flags make a worker's settings, durable by default", () => {
  const { config } = parseStoreArgs([
    "-nats",
    "10.0.0.1:4222,nats://10.0.0.2:4222",
    "-logFile",
    "logs/{source}.log",
    "-partitions",
    "4",
    "-partition",
    "1,3",
  ]);
  assert.deepEqual(config.servers, ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]);
  assert.deepEqual(config.owned, [1, 3]);
  assert.equal(config.fsync, "batch");
  assert.equal(config.stream, "LOGBOOM");
  assert.equal(config.ackWaitMs, 30_000);
  assert.equal(
    parseStoreArgs(["-nats", "n:4222", "-postgres", "postgres://h/db"]).config
      .owned.length,
    1,
  );
});

Deno.test("store: a missing or bad flag is a clear error", () => {
  const bad = (args: string[], message: RegExp) =>
    assert.throws(
      () => parseStoreArgs(args),
      (err) => err instanceof FlagError && message.test(err.message),
    );
  bad(["-logFile", "x.log"], /-nats" is required/);
  bad(["-nats", "n:4222"], /Needs -logFile, -postgres or both/);
  bad(["-nats", "n:4222", "-logFile", "x", "-partition", "2"], /from 0 to 0, got "2"/);
  bad(["-nats", "n:4222", "-logFile", "x", "-ackWait", "soon"], /-ackWait" takes a duration/);
});

Deno.test("store: a config file's keys are the flags' names", () => {
  const args = flagsFromObject({
    nats: ["nats://a:4222", "nats://b:4222"],
    logFile: "/var/log/logboom/{source}.log",
    compress: true,
    partitions: 2,
  });
  assert.deepEqual(args, [
    "-nats",
    "nats://a:4222,nats://b:4222",
    "-logFile",
    "/var/log/logboom/{source}.log",
    "-compress",
    "-partitions",
    "2",
  ]);
  assert.equal(parseStoreArgs(args).config.compress, true);
  assert.throws(() => flagsFromObject({ nats: "x", lgFile: "y" }), /Unknown key "lgFile"/);
});
